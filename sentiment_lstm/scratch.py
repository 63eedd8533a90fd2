"""An LSTM sentiment classifier from first principles in NumPy: embedding -> LSTM over the padded batch -> masked
pooling over the valid time steps -> linear -> two logits -> softmax cross-entropy, with the backward by hand.

The embedding and the LSTM (its step functions and BPTT) are shared.recurrent's, the ones char_rnn trains with
(FastLSTM: the same numbers as the plain LSTM, with the input and weight-gradient GEMMs out of the time loop).
What is new here is the pooling. A batch holds reviews of different lengths, right-padded with id 0 to the
longest (T). The LSTM reads all T steps of every row, but the pooled vector only takes h_t at t < length:

    mean:  p_b = (1 / L_b) sum_{t < L_b} h_{t,b}           last:  p_b = h_{L_b - 1, b}

Since the LSTM is causal (h_t depends on x_0..x_t only), what the padding feeds it after L_b never reaches the
loss: padded positions get exactly zero gradient, and a review's logits do not depend on how much padding its
batch has. Shapes: ids (B, T) int, lengths (B,) int in [1, T]; inside, time-major (T, B, .) like the layers.

Two logits and softmax cross-entropy rather than one logit and a sigmoid: the same loss (softmax over two
classes is the sigmoid of the logits' difference) with H + 1 redundant parameters, and in exchange the
classifier interface of the other projects (logits (N, classes), argmax, shared.nn.softmax_cross_entropy).
"""

import numpy as np

from shared.nn import Layer, Linear, copy_weights, softmax_cross_entropy
from shared.recurrent import Embedding, FastLSTM, uniform

__all__ = ["LSTMClassifier", "MaskedPool", "check_lengths", "mask_of", "POOLS"]

POOLS = ("mean", "last")


def check_lengths(lengths, batch, steps):
    """lengths as an int64 (B,) array; ValueError unless every length is in [1, T]."""
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must be ({batch},) integers, got {lengths.dtype} {lengths.shape}")
    if batch and (lengths.min() < 1 or lengths.max() > steps):
        raise ValueError(f"lengths must lie in [1, {steps}], got [{lengths.min()}, {lengths.max()}]")
    return lengths.astype(np.int64)


def mask_of(lengths, steps, dtype=np.float64):
    """mask (T, B): 1 where t < length_b (a real token), 0 on the padding."""
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(dtype)


class MaskedPool(Layer):
    """Pooling over the valid steps of a padded batch: hs (T, B, H), lengths (B,) -> pooled (B, H).
    kind "mean": the mean of h_t over t < length; "last": h_t at t = length - 1. No parameters."""

    def __init__(self, kind="mean"):
        super().__init__()
        if kind not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {kind!r}")
        self.kind = kind

    def forward(self, hs, lengths=None, training=True):
        T, B, H = hs.shape
        self.shape, self.lengths = hs.shape, check_lengths(lengths, B, T)
        if self.kind == "last":
            return hs[self.lengths - 1, np.arange(B)]  # (B, H)
        self.mask = mask_of(self.lengths, T, hs.dtype)  # (T, B)
        return np.einsum("tbh,tb->bh", hs, self.mask) / self.lengths[:, None].astype(hs.dtype)

    # mean: p_b = sum_t m_{t,b} h_{t,b} / L_b, so  dh_{t,b} = m_{t,b} / L_b * dp_b  (zero on the padding);
    # last: p_b = h_{L_b - 1, b}, so  dh_{t,b} = dp_b at t = L_b - 1 and zero at every other step
    def backward(self, grad):
        """grad = dL/dpooled (B, H) -> dL/dhs (T, B, H)."""
        T, B, H = self.shape
        if self.kind == "last":
            dhs = np.zeros(self.shape, dtype=grad.dtype)
            dhs[self.lengths - 1, np.arange(B)] = grad
            return dhs
        scaled = grad / self.lengths[:, None].astype(grad.dtype)  # dp_b / L_b  (B, H)
        return self.mask[:, :, None] * scaled[None, :, :]


def _dropout_mask(rng, shape, p, dtype):
    """Inverted dropout: 1 / (1 - p) with probability 1 - p, else 0."""
    return (rng.random(shape) >= p).astype(dtype) / (1.0 - p)


