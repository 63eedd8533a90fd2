"""Recurrent layers from first principles in NumPy: a vanilla tanh RNN and an LSTM with their backward passes
(backpropagation through time, BPTT) derived by hand, and the embedding table that feeds them.

Three levels, each written with the one before:

    one step    rnn_step_forward(x, h_prev, Wx, Wh, b) -> (h, cache),   rnn_step_backward(dh, cache)
                lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b) -> (h, c, cache),
                lstm_step_backward(dh, dc, cache); the LSTM's gates alone: lstm_cell_forward / _backward
    a sequence  rnn_forward / rnn_backward, lstm_forward / lstm_backward: the step in a loop over time
    layers      RNN, LSTM (shared.nn.Layer: params / grads, forward / backward) on the sequence functions;
                FastRNN, FastLSTM: the same layers, faster (what char_rnn trains with; see below)

Shapes are time-major: x is (T, B, D), hidden states are (T, B, H). The layers also take integer ids (T, B) in
[0, D), meaning one-hot input (then x_t W_x is row x_t of W_x, and there is no dx).

Gate layout. The LSTM keeps one fused weight matrix for the four gates in torch's order (i, f, g, o):
W_x (D, 4H) = torch `weight_ih_l0.T`, W_h (H, 4H) = `weight_hh_l0.T`, and a single bias b (4H,) =
`bias_ih_l0 + bias_hh_l0` (copy b into bias_ih and zeros into bias_hh). The RNN's: W_x (D, H), W_h (H, H).

Truncated BPTT. A long text is cut into chunks; the final state of one chunk (`h_last`, `c_last`) is the
initial state of the next, but gradients stop at the chunk boundary: the incoming state is a constant for the
backward pass (torch: `h.detach()`). The layers still compute the gradient with respect to it (`dh0`, `dc0`)
so that it can be checked and plotted; it is just never propagated further.

The fast layers. Only h_{t-1} W_h depends on the previous step. The fast layers compute the input projections
x_t W_x + b of all steps as one GEMM before the time loop, and the weight gradients dW_x = sum_t x_t^T da_t,
dW_h = sum_t h_{t-1}^T da_t and db as one GEMM (or sum) each after it, instead of T small GEMMs and T sums of
(H, 4H) matrices; the loop runs the same cell functions. Measured in CPU time per training step (forward,
BPTT, clipping, Adam; float32, one thread), the plain layers take 1.3x as long on char_rnn's training shape
(LSTM of 512, batch 32 x 100 steps, 65 one-hot inputs), 1.15-1.25x with a 64-wide embedding, and 1.2x for its
vanilla RNN (256 units, 32 x 64). What char_rnn's LSTM did besides (every step into preallocated arrays with
`out=`, the sigmoid's halving folded into W_h) measured 0.98-1.03x of this and is gone. Fresh (T, B, H) arrays
on every call do cost the small RNN ~15% in page faults, so FastRNN writes h_t over its pre-activations.
"""

import numpy as np

from shared.nn import Layer

__all__ = [
    "sigmoid",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_cell_forward",
    "lstm_cell_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "RNN",
    "LSTM",
    "FastRNN",
    "FastLSTM",
    "Embedding",
    "uniform",
]


def sigmoid(z):
    """1 / (1 + e^-z), computed as (1 + tanh(z / 2)) / 2, which cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# ---- vanilla RNN: h_t = tanh(x_t W_x + h_{t-1} W_h + b)


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """One step. x (B, D), h_prev (B, H), Wx (D, H), Wh (H, H), b (H,) -> h (B, H), cache for the backward."""
    h = np.tanh(x @ Wx + h_prev @ Wh + b)  # (B, H)
    return h, (x, h_prev, Wx, Wh, h)


# a = x Wx + h_prev Wh + b,  h = tanh(a):
#   da = dh * (1 - h^2)
#   dx = da Wx^T,  dh_prev = da Wh^T,  dWx = x^T da,  dWh = h_prev^T da,  db = sum over the batch of da
def rnn_step_backward(dh, cache):
    """dh = dL/dh (B, H) -> dx (B, D), dh_prev (B, H), dWx (D, H), dWh (H, H), db (H,)."""
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1.0 - h * h)  # (B, H)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """The step over a sequence. x (T, B, D), h0 (B, H) -> hidden states hs (T, B, H), the steps' caches."""
    hs, caches = [], []
    h = h0
    for x_t in x:
        h, cache = rnn_step_forward(x_t, h, Wx, Wh, b)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs), caches


