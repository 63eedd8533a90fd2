"""A GPT from first principles in NumPy: token (+ position) embeddings -> n_layer pre-norm transformer blocks
(causal multi-head self-attention, GELU MLP) -> LayerNorm -> logits through the tied token embedding. Every
backward pass is written by hand beside its forward, its formula in the comment above it.

The parameters carry nanoGPT's names, shapes and layouts (torch's (out, in): NumPy computes x @ W.T), so
nanogpt/twin.py copies weights to and from the torch GPT as a plain dict. Shapes: B batch, T time, C = n_embd,
nh = n_head, hs = C / nh head size, V vocabulary.

    model = GPT(GPTConfig(), rng=np.random.default_rng(0))
    loss = model.loss_and_backward(idx, targets)     # idx, targets (B, T) int; fills model.grads
    decay, no_decay = model.param_groups()            # for two shared.optim.Adam(decoupled=True)

Composite layers (MultiHeadAttention, MLP, TransformerBlock, GPT) list their children's arrays under prefixed
names in their own `params`; the arrays are shared, never replaced (optimizers and load_state_dict write into
them in place), so one update is seen everywhere. After backward, `grads` holds the same keys.

The curriculum pieces stand alone too: scaled_dot_product_attention (any leading dims: (B, T, d) or the heads
at once, (B, nh, T, hs)), MultiHeadAttention, TransformerBlock, LayerNorm, GELU, sinusoidal_positions, rotary_angles and rotate.
"""

import math
from dataclasses import dataclass

import numpy as np

from shared.nn import Layer, copy_weights, softmax_cross_entropy
from shared.sampling import pick_next, sampling_inputs

LN_EPS = 1e-5  # torch.nn.LayerNorm's default
INIT_STD = 0.02  # nanoGPT's init: N(0, 0.02^2) for every weight matrix and embedding


@dataclass
class GPTConfig:
    """The same fields as model.GPTConfig (the torch twin)."""

    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    attn_dropout: float | None = None  # on the attention weights; None: dropout's rate (nanoGPT's one rate)
    bias: bool = False  # biases in the Linear layers and LayerNorms
    pos: str = "learned"  # "learned" (a wpe table) | "sinusoidal" (fixed, added) | "rotary" (q, k turned)

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.pos not in ("learned", "sinusoidal", "rotary"):
            raise ValueError(f"pos must be 'learned', 'sinusoidal' or 'rotary', got {self.pos!r}")
        if self.pos == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"pos 'rotary' turns channel pairs: the head size {self.n_embd // self.n_head} is odd"
            )
        if self.attn_dropout is None:
            self.attn_dropout = self.dropout
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


def prefixed(named_layers, attr):
    """{"<prefix>.<key>": array} over the `params` (or `grads`) dicts of [(prefix, layer), ...]."""
    return {f"{prefix}.{key}": a for prefix, layer in named_layers for key, a in getattr(layer, attr).items()}


# ---- elementwise pieces


def erf(x):
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise, to double precision.

    NumPy has no erf; this evaluates the rational approximations of the Cephes library (S. L. Moshier,
    ndtr.c, the coefficients scipy.special.erf uses): |x| < 1: erf(x) = x T(x^2) / U(x^2); |x| >= 1:
    erf(x) = sign(x) (1 - erfc(|x|)), erfc(a) = exp(-a^2) P(a) / Q(a). Beyond |x| = 8 erfc < 1e-29, so a is
    clipped there (erf is then +-1 to every digit a float holds). Each branch runs on its own elements only:
    most of a GPT's GELU inputs give |x| < 1 here, so this beats running both everywhere and np.where."""
    out = np.empty_like(x)
    inner = np.abs(x) < 1.0
    z = x[inner]
    u = z * z
    out[inner] = z * _horner(_ERF_T, u) / _horner(_ERF_U, u, monic=True)
    outer = ~inner
    a = np.minimum(np.abs(x[outer]), 8.0)
    erfc = np.exp(-a * a) * _horner(_ERFC_P, a) / _horner(_ERFC_Q, a, monic=True)
    out[outer] = np.copysign(1.0 - erfc, x[outer])
    return out


