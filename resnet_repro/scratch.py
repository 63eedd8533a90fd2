"""The residual block of He et al. 2016 from first principles in NumPy, NHWC, each forward beside its backward.

    block:  z = bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x),   out = relu(z)

Convolutions are shared.conv's (im2col and one GEMM; conv_forward / conv_backward, no bias here: batch norm's
shift takes its place). This module adds what a ResNet needs beside them, as pure functions
`*_forward(...) -> (out, cache)` and `*_backward(dout, cache)`:

* batch norm over the N*H*W values of each channel (batchnorm_forward / batchnorm_backward);
* option A's shortcut, the identity with the new channels zero (shortcut_forward / shortcut_backward): where a
  block halves the map, x[:, ::2, ::2, :], where it widens from C_in to C_out channels, C_out - C_in zero
  channels appended;
* the basic block (basic_block_forward / basic_block_backward), composed of the above.

Why the identity path carries the gradient unchanged: z = F(x) + x, so dL/dx = dL/dz + (dF/dx)^T dL/dz; the
first term reaches x whatever F's weights do (REPORT.md derives every step). basic_block_backward shows it as
`dx_shortcut = shortcut_backward(dz, shortcut)`, which is dz itself where the block keeps its shape.

The layers Stem, BasicBlock and Head wrap the functions in the shared.nn.Layer API (params, grads, buffers for
batch norm's running statistics) and ResNet stacks them: conv-BN-ReLU, three stages of n blocks, global average
pooling and a linear layer, as model.ResNet, with the same state-dict names (kernels (kh, kw, C_in, C_out) here
for conv_forward's GEMM, the linear weight (in, out); twin.py converts).
"""

import numpy as np

from shared.conv import conv_backward, conv_forward
from shared.nn import Layer, copy_weights, softmax_cross_entropy

WIDTHS = (16, 32, 64)
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # torch.nn.BatchNorm2d's defaults


# ---- batch norm, per channel over (N, H, W) ---------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, running=None, training=True, momentum=BN_MOMENTUM, eps=BN_EPS):
    """y = gamma * xhat + beta with xhat = (x - mean) / sqrt(var + eps), per channel. x (N, H, W, C).

    Training: mean and (biased) variance of the batch's M = N*H*W values of each channel; `running`
    ({"running_mean": (C,), "running_var": (C,)}, or None) moves in place as torch's does,
    r = (1 - momentum) r + momentum * statistic, with the unbiased variance M / (M - 1) var.
    Inference (training=False): the running statistics, constants. Returns (y (N, H, W, C), cache)."""
    channels = x.shape[-1]
    flat = x.reshape(-1, channels)  # (M, C): a view, NHWC puts each channel's values in one column
    if training:
        m = len(flat)
        mean = flat.mean(axis=0)  # (C,)
        centred = flat - mean
        var = np.einsum("mc,mc->c", centred, centred) / m  # (C,), biased, as batch norm normalises
        if running is not None:
            running["running_mean"] *= 1.0 - momentum
            running["running_mean"] += momentum * mean
            running["running_var"] *= 1.0 - momentum
            running["running_var"] += momentum * m / (m - 1) * var
    else:
        centred = flat - running["running_mean"]
        var = running["running_var"]
    inv_std = 1.0 / np.sqrt(var + eps)  # (C,)
    xhat = centred * inv_std  # (M, C)
    return (xhat * gamma + beta).reshape(x.shape), (xhat, gamma, inv_std, training)


def batchnorm_backward(dout, cache):
    """dout = dL/dy (N, H, W, C) -> (dx (N, H, W, C), dgamma (C,), dbeta (C,))."""
    xhat, gamma, inv_std, training = cache
    dy = dout.reshape(xhat.shape)  # (M, C)
    dgamma = np.einsum("mc,mc->c", dy, xhat)  # y = gamma xhat + beta
    dbeta = dy.sum(axis=0)
    dxhat = dy * gamma
    if not training:  # xhat = (x - running mean) * inv_std with constant statistics
        return (dxhat * inv_std).reshape(dout.shape), dgamma, dbeta
    # mean and var depend on every x of the channel too:
    #   dx = inv_std * (dxhat - mean_m(dxhat) - xhat * mean_m(dxhat * xhat))
    dx = dxhat - dxhat.mean(axis=0) - xhat * (np.einsum("mc,mc->c", dxhat, xhat) / len(xhat))
    return (dx * inv_std).reshape(dout.shape), dgamma, dbeta


