"""Convolutional networks from first principles in NumPy (curriculum 5.3, CE3.1).

Layout: NHWC everywhere. Images are x (N, H, W, C); a kernel is (kh, kw, Cin, Cout), so that
`kernel.reshape(kh * kw * Cin, Cout)` is the weight matrix of one GEMM.

Convolution as one matrix product (im2col). For output pixel (n, oh, ow) the receptive field is the
(kh, kw, Cin) patch of the zero-padded input starting at row oh*stride, column ow*stride. Laying every patch out
as one row gives the matrix cols (N*Ho*Wo, kh*kw*Cin), and

    out[n, oh, ow, :] = cols[(n, oh, ow), :] @ kernel.reshape(kh*kw*Cin, Cout) + bias          (1 GEMM)

The backward pass of that product, for grad = dL/dout reshaped to (N*Ho*Wo, Cout):

    dkernel = cols^T @ grad                  (kh*kw*Cin, Cout)        (GEMM)
    dbias   = grad summed over N, Ho, Wo
    dcols   = grad @ kernel_matrix^T         (N*Ho*Wo, kh*kw*Cin)     (GEMM)
    dx      = col2im(dcols): every patch entry adds back to the input pixel it was copied from.

im2col is a strided view of the padded input (no copy until the final reshape); col2im loops only over the
kh*kw kernel offsets, each a vectorised slice add over the whole batch.

Max pooling keeps, for each window, the first maximum in row-major window order (PyTorch's choice) and routes
the gradient only to it.

Sizes: Ho = (H + 2*padding - kh) // stride + 1 (likewise Wo), as in torch.nn.functional.conv2d.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from shared.nn import Layer, Linear, ReLU, init_weight, softmax_cross_entropy

__all__ = [
    "im2col",
    "col2im",
    "conv_output_size",
    "conv2d",
    "conv2d_backward",
    "maxpool2d",
    "maxpool2d_backward",
    "Conv2D",
    "MaxPool2D",
    "Flatten",
    "SimpleCNN",
    "conv_flops",
    "model_forward_flops",
    "model_step_flops",
]


# ----------------------------------------------------------------------------------------------------------
# im2col / col2im
# ----------------------------------------------------------------------------------------------------------


def conv_output_size(size, k, stride, padding):
    """Output length along one axis: floor((size + 2*padding - k) / stride) + 1."""
    out = (size + 2 * padding - k) // stride + 1
    if out <= 0:
        raise ValueError(f"kernel {k} with padding {padding} does not fit input size {size}")
    return out


def _pad(x, padding):
    """Zero-pad the two spatial axes of an NHWC array (one allocation, one copy)."""
    if padding == 0:
        return x
    n, h, w, c = x.shape
    xp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    xp[:, padding : padding + h, padding : padding + w, :] = x
    return xp


def _patches(x, kh, kw, stride, padding):
    """Read-only strided view (N, Ho, Wo, kh, kw, C) of the padded input: patches[n, oh, ow, i, j, c] =
    xpad[n, oh*stride + i, ow*stride + j, c]. No data is copied."""
    n, h, w, c = x.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    xp = np.ascontiguousarray(_pad(x, padding))
    s_n, s_h, s_w, s_c = xp.strides
    return as_strided(
        xp, (n, ho, wo, kh, kw, c), (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c), writeable=False
    )


def im2col(x, kh, kw, stride=1, padding=0):
    """x (N, H, W, C) -> cols (N*Ho*Wo, kh*kw*C); row (n, oh, ow) is the zero-padded patch feeding output
    pixel (n, oh, ow), flattened in (i, j, c) order to match kernel.reshape(kh*kw*C, Cout)."""
    patches = _patches(x, kh, kw, stride, padding)
    n, ho, wo = patches.shape[:3]
    return patches.reshape(n * ho * wo, kh * kw * x.shape[3])  # the one copy


def _offset_range(i, size, out_size, stride, padding):
    """For kernel offset i along one axis: the output indices o whose input index o*stride + i - padding lies
    inside [0, size), as (o_start, o_stop, in_start)."""
    o_start = max(0, -((i - padding) // stride))  # ceil((padding - i) / stride)
    o_stop = min(out_size, (size - 1 + padding - i) // stride + 1)
    return o_start, o_stop, o_start * stride + i - padding


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """Adjoint of im2col: scatter-add cols (N*Ho*Wo, kh*kw*C) (or (N, Ho, Wo, kh, kw, C)) back to an
    (N, H, W, C) image. A pixel covered by m patches receives the sum of its m copies, so
    col2im(im2col(x)) == x * overlap_count.

    One vectorised slice add per kernel offset (i, j), straight into the unpadded image: entries that came from
    the zero padding are dropped. When one offset covers every pixel (stride 1, 'same' padding) it is assigned
    first instead of zero-filling.
    """
    n, h, w, c = x_shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = cols.reshape(n, ho, wo, kh, kw, c)
    rows = [_offset_range(i, h, ho, stride, padding) for i in range(kh)]
    cols_r = [_offset_range(j, w, wo, stride, padding) for j in range(kw)]
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    full = [
        (i, j)
        for i, j in offsets
        if stride == 1
        and rows[i][2] == 0
        and rows[i][1] - rows[i][0] == h
        and cols_r[j][2] == 0
        and cols_r[j][1] - cols_r[j][0] == w
    ]
    if full:
        i, j = full[0]
        offsets.remove((i, j))
        dx = cols[:, rows[i][0] : rows[i][1], cols_r[j][0] : cols_r[j][1], i, j].copy()
    else:
        dx = np.zeros((n, h, w, c), dtype=cols.dtype)
    for i, j in offsets:
        (o0, o1, r0), (q0, q1, c0) = rows[i], cols_r[j]
        if o1 <= o0 or q1 <= q0:
            continue  # this offset only ever reads padding
        dst = dx[
            :, r0 : r0 + stride * (o1 - o0 - 1) + 1 : stride, c0 : c0 + stride * (q1 - q0 - 1) + 1 : stride
        ]
        dst += cols[:, o0:o1, q0:q1, i, j]
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


def _row_group(rows, width, target=2048):
    """Largest k dividing `rows` with k*width <= target: (rows, width) viewed as (rows/k, k*width) gives NumPy
    long inner loops for per-column broadcasts and reductions (width is only Cout, e.g. 32)."""
    k = max(1, target // width)
    while rows % k:
        k -= 1
    return k


def _add_bias_(out2d, bias):
    """out2d (M, C) += bias (C,), in place."""
    m, c = out2d.shape
    k = _row_group(m, c)
    out2d.reshape(m // k, k * c)[...] += np.tile(bias, k)


def _sum_rows(g2d):
    """g2d (M, C) summed over rows -> (C,)."""
    m, c = g2d.shape
    k = _row_group(m, c)
    return g2d.reshape(m // k, k * c).sum(axis=0).reshape(k, c).sum(axis=0)


def _conv_forward_cols(cols, kernel, out_hw, n, bias):
    kh, kw, cin, cout = kernel.shape
    out = cols @ kernel.reshape(kh * kw * cin, cout)  # the one GEMM
    if bias is not None:
        _add_bias_(out, bias)
    return out.reshape(n, out_hw[0], out_hw[1], cout)


def _conv_backward_cols(grad, cols, x_shape, kernel, stride, padding, need_dx=True):
    kh, kw, cin, cout = kernel.shape
    g = np.ascontiguousarray(grad).reshape(-1, cout)
    dkernel = (cols.T @ g).reshape(kernel.shape)  # GEMM 1
    dbias = _sum_rows(g)
    dx = None
    if need_dx:
        dcols = g @ kernel.reshape(kh * kw * cin, cout).T  # GEMM 2
        dx = col2im(dcols, x_shape, kh, kw, stride, padding)
    return dx, dkernel, dbias


def conv2d(x, kernel, stride=1, padding=0, bias=None):
    """2D cross-correlation (what deep learning calls convolution), NHWC.

    x: (N, H, W, Cin); kernel: (kh, kw, Cin, Cout); bias: (Cout,) or None.
    Returns (N, Ho, Wo, Cout), Ho = (H + 2*padding - kh)//stride + 1. Equals torch.nn.functional.conv2d after
    NHWC <-> NCHW permutes and kernel.transpose(3, 2, 0, 1).
    """
    _check_conv_args(x, kernel)
    kh, kw = kernel.shape[:2]
    ho, wo = (
        conv_output_size(x.shape[1], kh, stride, padding),
        conv_output_size(x.shape[2], kw, stride, padding),
    )
    return _conv_forward_cols(im2col(x, kh, kw, stride, padding), kernel, (ho, wo), x.shape[0], bias)


def conv2d_backward(grad, x, kernel, stride=1, padding=0):
    """Gradients of conv2d. grad: dL/dout (N, Ho, Wo, Cout). Returns (dx (N,H,W,Cin), dkernel (kh,kw,Cin,Cout),
    dbias (Cout,))."""
    _check_conv_args(x, kernel)
    kh, kw = kernel.shape[:2]
    cols = im2col(x, kh, kw, stride, padding)
    return _conv_backward_cols(grad, cols, x.shape, kernel, stride, padding)


def conv_flops(n, h, w, cin, cout, kh, kw, stride=1, padding=0):
    """Multiply-add FLOPs (2 per MAC) of one conv forward: 2*N*Ho*Wo*kh*kw*Cin*Cout."""
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    return 2 * n * ho * wo * kh * kw * cin * cout


# ----------------------------------------------------------------------------------------------------------
# Max pooling
# ----------------------------------------------------------------------------------------------------------


def _window_slice(i, stride, count):
    return slice(i, i + stride * (count - 1) + 1, stride)


def maxpool2d(x, size=2, stride=None):
    """Max over size x size windows with the given stride (default = size), no padding, NHWC.

    Returns (out (N, Ho, Wo, C), cache). Like torch.nn.functional.max_pool2d, trailing rows/columns that do not
    fill a window are dropped and, among equal maxima, the first in row-major window order wins (it alone gets
    the gradient).

    2x2/stride 2 (the common case) is a tournament over the four strided sub-images a b / c d: top = max(a, b),
    bottom = max(c, d), out = max(top, bottom), remembering the three comparisons (b > a, d > c, bottom > top) as
    boolean masks. Other sizes loop over the size*size window offsets and remember the argmax offset.
    """
    stride = size if stride is None else stride
    n, h, w, c = x.shape
    ho, wo = conv_output_size(h, size, stride, 0), conv_output_size(w, size, stride, 0)
    if size == 2 and stride == 2:
        r0, r1, c0, c1 = (
            _window_slice(0, 2, ho),
            _window_slice(1, 2, ho),
            _window_slice(0, 2, wo),
            _window_slice(1, 2, wo),
        )
        a, b, cc, d = x[:, r0, c0], x[:, r0, c1], x[:, r1, c0], x[:, r1, c1]
        top, bottom = np.maximum(a, b), np.maximum(cc, d)
        masks = (b > a, d > cc, bottom > top)
        out = np.maximum(top, bottom, out=top)
        return out, ("2x2", x.shape, x.dtype, masks)
    out = x[:, _window_slice(0, stride, ho), _window_slice(0, stride, wo)].copy()
    argmax = np.zeros(out.shape, dtype=np.uint8 if size * size < 256 else np.int32)
    better = np.empty(out.shape, dtype=bool)
    for o in range(1, size * size):
        i, j = divmod(o, size)
        v = x[:, _window_slice(i, stride, ho), _window_slice(j, stride, wo)]
        np.greater(v, out, out=better)  # strict: an equal later value does not take over
        np.copyto(out, v, where=better)
        np.putmask(argmax, better, o)
    return out, ("general", x.shape, x.dtype, (argmax, size, stride))


def maxpool2d_backward(grad, cache):
    """grad: dL/dout (N, Ho, Wo, C) -> dL/dx (N, H, W, C); each window's gradient goes to its (first) maximum."""
    kind, x_shape, dtype, saved = cache
    n, ho, wo, c = grad.shape
    dtype = np.result_type(dtype, grad.dtype)
    if kind == "2x2":
        right_top, right_bottom, lower = saved
        covers = x_shape[1] == 2 * ho and x_shape[2] == 2 * wo
        dx = np.empty(x_shape, dtype=dtype) if covers else np.zeros(x_shape, dtype=dtype)
        r0, r1, c0, c1 = (
            _window_slice(0, 2, ho),
            _window_slice(1, 2, ho),
            _window_slice(0, 2, wo),
            _window_slice(1, 2, wo),
        )
        upper = ~lower
        np.multiply(grad, upper & ~right_top, out=dx[:, r0, c0])
        np.multiply(grad, upper & right_top, out=dx[:, r0, c1])
        np.multiply(grad, lower & ~right_bottom, out=dx[:, r1, c0])
        np.multiply(grad, lower & right_bottom, out=dx[:, r1, c1])
        return dx
    argmax, size, stride = saved
    dx = np.zeros(x_shape, dtype=dtype)
    hit = np.empty(argmax.shape, dtype=bool)
    for o in range(size * size):
        i, j = divmod(o, size)
        np.equal(argmax, o, out=hit)
        dst = dx[:, _window_slice(i, stride, ho), _window_slice(j, stride, wo)]
        if stride >= size:  # windows do not overlap: each pixel belongs to one window at one offset
            np.multiply(grad, hit, out=dst)
        else:
            dst += grad * hit
    return dx


