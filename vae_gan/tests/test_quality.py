"""vae_gan.quality on real MNIST test images, with a classifier trained briefly on a training slice: the
Fréchet distance of a set to itself is 0 and grows with every step of added noise, two disjoint real sets are
close compared with real and noisy ones; class histograms count every image and see the label balance."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from vae_gan import classifier as C
from vae_gan.quality import as_images, class_histogram, fid, uniformity


@pytest.fixture(scope="module")
def cnn(mnist, tmp_path_factory):
    """An MnistCNN after 63 steps on 2,000 training images (about 97% test accuracy)."""
    cfg = C.Config(epochs=2, batch_size=64, train_subset=2000, val_size=200, test_subset=500, device="cpu")
    net, _ = C.train(dataclasses.replace(cfg, progress=False), out_dir=tmp_path_factory.mktemp("cnn"))
    return net


@pytest.fixture(scope="module")
def test_images(mnist):
    """float (1000, 28, 28) real test images in [0, 1] and their labels."""
    (_, _), (x, y) = mnist
    return x[:1000] / np.float32(255), y[:1000]


def noisy(images, sigma, seed=0):
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + sigma * noise, 0, 1)


def test_fid_of_a_set_with_itself_is_zero_whatever_the_layout(cnn, test_images):
    x = test_images[0][:500]
    far = fid(noisy(x, 0.5), x, cnn)
    assert abs(fid(x, x, cnn)) < 1e-6 * far
    as_tensor = torch.from_numpy(noisy(x, 0.5)).unsqueeze(1)  # (N, 1, 28, 28) torch == (N, 28, 28) NumPy
    assert fid(as_tensor, x, cnn, batch_size=300) == pytest.approx(far, rel=1e-7)


def test_fid_grows_with_the_noise_and_disjoint_real_sets_are_close(cnn, test_images):
    a, b = test_images[0][:500], test_images[0][500:]
    distances = [fid(noisy(a, sigma), a, cnn) for sigma in (0.05, 0.1, 0.2, 0.4)]
    assert np.all(np.diff(distances) > 0), distances
    assert fid(a, b, cnn) < 0.05 * distances[-1]


def test_class_histogram_counts_every_image_and_sees_the_labels(cnn, test_images):
    x, y = test_images
    counts = class_histogram(x, cnn, batch_size=300)
    assert counts.shape == (10,) and counts.dtype == np.int64 and counts.sum() == len(x)
    assert np.abs(counts - np.bincount(y, minlength=10)).sum() < 0.2 * len(x)
    assert uniformity(counts) < 0.02  # MNIST's classes are nearly balanced
    sevens = class_histogram(x[y == 7], cnn)
    assert uniformity(sevens) > 1.5  # one digit: mode collapse


def test_uniformity_is_kl_from_uniform_in_nats():
    assert uniformity(np.full(10, 7)) == pytest.approx(0.0, abs=1e-12)
    assert uniformity([5, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(math.log(10))
    assert uniformity([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(math.log(5))


def test_images_must_be_floats_in_the_unit_interval():
    with pytest.raises(ValueError, match="float images"):
        as_images(np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_images(-np.ones((3, 28, 28), dtype=np.float32))
    assert as_images(np.zeros((3, 28, 28))).shape == (3, 1, 28, 28)