# ---- ReLU and the option-A shortcut ------------------------------------------------------------------------


def relu_forward(x):
    """max(x, 0), elementwise. Returns (out, cache: the mask x > 0)."""
    mask = x > 0
    return np.maximum(x, 0), mask


def relu_backward(dout, mask):
    """dL/dx = dL/dout where x > 0, else 0."""
    return dout * mask


def shortcut_forward(x, out_channels, stride=1):
    """Option A: x (N, H, W, C_in) -> (N, ceil(H / s), ceil(W / s), C_out), the identity on the first C_in
    channels of every s-th row and column, zeros in the C_out - C_in channels after them. Where the block keeps
    its shape (s = 1, C_out = C_in) it is x itself. Returns (out, cache)."""
    in_channels = x.shape[-1]
    if stride == 1 and out_channels == in_channels:
        return x, (x.shape, stride)
    sub = x[:, ::stride, ::stride, :]  # (N, H / s, W / s, C_in): the pixels the stride-2 windows centre on
    out = np.zeros((*sub.shape[:3], out_channels), dtype=x.dtype)
    out[..., :in_channels] = sub  # the new channels stay zero
    return out, (x.shape, stride)


def shortcut_backward(dout, cache):
    """dout (N, H / s, W / s, C_out) -> dx (N, H, W, C_in): the adjoint of the subsample-and-pad, i.e. dout's
    first C_in channels put back on the pixels they were read from, 0 on the others (and nothing from the zero
    channels, constants). Where the shortcut is the identity, dout itself: the gradient passes unchanged."""
    x_shape, stride = cache
    in_channels = x_shape[-1]
    if stride == 1 and dout.shape == x_shape:
        return dout
    dx = np.zeros(x_shape, dtype=dout.dtype)
    dx[:, ::stride, ::stride, :] = dout[..., :in_channels]
    return dx


# ---- the basic block ---------------------------------------------------------------------------------------


def _running(buffers, bn):
    """The running statistics of batch norm `bn` ("bn1") in a block's buffers, or None."""
    if buffers is None:
        return None
    return {"running_mean": buffers[f"{bn}.running_mean"], "running_var": buffers[f"{bn}.running_var"]}


def basic_block_forward(x, params, stride=1, shortcut=True, buffers=None, training=True):
    """x (N, H, W, C_in) -> out (N, H / stride, W / stride, C_out), cache.

    params: conv1.weight (3, 3, C_in, C_out), bn1.weight, bn1.bias (C_out,), conv2.weight (3, 3, C_out, C_out),
    bn2.weight, bn2.bias. shortcut=False: the plain block (no shortcut). buffers: {"bn1.running_mean": ...,
    "bn1.running_var", "bn2.*"}, updated in place in training and used in inference (None: batch statistics,
    untracked)."""
    out_channels = params["conv1.weight"].shape[-1]
    h, conv1 = conv_forward(x, params["conv1.weight"], None, stride, 1)  # (N, H / s, W / s, C_out)
    h, bn1 = batchnorm_forward(
        h, params["bn1.weight"], params["bn1.bias"], _running(buffers, "bn1"), training
    )
    h, relu1 = relu_forward(h)
    h, conv2 = conv_forward(h, params["conv2.weight"], None, 1, 1)  # (N, H / s, W / s, C_out)
    z, bn2 = batchnorm_forward(
        h, params["bn2.weight"], params["bn2.bias"], _running(buffers, "bn2"), training
    )
    short = None
    if shortcut:
        identity, short = shortcut_forward(x, out_channels, stride)
        z = z + identity  # z = F(x) + x
    out, relu2 = relu_forward(z)
    return out, (conv1, bn1, relu1, conv2, bn2, short, relu2)