# BPTT: h_t feeds the output at t and the step t+1, so dL/dh_t = dhs[t] + (dh_prev of step t+1), where step T
# is beyond the sequence (dh_last); the weights are shared by all steps, so their gradients are sums over t.
def rnn_backward(dhs, caches, dh_last=None):
    """dhs (T, B, H): dL/dh_t from above; dh_last (B, H): what reaches h_{T-1} from beyond the sequence
    (None = zeros) -> dx (T, B, D), dh0 (B, H), dWx, dWh, db summed over the steps."""
    dh_prev = np.zeros_like(dhs[0]) if dh_last is None else dh_last
    dxs, dWx, dWh, db = [], 0.0, 0.0, 0.0
    for t in reversed(range(len(caches))):
        dx, dh_prev, dWx_t, dWh_t, db_t = rnn_step_backward(dhs[t] + dh_prev, caches[t])
        dxs.append(dx)
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return np.stack(dxs[::-1]), dh_prev, dWx, dWh, db


# ---- LSTM: [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](x_t W_x + h_{t-1} W_h + b),
#            c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)


def lstm_cell_forward(a, c_prev):
    """The gates and the cell update. a = x Wx + h_prev Wh + b (B, 4H): the pre-activations of the gates
    i, f, g, o; c_prev (B, H) -> h (B, H), c (B, H), cache for the backward."""
    H = c_prev.shape[1]
    i = sigmoid(a[:, :H])  # input gate (B, H)
    f = sigmoid(a[:, H : 2 * H])  # forget gate (B, H)
    g = np.tanh(a[:, 2 * H : 3 * H])  # candidate cell (B, H)
    o = sigmoid(a[:, 3 * H :])  # output gate (B, H)
    c = f * c_prev + i * g  # (B, H)
    tanh_c = np.tanh(c)  # (B, H)
    h = o * tanh_c  # (B, H)
    return h, c, (c_prev, i, f, g, o, tanh_c)


# dh = dL/dh, dc = dL/dc from the next step; c also reaches the loss through h = o * tanh(c), so in all
#   dc_t = dc + dh * o * (1 - tanh(c)^2)
#   do = dh * tanh(c),  di = dc_t * g,  dg = dc_t * i,  df = dc_t * c_prev,  dc_prev = dc_t * f
#   da = [di * i(1 - i),  df * f(1 - f),  dg * (1 - g^2),  do * o(1 - o)]   (sigmoid' = s(1-s), tanh' = 1-t^2)
def lstm_cell_backward(dh, dc, cache):
    """dh, dc (B, H) -> da = dL/d(pre-activations) (B, 4H), dc_prev (B, H)."""
    c_prev, i, f, g, o, tanh_c = cache
    dc_t = dc + dh * o * (1.0 - tanh_c * tanh_c)  # (B, H)
    do = dh * tanh_c
    di = dc_t * g
    dg = dc_t * i
    df = dc_t * c_prev
    da = np.concatenate(  # (B, 4H)
        [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)], axis=1
    )
    return da, dc_t * f


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """One step. x (B, D), h_prev and c_prev (B, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> h (B, H), c (B, H),
    cache for the backward."""
    a = x @ Wx + h_prev @ Wh + b  # (B, 4H) pre-activations of the gates i, f, g, o
    h, c, cell_cache = lstm_cell_forward(a, c_prev)
    return h, c, (x, h_prev, Wx, Wh, cell_cache)


