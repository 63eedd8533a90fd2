"""maxpool2d against PyTorch (ties included) and finite differences; Flatten."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_cifar.scratch import Flatten, MaxPool2D, maxpool2d, maxpool2d_backward
from shared.gradient_check import gradient_check

CASES = [  # (shape NHWC, size, stride)
    ((2, 4, 4, 3), 2, 2),
    ((2, 5, 7, 3), 2, 2),  # odd sizes: trailing row/column dropped
    ((1, 6, 6, 2), 3, 3),
    ((2, 5, 6, 2), 2, 1),  # overlapping windows
    ((1, 7, 7, 3), 3, 2),
    ((1, 4, 9, 1), 1, 1),
    ((3, 8, 4, 2), 4, 4),
]


def _no_ties(shape, seed):
    """Distinct values at least 0.1 apart (finite differences of 1e-5 cannot swap a maximum)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 1.0


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("shape,size,stride", CASES)
def test_maxpool_matches_torch(shape, size, stride, ties):
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal(shape)) if ties else _no_ties(shape, 1)  # rounding makes many ties
    out, cache = maxpool2d(x, size, stride)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    ref = F.max_pool2d(xt, size, stride)
    np.testing.assert_array_equal(out, ref.detach().permute(0, 2, 3, 1).numpy())
    grad = rng.standard_normal(out.shape)
    ref.backward(torch.tensor(grad).permute(0, 3, 1, 2))
    np.testing.assert_allclose(
        maxpool2d_backward(grad, cache), xt.grad.permute(0, 2, 3, 1).numpy(), atol=1e-12
    )


def test_maxpool_after_relu_zero_ties():
    """All-zero windows (ReLU output) send their gradient to the first element only, like PyTorch."""
    x = np.zeros((1, 4, 4, 2), dtype=np.float32)
    x[0, 1, 1, 0] = 3.0
    out, cache = maxpool2d(x)
    dx = maxpool2d_backward(np.ones_like(out), cache)
    assert dx[0, 1, 1, 0] == 1 and dx[0, 0, 0, 0] == 0  # window 0 channel 0: the maximum
    assert dx[0, 0, 0, 1] == 1 and dx[..., 1].sum() == 4  # channel 1 all zeros: the first of each window


@pytest.mark.parametrize("shape,size,stride", CASES)
def test_maxpool_gradient_check(shape, size, stride):
    errors = gradient_check(MaxPool2D(size, stride), _no_ties(shape, 2))
    assert errors["x"] < 1e-6, errors


def test_maxpool_dtype_and_layer_defaults():
    x = np.random.default_rng(3).standard_normal((2, 8, 8, 4)).astype(np.float32)
    layer = MaxPool2D()
    out = layer.forward(x)
    assert out.shape == (2, 4, 4, 4) and out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32 and dx.sum() == out.size


def test_flatten_round_trip_and_gradient_check():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    layer = Flatten()
    out = layer.forward(x)
    assert out.shape == (2, 60)
    np.testing.assert_array_equal(out[1], x[1].ravel())  # NHWC row-major order
    np.testing.assert_array_equal(layer.backward(out), x)
    assert gradient_check(Flatten(), x)["x"] < 1e-6