def basic_block_backward(dout, cache):
    """dout = dL/dout (N, H / s, W / s, C_out) -> (dx (N, H, W, C_in), grads {name: array} as params)."""
    conv1, bn1, relu1, conv2, bn2, short, relu2 = cache
    grads = {}
    dz = relu_backward(dout, relu2)  # dL/dz, z = F(x) + shortcut(x)
    # the shortcut's share: dz itself (subsampled, the zero channels dropped), whatever F's weights are
    dx_shortcut = shortcut_backward(dz, short) if short is not None else 0.0
    dh, grads["bn2.weight"], grads["bn2.bias"] = batchnorm_backward(dz, bn2)  # F's share, back through F
    dh, grads["conv2.weight"], _ = conv_backward(dh, conv2)
    dh = relu_backward(dh, relu1)
    dh, grads["bn1.weight"], grads["bn1.bias"] = batchnorm_backward(dh, bn1)
    dx_residual, grads["conv1.weight"], _ = conv_backward(dh, conv1)
    return dx_residual + dx_shortcut, grads


# ---- layers ------------------------------------------------------------------------------------------------


def he_kernel(rng, in_channels, out_channels, dtype):
    """A 3x3 kernel (3, 3, C_in, C_out) drawn N(0, 2 / (9 C_out)): He initialisation, fan_out mode, as
    model.py's kaiming_normal_(mode="fan_out")."""
    std = np.sqrt(2.0 / (9 * out_channels))
    return (rng.standard_normal((3, 3, in_channels, out_channels)) * std).astype(dtype)


def batchnorm_state(channels, dtype, name):
    """Batch norm `name`'s params (scale 1, shift 0) and buffers (running mean 0, running variance 1)."""
    params = {f"{name}.weight": np.ones(channels, dtype), f"{name}.bias": np.zeros(channels, dtype)}
    buffers = {
        f"{name}.running_mean": np.zeros(channels, dtype),
        f"{name}.running_var": np.ones(channels, dtype),
    }
    return params, buffers


class Stem(Layer):
    """conv3x3 (C_in -> C) - BN - ReLU: (N, H, W, C_in) -> (N, H, W, C). Its input is data, so backward computes
    no dx (returns None)."""

    def __init__(self, in_channels, channels, rng, dtype=np.float32):
        super().__init__()
        self.params["conv1.weight"] = he_kernel(rng, in_channels, channels, dtype)
        bn_params, self.buffers = batchnorm_state(channels, dtype, "bn1")
        self.params |= bn_params

    def forward(self, x, training=True):
        p = self.params
        h, conv = conv_forward(x, p["conv1.weight"], None, 1, 1)
        h, bn = batchnorm_forward(h, p["bn1.weight"], p["bn1.bias"], _running(self.buffers, "bn1"), training)
        out, relu = relu_forward(h)
        self.cache = (conv, bn, relu) if training else None  # the patch matrix is kept for a backward only
        return out

    def backward(self, grad):
        conv, bn, relu = self.cache
        dh, self.grads["bn1.weight"], self.grads["bn1.bias"] = batchnorm_backward(
            relu_backward(grad, relu), bn
        )
        _, self.grads["conv1.weight"], _ = conv_backward(dh, conv, need_dx=False)
        self.cache = None
        return None


