"""A character-level language model from first principles in NumPy: embedding (or one-hot input) -> stacked
vanilla RNN or LSTM layers -> linear head -> softmax, trained by truncated backpropagation through time.

The recurrent layers, their step functions and their hand-derived backward passes live in shared/recurrent.py
(sentiment_lstm uses the same LSTM). CharLM trains with FastLSTM / FastRNN from there: the plain layers'
numbers, with the input and weight-gradient GEMMs taken out of the time loop. The model takes batch-first
(B, T) integer chunks like torch's `batch_first=True`; inside, the recurrent layers are time-major (T, B, H).

Truncated BPTT. A long text is cut into chunks of T characters; the final state of one chunk is the initial
state of the next one, but gradients stop at the chunk boundary (torch: `h.detach()`).
"""

import numpy as np

from shared.nn import Linear, copy_weights, softmax_cross_entropy
from shared.optim import clip_grad_norm
from shared.recurrent import Embedding, FastLSTM, FastRNN, uniform
from shared.sampling import pick_next, sampling_inputs

__all__ = ["CharLM", "clip_grad_norm", "gradient_norms_through_time", "pick_next", "sampling_inputs"]


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
        Cell = FastLSTM if cell == "lstm" else FastRNN
        sizes = [embed_dim or vocab_size] + [hidden_size] * num_layers
        self.cells = [Cell(sizes[k], hidden_size, self.rng, dtype) for k in range(num_layers)]
        self.head = Linear(hidden_size, vocab_size, rng=self.rng, dtype=dtype)
        self.head.params["W"] = uniform(
            self.rng, 1.0 / np.sqrt(hidden_size), (hidden_size, vocab_size), dtype
        )
        self.head.params["b"] = uniform(self.rng, 1.0 / np.sqrt(hidden_size), (vocab_size,), dtype)
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
        if x.ndim != 2 or x.dtype.kind not in "iu":
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
        named = {
            f"{prefix}.{name}": p
            for prefix, layer in self._named_layers()
            for name, p in layer.params.items()
        }
        copy_weights(named, state)

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
                out[n] = pick_next(logits, temperature, top_k, rng)
                logits = self.forward(out[None, n : n + 1], training=False)[0, -1]
        finally:
            self.state = saved
        return out


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
    if model.cell == "lstm":
        norms["c"] = np.linalg.norm(cell.dc_seq.reshape(T, -1), axis=1)
    return norms
