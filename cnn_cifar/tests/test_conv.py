"""The convolution as SimpleCNN uses it: cnn_cifar.scratch re-exports shared.conv (whose float64 checks against
PyTorch and finite differences are shared/tests/test_conv.py), float32 in and out, the input_grad flag, He init."""

import numpy as np

import cnn_cifar.scratch as scratch
import shared.conv
from cnn_cifar.scratch import Conv2D, conv2d, conv2d_backward

SHARED = [
    "im2col",
    "col2im",
    "conv_output_size",
    "conv2d",
    "conv2d_backward",
    "conv_flops",
    "maxpool2d",
    "maxpool2d_backward",
    "Conv2D",
    "MaxPool2D",
    "Flatten",
]


def test_scratch_reexports_the_shared_layers():
    assert set(SHARED) < set(scratch.__all__)
    for name in SHARED:
        assert getattr(scratch, name) is getattr(shared.conv, name), name


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
    np.testing.assert_array_equal(first.grads["b"], np.full(8, out[..., 0].size, np.float32))


def test_inference_forward_keeps_no_patch_matrix():
    layer = Conv2D(3, 4, 3, padding=1, rng=np.random.default_rng(0))
    layer.forward(np.zeros((2, 8, 8, 3), np.float32), training=False)
    assert layer.cache is None


def test_he_init_scale():
    layer = Conv2D(64, 128, 3, rng=np.random.default_rng(0))
    assert abs(layer.params["W"].std() / np.sqrt(2 / (9 * 64)) - 1) < 0.02


def test_conv2d_float32_stays_float32():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    out = conv2d(x, k, padding=1, bias=np.zeros(4, np.float32))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv2d_backward(np.ones_like(out), x, k, padding=1))
