"""Train a CNN on CIFAR-10, from scratch in NumPy or in PyTorch, with one recipe and one data pipeline.

    python -m cnn_cifar.train --impl=numpy                        # the NumPy SimpleCNN (Conv-Pool-FC)
    python -m cnn_cifar.train --impl=torch                        # its PyTorch twin: same recipe, same start
    python -m cnn_cifar.train --impl=torch --model=lenet --config=cnn_cifar/configs/lenet_torch.py
    python -m cnn_cifar.train --impl=torch --augment=false --run=torch-simplecnn-noaug   # the ablation
    python -m cnn_cifar.train --config=cnn_cifar/configs/fast.py --impl=numpy           # a quick look

Both implementations run this one loop: a seeded NumPy generator shuffles the training images and augments
each batch in NumPy (reflect-pad 4 + random 32x32 crop + horizontal flip, cnn_cifar/augment.py), the batch is
normalised with the CIFAR-10 channel statistics, and one SGD step is taken (Nesterov momentum, L2 weight
decay, linear warm-up then cosine decay to --min_lr, one schedule function for both). The PyTorch SimpleCNN
starts from exactly the NumPy model's initial weights (cnn_cifar/twin.py, which puts both implementations
behind one interface), so the two runs see the same batches in the same order from the same start and differ
only in who does the arithmetic.

After every epoch the model is evaluated on the test set (or on --val_size=N images held out of the training
set; the test set is then used only at the end), and shared.run.Run, which does the plumbing around the loop,
writes an atomic checkpoint to cnn_cifar/checkpoints/resume/<run>.npz|.pt: rerunning the same command resumes
from it exactly (--resume=false starts over). A finished run writes cnn_cifar/results/<run>.json (test_acc is
a fraction of the whole test set, or of --test_subset seeded images), TensorBoard scalars under
runs/cnn_cifar/<run>, and with --save_weights its final weights to cnn_cifar/checkpoints/<run>.npz|.pt for
`make eval-cnn_cifar`.

--threads=N sets NumPy's OpenBLAS and torch to N threads (0, the default, keeps the libraries' own choice, one
per core). On a busy 2-core machine one thread per run is fastest, and two runs side by side use both cores.
"""

import dataclasses
import math
import statistics
import time

import numpy as np

from cnn_cifar.augment import augment_batch, normalize
from cnn_cifar.twin import build
from shared import optim
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.data import hold_out, load_cifar10
from shared.nn import log_softmax
from shared.run import Run

DEFAULTS = {"simple": ((32, 64, 128), (256,)), "lenet": ((48, 96), (384, 192))}  # model: (conv, fc widths)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<model name>"
    impl: str = "numpy"  # numpy | torch
    model: str = "simple"  # simple (Conv-Pool-FC, NumPy or torch) | lenet (LeNet-style, torch only)
    channels: tuple = ()  # conv widths; () = the model's default (simple 32,64,128; lenet 48,96)
    hidden: tuple = ()  # fully connected widths; () = the default (simple 256; lenet 384,192)
    batchnorm: bool = True  # lenet only
    dropout: float = 0.0  # lenet only: before each hidden fully connected layer
    dtype: str = "float32"  # float32 | float64 (for equality checks)
    channels_last: bool = True  # torch only: NHWC memory layout for activations and weights
    augment: bool = True  # random crop + flip (+ cutout) of every training batch, in NumPy for both impls
    crop_padding: int = 4
    pad_mode: str = "reflect"  # reflect | constant (zeros)
    flip: bool = True
    cutout: int = 0  # side of the cutout square; 0 = none
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.03  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # L2, on every parameter (as torch.optim.SGD's weight_decay)
    warmup_steps: int = 200  # linear warm-up, then cosine decay to min_lr at the last step
    min_lr: float = 0.0
    train_subset: int = 0  # train on this many seeded training images (0 = all 50,000)
    val_size: int = 0  # hold this many training images out for per-epoch validation (0 = evaluate on test)
    test_subset: int = 0  # evaluate on this many seeded test images (0 = all 10,000)
    eval_batch: int = 500
    threads: int = 0  # NumPy (OpenBLAS) and torch threads; 0 = the libraries' default
    seed: int = 0
    device: str = "auto"  # torch only: auto | cpu | cuda | mps
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in cnn_cifar/checkpoints/<run>.npz|.pt
    resume: bool = True
    progress: bool = True


def model_name(cfg):
    """'simplecnn-32-64-128' or 'lenet-48-96-fc384-192-bn' (filled-in cfg)."""
    if cfg.model == "simple":
        return "simplecnn-" + "-".join(map(str, cfg.channels))
    name = f"lenet-{'-'.join(map(str, cfg.channels))}-fc{'-'.join(map(str, cfg.hidden))}"
    return name + ("-bn" if cfg.batchnorm else "")


