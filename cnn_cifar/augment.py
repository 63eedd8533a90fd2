"""Vectorised NumPy data augmentation for NHWC image batches (uint8 or float), driven by a seeded Generator.

The standard CIFAR-10 recipe: pad 4 pixels (reflect or zero), crop a random 32x32 window, flip horizontally
with probability 1/2; optionally cutout (DeVries & Taylor 2017). Every function returns a new array of the
input's shape and dtype and leaves the input untouched; labels are not involved (a crop/flip/cutout keeps the
class). No Python loop over images or pixels.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Per-channel mean and std of the CIFAR-10 training images scaled to [0, 1] (RGB).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def normalize(x, mean=CIFAR10_MEAN, std=CIFAR10_STD, dtype=np.float32):
    """uint8 NHWC images -> float (x/255 - mean) / std per channel."""
    mean = np.asarray(mean, dtype=dtype)
    std = np.asarray(std, dtype=dtype)
    scale = np.asarray(1.0 / 255.0, dtype=dtype)
    return (x.astype(dtype) * scale - mean) / std


def random_crop(x, rng, padding=4, mode="reflect"):
    """Pad H and W by `padding` (mode "reflect" or "constant" = zeros) and take, for each image, a random
    window of the original size. x: (N, H, W, C)."""
    if padding == 0:
        return x.copy()
    if mode not in ("reflect", "constant"):
        raise ValueError(f"padding mode must be 'reflect' or 'constant', not {mode!r}")
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=mode)
    s_n, s_h, s_w, s_c = xp.strides
    # windows[n, dy, dx] is the (H, W, C) crop of image n starting at (dy, dx); a view, nothing copied yet.
    windows = as_strided(
        xp, (n, 2 * padding + 1, 2 * padding + 1, h, w, c), (s_n, s_h, s_w, s_h, s_w, s_c), writeable=False
    )
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    return windows[np.arange(n), dy, dx]  # one gather of N blocks


def random_flip(x, rng, p=0.5):
    """Mirror each image left-right with probability p. x: (N, H, W, C)."""
    out = x.copy()
    flip = rng.random(len(x)) < p
    out[flip] = x[flip, :, ::-1]
    return out


def cutout(x, rng, size=8, fill=0):
    """Set a size x size square (clipped at the border) centred at a uniformly random pixel to `fill`, one
    square per image."""
    n, h, w = x.shape[:3]
    cy, cx = rng.integers(0, h, size=n), rng.integers(0, w, size=n)
    y0, x0 = cy - size // 2, cx - size // 2
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= y0[:, None]) & (rows < (y0 + size)[:, None])  # (N, H)
    in_cols = (cols >= x0[:, None]) & (cols < (x0 + size)[:, None])  # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :]  # (N, H, W)
    out = x.copy()
    out[mask] = fill
    return out


def augment_batch(x, rng, padding=4, flip=True, cutout_size=0, mode="reflect"):
    """Random crop (pad `padding`, `mode`) then horizontal flip then, if cutout_size > 0, cutout (fill 0).

    Works on uint8 or float batches; apply it before normalisation for uint8 (then cutout's 0 is black) or after
    it (then 0 is the mean colour)."""
    out = random_crop(x, rng, padding, mode) if padding else x.copy()
    if flip:
        flip_mask = rng.random(len(out)) < 0.5
        out[flip_mask] = out[flip_mask, :, ::-1]
    if cutout_size:
        out = cutout(out, rng, cutout_size)
    return out