def _horner(coefs, x, monic=False):
    """c[0] x^n + c[1] x^(n-1) + ... + c[n]; with monic=True, x^(n+1) + c[0] x^n + ... + c[n]."""
    acc = x + coefs[0] if monic else coefs[0] * x + coefs[1]
    for c in coefs[1:] if monic else coefs[2:]:
        acc *= x
        acc += c
    return acc


# fmt: off
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
# fmt: on


class GELU(Layer):
    """y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 the standard normal CDF: the exact form, torch's
    nn.GELU() default (not the tanh approximation). Any shape."""

    def forward(self, x, training=True):
        self.x = x
        self.cdf = 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))  # Phi(x)
        return x * self.cdf

    def backward(self, dy):
        # dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) the normal density
        x = self.x
        pdf = np.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return dy * (self.cdf + x * pdf)


class Dropout(Layer):
    """Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p) drawn from the numpy Generator `rng`;
    the identity in evaluation or at p = 0 (then nothing is drawn)."""

    def __init__(self, p, rng):
        super().__init__()
        self.p, self.rng = float(p), rng

    def multipliers(self, shape, dtype, training):
        """m / (1 - p) of `shape` (0 or 1 / (1 - p)), or None when dropout is off."""
        if not training or self.p == 0.0:
            return None
        return (self.rng.random(shape) >= self.p).astype(dtype) / (1.0 - self.p)

    def forward(self, x, training=True):
        self.keep = self.multipliers(x.shape, x.dtype, training)
        return x if self.keep is None else x * self.keep

    def backward(self, dy):
        return dy if self.keep is None else dy * self.keep


# ---- layers with parameters


class Linear(Layer):
    """y = x W^T + b in torch's layout: x (..., in), W "weight" (out, in), b "bias" (out,) when bias=True."""

    def __init__(self, in_features, out_features, bias, rng, dtype=np.float32, std=INIT_STD):
        super().__init__()
        self.params["weight"] = (rng.standard_normal((out_features, in_features)) * std).astype(dtype)
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x, training=True):
        self.x = x
        W = self.params["weight"]
        y = (x.reshape(-1, W.shape[1]) @ W.T).reshape(*x.shape[:-1], W.shape[0])  # one GEMM over all rows
        return y + self.params["bias"] if "bias" in self.params else y

    def backward(self, dy):
        # y = x W^T + b  =>  dW = dy^T x (summed over every row), db = sum of the rows of dy, dx = dy W
        W = self.params["weight"]
        dy2 = dy.reshape(-1, W.shape[0])  # (N, out)
        self.grads["weight"] = dy2.T @ self.x.reshape(-1, W.shape[1])  # (out, in)
        if "bias" in self.params:
            self.grads["bias"] = dy2.sum(axis=0)  # (out,)
        return (dy2 @ W).reshape(self.x.shape)  # (..., in)


class Embedding(Layer):
    """Lookup table: ids (any shape, ints in [0, num)) -> rows of "weight" (num, dim), N(0, 0.02^2)."""

    def __init__(self, num, dim, rng, dtype=np.float32):
        super().__init__()
        self.params["weight"] = (rng.standard_normal((num, dim)) * INIT_STD).astype(dtype)

    def forward(self, ids, training=True):
        self.ids = ids
        return np.take(self.params["weight"], ids, axis=0)  # (..., dim)

    def backward(self, dy):
        # y = onehot(ids) W  =>  dW = onehot(ids)^T dy: each row sums the gradients of every place its id was read
        W = self.params["weight"]
        onehot = np.equal.outer(self.ids.reshape(-1), np.arange(W.shape[0])).astype(dy.dtype)  # (N, num)
        self.grads["weight"] = onehot.T @ dy.reshape(-1, W.shape[1])  # (num, dim)


