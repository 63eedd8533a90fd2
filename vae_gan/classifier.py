"""A small MNIST CNN, trained here, that judges the generated digits: its penultimate features are the space
in which quality.py measures the Fréchet distance, and its predictions give the class histogram of a sample.

    python -m vae_gan.classifier --save_weights        # the committed vae_gan/checkpoints/mnist-cnn.pt
    python -m vae_gan.classifier --epochs=1 --train_subset=2000 --run=fast-mnist-cnn   # a quick look

Network (MnistCNN, 0.20M parameters): conv3x3 32 -> conv3x3 32 -> maxpool2 -> conv3x3 64 -> conv3x3 64 ->
maxpool2 -> dense 128 (the features) -> dropout 0.3 -> dense 10, every hidden layer BatchNorm + ReLU. The
convolutions are unpadded (28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4): a training step takes about half the time
of one with padded convolutions. Recipe: AdamW (weight decay 0.01) at a peak rate of 3e-3, warmed up linearly
over the first epoch, then annealed to 0 on a cosine; batch 128, 8 epochs; each training image shifted by a
random whole number of pixels in -2..2 along each axis. Expected: about 99.5% test accuracy (the run record
has the measured one). A step takes 0.10-0.13 s on one core of this machine, so the 3,440 steps take about 7
minutes on one thread and less with --threads=2.

Settings are the fields of `Config`, overridden as --name=value. shared.run.Run does the plumbing: each epoch
ends with an atomic checkpoint in vae_gan/checkpoints/resume/<run>.pt that rerunning the same command resumes
from (--resume=false starts over); a finished run writes vae_gan/results/<run>.json and TensorBoard scalars
under runs/vae_gan/<run>, and with --save_weights its weights to vae_gan/checkpoints/<run>.pt, which
load_classifier() reads.
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.adapters import TorchAdapter
from shared.checkpoint import load_torch
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.data import hold_out, load_mnist
from shared.optim import cosine_lr
from shared.run import Run
from shared.seeding import pick_device

PROJECT_DIR = Path(__file__).resolve().parent
WEIGHTS = PROJECT_DIR / "checkpoints" / "mnist-cnn.pt"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FEATURES = 128


@dataclasses.dataclass
class Config:
    run: str = "mnist-cnn"  # name of the run record, checkpoint and TensorBoard folder
    epochs: int = 8
    batch_size: int = 128
    lr: float = 3e-3  # the peak AdamW rate
    warmup_epochs: float = 1.0  # linear warm-up to --lr, then cosine annealing to 0 at the last step
    weight_decay: float = 0.01
    dropout: float = 0.3  # on the 128 features, before the last layer
    shift: int = 2  # random shifts of up to this many pixels along each axis; 0 = no augmentation
    val_size: int = 5000  # held out of the 60,000 training images (seeded), before any --train_subset
    train_subset: int = 0  # train on only this many of the remaining images (0 = all); for quick looks
    test_subset: int = 0  # evaluate on only the first this many test images (0 = all); for quick looks
    floor_samples: int = (
        10000  # the FID floor: this many seeded training images against the test set (0: none)
    )
    seed: int = 0
    threads: int = 0  # torch threads; 0 = torch's choice, one per core
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | mps
    group: str = "classifier"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in vae_gan/checkpoints/<run>.pt
    resume: bool = True
    progress: bool = True


def conv_block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class MnistCNN(nn.Module):
    """Input (N, 1, 28, 28) float pixels in [0, 1] (normalised inside); features (N, 128), logits (N, 10)."""

    def __init__(self, dropout=0.3):
        super().__init__()
        self.body = nn.Sequential(
            *conv_block(1, 32),
            *conv_block(32, 32),
            nn.MaxPool2d(2),
            *conv_block(32, 64),
            *conv_block(64, 64),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, FEATURES, bias=False),
            nn.BatchNorm1d(FEATURES),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x):
        return self.body((x - MNIST_MEAN) / MNIST_STD)

    def forward(self, x):
        return self.head(self.dropout(self.features(x)))


class Training(TorchAdapter):
    """The network and its AdamW optimizer, as shared.run's adapter (checkpoints, parameter count, device)."""

    def __init__(self, net, opt, device):
        self.net, self.opt, self.device = net, opt, device


def check(cfg):
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0 or not 0 <= cfg.dropout < 1:
        raise UserError("need --epochs >= 1, --batch_size >= 1, --lr > 0 and 0 <= --dropout < 1")
    if not 0 <= cfg.shift <= 4:
        raise UserError(f"--shift={cfg.shift}: choose 0 to 4 pixels")
    return cfg