# da, dc_prev from lstm_cell_backward; then a = x Wx + h_prev Wh + b gives
#   dx = da Wx^T,  dh_prev = da Wh^T,  dWx = x^T da,  dWh = h_prev^T da,  db = sum over the batch of da
def lstm_step_backward(dh, dc, cache):
    """dh, dc (B, H) -> dx (B, D), dh_prev (B, H), dc_prev (B, H), dWx (D, 4H), dWh (H, 4H), db (4H,)."""
    x, h_prev, Wx, Wh, cell_cache = cache
    da, dc_prev = lstm_cell_backward(dh, dc, cell_cache)  # (B, 4H), (B, H)
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """The step over a sequence. x (T, B, D), h0 and c0 (B, H) -> hidden states hs (T, B, H), cell states
    cs (T, B, H), the steps' caches."""
    hs, cs, caches = [], [], []
    h, c = h0, c0
    for x_t in x:
        h, c, cache = lstm_step_forward(x_t, h, c, Wx, Wh, b)
        hs.append(h)
        cs.append(c)
        caches.append(cache)
    return np.stack(hs), np.stack(cs), caches


# BPTT: dL/dh_t = dhs[t] + (dh_prev of step t+1), dL/dc_t = dc_prev of step t+1 (c_t feeds no output
# directly), where step T is beyond the sequence (dh_last, dc_last); the weights' gradients are sums over t.
def lstm_backward(dhs, caches, dh_last=None, dc_last=None):
    """dhs (T, B, H): dL/dh_t from above; dh_last, dc_last (B, H): what reaches h_{T-1}, c_{T-1} from
    beyond the sequence (None = zeros) -> dx (T, B, D), dh0 (B, H), dc0 (B, H), dWx, dWh, db summed over t."""
    dh_prev = np.zeros_like(dhs[0]) if dh_last is None else dh_last
    dc_prev = np.zeros_like(dhs[0]) if dc_last is None else dc_last
    dxs, dWx, dWh, db = [], 0.0, 0.0, 0.0
    for t in reversed(range(len(caches))):
        dx, dh_prev, dc_prev, dWx_t, dWh_t, db_t = lstm_step_backward(dhs[t] + dh_prev, dc_prev, caches[t])
        dxs.append(dx)
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return np.stack(dxs[::-1]), dh_prev, dc_prev, dWx, dWh, db


# ---- layers


def uniform(rng, bound, shape, dtype):
    """U(-bound, bound), torch's default initialisation of nn.RNN, nn.LSTM, nn.Linear (bound 1/sqrt(fan))."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _is_ids(x):
    return x.dtype.kind in "iu"


def _as_sequence(x_sequence):
    """A list/tuple of T arrays (B, D) -> one array (T, B, D); arrays pass through unchanged."""
    if isinstance(x_sequence, (list, tuple)):
        return np.stack([np.asarray(x) for x in x_sequence])
    return np.asarray(x_sequence)


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
    """What the RNN and LSTM layers share: their parameters, and the checks of inputs and gradients.

    forward(x_sequence, ...) takes x (T, B, D) float, a list of T arrays (B, D), or integer ids (T, B) meaning
    one-hot input, and returns the hidden states (T, B, H). backward(grad_sequence, ...) takes dL/d(hidden
    states) (T, B, H) (or a list, or None = zeros), fills `grads` and returns dx (T, B, D), None for ids."""

    def __init__(self, input_size, hidden_size, gates, rng, dtype):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        bound = 1.0 / np.sqrt(hidden_size)
        self.params["Wx"] = uniform(rng, bound, (input_size, gates * hidden_size), dtype)
        self.params["Wh"] = uniform(rng, bound, (hidden_size, gates * hidden_size), dtype)
        self.params["b"] = np.zeros(gates * hidden_size, dtype=dtype)

    def _inputs(self, x_sequence, what):
        """The checked input: ids (T, B) as they are, float input as (T, B, D) of the parameters' dtype."""
        x = _as_sequence(x_sequence)
        _check_input(x, self.input_size, what)
        return x if _is_ids(x) else x.astype(self.params["Wx"].dtype, copy=False)

    def _dense_inputs(self):
        """The input as (T, B, D) floats: ids become one-hot rows."""
        if _is_ids(self.x):
            return np.eye(self.input_size, dtype=self.params["Wx"].dtype)[self.x]
        return self.x

    def _grad_sequence(self, grad_sequence):
        """dL/d(hidden states) from above as a (T, B, H) array of the states' dtype (zeros for None)."""
        if grad_sequence is None:
            return np.zeros_like(self.Hs)
        g = _as_sequence(grad_sequence)
        if g.shape != self.Hs.shape:
            raise ValueError(f"grad_sequence must be {self.Hs.shape} like the forward output, got {g.shape}")
        return g.astype(self.Hs.dtype, copy=False)

    def _state_grad(self, grad, what):
        """A gradient on the final state (B, H), zeros for None."""
        B, H = self.Hs.shape[1:]
        if grad is None:
            return np.zeros((B, H), dtype=self.Hs.dtype)
        grad = np.asarray(grad, dtype=self.Hs.dtype)
        if grad.shape != (B, H):
            raise ValueError(f"{what} must be ({B}, {H}), got {grad.shape}")
        return grad

    def _backward_inputs(self, dx):
        return None if _is_ids(self.x) else dx


