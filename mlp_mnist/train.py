"""Train an MLP on MNIST, from scratch in NumPy or in PyTorch, with the same recipe.

    python -m mlp_mnist.train --impl=numpy                     # the headline NumPy MLP
    python -m mlp_mnist.train --impl=torch                     # the same recipe in PyTorch
    python -m mlp_mnist.train --impl=numpy --augment --dropout=0.3 --epochs=60 --run=numpy-mlp-aug
    python -m mlp_mnist.train --config=mlp_mnist/configs/fast.py

Settings are the fields of `Config` below, overridden as --name=value. The loop below is the same for both
implementations (twin.py puts them behind one interface); shared.run.Run does the plumbing around it: each epoch ends with an atomic checkpoint in
mlp_mnist/checkpoints/resume/<run>.*, and rerunning the same command resumes from it exactly (--resume=false
starts over). A finished run writes mlp_mnist/results/<run>.json (the run record the report is built from),
TensorBoard scalars under runs/mlp_mnist/<run>, and with --save_weights its final weights to
mlp_mnist/checkpoints/<run>.npz|.pt for `make eval-mlp_mnist`.
"""

import dataclasses
import math
from pathlib import Path

import numpy as np

from mlp_mnist.twin import build
from shared import optim
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.data import hold_out, load_mnist
from shared.nn import log_softmax
from shared.run import Run

PROJECT_DIR = Path(__file__).resolve().parent
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoint; default "<impl>-mlp-<hidden sizes>"
    impl: str = "numpy"  # numpy | torch
    hidden: tuple = (800, 800)  # hidden layer widths
    activation: str = "relu"  # relu | tanh | sigmoid
    loss: str = "ce"  # ce (softmax cross-entropy) | mse (on one-hot targets)
    init: str = "he"  # zero | small | large | xavier | he
    dropout: float = 0.0
    batchnorm: bool = False
    augment: bool = False  # random shifts, rotations and scaling (mlp_mnist/augment.py)
    normalize: bool = True  # (x/255 - 0.1307) / 0.3081; false leaves raw 0..255 pixels
    optimizer: str = "adam"  # sgd | momentum | nesterov | adam | adamw
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"  # constant | step | exponential | cosine
    warmup_epochs: float = 0.0
    step_size: int = 5  # epochs between decays (schedule=step)
    gamma: float = 0.5  # decay factor (schedule=step: per step_size epochs; exponential: per epoch)
    epochs: int = 20
    batch_size: int = 128
    val_size: int = 5000  # held out of the 60,000 training images (seeded); 0 trains on all of them
    early_stopping: int = 0  # patience in epochs on validation accuracy, 0 = off; restores the best weights
    train_subset: int = 0  # use only this many training images (0 = all); for quick looks
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "auto"  # torch only: auto | cpu | cuda | mps
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in mlp_mnist/checkpoints/<run>.npz|.pt
    resume: bool = True
    progress: bool = True