class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (C); weight ones, bias zeros (bias
    only when bias=True, as nanoGPT's LayerNorm(bias=False))."""

    def __init__(self, C, bias=True, dtype=np.float32, eps=LN_EPS):
        super().__init__()
        self.eps = eps
        self.params["weight"] = np.ones(C, dtype=dtype)
        if bias:
            self.params["bias"] = np.zeros(C, dtype=dtype)

    def forward(self, x, training=True):
        mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
        xc = x - mu
        self.rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)  # (..., 1)
        self.xhat = xc * self.rstd  # (..., C)
        y = self.xhat * self.params["weight"]
        return y + self.params["bias"] if "bias" in self.params else y

    def backward(self, dy):
        # dweight = sum dy * xhat, dbias = sum dy (over every row); with g = dy * weight the compact form
        # dx = rstd * (g - mean(g) - xhat * mean(g * xhat))   (means over the C features of each row)
        C = self.xhat.shape[-1]
        self.grads["weight"] = (dy * self.xhat).reshape(-1, C).sum(axis=0)
        if "bias" in self.params:
            self.grads["bias"] = dy.reshape(-1, C).sum(axis=0)
        g = dy * self.params["weight"]
        return self.rstd * (
            g - g.mean(axis=-1, keepdims=True) - self.xhat * (g * self.xhat).mean(axis=-1, keepdims=True)
        )


# ---- attention


def causal_mask(T):
    """(T, T) bool, True where query t may attend to key s: s <= t (on and below the diagonal)."""
    return np.tril(np.ones((T, T), dtype=bool))


def scaled_dot_product_attention(Q, K, V, mask=None, return_weights=False, keep=None):
    """softmax(Q K^T / sqrt(d) + M) V over any leading dims: Q, K (..., T, d), V (..., T, dv) -> (..., T, dv).

    mask: bool, broadcastable to (..., T, T), True where a query may attend (torch's bool attn_mask): M is
    -inf elsewhere, so those weights are exactly 0. keep: attention-dropout multipliers (..., T, T) applied to
    the weights (Dropout.multipliers), or None. return_weights: also return P (..., T, T), the weights before
    dropout, which scaled_dot_product_attention_backward needs."""
    S = (Q @ K.swapaxes(-1, -2)) * (1.0 / math.sqrt(Q.shape[-1]))  # (..., T, T)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = np.exp(S - S.max(axis=-1, keepdims=True))
    P /= P.sum(axis=-1, keepdims=True)  # (..., T, T), rows sum to 1
    out = (P if keep is None else P * keep) @ V  # (..., T, dv)
    return (out, P) if return_weights else out


def scaled_dot_product_attention_backward(dout, Q, K, V, P, keep=None):
    """Gradients (dQ, dK, dV) of scaled_dot_product_attention at Q, K, V, given dout (..., T, dv) and its P.
    Masked weights are 0 in P, so their dS is 0 too: the mask needs no second look."""
    # out = A V with A = P (or P * keep)  =>  dV = A^T dout, dA = dout V^T, dP = dA (* keep)
    A = P if keep is None else P * keep
    dV = A.swapaxes(-1, -2) @ dout  # (..., T, dv)
    dP = dout @ V.swapaxes(-1, -2)  # (..., T, T)
    if keep is not None:
        dP *= keep
    # P = softmax(S) row by row, Jacobian diag(p) - p p^T  =>  dS = P * (dP - sum(dP * P, axis=-1))
    dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
    # S = Q K^T / sqrt(d)  =>  dQ = dS K / sqrt(d), dK = dS^T Q / sqrt(d)
    scale = 1.0 / math.sqrt(Q.shape[-1])
    dQ = (dS @ K) * scale  # (..., T, d)
    dK = (dS.swapaxes(-1, -2) @ Q) * scale  # (..., T, d)
    return dQ, dK, dV


def rotary_angles(T, hs, base=10000.0):
    """cos, sin (T, hs / 2) float64 of rotary position embeddings (RoFormer, Su et al. 2021): at position t,
    channel pair i of a head turns by the angle theta[t, i] = t / base^(2i / hs)."""
    theta = np.arange(T)[:, None] / base ** (np.arange(0, hs, 2) / hs)  # (T, hs / 2)
    return np.cos(theta), np.sin(theta)