def prepare_data(cfg, device):
    """uint8 (N, 28, 28) images and int64 labels on `device`: train, validation (maybe empty) and test."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    (x_train, y_train), (x_val, y_val) = hold_out(x_train, y_train, cfg.val_size, seed=cfg.seed)
    if cfg.train_subset:
        x_train, y_train = x_train[: cfg.train_subset], y_train[: cfg.train_subset]
    if cfg.test_subset:
        x_test, y_test = x_test[: cfg.test_subset], y_test[: cfg.test_subset]
    # torch.tensor copies: load_mnist's arrays are read-only
    pairs = [(x_train, y_train), (x_val, y_val), (x_test, y_test)]
    return [(torch.tensor(x, device=device), torch.tensor(y, device=device)) for x, y in pairs]


def to_inputs(images):
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return images.unsqueeze(1).float() / 255.0


def random_shift(x, shifts):
    """x (N, 1, 28, 28) and integer shifts (N, 2) of (down, right) pixels: each image moved by its own shift,
    background (0) filling the vacated border."""
    n, _, h, w = x.shape
    pad = int(shifts.abs().max())
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (pad - shifts[:, :1]) + torch.arange(h, device=x.device)  # output row r reads input row r - down
    cols = (pad - shifts[:, 1:]) + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[:, 0][batch, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


@torch.no_grad()
def evaluate(net, images, labels, batch_size=250):
    """(mean cross-entropy, accuracy) of net on uint8 images (N, 28, 28); (nan, nan) for an empty set."""
    if not len(images):
        return float("nan"), float("nan")
    net.eval()
    logits = torch.cat(
        [net(to_inputs(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    )
    loss = F.cross_entropy(logits.float(), labels).item()
    return loss, (logits.argmax(1) == labels).float().mean().item()


def train(cfg, out_dir=None):
    """Train per cfg; returns (MnistCNN in eval mode, run record path). out_dir (tests) replaces vae_gan/ as
    the home of checkpoints/, results/ and runs/."""
    cfg = check(cfg)
    run = Run("vae_gan", cfg, out_dir)  # sets the threads and starts the clock
    device = pick_device(cfg.device)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = prepare_data(cfg, device)
    torch.manual_seed(cfg.seed)
    # channels_last weights: on this CPU training steps are 1.45x and evaluation (batches of 250) 1.5-2x
    # faster than NCHW (one-channel inputs are channels_last already)
    net = MnistCNN(cfg.dropout).to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model = Training(net, opt, device)
    data_rng = np.random.default_rng([cfg.seed, 1])
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    total_steps, warmup = cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    state = run.resume(model, [data_rng], epoch=0)

    for epoch in range(state["epoch"], cfg.epochs):
        net.train()
        order = data_rng.permutation(len(x_train))
        loss_sum, correct, seen = 0.0, 0, 0
        for i in run.bar(range(steps_per_epoch), desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}"):
            idx = torch.from_numpy(order[i * cfg.batch_size : (i + 1) * cfg.batch_size]).to(device)
            x, y = to_inputs(x_train[idx]), y_train[idx]
            if cfg.shift:
                shifts = data_rng.integers(-cfg.shift, cfg.shift + 1, size=(len(idx), 2))
                x = random_shift(x, torch.from_numpy(shifts).to(device))
            step = epoch * steps_per_epoch + i
            lr = cosine_lr(cfg.lr, step, total_steps, warmup=warmup)
            model.set_lr(lr)
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_value = check_finite(loss.item(), "training loss", step)
            loss_sum += loss_value * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            if i % 50 == 0:
                run.log({"train/loss": loss_value, "train/lr": lr}, step)
        val_loss, val_acc = evaluate(net, x_val, y_val)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen}
        row |= {"val_loss": val_loss, "val_acc": val_acc, "time_s": run.elapsed()}
        run.add_history(row, (epoch + 1) * steps_per_epoch, prefix="epoch/")
        run.say(
            f"{cfg.run} epoch {epoch + 1:2d}: train loss {row['train_loss']:.4f}  val acc {val_acc:.4f}  "
            f"({run.elapsed():.0f} s)"
        )
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)

    test_loss, test_acc = evaluate(net, x_test, y_test)
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": run.history["val_acc"][-1]}
    metrics |= {"train_acc_last_epoch": run.history["train_acc"][-1], "test_size": len(y_test)}
    if cfg.floor_samples:  # real against real: the FID a perfect generator would score at this sample size
        from vae_gan import quality

        pick = torch.from_numpy(
            np.random.default_rng([cfg.seed, 2]).permutation(len(x_train))[: cfg.floor_samples]
        )
        floor = quality.fid(to_inputs(x_train[pick.to(device)]), to_inputs(x_test), net.eval())
        metrics |= {"fid_train_vs_test": floor, "floor_samples": min(cfg.floor_samples, len(x_train))}
        run.say(
            f"{cfg.run}: FID of {metrics['floor_samples']:,} training images against the test set {floor:.3f}"
        )
    if cfg.save_weights:
        run.save_weights(model.weights())
    path = run.finish(model, model_name="mnist-cnn-c32c32-c64c64-d128", dataset="mnist", metrics=metrics)
    run.say(f"{cfg.run}: test accuracy {test_acc:.4f} in {run.elapsed():.0f} s -> {path}")
    return net.eval(), path


def load_classifier(path=None):
    """The MnistCNN saved by --save_weights (default: the committed vae_gan/checkpoints/mnist-cnn.pt), on the
    CPU in eval mode, channels_last."""
    path = Path(path) if path else WEIGHTS
    if not path.exists():
        raise UserError(
            f"classifier weights {path} not found: run `python -m vae_gan.classifier --save_weights` "
            "(or make vae_gan)"
        )
    net = MnistCNN()
    net.load_state_dict(load_torch(path))
    return net.to(memory_format=torch.channels_last).eval()  # as in training: 1.5-2x faster here


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
