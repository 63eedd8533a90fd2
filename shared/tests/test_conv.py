"""shared.conv in float64: conv2d and max pooling against PyTorch (forward and autograd), finite-difference
gradient checks, im2col/col2im as adjoints, and the tournament max-pool equal to the plain one."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.conv import (
    Conv2D,
    Flatten,
    MaxPool2D,
    col2im,
    conv2d,
    conv2d_backward,
    conv_backward,
    conv_forward,
    conv_output_size,
    im2col,
    maxpool2d,
    maxpool2d_backward,
    maxpool2x2,
    maxpool2x2_backward,
)
from shared.gradient_check import gradient_check

TOL = 1e-6

# ---- convolution

# (N, H, W, Cin, Cout, kh, kw, stride, padding)
SHAPES = [
    (2, 5, 5, 3, 4, 3, 3, 1, 0),
    (2, 5, 5, 3, 4, 3, 3, 1, 1),
    (1, 7, 6, 2, 3, 3, 3, 2, 1),
    (2, 8, 8, 3, 2, 5, 5, 1, 2),
    (3, 6, 9, 4, 5, 1, 1, 1, 0),
    (1, 9, 7, 3, 2, 5, 5, 2, 2),
    (2, 7, 7, 2, 3, 3, 3, 2, 0),
    (1, 4, 11, 3, 2, 3, 3, 2, 2),
    (2, 6, 6, 1, 1, 1, 1, 2, 0),
    (1, 10, 8, 3, 4, 5, 5, 2, 1),
    (2, 5, 4, 2, 3, 3, 3, 1, 2),
    (1, 3, 3, 2, 2, 3, 3, 1, 0),  # output 1x1
    (2, 6, 7, 2, 3, 3, 5, 1, 1),  # non-square kernel
    (1, 8, 5, 3, 2, 1, 3, 2, 1),
    (1, 5, 5, 2, 2, 3, 3, 3, 1),  # stride 3
    (1, 2, 2, 1, 2, 5, 5, 1, 2),  # kernel larger than the image: the outer offsets read only padding
    (1, 3, 3, 2, 2, 5, 5, 3, 2),
]


def _ids(shape):
    n, h, w, cin, cout, kh, kw, s, p = shape
    return f"n{n}-{h}x{w}-{cin}to{cout}-k{kh}x{kw}-s{s}-p{p}"


def _torch_conv(x, kernel, bias, stride, padding):
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    kt = torch.tensor(kernel.transpose(3, 2, 0, 1)).requires_grad_()
    bt = torch.tensor(bias).requires_grad_()
    return xt, kt, bt, F.conv2d(xt, kt, bt, stride=stride, padding=padding)


def _case(shape, seed=0):
    n, h, w, cin, cout, kh, kw, s, p = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin))
    kernel = rng.standard_normal((kh, kw, cin, cout))
    bias = rng.standard_normal(cout)
    return x, kernel, bias, s, p


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_conv2d_matches_torch(shape):
    x, kernel, bias, s, p = _case(shape)
    out = conv2d(x, kernel, stride=s, padding=p, bias=bias)
    *_, ref = _torch_conv(x, kernel, bias, s, p)
    ref = ref.detach().permute(0, 2, 3, 1).numpy()
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d(x, kernel, s, p), ref - bias, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_conv2d_backward_matches_autograd(shape):
    x, kernel, bias, s, p = _case(shape, seed=1)
    xt, kt, bt, out = _torch_conv(x, kernel, bias, s, p)
    grad = np.random.default_rng(2).standard_normal(tuple(out.permute(0, 2, 3, 1).shape))
    out.backward(torch.tensor(grad).permute(0, 3, 1, 2))
    dx, dkernel, dbias = conv2d_backward(grad, x, kernel, stride=s, padding=p)
    np.testing.assert_allclose(dx, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dkernel, kt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dbias, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_conv_forward_cache_and_backward_without_dx():
    x, kernel, bias, s, p = _case(SHAPES[2], seed=3)
    out, cache = conv_forward(x, kernel, bias, s, p)
    np.testing.assert_array_equal(out, conv2d(x, kernel, s, p, bias))
    grad = np.random.default_rng(4).standard_normal(out.shape)
    full = conv_backward(grad, cache)
    for got, want in zip(full, conv2d_backward(grad, x, kernel, s, p)):
        np.testing.assert_array_equal(got, want)
    dx, dkernel, dbias = conv_backward(grad, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dkernel, full[1])
    np.testing.assert_array_equal(dbias, full[2])


@pytest.mark.parametrize(
    "shape,k,stride,padding",
    [
        ((2, 5, 5, 3), 3, 1, 0),
        ((2, 5, 5, 3), 3, 1, 1),
        ((1, 7, 6, 2), 3, 2, 1),
        ((2, 6, 7, 2), 5, 1, 2),
        ((1, 8, 8, 2), 2, 2, 0),
        ((1, 7, 7, 2), 3, 3, 2),
        ((1, 6, 8, 3), (1, 3), 2, 1),
    ],
)
def test_conv2d_layer_gradient_check(shape, k, stride, padding):
    rng = np.random.default_rng(3)
    layer = Conv2D(shape[-1], 3, k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"] = rng.standard_normal(3)
    errors = gradient_check(layer, rng.standard_normal(shape))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


def _overlap_count(h, w, kh, kw, stride, padding):
    """How many windows read each input pixel (loop reference)."""
    count = np.zeros((h + 2 * padding, w + 2 * padding))
    for a in range(conv_output_size(h, kh, stride, padding)):
        for b in range(conv_output_size(w, kw, stride, padding)):
            count[a * stride : a * stride + kh, b * stride : b * stride + kw] += 1
    return count[padding : padding + h, padding : padding + w]


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_im2col_col2im_round_trip(shape):
    n, h, w, cin, _, kh, kw, s, p = shape
    x = np.random.default_rng(4).standard_normal((n, h, w, cin))
    cols = im2col(x, kh, kw, s, p)
    ho, wo = conv_output_size(h, kh, s, p), conv_output_size(w, kw, s, p)
    assert cols.shape == (n * ho * wo, kh * kw * cin)
    back = col2im(cols, x.shape, kh, kw, s, p)
    np.testing.assert_allclose(back, x * _overlap_count(h, w, kh, kw, s, p)[None, :, :, None], rtol=1e-12)


def test_im2col_patch_layout():
    """Row (n, oh, ow) holds the padded window in (i, j, c) order."""
    x = np.random.default_rng(5).standard_normal((2, 5, 6, 3))
    s, p, k = 2, 1, 3
    cols = im2col(x, k, k, s, p).reshape(2, 3, 3, k, k, 3)
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    for n in range(2):
        for a in range(3):
            for b in range(3):
                np.testing.assert_array_equal(cols[n, a, b], xp[n, a * s : a * s + k, b * s : b * s + k])


def test_col2im_is_adjoint_of_im2col():
    """<im2col(x), c> == <x, col2im(c)> for random x, c."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 7, 6, 3))
    cols = im2col(x, 3, 3, 2, 1)
    c = rng.standard_normal(cols.shape)
    assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, 3, 3, 2, 1)))


