"""Max pooling as SimpleCNN uses it (2x2, stride 2, after a ReLU, float32): zero ties and the tournament fast
path. The float64 checks against PyTorch and finite differences are in shared/tests/test_conv.py."""

import numpy as np
import pytest

from cnn_cifar.scratch import MaxPool2D, maxpool2d, maxpool2d_backward


def test_maxpool_after_relu_zero_ties():
    """All-zero windows (ReLU output) send their gradient to the first element only, like PyTorch."""
    x = np.zeros((1, 4, 4, 2), dtype=np.float32)
    x[0, 1, 1, 0] = 3.0
    out, cache = maxpool2d(x)
    layer = MaxPool2D()  # the tournament
    np.testing.assert_array_equal(layer.forward(x), out)
    for dx in (maxpool2d_backward(np.ones_like(out), cache), layer.backward(np.ones_like(out))):
        assert dx[0, 1, 1, 0] == 1 and dx[0, 0, 0, 0] == 0  # window 0 channel 0: the maximum
        assert dx[0, 0, 0, 1] == 1 and dx[..., 1].sum() == out[..., 1].size  # channel 1: the first of each


def test_maxpool_dtype_and_layer_defaults():
    x = np.random.default_rng(3).standard_normal((2, 8, 8, 4)).astype(np.float32)
    layer = MaxPool2D()
    out = layer.forward(x)
    assert out.shape == (2, 4, 4, 4) and out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32 and dx.sum() == out.size


@pytest.mark.parametrize("shape", [(4, 32, 32, 32), (4, 16, 16, 64), (4, 8, 8, 128)])
def test_simplecnn_pools_equal_the_plain_maxpool(shape):
    """On SimpleCNN's three pool inputs (ReLU outputs, float32, a quarter zeros and more), the layer's
    tournament gives exactly the plain maxpool2d's output and gradient."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)
    layer = MaxPool2D()
    out = layer.forward(x)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    plain_out, cache = maxpool2d(x, 2, 2)
    np.testing.assert_array_equal(out, plain_out)
    np.testing.assert_array_equal(layer.backward(grad), maxpool2d_backward(grad, cache))
