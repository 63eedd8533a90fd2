"""CIFAR-10 as He et al. 2016 (section 4.2) feed it: a 45k/5k train/val split, the per-pixel mean of the training
split subtracted, and for training 4-pixel zero padding, a random 32x32 crop and a horizontal flip per image.

Pixels are scaled to [0, 1] before the mean is subtracted; the padding comes after it, so a padded pixel is 0, the
mean image's colour. Every random choice is a function of the seed: epoch e visits the training images in an
order drawn by a generator seeded (seed, 1, e), the last incomplete batch dropped, and iteration t's crops and
flips are drawn by one seeded (seed, 2, t). So any iteration's batch is known without replaying the run: a
resumed run, and every process of a distributed one, reads exactly the batches of an uninterrupted single
process, with no generator state to carry. The pixel work is torch's, on NCHW tensors.
"""

import functools

import numpy as np
import torch
import torch.nn.functional as F

from shared.data import hold_out, load_cifar10

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def prepare_data(cfg):
    """{"train", "val", "test": (uint8 images (N, 32, 32, 3), int64 labels (N,)), "mean": (3, 32, 32) float64}:
    the per-pixel mean of the training split's pixels in [0, 1]. cfg: train_subset, val_size, test_subset,
    split_seed (the split is the same for every training seed)."""
    (x, y), (x_test, y_test) = load_cifar10()
    if cfg.train_subset:
        keep = np.sort(np.random.default_rng([cfg.split_seed, 2]).permutation(len(x))[: cfg.train_subset])
        x, y = x[keep], y[keep]
    (x_train, y_train), (x_val, y_val) = hold_out(x, y, cfg.val_size, seed=cfg.split_seed)
    if cfg.test_subset:  # the test set is sorted by class: a seeded permutation gives a mixed subset
        keep = np.sort(np.random.default_rng([cfg.split_seed, 3]).permutation(len(x_test))[: cfg.test_subset])
        x_test, y_test = x_test[keep], y_test[keep]
    mean = x_train.mean(axis=0, dtype=np.float64).transpose(2, 0, 1) / 255.0  # (3, 32, 32)
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    return splits | {"mean": torch.from_numpy(mean)}


def normalise(images, mean, dtype=torch.float32):
    """uint8 (B, 32, 32, 3) -> (B, 3, 32, 32) of `dtype`: pixels in [0, 1] minus the per-pixel mean."""
    x = torch.tensor(images).permute(0, 3, 1, 2).to(dtype)  # a copy: the loaded arrays are read-only
    return x / 255.0 - mean.to(dtype)


def augment(x, offsets, flips, padding):
    """Per image i of x (B, C, H, W): zero-pad by `padding`, crop the H x W window whose top-left corner is
    offsets[i] = (row, column), each in [0, 2 padding], and mirror it left-right if flips[i]."""
    padded = F.pad(x, (padding,) * 4)  # (B, C, H + 2p, W + 2p)
    out = torch.empty_like(x)
    h, w = x.shape[2:]
    for i, ((top, left), flip) in enumerate(zip(offsets.tolist(), flips.tolist())):
        crop = padded[i, :, top : top + h, left : left + w]
        out[i] = crop.flip(2) if flip else crop
    return out


@functools.lru_cache(maxsize=1)
def epoch_order(seed, epoch, n):
    """The order in which epoch `epoch` visits the n training images."""
    return np.random.default_rng([seed, 1, epoch]).permutation(n)


def training_batch(cfg, data, it, rank=0, processes=1):
    """This process's share of iteration it's global batch, augmented: x (M / N, b, 3, 32, 32), y (M / N, b) for
    M = cfg.micro_batches micro-batches of b = batch_size / M images and N processes (M a multiple of N)."""
    x_train, y_train = data["train"]
    B = cfg.batch_size
    epoch, i = divmod(it, len(x_train) // B)
    idx = epoch_order(cfg.seed, epoch, len(x_train))[i * B : (i + 1) * B]  # (B,)
    draws = np.random.default_rng([cfg.seed, 2, it])
    offsets = draws.integers(0, 2 * cfg.padding + 1, size=(B, 2))  # (B, 2): top, left
    flips = draws.random(B) < 0.5 if cfg.flip else np.zeros(B, bool)  # (B,)
    mine = slice(rank * B // processes, (rank + 1) * B // processes)  # every process drew the whole batch
    x = normalise(x_train[idx[mine]], data["mean"], DTYPES[cfg.dtype])
    x = augment(x, offsets[mine], flips[mine], cfg.padding)  # (B / N, 3, 32, 32)
    parts = cfg.micro_batches // processes
    return x.reshape(parts, -1, *x.shape[1:]), torch.from_numpy(y_train[idx[mine]]).reshape(parts, -1)