def _ints(value, name):
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if not all(isinstance(v, int) and v > 0 for v in values):
        raise UserError(f"--{name}={value}: expected positive integers, e.g. --{name}=32,64")
    return values


def check(cfg):
    """Validate cfg and fill in the defaults that depend on the model; UserError on a bad setting."""
    choices = {
        "impl": ("numpy", "torch"),
        "model": tuple(DEFAULTS),
        "dtype": ("float32", "float64"),
        "pad_mode": ("reflect", "constant"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    if cfg.impl == "numpy" and cfg.model != "simple":
        raise UserError(
            f"--model={cfg.model} exists only in PyTorch: use --impl=torch (NumPy has --model=simple)"
        )
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0 or cfg.eval_batch < 1:
        raise UserError("need --epochs >= 1, --batch_size >= 1, --eval_batch >= 1 and --lr > 0")
    if not (0 <= cfg.dropout < 1 and cfg.momentum >= 0 and cfg.weight_decay >= 0 and cfg.min_lr >= 0):
        raise UserError("need 0 <= --dropout < 1, --momentum >= 0, --weight_decay >= 0 and --min_lr >= 0")
    if cfg.nesterov and cfg.momentum == 0:
        raise UserError("--nesterov=true needs --momentum > 0")
    if min(cfg.train_subset, cfg.val_size, cfg.test_subset, cfg.warmup_steps, cfg.cutout, cfg.threads) < 0:
        raise UserError("sizes, --warmup_steps, --cutout and --threads cannot be negative")
    if not 0 <= cfg.crop_padding <= 16 or cfg.test_subset > 10000 or cfg.train_subset > 50000:
        raise UserError("need 0 <= --crop_padding <= 16, --test_subset <= 10000 and --train_subset <= 50000")
    channels = _ints(cfg.channels, "channels") if cfg.channels else DEFAULTS[cfg.model][0]
    hidden = _ints(cfg.hidden, "hidden") if cfg.hidden else DEFAULTS[cfg.model][1]
    if cfg.model == "simple" and len(hidden) != 1:
        raise UserError(f"--hidden={cfg.hidden}: the SimpleCNN has one hidden fully connected layer")
    if cfg.model == "lenet" and (len(channels) != 2 or len(hidden) != 2):
        raise UserError(
            "the LeNet-style network has two convolutions and two hidden layers: e.g. --channels=48,96"
        )
    cfg = dataclasses.replace(cfg, channels=channels, hidden=hidden)
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg)}")
    return cfg


# ---- data --------------------------------------------------------------------------------------------------


def prepare_data(cfg):
    """uint8 NHWC images and int64 labels: train, validation (maybe empty), test (maybe a seeded subset)."""
    (x_train, y_train), (x_test, y_test) = load_cifar10()
    if cfg.train_subset:
        keep = np.sort(np.random.default_rng([cfg.seed, 2]).permutation(len(x_train))[: cfg.train_subset])
        x_train, y_train = x_train[keep], y_train[keep]
    (x_train, y_train), (x_val, y_val) = hold_out(x_train, y_train, cfg.val_size, seed=cfg.seed)
    if cfg.test_subset:  # the test set is sorted by class: a seeded permutation gives a mixed subset
        keep = np.sort(np.random.default_rng([cfg.seed, 3]).permutation(len(x_test))[: cfg.test_subset])
        x_test, y_test = x_test[keep], y_test[keep]
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def training_batch(images, cfg, rng):
    """uint8 NHWC batch -> augmented (per cfg, drawing from rng) and normalised float NHWC network input."""
    if cfg.augment:
        images = augment_batch(
            images, rng, padding=cfg.crop_padding, flip=cfg.flip, cutout_size=cfg.cutout, mode=cfg.pad_mode
        )
    return normalize(images, dtype=np.dtype(cfg.dtype).type)


def learning_rate(cfg, step, total_steps):
    """Linear warm-up over cfg.warmup_steps, then cosine decay to cfg.min_lr at total_steps (both impls)."""
    return optim.cosine_lr(cfg.lr, step, total_steps, warmup=cfg.warmup_steps, min_lr=cfg.min_lr)


def predict_logits(model, images, cfg):
    """Logits (N, 10) float for uint8 NHWC images, normalised and run in batches of cfg.eval_batch."""
    dtype = np.dtype(cfg.dtype).type
    chunks = [
        model.logits(normalize(images[i : i + cfg.eval_batch], dtype=dtype))
        for i in range(0, len(images), cfg.eval_batch)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 10), dtype)