class RNN(_Recurrent):
    """Vanilla (Elman) RNN, h_t = tanh(x_t W_x + h_{t-1} W_h + b), on rnn_forward / rnn_backward.

    W_x (D, H), W_h (H, H), b (H,) (torch.nn.RNN(nonlinearity="tanh"): weight_ih = W_x.T, weight_hh = W_h.T,
    bias_ih + bias_hh = b). forward(x_sequence, h0) -> hidden states (T, B, H); the final state is kept in
    `h_last` (`state`) for the next chunk. backward(grad_sequence, dh_last) also sets `dh0` = dL/dh0.
    """

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size, 1, rng, dtype)

    @property
    def state(self):
        return (self.h_last,)

    def _start(self, x_sequence, h0):
        """Check and keep the input x and the initial state h0 (None = zeros; the tuple `state` works too)."""
        if isinstance(h0, tuple):
            (h0,) = h0
        self.x = self._inputs(x_sequence, "RNN")
        T, B = self.x.shape[:2]
        self.h0 = _initial(h0, B, self.hidden_size, self.params["Wh"].dtype, "h0")

    def forward(self, x_sequence, h0=None, training=True):
        self._start(x_sequence, h0)
        p = self.params
        self.Hs, self.cache = rnn_forward(self._dense_inputs(), self.h0, p["Wx"], p["Wh"], p["b"])
        self.h_last = self.Hs[-1]
        return self.Hs

    def backward(self, grad_sequence, dh_last=None):
        dhs, dh_last = self._grad_sequence(grad_sequence), self._state_grad(dh_last, "dh_last")
        dx, self.dh0, dWx, dWh, db = rnn_backward(dhs, self.cache, dh_last)
        self.grads.update(Wx=dWx, Wh=dWh, b=db)
        return self._backward_inputs(dx)


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with a forget gate, Gers et al. 2000), on
    lstm_forward / lstm_backward:

        [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](x_t W_x + h_{t-1} W_h + b)
        c_t = f * c_{t-1} + i * g,      h_t = o * tanh(c_t).

    Fused weights in torch's gate order (i, f, g, o): W_x (D, 4H), W_h (H, 4H), b (4H,), the forget-gate bias
    initialised to 1 (Jozefowicz et al. 2015) so that the cell remembers by default. forward(x_sequence, h0,
    c0) -> hidden states (T, B, H); the final (h, c) are kept in `h_last`, `c_last` (`state`) for the next
    chunk. backward(grad_sequence, dh_last, dc_last) also sets `dh0`, `dc0` = dL/dh0, dL/dc0.
    """

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32, forget_bias=1.0):
        super().__init__(input_size, hidden_size, 4, rng, dtype)
        H = self.hidden_size
        self.params["b"][H : 2 * H] = forget_bias

    @property
    def state(self):
        return (self.h_last, self.c_last)

    def _start(self, x_sequence, h0, c0):
        """Check and keep the input x and the initial state h0, c0 (None = zeros; the tuple `state` is taken
        in place of h0 too)."""
        if isinstance(h0, tuple) and c0 is None:
            h0, c0 = h0
        self.x = self._inputs(x_sequence, "LSTM")
        T, B = self.x.shape[:2]
        dtype = self.params["Wh"].dtype
        self.h0 = _initial(h0, B, self.hidden_size, dtype, "h0")
        self.c0 = _initial(c0, B, self.hidden_size, dtype, "c0")

    def forward(self, x_sequence, h0=None, c0=None, training=True):
        self._start(x_sequence, h0, c0)
        p = self.params
        self.Hs, C, self.cache = lstm_forward(
            self._dense_inputs(), self.h0, self.c0, p["Wx"], p["Wh"], p["b"]
        )
        self.h_last, self.c_last = self.Hs[-1], C[-1]
        return self.Hs

    def backward(self, grad_sequence, dh_last=None, dc_last=None):
        dhs = self._grad_sequence(grad_sequence)
        dh_last, dc_last = self._state_grad(dh_last, "dh_last"), self._state_grad(dc_last, "dc_last")
        dx, self.dh0, self.dc0, dWx, dWh, db = lstm_backward(dhs, self.cache, dh_last, dc_last)
        self.grads.update(Wx=dWx, Wh=dWh, b=db)
        return self._backward_inputs(dx)


# ---- the fast layers: the same cell in the time loop, the GEMMs that do not need the recurrence outside it


def _accumulate_rows(ids, rows, num_rows):
    """out[v] = sum of rows[n] over n with ids[n] == v: (num_rows, F). The gradient of a row lookup W[ids].

    np.add.at does this in one call but slowly for wide rows (~60 ms for 3200 x 2048); for a small vocabulary
    a masked sum per distinct id is ~8x faster."""
    out = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    present = np.unique(ids)
    if present.size <= 512:
        for v in present:
            np.sum(rows[ids == v], axis=0, out=out[v])
    else:
        np.add.at(out, ids, rows)
    return out


def _project(x, Wx, b):
    """x_t W_x + b of every step as one GEMM: x (T, B, D) float or (T, B) ids -> (T, B, G*H), a new array."""
    if _is_ids(x):  # one-hot input: x_t W_x is row x_t of W_x
        out = np.take(Wx, x, axis=0)
    else:
        T, B, D = x.shape
        out = (x.reshape(T * B, D) @ Wx).reshape(T, B, -1)
    out += b
    return out


def _input_backward(x, dA, Wx):
    """dA = dL/d(pre-activations) (T, B, G*H) of a = x W_x + ... + b -> dW_x, db, and dx (None for ids): one
    GEMM each over all steps."""
    T, B, GH = dA.shape
    da = dA.reshape(T * B, GH)
    db = da.sum(axis=0)
    if _is_ids(x):
        return _accumulate_rows(x.reshape(-1), da, Wx.shape[0]), db, None
    dWx = x.reshape(T * B, -1).T @ da
    return dWx, db, (da @ Wx.T).reshape(T, B, -1)


def _hidden_weight_grad(h0, Hs, dA):
    """dW_h = sum_t h_{t-1}^T dA_t as two GEMMs (h_{t-1} = Hs[t-1] for t >= 1, h0 for t = 0): (H, G*H)."""
    T, B, GH = dA.shape
    H = Hs.shape[2]
    dWh = h0.T @ dA[0]
    if T > 1:
        dWh += Hs[:-1].reshape((T - 1) * B, H).T @ dA[1:].reshape((T - 1) * B, GH)
    return dWh


class FastRNN(RNN):
    """The RNN with the GEMMs that do not depend on the recurrence out of the time loop: the same numbers
    (tested). `record_state_grads = True` keeps dL/dh_t of every step in `dh_seq` (T, B, H) after backward."""

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size, rng, dtype)
        self.record_state_grads = False

    def forward(self, x_sequence, h0=None, training=True):
        self._start(x_sequence, h0)
        Wh = self.params["Wh"]
        Hs = _project(self.x, self.params["Wx"], self.params["b"])  # x_t W_x + b (T, B, H), made h_t in place
        h = self.h0
        for t in range(len(Hs)):
            h = np.tanh(Hs[t] + h @ Wh, out=Hs[t])  # (B, H)
        self.Hs, self.h_last = Hs, Hs[-1]
        return Hs

    def backward(self, grad_sequence, dh_last=None):
        """rnn_step_backward's da and dh_prev in the time loop; dW_x, dW_h, db and dx after it."""
        dhs, dh_prev = self._grad_sequence(grad_sequence), self._state_grad(dh_last, "dh_last")
        WhT = self.params["Wh"].T
        dA = np.empty_like(self.Hs)  # dL/d(pre-activations) (T, B, H)
        if self.record_state_grads:
            self.dh_seq = np.empty_like(self.Hs)
        for t in reversed(range(len(dA))):
            dh = dhs[t] + dh_prev  # dL/dh_t (B, H)
            if self.record_state_grads:
                self.dh_seq[t] = dh
            h = self.Hs[t]
            dA[t] = dh * (1.0 - h * h)
            dh_prev = dA[t] @ WhT
        self.dh0 = dh_prev
        dWx, db, dx = _input_backward(self.x, dA, self.params["Wx"])
        self.grads.update(Wx=dWx, Wh=_hidden_weight_grad(self.h0, self.Hs, dA), b=db)
        return dx


