"""Augmentation: shapes, dtypes, per-image alignment (labels stay valid), seeding, and exact crop/flip/cutout;
the torch half normalises as the NumPy half does."""

import numpy as np
import pytest

from cnn_cifar.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    augment_batch,
    cutout,
    normalize,
    normalize_nchw,
    random_crop,
    random_flip,
    to_nchw,
)


def _batch(dtype=np.uint8, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 8, 10, 3)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_augment_keeps_shape_dtype_and_input(dtype, mode):
    x = _batch(dtype)
    x_before = x.copy()
    out = augment_batch(x, np.random.default_rng(1), padding=4, cutout_size=4, mode=mode)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(x, x_before)  # input untouched


def test_augment_keeps_images_aligned_with_labels():
    """Image i stays image i (so y[i] stays its label): constant images keep their own value under
    reflect-padded crops and flips."""
    n = 16
    x = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 8, 8, 3)).copy()
    out = augment_batch(x, np.random.default_rng(0), padding=4, mode="reflect")
    np.testing.assert_array_equal(out, x)


def test_augment_is_seeded():
    x = _batch()
    a = augment_batch(x, np.random.default_rng(5), cutout_size=3)
    b = augment_batch(x, np.random.default_rng(5), cutout_size=3)
    c = augment_batch(x, np.random.default_rng(6), cutout_size=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_random_crop_matches_loop_reference(mode):
    x, pad = _batch(np.float32), 3
    out = random_crop(x, np.random.default_rng(2), padding=pad, mode=mode)
    rng = np.random.default_rng(2)  # same draws: dy for all images, then dx
    dy, dx = rng.integers(0, 2 * pad + 1, len(x)), rng.integers(0, 2 * pad + 1, len(x))
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], xp[i, dy[i] : dy[i] + 8, dx[i] : dx[i] + 10])
    assert len(set(zip(dy, dx))) > 1


def test_random_flip():
    x = _batch()
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(0), p=1.0), x[:, :, ::-1])
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(0), p=0.0), x)
    out = random_flip(x, np.random.default_rng(0), p=0.5)
    for i in range(len(x)):
        assert np.array_equal(out[i], x[i]) or np.array_equal(out[i], x[i, :, ::-1])


def test_cutout_zeroes_one_clipped_square_per_image():
    x = np.ones((50, 8, 8, 3), dtype=np.float32)
    out = cutout(x, np.random.default_rng(0), size=4)
    zeroed = (out == 0).all(axis=3)
    assert ((out == 0) | (out == 1)).all() and (
        zeroed == (out == 0).any(axis=3)
    ).all()  # all channels together
    for mask in zeroed:
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert 1 <= mask.sum() <= 16 and mask.sum() == len(rows) * len(cols)  # a (clipped) rectangle
        assert len(rows) <= 4 and len(cols) <= 4
    assert (zeroed.sum(axis=(1, 2)) < 16).any() and (zeroed.sum(axis=(1, 2)) == 16).any()  # some clipped


def test_normalize():
    x = _batch()
    out = normalize(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    expected = (x / 255.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_torch_normalize_matches_numpy():
    x = _batch()
    out = normalize_nchw(to_nchw(x), channels_last=False)
    assert tuple(out.shape) == (6, 3, 8, 10)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), normalize(x), rtol=1e-5, atol=1e-5)