def evaluate(model, images, labels, cfg):
    """(mean cross-entropy, accuracy) on uint8 images; (nan, nan) for an empty set."""
    if not len(images):
        return float("nan"), float("nan")
    logits = predict_logits(model, images, cfg)
    logp = log_softmax(logits.astype(np.float64))
    loss = -logp[np.arange(len(labels)), labels].mean()
    return float(loss), float((logits.argmax(axis=1) == labels).mean())


# ---- the loop ----------------------------------------------------------------------------------------------


def train(cfg, out_dir=None):
    """Train per cfg; returns (model adapter, run record path). The loop is the same for both implementations.
    out_dir (tests) replaces cnn_cifar/ as the home of checkpoints/, results/ and runs/."""
    cfg = check(cfg)
    run = Run("cnn_cifar", cfg, out_dir)
    data = prepare_data(cfg)
    x_train, y_train = data["train"]
    (x_val, y_val), (x_test, y_test) = data["val"], data["test"]
    eval_name, (x_eval, y_eval) = ("val", data["val"]) if cfg.val_size else ("test", data["test"])
    model = build(cfg)
    data_rng = np.random.default_rng([cfg.seed, 1])  # shuffles and augments, for both implementations
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.warmup_steps >= total_steps:
        raise UserError(f"--warmup_steps={cfg.warmup_steps} must be below the run's {total_steps} steps")
    state = run.resume(model, [data_rng], epoch=0)
    if state["epoch"] == 0:
        run.say(
            f"{cfg.run}: {cfg.impl} {model_name(cfg)}, {model.num_params():,} params; {len(x_train):,} "
            f"training images, {steps_per_epoch} steps of {cfg.batch_size} per epoch; evaluating on "
            f"{len(x_eval):,} {eval_name} images"
        )

    for epoch in range(state["epoch"], cfg.epochs):
        order = data_rng.permutation(len(x_train))
        loss_sum, correct, step_times = 0.0, 0, []
        bar = run.bar(range(steps_per_epoch), desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}")
        for i in bar:
            t0 = time.perf_counter()
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x, y = training_batch(x_train[idx], cfg, data_rng), y_train[idx]  # (B, 32, 32, 3), (B,)
            step = epoch * steps_per_epoch + i
            lr = learning_rate(cfg, step, total_steps)
            stats = model.train_step(x, y, lr)
            check_finite(stats["loss"], "training loss", step)
            step_times.append(time.perf_counter() - t0)
            loss_sum, correct = loss_sum + stats["loss"] * len(idx), correct + stats["correct"]
            if i % 20 == 0:
                bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.4f}")
                run.log({"train/loss": stats["loss"], "train/lr": lr}, step)
        eval_loss, eval_acc = evaluate(model, x_eval, y_eval, cfg)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / len(x_train), "train_acc": correct / len(x_train)}
        row |= {f"{eval_name}_loss": eval_loss, f"{eval_name}_acc": eval_acc, "lr": lr}
        row |= {"ms_per_step": 1e3 * statistics.median(step_times), "time_s": run.elapsed()}
        run.add_history(row, (epoch + 1) * steps_per_epoch, prefix="epoch/")
        run.say(
            f"{cfg.run} epoch {epoch + 1:2d}/{cfg.epochs}: train loss {row['train_loss']:.4f} "
            f"(augmented acc {row['train_acc']:.4f})  {eval_name} acc {eval_acc:.4f}  "
            f"{row['ms_per_step']:.0f} ms/step  ({row['time_s']:.0f} s)"
        )
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)  # atomic; rerunning the command resumes here
    train_time = run.elapsed()

    test_loss, test_acc = evaluate(model, x_test, y_test, cfg)
    val_loss, val_acc = evaluate(model, x_val, y_val, cfg)
    train_loss, train_acc = evaluate(model, x_train, y_train, cfg)
    run.log({"final/test_acc": test_acc}, total_steps)
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "train_acc": train_acc, "train_loss": train_loss}
    metrics |= {"val_acc": val_acc, "test_size": len(y_test), "epochs_run": len(run.history["epoch"])}
    metrics |= {"ms_per_step": statistics.median(run.history["ms_per_step"]), "train_time_s": train_time}
    if cfg.save_weights:
        run.save_weights(model.weights())
    notes = (
        f"train_acc/test_acc: final weights, no augmentation, on all {len(y_train):,} training and "
        f"{len(y_test):,} test images; history train_acc is the running accuracy on augmented batches; "
        "wall clock includes every evaluation"
    )
    path = run.finish(model, model_name=model_name(cfg), dataset="cifar10", metrics=metrics, notes=notes)
    run.say(f"{cfg.run}: test accuracy {test_acc:.4f} in {run.elapsed():.0f} s -> {path}")
    return model, path


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
