"""Recurrent networks from first principles in NumPy: a vanilla tanh RNN, an LSTM and a character-level language
model built from them, each backward pass (backpropagation through time, BPTT) derived by hand beside its forward.

Shapes are time-major inside the recurrent layers: x is (T, B, D), hidden states are (T, B, H). The language
model takes batch-first (B, T) integer chunks like torch's `batch_first=True`.

Truncated BPTT. A long text is cut into chunks of T characters; the final state of one chunk is the initial state
of the next one (`h_last`, `c_last`), but gradients stop at the chunk boundary: the incoming state is a constant
for the backward pass (torch: `h.detach()`). The layers still return the gradient with respect to that incoming
state (`dh0`, `dc0`) so that it can be checked and plotted, it is just never propagated further.

Speed. The only Python loop is the time loop. The input projections x_t W_x + b of all timesteps are one GEMM
before the loop, the weight gradients dW_x, dW_h, db are one GEMM (or sum) each after it, and the loop works on
preallocated arrays with `out=` so that nothing is allocated per step. The sigmoid is computed through tanh,
sigmoid(z) = (1 + tanh(z / 2)) / 2, which cannot overflow; the halving is folded into the weights (exact: a
multiplication by 0.5 only changes the floating-point exponent).

Gate layout. The LSTM keeps one fused weight matrix for the four gates in torch's order (i, f, g, o):
W_x (D, 4H) = torch `weight_ih_l0.T`, W_h (H, 4H) = `weight_hh_l0.T`, and a single bias b (4H,) =
`bias_ih_l0 + bias_hh_l0` (copy b into bias_ih and zeros into bias_hh).
"""

import numpy as np

from shared.nn import Layer, Linear, softmax_cross_entropy
from shared.optim import clip_grad_norm

__all__ = ["RNN", "LSTM", "Embedding", "CharLM", "clip_grad_norm", "gradient_norms_through_time"]