class FastLSTM(LSTM):
    """The LSTM with the GEMMs that do not depend on the recurrence out of the time loop: the same numbers
    (tested). `record_state_grads = True` keeps dL/dh_t and the total dL/dc_t of every step in `dh_seq`,
    `dc_seq` (T, B, H) after backward."""

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32, forget_bias=1.0):
        super().__init__(input_size, hidden_size, rng, dtype, forget_bias)
        self.record_state_grads = False

    def forward(self, x_sequence, h0=None, c0=None, training=True):
        self._start(x_sequence, h0, c0)
        Wh = self.params["Wh"]
        A = _project(self.x, self.params["Wx"], self.params["b"])  # x_t W_x + b of every step (T, B, 4H)
        hs, self.caches = [], []
        h, c = self.h0, self.c0
        for a in A:
            h, c, cache = lstm_cell_forward(a + h @ Wh, c)
            hs.append(h)
            self.caches.append(cache)
        self.Hs = np.stack(hs)
        self.h_last, self.c_last = self.Hs[-1], c
        return self.Hs

    def backward(self, grad_sequence, dh_last=None, dc_last=None):
        """lstm_cell_backward and dh_prev in the time loop; dW_x, dW_h, db and dx after it."""
        dhs, dh_prev = self._grad_sequence(grad_sequence), self._state_grad(dh_last, "dh_last")
        dc_prev = self._state_grad(dc_last, "dc_last")
        WhT = self.params["Wh"].T
        T, B, H = self.Hs.shape
        dA = np.empty((T, B, 4 * H), dtype=self.Hs.dtype)  # dL/d(pre-activations)
        if self.record_state_grads:
            self.dh_seq, self.dc_seq = np.empty_like(self.Hs), np.empty_like(self.Hs)
        for t in reversed(range(T)):
            dh = dhs[t] + dh_prev  # dL/dh_t (B, H)
            if self.record_state_grads:
                _, _, _, _, o, tanh_c = self.caches[t]
                self.dh_seq[t] = dh
                self.dc_seq[t] = dc_prev + dh * o * (1.0 - tanh_c * tanh_c)  # lstm_cell_backward's dc_t
            dA[t], dc_prev = lstm_cell_backward(dh, dc_prev, self.caches[t])
            dh_prev = dA[t] @ WhT
        self.dh0, self.dc0 = dh_prev, dc_prev
        dWx, db, dx = _input_backward(self.x, dA, self.params["Wx"])
        self.grads.update(Wx=dWx, Wh=_hidden_weight_grad(self.h0, self.Hs, dA), b=db)
        return dx


class Embedding(Layer):
    """Lookup table: ids (any shape, ints in [0, vocab)) -> W[ids] (..., dim). W (vocab, dim) ~ N(0, 1) as in
    torch.nn.Embedding. backward accumulates rows of dW (a token seen twice gets both gradients) and returns
    None."""

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