# ----------------------------------------------------------------------------------------------------------
# Layers
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
        self.params["W"] = init_weight(
            shape, init, rng, fan_in=kh * kw * in_channels, fan_out=kh * kw * out_channels
        ).astype(dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.padding, self.input_grad = stride, padding, input_grad

    def forward(self, x, training=True):
        W = self.params["W"]
        _check_conv_args(x, W)
        kh, kw = W.shape[:2]
        ho = conv_output_size(x.shape[1], kh, self.stride, self.padding)
        wo = conv_output_size(x.shape[2], kw, self.stride, self.padding)
        cols = im2col(x, kh, kw, self.stride, self.padding)
        if training:
            self.cols, self.x_shape = cols, x.shape
        return _conv_forward_cols(cols, W, (ho, wo), x.shape[0], self.params["b"])

    def backward(self, grad):
        dx, self.grads["W"], self.grads["b"] = _conv_backward_cols(
            grad,
            self.cols,
            self.x_shape,
            self.params["W"],
            self.stride,
            self.padding,
            need_dx=self.input_grad,
        )
        self.cols = None  # free the patch matrix
        return dx


class MaxPool2D(Layer):
    """Max pooling, size x size windows, stride (default = size). No params."""

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size, self.stride = size, (size if stride is None else stride)

    def forward(self, x, training=True):
        out, cache = maxpool2d(x, self.size, self.stride)
        if training:
            self.cache = cache
        return out

    def backward(self, grad):
        dx = maxpool2d_backward(grad, self.cache)
        self.cache = None
        return dx


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), row-major (NHWC) order. No params."""

    def forward(self, x, training=True):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self.shape)


# ----------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------


class SimpleCNN:
    """Conv-Pool-FC network for 32x32 RGB images (NHWC float input).

    For each c in `channels`: Conv2D(3x3, padding 1) -> ReLU -> MaxPool2D(2). Then Flatten -> Linear(hidden) ->
    ReLU -> Linear(num_classes). Defaults (32, 64, 128) channels and 256 hidden: 620,362 parameters.

    Initialisation: `init` (He by default) for every conv and the hidden linear; `head_init` ("small":
    N(0, 0.01^2)) for the classifier, so the initial logits are near 0 and the loss starts at ln(10). Without
    batch norm, He-initialised ReLU/max-pool stacks grow the activation scale (max-pooling picks the largest of
    four), and a He-initialised head starts at a loss near 4.4 and destabilises the first momentum steps.

    The first conv skips dL/dinput. `layers` is the list an optimizer (shared.optim) takes; params are updated in
    place. `state_dict()` keys are "<layer index>.<param>", e.g. "0.W".
    """

    def __init__(
        self,
        channels=(32, 64, 128),
        hidden=256,
        num_classes=10,
        in_channels=3,
        image_size=32,
        kernel_size=3,
        init="he",
        head_init="small",
        rng=None,
        dtype=np.float32,
    ):
        rng = np.random.default_rng(0) if rng is None else rng
        self.config = dict(
            channels=tuple(channels),
            hidden=hidden,
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            kernel_size=kernel_size,
        )
        layers, cin, size = [], in_channels, image_size
        for k, cout in enumerate(channels):
            conv = Conv2D(
                cin, cout, kernel_size, 1, kernel_size // 2, init=init, rng=rng, dtype=dtype, input_grad=k > 0
            )
            layers += [conv, ReLU(), MaxPool2D(2)]
            cin, size = cout, size // 2
        layers += [Flatten(), Linear(size * size * cin, hidden, init=init, rng=rng, dtype=dtype), ReLU()]
        layers += [Linear(hidden, num_classes, init=head_init, rng=rng, dtype=dtype)]
        self.layers = layers
        self.dtype = dtype

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    __call__ = forward

    def backward(self, dlogits):
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:
                break
        return grad

    def loss(self, x, y, training=True):
        """Forward + softmax cross-entropy + backward. Returns (loss, logits); grads are left in the layers."""
        logits = self.forward(x, training=training)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.backward(dlogits)
        return loss, logits

    def predict(self, x, batch_size=500):
        """Class indices for x (N, H, W, C), in batches, inference mode."""
        return np.concatenate(
            [
                self.forward(x[i : i + batch_size], training=False).argmax(axis=1)
                for i in range(0, len(x), batch_size)
            ]
        )

    def param_layers(self):
        return [layer for layer in self.layers if layer.params]

    def num_params(self):
        return int(sum(v.size for layer in self.layers for v in layer.params.values()))

    def state_dict(self):
        return {f"{i}.{k}": v.copy() for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def load_state_dict(self, state):
        expected = {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}
        missing, unexpected = set(expected) - set(state), set(state) - set(expected)
        if missing or unexpected:
            raise KeyError(f"state dict mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for key, value in expected.items():
            if state[key].shape != value.shape:
                raise ValueError(f"{key}: shape {state[key].shape} != {value.shape}")
            value[...] = state[key]  # in place, so optimizers holding these arrays stay valid

    def flops_per_step(self, batch_size):
        """Analytic FLOPs of one training step (forward + backward) for the convs and linears: forward
        2*N*Ho*Wo*kh*kw*Cin*Cout per conv and 2*N*in*out per linear; backward = 2 x forward (dW and dx), except
        the first conv whose dx is skipped (1 x forward)."""
        return model_step_flops(self.config, batch_size)


def model_forward_flops(config, batch_size):
    """List of (name, forward FLOPs, backward multiplier) for SimpleCNN's GEMM layers."""
    rows, cin, size, k = [], config["in_channels"], config["image_size"], config["kernel_size"]
    for i, cout in enumerate(config["channels"]):
        rows.append(
            (
                f"conv{i + 1}",
                conv_flops(batch_size, size, size, cin, cout, k, k, 1, k // 2),
                1 if i == 0 else 2,
            )
        )
        cin, size = cout, size // 2
    flat = size * size * cin
    rows.append(("fc1", 2 * batch_size * flat * config["hidden"], 2))
    rows.append(("fc2", 2 * batch_size * config["hidden"] * config["num_classes"], 2))
    return rows


def model_step_flops(config, batch_size):
    return sum(f * (1 + m) for _, f, m in model_forward_flops(config, batch_size))