def test_conv2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="channels"):
        conv2d(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(np.zeros((1, 2, 2, 3)), np.zeros((3, 3, 3, 4)))
    with pytest.raises(ValueError, match="wants x"):
        conv2d(np.zeros((4, 4, 3)), np.zeros((3, 3, 3, 4)))


# ---- max pooling

POOLS = [  # (shape NHWC, size, stride)
    ((2, 4, 4, 3), 2, 2),
    ((2, 5, 7, 3), 2, 2),  # odd sizes: trailing row/column dropped
    ((1, 6, 6, 2), 3, 3),
    ((2, 5, 6, 2), 2, 1),  # overlapping windows
    ((1, 7, 7, 3), 3, 2),
    ((1, 4, 9, 1), 1, 1),
    ((3, 8, 4, 2), 4, 4),
    ((1, 7, 5, 2), 2, 3),  # gaps between windows
]


def _no_ties(shape, seed):
    """Distinct values at least 0.1 apart (finite differences of 1e-5 cannot swap a maximum)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 1.0


def _with_ties(shape, seed):
    """Rounded normals: many windows hold their maximum twice or more."""
    return np.round(np.random.default_rng(seed).standard_normal(shape))


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape,size,stride", POOLS)
def test_maxpool_matches_torch(shape, size, stride, ties):
    x = _with_ties(shape, 0) if ties else _no_ties(shape, 1)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    ref = F.max_pool2d(xt, size, stride)
    grad = np.random.default_rng(2).standard_normal(tuple(ref.permute(0, 2, 3, 1).shape))
    ref.backward(torch.tensor(grad).permute(0, 3, 1, 2))
    ref_out, ref_dx = ref.detach().permute(0, 2, 3, 1).numpy(), xt.grad.permute(0, 2, 3, 1).numpy()
    layer = MaxPool2D(size, stride)
    np.testing.assert_array_equal(layer.forward(x), ref_out)
    np.testing.assert_allclose(layer.backward(grad), ref_dx, atol=1e-12)
    out, cache = maxpool2d(x, size, stride)  # the plain functions (the layer may take the tournament)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(maxpool2d_backward(grad, cache), ref_dx, atol=1e-12)


@pytest.mark.parametrize("shape,size,stride", POOLS)
def test_maxpool_gradient_check(shape, size, stride):
    errors = gradient_check(MaxPool2D(size, stride), _no_ties(shape, 2))
    assert errors["x"] < TOL, errors


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (2, 5, 7, 3), (3, 3, 3, 2), (1, 6, 2, 5)])
def test_tournament_equals_plain_maxpool(shape, dtype):
    """maxpool2x2 == maxpool2d(x, 2, 2), bit for bit, forward and backward, ties included."""
    for x in (_no_ties(shape, 3), _with_ties(shape, 4), np.maximum(_with_ties(shape, 5), 0)):
        x = x.astype(dtype)
        out, cache = maxpool2x2(x)
        plain_out, plain_cache = maxpool2d(x, 2, 2)
        np.testing.assert_array_equal(out, plain_out)
        grad = np.random.default_rng(6).standard_normal(out.shape).astype(dtype)
        dx, plain_dx = maxpool2x2_backward(grad, cache), maxpool2d_backward(grad, plain_cache)
        assert dx.dtype == plain_dx.dtype == dtype
        np.testing.assert_array_equal(dx, plain_dx)


def test_maxpool_layer_picks_the_tournament_only_for_2x2_stride_2():
    assert MaxPool2D().tournament and MaxPool2D(2, 2).tournament
    assert not MaxPool2D(2, 1).tournament and not MaxPool2D(3).tournament


def test_flatten_round_trip_and_gradient_check():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (2, 60)
    np.testing.assert_array_equal(out[1], x[1].ravel())  # NHWC row-major order
    np.testing.assert_array_equal(layer.backward(out), x)
    assert gradient_check(Flatten(), x)["x"] < TOL