class LSTMClassifier:
    """Embedding (V, E) -> FastLSTM (E -> H) -> MaskedPool (mean | last) -> Linear (H -> classes).

    dropout: on the embedded inputs and on the pooled vector, training only (one rate for both). The Linear head
    is initialised like the LSTM and torch's nn.Linear, U(+-1/sqrt(H)); the embedding ~ N(0, 1) as nn.Embedding.
    forward(ids (B, T), lengths (B,)) -> logits (B, classes)."""

    def __init__(self, vocab_size, embed_dim, hidden_size, pool="mean", dropout=0.0, num_classes=2, rng=None,
                 dtype=np.float32):  # fmt: skip
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.rng = np.random.default_rng() if rng is None else rng
        self.config = dict(
            vocab_size=int(vocab_size), embed_dim=int(embed_dim), hidden_size=int(hidden_size), pool=pool,
            dropout=float(dropout), num_classes=int(num_classes),
        )  # fmt: skip
        self.dtype, self.dropout = np.dtype(dtype), float(dropout)
        self.embed = Embedding(vocab_size, embed_dim, self.rng, dtype)
        self.lstm = FastLSTM(embed_dim, hidden_size, self.rng, dtype)
        self.pool = MaskedPool(pool)
        self.head = Linear(hidden_size, num_classes, rng=self.rng, dtype=dtype)
        bound = 1.0 / np.sqrt(hidden_size)
        self.head.params["W"] = uniform(self.rng, bound, (hidden_size, num_classes), dtype)
        self.head.params["b"] = uniform(self.rng, bound, (num_classes,), dtype)
        self.layers = [self.embed, self.lstm, self.head]

    def num_params(self):
        return sum(p.size for layer in self.layers for p in layer.params.values())

    def forward(self, ids, lengths, training=True):
        """ids (B, T) int, lengths (B,) in [1, T] -> logits (B, classes)."""
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be a (B, T) integer array, got {ids.dtype} {ids.shape}")
        B, T = ids.shape
        lengths = check_lengths(lengths, B, T)
        drop = training and self.dropout > 0
        x = self.embed.forward(np.ascontiguousarray(ids.T))  # (T, B, E)
        self.mask_x = _dropout_mask(self.rng, x.shape, self.dropout, self.dtype) if drop else None
        if drop:
            x = x * self.mask_x
        hs = self.lstm.forward(x)  # (T, B, H), from a zero state
        pooled = self.pool.forward(hs, lengths)  # (B, H)
        self.mask_p = _dropout_mask(self.rng, pooled.shape, self.dropout, self.dtype) if drop else None
        if drop:
            pooled = pooled * self.mask_p
        return self.head.forward(pooled)

    # logits = p W + b (Linear.backward), p = pool(h) (MaskedPool.backward), h = LSTM(x) (BPTT in FastLSTM),
    # x = E[ids] (Embedding.backward: row v of dE sums dx over the positions holding v); a dropout mask m
    # multiplies forward, so it multiplies backward: d(before) = m * d(after)
    def backward(self, dlogits):
        """dlogits = dL/dlogits (B, classes) -> fills the grads of every layer."""
        dpooled = self.head.backward(dlogits)  # (B, H)
        if self.mask_p is not None:
            dpooled = dpooled * self.mask_p
        dhs = self.pool.backward(dpooled)  # (T, B, H), zero on the padding
        dx = self.lstm.backward(dhs)  # (T, B, E)
        if self.mask_x is not None:
            dx = dx * self.mask_x
        self.embed.backward(dx)

    def loss_and_backward(self, ids, lengths, y):
        """One training forward (dropout on), the mean cross-entropy and the backward: (loss, logits)."""
        logits = self.forward(ids, lengths, training=True)
        loss, dlogits = softmax_cross_entropy(logits, np.asarray(y))
        self.backward(dlogits)
        return loss, logits

    # ---- checkpoints

    def _named_layers(self):
        return [("embed", self.embed), ("lstm", self.lstm), ("head", self.head)]

    def state_dict(self):
        """{"embed.W", "lstm.Wx", "lstm.Wh", "lstm.b", "head.W", "head.b"}: copies of the weights."""
        return {f"{k}.{n}": p.copy() for k, layer in self._named_layers() for n, p in layer.params.items()}

    def load_state_dict(self, state):
        """Copy weights in place (optimizers keep their references); keys and shapes must match exactly."""
        copy_weights(
            {f"{k}.{n}": p for k, layer in self._named_layers() for n, p in layer.params.items()}, state
        )
