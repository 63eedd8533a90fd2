"""Convolution and max pooling from first principles in NumPy, NHWC (curriculum 5.3, CE3.1).

Layout: images are x (N, H, W, C); a kernel is (kh, kw, Cin, Cout), so that `kernel.reshape(kh*kw*Cin, Cout)`
is the weight matrix of one GEMM. Sizes: Ho = (H + 2*padding - kh) // stride + 1 (likewise Wo), as in
torch.nn.functional.conv2d.

Convolution as one matrix product (im2col). The receptive field of output pixel (n, oh, ow) is the (kh, kw, Cin)
window of the zero-padded input starting at row oh*stride, column ow*stride. With every window laid out as one
row of cols (N*Ho*Wo, kh*kw*Cin) and K = kernel.reshape(kh*kw*Cin, Cout):

    out = cols @ K + b                                   (N*Ho*Wo, Cout), one GEMM
    dK = cols^T @ dout,  db = sum_rows dout,  dcols = dout @ K^T,  dx = col2im(dcols)

col2im is the adjoint of im2col: every window entry adds back to the input pixel it was read from.

Max pooling is the same window view: out = max over each window, and the gradient goes to the window's first
maximum in row-major order (PyTorch's choice among ties, which matter: a ReLU output has whole windows of 0).

Each operation has a forward returning (out, cache) and a backward(dout, cache) with its formula at the top; the
layers Conv2D, MaxPool2D and Flatten wrap them in the shared.nn.Layer API. The one fast path, beside the plain
maxpool2d and tested equal to it, is maxpool2x2 for 2x2 windows with stride 2 (see MaxPool2D).
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from shared.nn import Layer, init_weight

__all__ = [
    "conv_output_size",
    "im2col",
    "col2im",
    "conv_forward",
    "conv_backward",
    "conv2d",
    "conv2d_backward",
    "conv_flops",
    "maxpool2d",
    "maxpool2d_backward",
    "maxpool2x2",
    "maxpool2x2_backward",
    "Conv2D",
    "MaxPool2D",
    "Flatten",
]


# ----------------------------------------------------------------------------------------------------------
# Windows: im2col / col2im
# ----------------------------------------------------------------------------------------------------------


def conv_output_size(size, k, stride, padding):
    """Output length along one axis: floor((size + 2*padding - k) / stride) + 1."""
    out = (size + 2 * padding - k) // stride + 1
    if out <= 0:
        raise ValueError(f"kernel {k} with padding {padding} does not fit input size {size}")
    return out


def _pad(x, padding):
    """Zero-pad the two spatial axes: (N, H, W, C) -> (N, H + 2p, W + 2p, C)."""
    if padding == 0:
        return np.ascontiguousarray(x)
    n, h, w, c = x.shape
    xpad = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    xpad[:, padding : padding + h, padding : padding + w] = x
    return xpad


def _windows(x, kh, kw, stride, padding):
    """Read-only strided view (N, Ho, Wo, kh, kw, C) of the padded input, no copy:
    windows[n, oh, ow, i, j, c] = xpad[n, oh*stride + i, ow*stride + j, c]."""
    n, h, w, c = x.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    xp = _pad(x, padding)
    s_n, s_h, s_w, s_c = xp.strides
    shape, strides = (n, ho, wo, kh, kw, c), (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c)
    return as_strided(xp, shape, strides, writeable=False)


def im2col(x, kh, kw, stride=1, padding=0):
    """x (N, H, W, C) -> cols (N*Ho*Wo, kh*kw*C): row (n, oh, ow) is the window feeding output pixel (n, oh, ow),
    flattened in (i, j, c) order to match kernel.reshape(kh*kw*C, Cout)."""
    windows = _windows(x, kh, kw, stride, padding)  # (N, Ho, Wo, kh, kw, C)
    n, ho, wo = windows.shape[:3]
    return windows.reshape(n * ho * wo, kh * kw * x.shape[3])  # the one copy


def _inside(i, size, out_size, stride, padding):
    """Kernel offset i along one axis: output o reads input index o*stride + i - padding. Returns the slices
    (outputs, their inputs) of the o whose index lies inside the image [0, size) (the rest read padding)."""
    first = max(0, -((i - padding) // stride))  # ceil((padding - i) / stride)
    last = max(first, min(out_size, (size - 1 + padding - i) // stride + 1))
    start = first * stride + i - padding
    return slice(first, last), slice(start, start + stride * (last - first), stride)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """Adjoint of im2col: cols (N*Ho*Wo, kh*kw*C) (or (N, Ho, Wo, kh, kw, C)) -> (N, H, W, C).

    dx[n, oh*stride + i - padding, ow*stride + j - padding, c] += cols[n, oh, ow, i, j, c]: one slice add per
    kernel offset (i, j), over the outputs whose input pixel is inside the image (entries read from the zero
    padding have nowhere to go). A pixel read by m windows gets the sum of its m copies, so
    col2im(im2col(x)) == x * overlap_count.
    """
    n, h, w, c = x_shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = cols.reshape(n, ho, wo, kh, kw, c)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    for i in range(kh):
        out_rows, in_rows = _inside(i, h, ho, stride, padding)
        for j in range(kw):
            out_cols, in_cols = _inside(j, w, wo, stride, padding)
            dx[:, in_rows, in_cols] += cols[:, out_rows, out_cols, i, j]
    return dx


# ----------------------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------------------


def _check_conv_args(x, kernel):
    if x.ndim != 4 or kernel.ndim != 4:
        raise ValueError(
            f"conv2d wants x (N, H, W, Cin) and kernel (kh, kw, Cin, Cout); got {x.shape}, {kernel.shape}"
        )
    if x.shape[3] != kernel.shape[2]:
        raise ValueError(f"x has {x.shape[3]} channels but the kernel expects {kernel.shape[2]}")


def conv_forward(x, kernel, bias=None, stride=1, padding=0):
    """out = im2col(x) @ K + b. x (N, H, W, Cin), kernel (kh, kw, Cin, Cout), bias (Cout,) or None.
    Returns (out (N, Ho, Wo, Cout), cache)."""
    _check_conv_args(x, kernel)
    n, h, w, _ = x.shape
    kh, kw, cin, cout = kernel.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = im2col(x, kh, kw, stride, padding)  # (N*Ho*Wo, kh*kw*Cin)
    out = cols @ kernel.reshape(kh * kw * cin, cout)  # (N*Ho*Wo, Cout)
    if bias is not None:
        out += bias
    return out.reshape(n, ho, wo, cout), (cols, x.shape, kernel, stride, padding)


def conv_backward(dout, cache, need_dx=True):
    """dout = dL/dout (N, Ho, Wo, Cout) -> (dx (N, H, W, Cin) or None, dkernel (kh, kw, Cin, Cout), dbias (Cout,)).
    need_dx=False skips dx (the first layer's input is data)."""
    # out = cols K + b  =>  dK = cols^T dout, db = sum_rows dout, dcols = dout K^T, dx = col2im(dcols)
    cols, x_shape, kernel, stride, padding = cache
    kh, kw, cin, cout = kernel.shape
    dout = dout.reshape(-1, cout)  # (N*Ho*Wo, Cout)
    dkernel = (cols.T @ dout).reshape(kernel.shape)  # (kh*kw*Cin, Cout) -> (kh, kw, Cin, Cout)
    # db = 1^T dout: the row sum as a GEMV, 5x faster than dout.sum(axis=0) on conv1 (131072, 32), no less exact
    dbias = np.ones(len(dout), dout.dtype) @ dout  # (Cout,)
    if not need_dx:
        return None, dkernel, dbias
    dcols = dout @ kernel.reshape(kh * kw * cin, cout).T  # (N*Ho*Wo, kh*kw*Cin)
    return col2im(dcols, x_shape, kh, kw, stride, padding), dkernel, dbias


def conv2d(x, kernel, stride=1, padding=0, bias=None):
    """2D cross-correlation (what deep learning calls convolution), NHWC.

    x: (N, H, W, Cin); kernel: (kh, kw, Cin, Cout); bias: (Cout,) or None. Returns (N, Ho, Wo, Cout). Equals
    torch.nn.functional.conv2d after NHWC <-> NCHW permutes and kernel.transpose(3, 2, 0, 1).
    """
    return conv_forward(x, kernel, bias, stride, padding)[0]


def conv2d_backward(grad, x, kernel, stride=1, padding=0):
    """Gradients of conv2d. grad: dL/dout (N, Ho, Wo, Cout). Returns (dx (N, H, W, Cin),
    dkernel (kh, kw, Cin, Cout), dbias (Cout,))."""
    _check_conv_args(x, kernel)
    kh, kw = kernel.shape[:2]
    cache = (im2col(x, kh, kw, stride, padding), x.shape, kernel, stride, padding)
    return conv_backward(grad, cache)


def conv_flops(n, h, w, cin, cout, kh, kw, stride=1, padding=0):
    """Multiply-add FLOPs (2 per MAC) of one conv forward: 2*N*Ho*Wo*kh*kw*Cin*Cout."""
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    return 2 * n * ho * wo * kh * kw * cin * cout


# ----------------------------------------------------------------------------------------------------------
# Max pooling
# ----------------------------------------------------------------------------------------------------------


def maxpool2d(x, size=2, stride=None):
    """out[n, oh, ow, c] = max of the size x size window at (oh*stride, ow*stride), no padding, NHWC.

    stride defaults to size. Returns (out (N, Ho, Wo, C), cache). Like torch.nn.functional.max_pool2d, rows and
    columns that do not fill a window are dropped and, among equal maxima, the first in row-major window order
    wins (it alone gets the gradient).
    """
    stride = size if stride is None else stride
    windows = _windows(x, size, size, stride, 0)  # (N, Ho, Wo, size, size, C)
    n, ho, wo, _, _, c = windows.shape
    windows = windows.reshape(n, ho, wo, size * size, c)
    argmax = windows.argmax(axis=3)[:, :, :, None]  # (N, Ho, Wo, 1, C): np.argmax takes the first maximum
    out = np.take_along_axis(windows, argmax, axis=3)[:, :, :, 0]  # (N, Ho, Wo, C)
    return out, (x.shape, argmax, size, stride)


def maxpool2d_backward(grad, cache):
    """grad: dL/dout (N, Ho, Wo, C) -> dL/dx (N, H, W, C)."""
    # out = x[argmax of the window]  =>  dwindow = grad at the argmax, 0 elsewhere;  dx = col2im(dwindows)
    x_shape, argmax, size, stride = cache
    n, ho, wo, _, c = argmax.shape
    dwindows = np.zeros((n, ho, wo, size * size, c), dtype=grad.dtype)
    np.put_along_axis(dwindows, argmax, grad[:, :, :, None], axis=3)
    return col2im(dwindows, x_shape, size, size, stride, 0)


def maxpool2x2(x):
    """maxpool2d(x, 2, 2) (the same out and, through maxpool2x2_backward, the same gradient) as a tournament
    between the four strided sub-images a b / c d of the windows: top = max(a, b), bottom = max(c, d),
    out = max(top, bottom). MaxPool2D's fast path. Returns (out (N, H//2, W//2, C), cache)."""
    x_shape = x.shape
    h, w = x_shape[1:3]
    x = x[:, : h // 2 * 2, : w // 2 * 2]  # an odd last row/column fills no window
    a, b, c, d = x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]  # each (N, Ho, Wo, C)
    top, bottom = np.maximum(a, b), np.maximum(c, d)
    wins = (b > a, d > c, bottom > top)  # strict: on a tie the first in row-major order keeps the win
    return np.maximum(top, bottom, out=top), (x_shape, wins)


def maxpool2x2_backward(grad, cache):
    """grad: dL/dout (N, Ho, Wo, C) -> dL/dx (N, H, W, C)."""
    # dx = grad at the winner of each window: a if upper & ~b_wins, b if upper & b_wins, c / d likewise below
    x_shape, (b_wins, d_wins, lower) = cache
    ho, wo = grad.shape[1:3]
    covered = x_shape[1:3] == (2 * ho, 2 * wo)  # else an odd last row/column is in no window: its dx is 0
    dx = np.empty(x_shape, dtype=grad.dtype) if covered else np.zeros(x_shape, dtype=grad.dtype)
    upper = ~lower
    rows, cols = (slice(0, 2 * ho, 2), slice(1, 2 * ho, 2)), (slice(0, 2 * wo, 2), slice(1, 2 * wo, 2))
    np.multiply(grad, upper & ~b_wins, out=dx[:, rows[0], cols[0]])  # a
    np.multiply(grad, upper & b_wins, out=dx[:, rows[0], cols[1]])  # b
    np.multiply(grad, lower & ~d_wins, out=dx[:, rows[1], cols[0]])  # c
    np.multiply(grad, lower & d_wins, out=dx[:, rows[1], cols[1]])  # d
    return dx


# ----------------------------------------------------------------------------------------------------------
# Layers (shared.nn.Layer API)
# ----------------------------------------------------------------------------------------------------------


class Conv2D(Layer):
    """Convolution layer. params W (kh, kw, Cin, Cout), b (Cout,). x (N, H, W, Cin) -> (N, Ho, Wo, Cout).

    Initialisation: `shared.nn.init_weight` with fan_in = kh*kw*Cin and fan_out = kh*kw*Cout (He: N(0, 2/fan_in)).
    `input_grad=False` skips dL/dx (the first layer's input is data, as when PyTorch's input does not require
    grad); backward then returns None.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        init="he",
        rng=None,
        dtype=np.float32,
        input_grad=True,
    ):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        shape = (kh, kw, in_channels, out_channels)
        fan_in, fan_out = kh * kw * in_channels, kh * kw * out_channels
        self.params["W"] = init_weight(shape, init, rng, fan_in=fan_in, fan_out=fan_out).astype(dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.padding, self.input_grad = stride, padding, input_grad

    def forward(self, x, training=True):
        out, cache = conv_forward(x, self.params["W"], self.params["b"], self.stride, self.padding)
        self.cache = cache if training else None  # the patch matrix is kept only for a backward pass
        return out

    def backward(self, grad):
        dx, self.grads["W"], self.grads["b"] = conv_backward(grad, self.cache, need_dx=self.input_grad)
        self.cache = None  # free the patch matrix
        return dx


class MaxPool2D(Layer):
    """Max pooling, size x size windows, stride (default = size). No params.

    2x2 windows with stride 2 take the tournament maxpool2x2 (equal to maxpool2d, tested), the one fast path
    kept: on SimpleCNN's pools (batch 128, float32, 1 thread) the three forward + backward passes take 13 ms
    against maxpool2d's 69 ms, 37% of a 149 ms SimpleCNN training step.
    """

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size, self.stride = size, (size if stride is None else stride)
        self.tournament = (self.size, self.stride) == (2, 2)

    def forward(self, x, training=True):
        out, cache = maxpool2x2(x) if self.tournament else maxpool2d(x, self.size, self.stride)
        self.cache = cache if training else None
        return out

    def backward(self, grad):
        dx = (maxpool2x2_backward if self.tournament else maxpool2d_backward)(grad, self.cache)
        self.cache = None
        return dx


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), row-major (NHWC) order. No params."""

    def forward(self, x, training=True):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self.shape)