def rotate(x, cos, sin):
    """Turn the channel pairs (x1, x2) = (x[..., i], x[..., i + hs/2]) of x (..., T, hs) by their angles:
    (x1 cos - x2 sin, x1 sin + x2 cos), with cos, sin (T, hs / 2). Then q_t . k_s depends on t - s only.
    A rotation R: its backward dx = R^T dy is the turn by minus the angles, rotate(dy, cos, -sin)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class MultiHeadAttention(Layer):
    """Multi-head self-attention, nanoGPT's CausalSelfAttention: q, k, v = split(x W_attn^T + b, 3), each cut
    into nh heads of hs = C / nh; attention over all heads at once on (B, nh, T, hs); heads joined; then
    x W_proj^T + b. x (B, T, C) -> (B, T, C). causal=True masks the future (key s > query t).

    params: c_attn.weight (3C, C) (rows: W_q, W_k, W_v, torch's in_proj_weight), c_proj.weight (C, C), and
    their biases when bias=True. Dropout p on the output and attn_dropout (None: p) on the attention weights
    (training only). rotary=True turns q and k by their positions (rotate) before the attention scores."""

    def __init__(self, C, n_head, bias=False, dropout=0.0, causal=True, rng=None, dtype=np.float32,
                 proj_std=INIT_STD, rotary=False, attn_dropout=None):  # fmt: skip
        super().__init__()
        if C % n_head:
            raise ValueError(f"C ({C}) must be a multiple of n_head ({n_head})")
        rng = np.random.default_rng() if rng is None else rng
        self.n_head, self.causal, self.rotary = n_head, causal, rotary
        self.c_attn = Linear(C, 3 * C, bias, rng, dtype)
        self.c_proj = Linear(C, C, bias, rng, dtype, std=proj_std)
        self.attn_dropout = Dropout(dropout if attn_dropout is None else attn_dropout, rng)
        self.resid_dropout = Dropout(dropout, rng)
        self.children = [("c_attn", self.c_attn), ("c_proj", self.c_proj)]
        self.params = prefixed(self.children, "params")

    def forward(self, x, training=True):
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        qkv = self.c_attn.forward(x)  # (B, T, 3C)
        self.q, self.k, self.v = qkv.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # each (B, nh, T, hs)
        if self.rotary:
            self.turn = [a.astype(x.dtype) for a in rotary_angles(T, hs)]  # cos, sin (T, hs / 2)
            self.q, self.k = rotate(self.q, *self.turn), rotate(self.k, *self.turn)
        mask = causal_mask(T) if self.causal else None
        self.keep = self.attn_dropout.multipliers((B, nh, T, T), x.dtype, training)
        y, self.P = scaled_dot_product_attention(
            self.q, self.k, self.v, mask, True, self.keep
        )  # (B, nh, T, hs)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout.forward(self.c_proj.forward(y), training)

    def backward(self, dout):
        B, T, C = dout.shape
        nh, hs = self.n_head, C // self.n_head
        dy = self.c_proj.backward(self.resid_dropout.backward(dout))  # (B, T, C)
        dy = dy.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
        dq, dk, dv = scaled_dot_product_attention_backward(dy, self.q, self.k, self.v, self.P, self.keep)
        if self.rotary:  # q' = R q, R a rotation  =>  dq = R^T dq', the turn back (same for k)
            cos, sin = self.turn
            dq, dk = rotate(dq, cos, -sin), rotate(dk, cos, -sin)
        dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * C)  # inverse of the split
        dx = self.c_attn.backward(dqkv)
        self.grads = prefixed(self.children, "grads")
        return dx


class MLP(Layer):
    """x W_fc^T + b -> GELU -> x W_proj^T + b -> dropout: (B, T, C) -> (B, T, 4C) -> (B, T, C)."""

    def __init__(self, C, bias=False, dropout=0.0, rng=None, dtype=np.float32, proj_std=INIT_STD):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.c_fc = Linear(C, 4 * C, bias, rng, dtype)
        self.gelu = GELU()
        self.c_proj = Linear(4 * C, C, bias, rng, dtype, std=proj_std)
        self.dropout = Dropout(dropout, rng)
        self.children = [("c_fc", self.c_fc), ("c_proj", self.c_proj)]
        self.params = prefixed(self.children, "params")

    def forward(self, x, training=True):
        h = self.gelu.forward(self.c_fc.forward(x))  # (B, T, 4C)
        return self.dropout.forward(self.c_proj.forward(h), training)

    def backward(self, dout):
        dh = self.gelu.backward(self.c_proj.backward(self.dropout.backward(dout)))  # (B, T, 4C)
        dx = self.c_fc.backward(dh)
        self.grads = prefixed(self.children, "grads")
        return dx


class TransformerBlock(Layer):
    """Pre-norm block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)). (B, T, C) -> (B, T, C)."""

    def __init__(self, C, n_head, bias=False, dropout=0.0, rng=None, dtype=np.float32, proj_std=INIT_STD,
                 rotary=False, attn_dropout=None):  # fmt: skip
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.ln_1 = LayerNorm(C, bias, dtype)
        self.attn = MultiHeadAttention(
            C, n_head, bias, dropout, True, rng, dtype, proj_std, rotary, attn_dropout
        )
        self.ln_2 = LayerNorm(C, bias, dtype)
        self.mlp = MLP(C, bias, dropout, rng, dtype, proj_std)
        self.children = [("ln_1", self.ln_1), ("attn", self.attn), ("ln_2", self.ln_2), ("mlp", self.mlp)]
        self.params = prefixed(self.children, "params")

    def forward(self, x, training=True):
        x = x + self.attn.forward(self.ln_1.forward(x), training)
        return x + self.mlp.forward(self.ln_2.forward(x), training)

    def backward(self, dout):
        # each residual branch adds its input's gradient to the one flowing past it
        dx = dout + self.ln_2.backward(self.mlp.backward(dout))
        dx = dx + self.ln_1.backward(self.attn.backward(dx))
        self.grads = prefixed(self.children, "grads")
        return dx


def sinusoidal_positions(T, C):
    """The fixed positional encoding of "Attention Is All You Need": (T, C) float64 with
    PE[t, 2i] = sin(t / 10000^(2i / C)), PE[t, 2i + 1] = cos(t / 10000^(2i / C))."""
    angle = np.arange(T)[:, None] / 10000.0 ** (np.arange(0, C, 2) / C)  # (T, ceil(C / 2))
    pe = np.empty((T, C))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : C // 2])
    return pe


# ---- the model


class ParamGroup:
    """Some of a model's parameters by name, Layer-like for shared.optim: `params` and `grads` are looked up in
    the model at every access (backward replaces the gradient arrays; the parameter arrays stay)."""

    def __init__(self, model, names):
        self.model, self.names = model, list(names)

    @property
    def params(self):
        return {name: self.model.params[name] for name in self.names}

    @property
    def grads(self):
        return {name: self.model.grads[name] for name in self.names if name in self.model.grads}


class GPT:
    """nanoGPT's GPT in NumPy: x = wte[idx] (+ learned or sinusoidal positions; rotary ones turn q and k in
    every attention instead); dropout; n_layer TransformerBlocks; ln_f;
    logits = x wte^T (the output head is the token embedding, tied). idx (B, T) ints, T <= block_size.

    Init (nanoGPT's): weights and embeddings N(0, 0.02^2), every residual projection (attn.c_proj, mlp.c_proj)
    N(0, (0.02 / sqrt(2 n_layer))^2), biases 0, LayerNorm weights 1. Dropout draws from `self.rng`."""

    def __init__(self, config, rng=None, dtype=np.float32):
        self.config = config
        self.rng = np.random.default_rng() if rng is None else rng
        self.dtype = np.dtype(dtype)
        C, rng = config.n_embd, self.rng
        proj_std = INIT_STD / math.sqrt(2 * config.n_layer)
        self.wte = Embedding(config.vocab_size, C, rng, dtype)
        self.wpe = Embedding(config.block_size, C, rng, dtype) if config.pos == "learned" else None
        if config.pos == "sinusoidal":
            self.pos_table = sinusoidal_positions(config.block_size, C).astype(dtype)  # (block, C)
        self.drop = Dropout(config.dropout, rng)
        self.h = [
            TransformerBlock(
                C,
                config.n_head,
                config.bias,
                config.dropout,
                rng,
                dtype,
                proj_std,
                config.pos == "rotary",
                config.attn_dropout,
            )
            for _ in range(config.n_layer)
        ]
        self.ln_f = LayerNorm(C, config.bias, dtype)
        self.children = (
            [("transformer.wte", self.wte)]
            + ([("transformer.wpe", self.wpe)] if self.wpe else [])
            + [(f"transformer.h.{i}", block) for i, block in enumerate(self.h)]
            + [("transformer.ln_f", self.ln_f)]
        )
        self.params = prefixed(self.children, "params")
        self.grads = {}

    def num_params(self):
        """Every parameter, the position table included (nanoGPT's get_num_params leaves wpe out)."""
        return sum(p.size for p in self.params.values())

    # ---- forward / backward

    def forward(self, idx, training=True):
        """idx (B, T) int ids -> logits (B, T, V). Caches what backward needs."""
        idx = np.asarray(idx)
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ValueError(f"idx must be a (B, T) integer array, got {idx.dtype} {idx.shape}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.wte.forward(idx)  # (B, T, C)
        if self.wpe:
            x = x + self.wpe.forward(np.arange(T))  # + (T, C), every row
        elif self.config.pos == "sinusoidal":
            x = x + self.pos_table[:T]  # (rotary positions act inside the attention instead)
        x = self.drop.forward(x, training)
        for block in self.h:
            x = block.forward(x, training)
        self.x_final = self.ln_f.forward(x)  # (B, T, C)
        return self.x_final @ self.wte.params["weight"].T  # (B, T, V)

    def backward(self, dlogits):
        """dlogits (B, T, V) -> fills self.grads (the keys of self.params)."""
        B, T, V = dlogits.shape
        W = self.wte.params["weight"]  # (V, C)
        # logits = x W^T  =>  dx = dlogits W, dW (head) = dlogits^T x
        dl2 = dlogits.reshape(B * T, V)
        dW_head = dl2.T @ self.x_final.reshape(B * T, -1)  # (V, C)
        dx = self.ln_f.backward((dl2 @ W).reshape(B, T, -1))  # (B, T, C)
        for block in reversed(self.h):
            dx = block.backward(dx)
        dx = self.drop.backward(dx)
        self.wte.backward(dx)
        self.wte.grads["weight"] += dW_head  # the tied weight: lookup and head gradients add
        if self.wpe:
            self.wpe.backward(dx.sum(axis=0))  # every row of the batch read the same positions 0..T-1
        self.grads = prefixed(self.children, "grads")

    def loss_and_backward(self, idx, targets):
        """Mean cross-entropy (nats per token) of next-token targets (B, T) given idx (B, T); fills grads."""
        logits = self.forward(idx, training=True)
        B, T, V = logits.shape
        loss, dlogits = softmax_cross_entropy(logits.reshape(B * T, V), np.asarray(targets).reshape(B * T))
        self.backward(dlogits.reshape(B, T, V))
        return loss

    # ---- parameters

    def param_groups(self):
        """(decay, no_decay) ParamGroups: the matrices (Linear weights, wte, wpe: 2-D) are weight-decayed;
        LayerNorm weights and biases (1-D) are not, as in nanoGPT's configure_optimizers."""
        decay = [name for name, p in self.params.items() if p.ndim >= 2]
        no_decay = [name for name, p in self.params.items() if p.ndim < 2]
        return ParamGroup(self, decay), ParamGroup(self, no_decay)

    def state_dict(self):
        """{name: a copy of the array}, nanoGPT's names."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state):
        """Copy weights in place (optimizers keep their references); keys and shapes must match exactly."""
        copy_weights(self.params, state)

    # ---- generation

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, rng=None):
        """Continue each row of idx (B, T) by max_new_tokens ids -> (B, T + max_new_tokens) int64.

        Each step reads the last block_size ids and draws the next one row by row with shared.sampling.pick_next
        and the numpy Generator `rng` (argmax at temperature 0; top_k keeps the k most likely), so the torch twin
        with the same weights and rng writes the same text. Overwrites the forward caches."""
        idx = np.array(idx, dtype=np.int64)
        if idx.ndim != 2:
            raise ValueError(f"idx must be (B, T), got shape {idx.shape}")
        _, rng = sampling_inputs(idx, temperature, top_k, rng)
        for _ in range(max_new_tokens):
            last = self.forward(idx[:, -self.config.block_size :], training=False)[:, -1]  # (B, V)
            picked = [pick_next(row, temperature, top_k, rng) for row in last]
            idx = np.concatenate([idx, np.array(picked, dtype=np.int64)[:, None]], axis=1)
        return idx
