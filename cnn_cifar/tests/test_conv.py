"""conv2d / conv2d_backward / im2col / col2im against PyTorch and finite differences (float64, tiny shapes)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_cifar.scratch import Conv2D, col2im, conv2d, conv2d_backward, conv_output_size, im2col
from shared.gradient_check import gradient_check

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


@pytest.mark.parametrize(
    "shape,k,stride,padding",
    [((2, 5, 5, 3), 3, 1, 1), ((1, 7, 6, 2), 3, 2, 1), ((2, 6, 7, 2), 5, 1, 2), ((1, 8, 8, 2), 2, 2, 0)],
)
def test_conv2d_layer_gradient_check(shape, k, stride, padding):
    rng = np.random.default_rng(3)
    layer = Conv2D(shape[-1], 3, k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"] = rng.standard_normal(3)
    errors = gradient_check(layer, rng.standard_normal(shape))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-6, errors


def test_conv2d_layer_shapes_and_input_grad_flag():
    rng = np.random.default_rng(0)
    layer = Conv2D(3, 8, 3, padding=1, rng=rng)
    assert layer.params["W"].shape == (3, 3, 3, 8) and layer.params["W"].dtype == np.float32
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    out = layer.forward(x)
    assert out.shape == (2, 6, 6, 8) and out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert layer.grads["W"].shape == (3, 3, 3, 8) and layer.grads["b"].shape == (8,)
    first = Conv2D(3, 8, 3, padding=1, rng=rng, input_grad=False)
    first.forward(x)
    assert first.backward(np.ones_like(out)) is None and first.grads["W"].shape == (3, 3, 3, 8)


def test_he_init_scale():
    layer = Conv2D(64, 128, 3, rng=np.random.default_rng(0))
    assert abs(layer.params["W"].std() / np.sqrt(2 / (9 * 64)) - 1) < 0.02


def _overlap_count(h, w, kh, kw, stride, padding):
    """How many patches read each input pixel (loop reference)."""
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
    """Row (n, oh, ow) holds the padded patch in (i, j, c) order."""
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


def test_conv2d_float32_stays_float32():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    out = conv2d(x, k, padding=1, bias=np.zeros(4, np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv2d_backward(np.ones_like(out), x, k, padding=1))


def test_conv2d_rejects_bad_shapes():
    with pytest.raises(ValueError, match="channels"):
        conv2d(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(np.zeros((1, 2, 2, 3)), np.zeros((3, 3, 3, 4)))