def check(cfg):
    choices = {
        "impl": ("numpy", "torch"),
        "activation": ("relu", "tanh", "sigmoid"),
        "loss": ("ce", "mse"),
        "init": ("zero", "small", "large", "xavier", "he"),
        "optimizer": ("sgd", "momentum", "nesterov", "adam", "adamw"),
        "schedule": ("constant", "step", "exponential", "cosine"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or not 0 <= cfg.dropout < 1 or cfg.lr <= 0:
        raise UserError("need --epochs >= 1, --batch_size >= 1, 0 <= --dropout < 1 and --lr > 0")
    if cfg.early_stopping and not cfg.val_size:
        raise UserError("--early_stopping needs a validation split: set --val_size > 0")
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-mlp-{'x'.join(map(str, cfg.hidden))}")
    return cfg


def prepare_data(cfg):
    """Flattened float32 images (N, 784) and int64 labels: train, validation (maybe empty) and test."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    if cfg.train_subset:
        x_train, y_train = x_train[: cfg.train_subset], y_train[: cfg.train_subset]
    (x_train, y_train), (x_val, y_val) = hold_out(x_train, y_train, cfg.val_size, seed=cfg.seed)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def to_inputs(images, cfg):
    """uint8 or float (N, 28, 28) images in 0..255 -> float32 (N, 784) network inputs."""
    x = images.reshape(len(images), -1).astype(np.float32)
    return (x / 255.0 - MNIST_MEAN) / MNIST_STD if cfg.normalize else x


def learning_rate(cfg, step, steps_per_epoch):
    """The learning rate at global step `step` (schedules are stated in epochs and applied every step)."""
    epoch = step // steps_per_epoch
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return optim.step_lr(cfg.lr, epoch, cfg.step_size, cfg.gamma)
    if cfg.schedule == "exponential":
        return optim.exponential_lr(cfg.lr, epoch, cfg.gamma)
    return optim.cosine_lr(
        cfg.lr, step, cfg.epochs * steps_per_epoch, warmup=int(cfg.warmup_epochs * steps_per_epoch)
    )


def evaluate(model, x, y, cfg, batch_size=2000):
    """(mean loss, accuracy) of a model on network inputs x (N, 784); (nan, nan) for an empty set. The loss is
    the one trained: cross-entropy, or the mean squared error against one-hot targets."""
    if not len(x):
        return float("nan"), float("nan")
    logits = np.concatenate([model.logits(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    logits = logits.astype(np.float64)
    if cfg.loss == "mse":
        loss = np.mean((logits - np.eye(10)[y]) ** 2)
    else:
        loss = -log_softmax(logits)[np.arange(len(y)), y].mean()
    return float(loss), float((logits.argmax(axis=1) == y).mean())


def train(cfg, out_dir=None):
    """Train per cfg; returns (model adapter, run record path). out_dir (tests) replaces mlp_mnist/ as the home
    of checkpoints/, results/ and runs/."""
    cfg = check(cfg)
    run = Run("mlp_mnist", cfg, out_dir)
    data = prepare_data(cfg)
    x_train_img, y_train = data["train"]
    x_val, y_val = to_inputs(data["val"][0], cfg), data["val"][1]
    x_test, y_test = to_inputs(data["test"][0], cfg), data["test"][1]
    model = build(cfg)
    data_rng = np.random.default_rng([cfg.seed, 1])
    steps_per_epoch = math.ceil(len(x_train_img) / cfg.batch_size)
    augment = None
    if cfg.augment:
        from mlp_mnist.augment import augment_batch as augment
    state = run.resume(model, [data_rng], epoch=0, best_val_acc=-1.0, best_epoch=0)

    for epoch in range(state["epoch"], cfg.epochs):
        order = data_rng.permutation(len(x_train_img))
        loss_sum, correct, seen = 0.0, 0, 0
        for i in run.bar(range(steps_per_epoch), desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}"):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            images = x_train_img[idx]
            if augment is not None:
                images = augment(images.astype(np.float32), data_rng)
            step = epoch * steps_per_epoch + i
            lr = learning_rate(cfg, step, steps_per_epoch)
            stats = model.train_step(to_inputs(images, cfg), y_train[idx], lr)
            check_finite(stats["loss"], "training loss", step)
            loss_sum, correct, seen = (
                loss_sum + stats["loss"] * len(idx),
                correct + stats["correct"],
                seen + len(idx),
            )
            if i % 50 == 0:
                run.log({"train/loss": stats["loss"], "train/lr": lr}, step)
        val_loss, val_acc = evaluate(model, x_val, y_val, cfg)
        test_loss, test_acc = evaluate(model, x_test, y_test, cfg)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen}
        row |= {"val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc}
        run.add_history(row | {"time_s": run.elapsed()}, (epoch + 1) * steps_per_epoch, prefix="epoch/")
        run.say(
            f"{cfg.run} epoch {epoch + 1:3d}: train loss {row['train_loss']:.4f}  val acc {val_acc:.4f}  "
            f"test acc {test_acc:.4f}  ({run.elapsed():.0f} s)"
        )

        stop = False
        if (
            cfg.early_stopping
        ):  # keep the best weights by validation accuracy; stop after `patience` worse epochs
            if val_acc > state["best_val_acc"]:
                state.update(best_val_acc=val_acc, best_epoch=epoch + 1, best_weights=model.weights())
            stop = epoch + 1 - state["best_epoch"] >= cfg.early_stopping
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)
        if stop:
            run.say(f"early stopping: no better validation accuracy for {cfg.early_stopping} epochs")
            break

    if cfg.early_stopping and state.get("best_weights"):
        run.say(f"restoring the weights of epoch {state['best_epoch']}, the best on validation")
        model.set_weights(state["best_weights"])
    val_loss, val_acc = evaluate(model, x_val, y_val, cfg)
    test_loss, test_acc = evaluate(model, x_test, y_test, cfg)
    train_loss, train_acc = evaluate(model, to_inputs(x_train_img, cfg), y_train, cfg)
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "train_acc": train_acc, "val_acc": val_acc}
    metrics |= {"epochs_run": len(run.history.get("epoch", [])), "best_epoch": state["best_epoch"] or None}
    if cfg.save_weights:
        run.save_weights(model.weights())
    model_name = f"mlp-{'x'.join(map(str, cfg.hidden))}-{cfg.activation}"
    path = run.finish(model, model_name=model_name, dataset="mnist", metrics=metrics)
    run.say(f"{cfg.run}: test accuracy {test_acc:.4f} in {run.elapsed():.0f} s -> {path}")
    return model, path


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