class BasicBlock(Layer):
    """basic_block_forward / basic_block_backward with their params and batch norm buffers.
    (N, H, W, C_in) -> (N, H / stride, W / stride, C_out)."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut=True, rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.stride, self.shortcut, self.buffers = stride, shortcut, {}
        self.params["conv1.weight"] = he_kernel(rng, in_channels, out_channels, dtype)
        self.params["conv2.weight"] = he_kernel(rng, out_channels, out_channels, dtype)
        for bn in ("bn1", "bn2"):
            bn_params, bn_buffers = batchnorm_state(out_channels, dtype, bn)
            self.params |= bn_params
            self.buffers |= bn_buffers

    def forward(self, x, training=True):
        out, cache = basic_block_forward(x, self.params, self.stride, self.shortcut, self.buffers, training)
        self.cache = cache if training else None  # the patch matrices are kept for a backward only
        return out

    def backward(self, grad):
        dx, self.grads = basic_block_backward(grad, self.cache)
        self.cache = None  # free the patch matrices
        return dx


class Head(Layer):
    """Global average pooling and the linear layer: (N, H, W, C) -> logits (N, classes).
    params fc.weight (C, classes) (x @ W), fc.bias (classes,)."""

    def __init__(self, channels, num_classes, rng, dtype=np.float32):
        super().__init__()
        self.buffers = {}
        bound = 1.0 / np.sqrt(channels)  # torch.nn.Linear's default weights, a zero bias (model.py)
        self.params["fc.weight"] = rng.uniform(-bound, bound, (channels, num_classes)).astype(dtype)
        self.params["fc.bias"] = np.zeros(num_classes, dtype)

    def forward(self, x, training=True):
        self.x_shape = x.shape
        self.pooled = x.mean(axis=(1, 2))  # (N, C)
        return self.pooled @ self.params["fc.weight"] + self.params["fc.bias"]

    def backward(self, grad):
        # logits = pooled W + b, pooled = mean over the H*W pixels  =>  each pixel gets dpooled / (H W)
        self.grads["fc.weight"] = self.pooled.T @ grad  # (C, classes)
        self.grads["fc.bias"] = grad.sum(axis=0)
        dpooled = grad @ self.params["fc.weight"].T  # (N, C)
        n, h, w, c = self.x_shape
        return np.broadcast_to(dpooled[:, None, None, :] / (h * w), self.x_shape)  # (N, H, W, C), a view


class ResNet:
    """ResNet-`depth` (6n + 2) or its plain counterpart, NHWC float input (N, 32, 32, 3) -> logits (N, classes).

    layers: [Stem, n blocks per stage x 3, Head], the list shared.optim's optimizers take; state_dict() names
    each array as model.ResNet's state dict does ("stages.1.0.conv1.weight"), buffers included."""

    def __init__(self, depth=8, widths=WIDTHS, plain=False, num_classes=10, in_channels=3, rng=None,
                 dtype=np.float32):  # fmt: skip
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth {depth} is not 6n + 2 for some n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)")
        rng = np.random.default_rng(0) if rng is None else rng
        n = (depth - 2) // 6
        self.depth, self.widths, self.plain, self.dtype = depth, tuple(widths), plain, dtype
        layers, prefixes, cin = [Stem(in_channels, widths[0], rng, dtype)], [""], widths[0]
        for s, cout in enumerate(widths):
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1  # stages 2 and 3 start by halving the map
                layers.append(BasicBlock(cin, cout, stride, not plain, rng, dtype))
                prefixes.append(f"stages.{s}.{b}.")
                cin = cout
        layers.append(Head(cin, num_classes, rng, dtype))
        prefixes.append("")
        self.layers, self.prefixes = layers, prefixes

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training=training)  # (N, 32, 32, 16) ... (N, 8, 8, 64), then (N, classes)
        return x

    def backward(self, dlogits):
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)  # the stem returns None: its input is data

    def loss(self, x, y):
        """Forward (training mode) + softmax cross-entropy + backward: (mean loss, logits); grads in the layers."""
        logits = self.forward(x, training=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.backward(dlogits)
        return loss, logits

    def _arrays(self, kind):
        return {
            p + k: v for p, layer in zip(self.prefixes, self.layers) for k, v in getattr(layer, kind).items()
        }

    def num_params(self):
        return int(sum(v.size for v in self._arrays("params").values()))

    def grads(self):
        return self._arrays("grads")

    def state_dict(self):
        """{name: copy} of every parameter and running statistic."""
        return {k: v.copy() for k, v in (self._arrays("params") | self._arrays("buffers")).items()}

    def load_state_dict(self, state):
        copy_weights(self._arrays("params") | self._arrays("buffers"), state)
