"""Vectorised data augmentation for whole image batches: in NumPy on NHWC arrays (uint8 or float) for train.py,
and the same job on NCHW torch tensors for fast94.py (and transfer.py's crop), each from a seeded generator.

The standard CIFAR-10 recipe: pad 4 pixels (reflect or zero), crop a random 32x32 window, flip horizontally
with probability 1/2; optionally cutout (DeVries & Taylor 2017). Every NumPy function returns a new array of
the input's shape and dtype and leaves the input untouched; labels are not involved (a crop/flip/cutout keeps
the class). No Python loop over images or pixels. The torch half imports torch inside its functions, so that the
NumPy pipeline (cnn_cifar.train --impl=numpy) never loads it.
"""

import numpy as np
import torch
import torch.nn.functional as F
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


# ---- the same on whole batches of torch tensors (fast94.py) ----------------------------------------------


def to_nchw(images):
    """uint8 (N, 32, 32, 3) NHWC numpy -> uint8 torch (N, 3, 32, 32)."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()


def normalize_nchw(images_u8, channels_last=True):
    """uint8 torch (N, 3, H, W) -> float32 standardised with the CIFAR-10 channel statistics."""
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) * 255
    x = (images_u8.float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def reflect_pad(images_u8, pad):
    """uint8 torch (N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad), reflect padding."""
    if pad == 0:
        return images_u8
    return F.pad(images_u8.float(), (pad,) * 4, mode="reflect").to(torch.uint8)


def crop_flip(padded, shifts, flips, size=32):
    """Crop size x size windows at per-image offsets shifts (B, 2) from padded (B, C, H, W), mirroring the
    rows with flips (B,) bool; one gather for the whole batch."""
    b = len(padded)
    ar = torch.arange(size)
    rows = shifts[:, 0:1] + ar  # (B, size)
    cols = shifts[:, 1:2] + ar
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    n = torch.arange(b)[:, None, None, None]
    c = torch.arange(padded.shape[1])[None, :, None, None]
    return padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, size, size)


class EpochSampler:
    """Shuffled batches of augmented training images, drawn from one seeded torch.Generator (resumable).

    Each image is shifted by up to `translate` pixels (reflect padding) and flipped per `flip`: "alternate"
    gives each image a random bit once, and in even epochs the images whose bit is set are mirrored, in odd
    epochs the others, so every image is seen both ways in every pair of epochs; "random" flips each with
    probability 1/2; "none" never.
    """

    def __init__(self, images_u8, labels, batch_size, translate, flip, seed, channels_last=True):

        self.padded = reflect_pad(images_u8, translate)
        self.labels = labels
        self.translate, self.flip, self.channels_last = translate, flip, channels_last
        self.n = len(labels)
        self.batch_size = min(batch_size, self.n)
        self.steps_per_epoch = self.n // self.batch_size  # the last partial batch is dropped
        self.gen = torch.Generator().manual_seed(seed)
        self.flip_bits = torch.rand(self.n, generator=torch.Generator().manual_seed(seed + 1)) < 0.5

    def epoch(self, epoch):
        """Yield (normalised images (B, 3, 32, 32) float32, labels (B,)) for one pass."""
        order = torch.randperm(self.n, generator=self.gen)
        for i in range(self.steps_per_epoch):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            shifts = torch.randint(0, 2 * self.translate + 1, (len(idx), 2), generator=self.gen)
            if self.flip == "alternate":
                flips = self.flip_bits[idx] ^ bool(epoch % 2)
            elif self.flip == "random":
                flips = torch.rand(len(idx), generator=self.gen) < 0.5
            else:
                flips = torch.zeros(len(idx), dtype=torch.bool)
            x = crop_flip(self.padded[idx], shifts, flips)
            yield normalize_nchw(x, self.channels_last), self.labels[idx]

    def state_dict(self):
        return {"generator": self.gen.get_state()}  # the flip bits are redrawn from the seed

    def load_state_dict(self, state):
        self.gen.set_state(state["generator"])