def _uniform(rng, bound, shape, dtype):
    """U(-bound, bound): torch's default initialisation of nn.RNN / nn.LSTM / nn.Linear (bound = 1/sqrt(fan))."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _as_sequence(x_sequence):
    """A list/tuple of T arrays (B, D) -> one array (T, B, D); arrays pass through unchanged."""
    if isinstance(x_sequence, (list, tuple)):
        return np.stack([np.asarray(x) for x in x_sequence])
    return np.asarray(x_sequence)


def _accumulate_rows(ids, rows, num_rows):
    """out[v] = sum of rows[n] over n with ids[n] == v: (num_rows, F). The gradient of a row lookup W[ids].

    np.add.at does this in one call but slowly for wide rows (~60 ms for 3200 x 2048); for a small vocabulary a
    masked sum per distinct id is ~8x faster."""
    out = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    present = np.unique(ids)
    if present.size <= 512:
        for v in present:
            np.sum(rows[ids == v], axis=0, out=out[v])
    else:
        np.add.at(out, ids, rows)
    return out


def _is_ids(x):
    return x.dtype.kind in "iu"


def _check_input(x, input_size, what):
    if _is_ids(x):
        if x.ndim != 2:
            raise ValueError(f"{what}: integer (one-hot) input must be (T, B), got shape {x.shape}")
        if x.size and (x.min() < 0 or x.max() >= input_size):
            raise ValueError(f"{what}: ids must lie in [0, {input_size}), got [{x.min()}, {x.max()}]")
    elif x.ndim != 3 or x.shape[2] != input_size:
        raise ValueError(
            f"{what}: x must be (T, B, {input_size}) or a list of (B, {input_size}), got {x.shape}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{what}: empty sequence (T = 0)")


def _initial(state, batch, hidden, dtype, what):
    if state is None:
        return np.zeros((batch, hidden), dtype=dtype)
    state = np.asarray(state, dtype=dtype)
    if state.shape != (batch, hidden):
        raise ValueError(f"{what} must be ({batch}, {hidden}), got {state.shape}")
    return state


class _Recurrent(Layer):
    """Shared parts of RNN and LSTM: input projection for float or integer (one-hot) inputs and its backward."""

    def __init__(self, input_size, hidden_size, gates, rng, dtype):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        bound = 1.0 / np.sqrt(hidden_size)
        self.params["Wx"] = _uniform(rng, bound, (input_size, gates * hidden_size), dtype)
        self.params["Wh"] = _uniform(rng, bound, (hidden_size, gates * hidden_size), dtype)
        self.params["b"] = np.zeros(gates * hidden_size, dtype=dtype)
        self.record_state_grads = False  # set True to keep dL/dh_t (and dL/dc_t) of every step after backward

    def _project(self, x):
        """x (T, B, D) float or (T, B) ids -> x W_x + b for all timesteps at once: (T, B, G*H), a new array."""
        Wx, b = self.params["Wx"], self.params["b"]
        if _is_ids(x):  # one-hot input: x_t W_x is row x_t of W_x
            out = np.take(Wx, x, axis=0)
        else:
            T, B, D = x.shape
            out = (x.reshape(T * B, D).astype(Wx.dtype, copy=False) @ Wx).reshape(T, B, -1)
        out += b
        return out

    def _input_backward(self, dG):
        """dG = dL/d(pre-activations) (T, B, G*H) -> grads of W_x and b, and dx (None for integer input)."""
        x, Wx = self.x, self.params["Wx"]
        T, B, GH = dG.shape
        flat = dG.reshape(T * B, GH)
        self.grads["b"] = flat.sum(axis=0)
        if _is_ids(x):
            self.grads["Wx"] = _accumulate_rows(x.reshape(-1), flat, Wx.shape[0])
            return None
        xf = x.reshape(T * B, -1).astype(Wx.dtype, copy=False)
        self.grads["Wx"] = xf.T @ flat
        return (flat @ Wx.T).reshape(T, B, -1)

    def _hidden_weight_grad(self, dG):
        """dW_h = sum_t h_{t-1}^T dG_t as two GEMMs (h_{t-1} = Hs[t-1] for t >= 1, h0 for t = 0)."""
        T, B, GH = dG.shape
        H = self.hidden_size
        dWh = self.h0.T @ dG[0]
        if T > 1:
            dWh += self.Hs[:-1].reshape((T - 1) * B, H).T @ dG[1:].reshape((T - 1) * B, GH)
        self.grads["Wh"] = dWh

    def _grad_sequence(self, grad_sequence):
        if grad_sequence is None:
            return None
        g = _as_sequence(grad_sequence)
        if g.shape != self.Hs.shape:
            raise ValueError(f"grad_sequence must be {self.Hs.shape} like the forward output, got {g.shape}")
        return g

    def _state_grad(self, grad, what):
        B, H = self.Hs.shape[1:]
        if grad is None:
            return np.zeros((B, H), dtype=self.Hs.dtype)
        grad = np.array(grad, dtype=self.Hs.dtype)  # a copy: it is accumulated into in place
        if grad.shape != (B, H):
            raise ValueError(f"{what} must be ({B}, {H}), got {grad.shape}")
        return grad


class RNN(_Recurrent):
    """Vanilla (Elman) RNN:  h_t = tanh(x_t W_x + h_{t-1} W_h + b).

    W_x (D, H), W_h (H, H), b (H,) (torch.nn.RNN(nonlinearity="tanh"): weight_ih = W_x.T, weight_hh = W_h.T,
    bias_ih + bias_hh = b). forward(x_sequence (T, B, D) or list of (B, D), or integer ids (T, B) meaning one-hot
    input) -> hidden states (T, B, H); the final state is kept in `h_last` for the next chunk.
    """

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size, 1, rng, dtype)

    @property
    def state(self):
        return (self.h_last,)

    def forward(self, x_sequence, h0=None, training=True):
        x = _as_sequence(x_sequence)
        _check_input(x, self.input_size, "RNN")
        Wh = self.params["Wh"]
        T, B = x.shape[:2]
        if isinstance(h0, tuple):
            (h0,) = h0
        self.x = x
        self.h0 = h = _initial(h0, B, self.hidden_size, Wh.dtype, "h0")
        Hs = self._project(x)  # pre-activations, turned into hidden states in place
        tmp = np.empty((B, self.hidden_size), dtype=Wh.dtype)
        for t in range(T):
            a = Hs[t]
            np.matmul(h, Wh, out=tmp)
            a += tmp
            np.tanh(a, out=a)
            h = a
        self.Hs = Hs
        self.h_last = Hs[-1]
        return Hs

    def backward(self, grad_sequence, dh_last=None):
        """BPTT. grad_sequence: dL/d(hidden states) (T, B, H) (or a list, or None = zeros); dh_last: extra gradient
        on the final state (B, H). Returns dx (T, B, D) (None for integer input); fills grads and `dh0`."""
        dHs = self._grad_sequence(grad_sequence)
        Hs, Wh = self.Hs, self.params["Wh"]
        T, B, H = Hs.shape
        WhT = np.ascontiguousarray(Wh.T)
        dh = self._state_grad(dh_last, "dh_last")
        dG = np.empty_like(Hs)
        if self.record_state_grads:
            self.dh_seq = np.empty_like(Hs)
        for t in range(T - 1, -1, -1):
            if dHs is not None:
                dh += dHs[t]  # dL/dh_t = direct gradient + gradient through h_{t+1}
            if self.record_state_grads:
                self.dh_seq[t] = dh
            g, h = dG[t], Hs[t]
            np.multiply(h, h, out=g)  # tanh' = 1 - h^2
            np.subtract(1.0, g, out=g)
            g *= dh  # dL/da_t
            np.matmul(g, WhT, out=dh)  # dL/dh_{t-1} through the recurrence
        self.dh0 = dh
        self._hidden_weight_grad(dG)
        return self._input_backward(dG)


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with a forget gate, Gers et al. 2000):

        [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](x_t W_x + h_{t-1} W_h + b)
        c_t = f * c_{t-1} + i * g,      h_t = o * tanh(c_t).

    Fused weights in torch's gate order (i, f, g, o): W_x (D, 4H), W_h (H, 4H), b (4H,), the forget-gate bias
    initialised to 1 (Jozefowicz et al. 2015) so that the cell remembers by default. forward(x_sequence, h0, c0)
    -> hidden states (T, B, H); the final (h, c) are kept in `h_last`, `c_last` (`state`) for the next chunk.
    """

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32, forget_bias=1.0):
        super().__init__(input_size, hidden_size, 4, rng, dtype)
        H = self.hidden_size
        self.params["b"][H : 2 * H] = forget_bias

    @property
    def state(self):
        return (self.h_last, self.c_last)

    def forward(self, x_sequence, h0=None, c0=None, training=True):
        x = _as_sequence(x_sequence)
        _check_input(x, self.input_size, "LSTM")
        if isinstance(h0, tuple) and c0 is None:
            h0, c0 = h0
        Wh = self.params["Wh"]
        dt, H = Wh.dtype, self.hidden_size
        T, B = x.shape[:2]
        self.x = x
        self.h0 = h = _initial(h0, B, H, dt, "h0")
        self.c0 = c = _initial(c0, B, H, dt, "c0")
        # sigmoid(z) = 0.5 tanh(z/2) + 0.5: halve the i, f, o columns of the pre-activations (x W_x + b and W_h)
        half = np.full(4 * H, 0.5, dtype=dt)
        half[2 * H : 3 * H] = 1.0
        shift = np.full(4 * H, 0.5, dtype=dt)
        shift[2 * H : 3 * H] = 0.0
        Whs = Wh * half
        A = self._project(x)  # (T, B, 4H) pre-activations, turned into gate activations in place
        A *= half
        Hs = np.empty((T, B, H), dtype=dt)
        C = np.empty((T, B, H), dtype=dt)
        TC = np.empty((T, B, H), dtype=dt)  # tanh(c_t)
        tmp = np.empty((B, 4 * H), dtype=dt)
        ig = np.empty((B, H), dtype=dt)
        for t in range(T):
            a = A[t]
            np.matmul(h, Whs, out=tmp)
            a += tmp
            np.tanh(a, out=a)
            a *= half
            a += shift
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            c_t = C[t]
            np.multiply(f, c, out=c_t)
            np.multiply(i, g, out=ig)
            c_t += ig
            np.tanh(c_t, out=TC[t])
            np.multiply(o, TC[t], out=Hs[t])
            h, c = Hs[t], c_t
        self.A, self.C, self.TC, self.Hs = A, C, TC, Hs
        self.h_last, self.c_last = Hs[-1], C[-1]
        return Hs

    def backward(self, grad_sequence, dh_last=None, dc_last=None):
        """BPTT. grad_sequence: dL/d(hidden states) (T, B, H) (or a list, or None = zeros); dh_last, dc_last: extra
        gradients on the final (h, c). Returns dx (T, B, D) (None for integer input); fills grads, `dh0`, `dc0`.

        With dh the total dL/dh_t and dc the gradient reaching c_t from step t+1:
            dc += dh * o * (1 - tanh(c_t)^2)
            d(pre-activation) = [dc * g * i(1-i),  dc * c_{t-1} * f(1-f),  dc * i * (1-g^2),  dh * tanh(c_t) * o(1-o)]
            dh_{t-1} = d(pre-activation) W_h^T,   dc_{t-1} = dc * f.
        """
        dHs = self._grad_sequence(grad_sequence)
        A, C, TC, Hs, Wh = self.A, self.C, self.TC, self.Hs, self.params["Wh"]
        T, B, H = Hs.shape
        dt = Hs.dtype
        WhT = np.ascontiguousarray(Wh.T)
        dh = self._state_grad(dh_last, "dh_last")
        dc = self._state_grad(dc_last, "dc_last")
        dG = np.empty_like(A)
        d = np.empty((B, 4 * H), dtype=dt)  # activation derivatives
        tmp = np.empty((B, H), dtype=dt)
        if self.record_state_grads:
            self.dh_seq, self.dc_seq = np.empty_like(Hs), np.empty_like(Hs)
        for t in range(T - 1, -1, -1):
            if dHs is not None:
                dh += dHs[t]
            a, g_t = A[t], dG[t]
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            c_prev = C[t - 1] if t > 0 else self.c0
            tc = TC[t]
            # dc_t = dc (from c_{t+1}) + dh * o * (1 - tanh(c_t)^2)
            np.multiply(tc, tc, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            if self.record_state_grads:
                self.dh_seq[t] = dh
                self.dc_seq[t] = dc
            # activation derivatives: a(1-a) for the sigmoids, 1 - g^2 for the tanh
            np.subtract(1.0, a, out=d)
            d *= a
            dg_ = d[:, 2 * H : 3 * H]
            np.multiply(g, g, out=dg_)
            np.subtract(1.0, dg_, out=dg_)
            # gradients w.r.t. the activations, written straight into dG[t], then times the derivatives
            np.multiply(dc, g, out=g_t[:, :H])
            np.multiply(dc, c_prev, out=g_t[:, H : 2 * H])
            np.multiply(dc, i, out=g_t[:, 2 * H : 3 * H])
            np.multiply(dh, tc, out=g_t[:, 3 * H :])
            g_t *= d
            dc *= f  # dL/dc_{t-1}
            np.matmul(g_t, WhT, out=dh)  # dL/dh_{t-1}
        self.dh0, self.dc0 = dh, dc
        self._hidden_weight_grad(dG)
        return self._input_backward(dG)


class Embedding(Layer):
    """Lookup table: ids (any shape, ints in [0, vocab)) -> W[ids] (..., dim). W (vocab, dim) ~ N(0, 1) as in
    torch.nn.Embedding. backward accumulates rows of dW (a token seen twice gets both gradients); returns None."""

    def __init__(self, vocab_size, dim, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.params["W"] = rng.standard_normal((vocab_size, dim)).astype(dtype)

    def forward(self, ids, training=True):
        self.ids = np.asarray(ids)
        return np.take(self.params["W"], self.ids, axis=0)

    def backward(self, grad):
        W = self.params["W"]
        self.grads["W"] = _accumulate_rows(self.ids.reshape(-1), grad.reshape(-1, W.shape[1]), W.shape[0])
        return None


class CharLM:
    """Character-level language model: (embedding or one-hot) -> num_layers x (LSTM | RNN) -> Linear -> softmax.

    vocab_size: number of characters; hidden_size: H; cell: "lstm" or "rnn"; num_layers: stacked recurrent layers;
    embed_dim: size of a learned embedding, or None for one-hot input (char-rnn's choice: then the first layer's
    W_x plays the embedding); dropout: between stacked layers (torch.nn.LSTM's `dropout`), training only.

    The model carries its recurrent state from one call to the next (truncated BPTT): row b of a batch is expected
    to continue row b of the previous batch. `reset_state(batch)` zeroes it (start of an epoch, of evaluation).
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        cell="lstm",
        num_layers=1,
        embed_dim=None,
        dropout=0.0,
        rng=None,
        dtype=np.float32,
    ):
        if cell not in ("lstm", "rnn"):
            raise ValueError(f"cell must be 'lstm' or 'rnn', got {cell!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.rng = np.random.default_rng() if rng is None else rng
        self.config = dict(
            vocab_size=int(vocab_size),
            hidden_size=int(hidden_size),
            cell=cell,
            num_layers=int(num_layers),
            embed_dim=None if embed_dim is None else int(embed_dim),
            dropout=float(dropout),
        )
        self.vocab_size, self.hidden_size, self.cell, self.dropout = vocab_size, hidden_size, cell, dropout
        self.dtype = np.dtype(dtype)
        self.embed = Embedding(vocab_size, embed_dim, self.rng, dtype) if embed_dim else None
        Cell = LSTM if cell == "lstm" else RNN
        sizes = [embed_dim or vocab_size] + [hidden_size] * num_layers
        self.cells = [Cell(sizes[k], hidden_size, self.rng, dtype) for k in range(num_layers)]
        self.head = Linear(hidden_size, vocab_size, rng=self.rng, dtype=dtype)
        self.head.params["W"] = _uniform(
            self.rng, 1.0 / np.sqrt(hidden_size), (hidden_size, vocab_size), dtype
        )
        self.head.params["b"] = _uniform(self.rng, 1.0 / np.sqrt(hidden_size), (vocab_size,), dtype)
        self.layers = ([self.embed] if self.embed else []) + self.cells + [self.head]
        self.state = None

    # ---- state

    def reset_state(self, batch):
        """Zero recurrent state for `batch` rows: a list with one tuple (h,) or (h, c) of (B, H) per layer."""
        n = 2 if self.cell == "lstm" else 1
        self.state = [
            tuple(np.zeros((batch, self.hidden_size), dtype=self.dtype) for _ in range(n)) for _ in self.cells
        ]

    def num_params(self):
        return sum(p.size for layer in self.layers for p in layer.params.values())

    # ---- forward / backward

    def forward(self, x, training=True):
        """x: (B, T) int chunk -> logits (B, T, V). Starts from the carried state (zeros if there is none or the
        batch size changed) and carries the final state forward (detached)."""
        x = np.asarray(x)
        if x.ndim != 2 or not _is_ids(x):
            raise ValueError(f"x must be a (B, T) integer array, got {x.dtype} {x.shape}")
        B, T = x.shape
        if self.state is None or self.state[0][0].shape[0] != B:
            self.reset_state(B)
        ids = np.ascontiguousarray(x.T)  # time-major (T, B)
        inp = self.embed.forward(ids) if self.embed else ids
        self.masks = []
        new_state = []
        for k, cell in enumerate(self.cells):
            out = cell.forward(inp, *self.state[k])
            new_state.append(tuple(s.copy() for s in cell.state))
            if training and self.dropout > 0 and k < len(self.cells) - 1:
                mask = (self.rng.random(out.shape) >= self.dropout).astype(self.dtype) / (1.0 - self.dropout)
                self.masks.append(mask)
                out = out * mask
            inp = out
        self.state = new_state
        self.T, self.B = T, B
        logits = self.head.forward(inp.reshape(T * B, self.hidden_size))
        return logits.reshape(T, B, self.vocab_size).transpose(1, 0, 2)

    def backward(self, dlogits):
        """dlogits: dL/dlogits (B, T, V) (or time-major flat (T*B, V)) -> fills every layer's grads."""
        T, B, H = self.T, self.B, self.hidden_size
        if dlogits.ndim == 3:
            dlogits = dlogits.transpose(1, 0, 2).reshape(T * B, self.vocab_size)
        dh = self.head.backward(dlogits).reshape(T, B, H)
        for k in range(len(self.cells) - 1, -1, -1):
            if k < len(self.masks):
                dh = dh * self.masks[k]
            dh = self.cells[k].backward(dh)
        if self.embed:
            self.embed.backward(dh)

    def _loss(self, logits, y):
        y = np.asarray(y)
        if y.shape != (self.B, self.T):
            raise ValueError(f"y must be ({self.B}, {self.T}) like x, got {y.shape}")
        flat = logits.transpose(1, 0, 2).reshape(-1, self.vocab_size)  # time-major rows, no copy
        return softmax_cross_entropy(flat, y.T.reshape(-1))

    def loss_and_backward(self, x, y):
        """One truncated-BPTT step on chunk x (B, T) with next-character targets y (B, T): forward from the carried
        state, mean cross-entropy (nats/char), backward. Returns the loss; the grads are in `layers`."""
        logits = self.forward(x, training=True)
        loss, dflat = self._loss(logits, y)
        self.backward(dflat)
        return loss

    def loss(self, x, y):
        """Mean cross-entropy (nats/char) of chunk x against y without backward (evaluation; state is carried)."""
        logits = self.forward(x, training=False)
        return self._loss(logits, y)[0]

    # ---- checkpoints

    def state_dict(self):
        """{"embed.W", "cell<k>.Wx", "cell<k>.Wh", "cell<k>.b", "head.W", "head.b"}: copies of the weights."""
        out = {}
        for prefix, layer in self._named_layers():
            for name, p in layer.params.items():
                out[f"{prefix}.{name}"] = p.copy()
        return out

    def load_state_dict(self, state):
        """Copy weights in place (optimizers keep their references); keys and shapes must match exactly."""
        expected = {
            f"{prefix}.{name}": p
            for prefix, layer in self._named_layers()
            for name, p in layer.params.items()
        }
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for key, p in expected.items():
            value = np.asarray(state[key])
            if value.shape != p.shape:
                raise ValueError(f"{key}: shape {value.shape} does not match the model's {p.shape}")
            np.copyto(p, value, casting="same_kind")

    def _named_layers(self):
        named = [("embed", self.embed)] if self.embed else []
        named += [(f"cell{k}", c) for k, c in enumerate(self.cells)]
        return named + [("head", self.head)]

    # ---- generation

    def sample(self, prime_ids, length, temperature=1.0, top_k=None, rng=None):
        """Generate `length` characters after `prime_ids` (a non-empty sequence of ids). Returns the new ids only,
        an int64 array (length,). temperature scales the logits (p ~ softmax(logits / temperature)); temperature 0
        is argmax (greedy) decoding, its limit. top_k keeps only the k most likely characters. The training state
        is saved and restored; layer caches are overwritten, so do not call this between forward and backward."""
        prime, rng = sampling_inputs(prime_ids, temperature, top_k, rng)
        saved = self.state
        self.reset_state(1)
        out = np.empty(length, dtype=np.int64)
        try:
            logits = self.forward(prime[None, :], training=False)[0, -1]
            for n in range(length):
                out[n] = _pick(logits, temperature, top_k, rng)
                logits = self.forward(out[None, n : n + 1], training=False)[0, -1]
        finally:
            self.state = saved
        return out


def sampling_inputs(prime_ids, temperature, top_k, rng):
    """Validate sample()'s arguments: (prime ids as an int64 vector, a numpy Generator)."""
    prime = np.asarray(prime_ids, dtype=np.int64).reshape(-1)
    if prime.size == 0:
        raise ValueError("prime_ids must contain at least one id")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    return prime, (np.random.default_rng() if rng is None else rng)


def _pick(logits, temperature, top_k, rng):
    """One id from logits (V,): argmax at temperature 0, else a draw from softmax(logits / temperature) (top-k)."""
    z = np.asarray(logits, dtype=np.float64)
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= kth, z, -np.inf)
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    return int(rng.choice(z.size, p=p))


def gradient_norms_through_time(model, x, y, layer=-1):
    """How far the gradient of a loss on the *last* step reaches back in time (vanishing gradients).

    x: (B, T) ids, y: (B, T) or (B,) targets (only the last step's target is used). Runs from a zero state, no
    dropout, and backpropagates L = mean_b CE(logits[b, T-1], y[b, -1]). Returns {"h": (T,) norms ||dL/dh_t||
    of recurrent layer `layer`} and, for an LSTM, also "c": ||dL/dc_t||. The model's carried state is restored;
    its grads are overwritten.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    y_last = y[:, -1] if y.ndim == 2 else y
    saved = model.state
    cell = model.cells[layer]
    try:
        model.reset_state(x.shape[0])
        logits = model.forward(x, training=False)
        B, T, V = logits.shape
        _, dlast = softmax_cross_entropy(logits[:, -1], y_last)
        dlogits = np.zeros((B, T, V), dtype=logits.dtype)
        dlogits[:, -1] = dlast
        cell.record_state_grads = True
        model.backward(dlogits)
    finally:
        cell.record_state_grads = False
        model.state = saved
    norms = {"h": np.linalg.norm(cell.dh_seq.reshape(T, -1), axis=1)}
    if isinstance(cell, LSTM):
        norms["c"] = np.linalg.norm(cell.dc_seq.reshape(T, -1), axis=1)
    return norms
