"""Batch augmentation: shapes, dtypes, identity, exact shifts and rotations, determinism, elastic option."""

import numpy as np
import pytest

from mlp_mnist.augment import affine_source_coords, augment_batch, bilinear_sample, elastic_displacement


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.random((16, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("elastic", [False, True])
def test_shape_dtype_and_count_kept(images, elastic):
    labels = np.arange(16) % 10
    out = augment_batch(images, np.random.default_rng(1), elastic=elastic)
    assert out.shape == images.shape and out.dtype == np.float32
    assert len(out) == len(labels)
    assert not np.array_equal(out, images)  # something did change
    assert out.min() >= 0.0 and out.max() <= 1.0  # bilinear mixes stay inside the input range
    flat = augment_batch(
        images.reshape(16, 784).astype(np.float64), np.random.default_rng(1), elastic=elastic
    )
    assert flat.shape == (16, 784) and flat.dtype == np.float64
    np.testing.assert_allclose(flat.reshape(16, 28, 28), out, atol=1e-5)  # same draws, same transform


def test_identity_transform_returns_input(images):
    out = augment_batch(images, np.random.default_rng(0), max_shift=0, max_rotate=0, max_scale=0)
    np.testing.assert_array_equal(out, images)


def test_integer_shift_is_exact(images):
    src_r, src_c = affine_source_coords(28, 28, np.zeros(1), np.ones(1), np.array([[2.0, -1.0]]))
    out = bilinear_sample(images[:1], src_r, src_c)
    expected = np.zeros_like(images[:1])
    expected[:, 2:, :27] = images[:1, :-2, 1:]  # down 2 rows, left 1 column, zeros shifted in
    np.testing.assert_array_equal(out, expected)


def test_quarter_turn_is_rot90(images):
    src_r, src_c = affine_source_coords(28, 28, np.array([np.pi / 2]), np.ones(1), np.zeros((1, 2)))
    out = bilinear_sample(images[:1], src_r, src_c)
    np.testing.assert_allclose(out, np.rot90(images[:1], 1, axes=(1, 2)), atol=1e-6)


def test_far_outside_reads_fill():
    img = np.ones((1, 4, 4), dtype=np.float32)
    r = np.array([[[-5.5, -1.5, 1.5, 9.0]]])
    c = np.array([[[1.0, 1.0, -3.2, 1.0]]])
    out = bilinear_sample(img, r, c, fill=0.0)
    np.testing.assert_array_equal(out, [[[0.0, 0.0, 0.0, 0.0]]])
    half = bilinear_sample(img, np.array([[[-0.5]]]), np.array([[[1.0]]]))
    assert half[0, 0, 0] == pytest.approx(0.5)  # halfway between the fill ring and the image


def test_seeded_and_per_image_different(images):
    a = augment_batch(images, np.random.default_rng(5))
    b = augment_batch(images, np.random.default_rng(5))
    c = augment_batch(images, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    same = np.repeat(images[:1], 4, axis=0)
    out = augment_batch(same, np.random.default_rng(0))
    assert not np.array_equal(out[0], out[1])  # each image gets its own transform


def test_mass_roughly_preserved_on_a_centred_digit():
    img = np.zeros((8, 28, 28), dtype=np.float32)
    img[:, 10:18, 12:16] = 1.0  # a bar well inside the frame
    out = augment_batch(img, np.random.default_rng(0), max_scale=0.0)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), img.sum(axis=(1, 2)), rtol=0.05)


def test_elastic_field_is_smooth_and_scaled():
    dy, dx = elastic_displacement(4, 28, 28, np.random.default_rng(0), alpha=34.0, sigma=4.0)
    assert dy.shape == dx.shape == (4, 28, 28)
    assert 0.2 < np.abs(dy).mean() < 5.0  # a few pixels at most
    assert np.abs(np.diff(dy, axis=1)).mean() < 0.25 * np.abs(dy).mean() + 0.2  # neighbours move together
    dy0, _ = elastic_displacement(4, 28, 28, np.random.default_rng(0), alpha=0.0)
    assert np.all(dy0 == 0)


def test_uint8_input_comes_back_float32():
    img = np.zeros((2, 28, 28), dtype=np.uint8)
    assert augment_batch(img, np.random.default_rng(0)).dtype == np.float32
    with pytest.raises(ValueError):
        augment_batch(np.zeros((2, 3, 4, 5)), np.random.default_rng(0))
