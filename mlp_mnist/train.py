"""Train an MLP on MNIST, from scratch in NumPy or in PyTorch, with the same recipe.

    python -m mlp_mnist.train --impl=numpy                     # the headline NumPy MLP
    python -m mlp_mnist.train --impl=torch                     # the same recipe in PyTorch
    python -m mlp_mnist.train --impl=numpy --augment --dropout=0.3 --epochs=60 --run=numpy-mlp-aug
    python -m mlp_mnist.train --config=mlp_mnist/configs/fast.py

Settings are the fields of `Config` below, overridden as --name=value. Each epoch ends with an atomic checkpoint
in mlp_mnist/checkpoints/resume/<run>.*; rerunning the same command resumes from it exactly (--resume=false
starts over). A finished run writes mlp_mnist/results/<run>.json (the run record the report is built from),
TensorBoard scalars under runs/mlp_mnist/<run>, and with --save_weights its final weights to
mlp_mnist/checkpoints/<run>.npz|.pt for `make eval-mlp_mnist`.
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared import optim
from shared.checkpoint import (
    check_resumable,
    load_npz,
    load_torch,
    rng_state,
    save_npz,
    save_torch,
    set_rng_state,
)
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.data import load_mnist, train_val_split
from shared.metrics import MetricsLogger
from shared.runrecord import write_run_record

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
    if cfg.val_size:
        train_idx, val_idx = train_val_split(len(x_train), cfg.val_size, seed=cfg.seed)
        (x_train, y_train), (x_val, y_val) = (
            (x_train[train_idx], y_train[train_idx]),
            (x_train[val_idx], y_train[val_idx]),
        )
    else:
        x_val, y_val = x_train[:0], y_train[:0]
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


class NumpyMLP:
    """The from-scratch network behind the common training loop."""

    suffix = ".npz"

    def __init__(self, cfg):
        from mlp_mnist.scratch import build_mlp, mse_loss, softmax_cross_entropy

        self.net = build_mlp(
            [784, *cfg.hidden, 10],
            activation=cfg.activation,
            dropout=cfg.dropout,
            batchnorm=cfg.batchnorm,
            init=cfg.init,
            seed=cfg.seed,
        )
        self.net.loss_fn = mse_loss if cfg.loss == "mse" else softmax_cross_entropy
        kind = {
            "sgd": ("sgd", 0.0, False),
            "momentum": ("sgd", cfg.momentum, False),
            "nesterov": ("sgd", cfg.momentum, True),
        }.get(cfg.optimizer)
        if kind:
            self.opt = optim.SGD(
                self.net.layers, cfg.lr, momentum=kind[1], nesterov=kind[2], weight_decay=cfg.weight_decay
            )
        else:
            self.opt = optim.Adam(
                self.net.layers, cfg.lr, weight_decay=cfg.weight_decay, decoupled=cfg.optimizer == "adamw"
            )
        self.generators = [layer.rng for layer in self.net.layers if hasattr(layer, "rng")]
        self.device = "cpu"

    def num_params(self):
        return self.net.num_parameters()

    def train_batch(self, x, y, lr):
        self.opt.lr = lr
        loss, _ = self.net.loss_and_grads(x, y)
        self.opt.step()
        return loss

    def evaluate(self, x, y):
        return self.net.evaluate(x, y) if len(x) else (float("nan"), float("nan"))

    def predict(self, x):
        return self.net.predict(x)

    def weights(self):
        return self.net.state_dict()

    def set_weights(self, weights):
        self.net.load_state_dict(weights)

    def save(self, path, extra, data_rng):
        state = {f"model/{k}": v for k, v in self.net.state_dict().items()}
        state |= {f"opt/{k}": v for k, v in self.opt.state_dict().items()}
        state |= {f"best/{k}": v for k, v in extra.pop("best_weights", {}).items()}
        state |= {"meta": json.dumps(extra), "rng": rng_state([data_rng, *self.generators])}
        save_npz(path, state)

    def load(self, path, data_rng):
        state = load_npz(path)
        part = lambda prefix: {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}  # noqa: E731
        self.net.load_state_dict(part("model/"))
        self.opt.load_state_dict(part("opt/"))
        set_rng_state(state["rng"], [data_rng, *self.generators])
        extra = json.loads(str(state["meta"]))
        extra["best_weights"] = part("best/")
        return extra


class TorchMLP:
    """The torch.nn / torch.optim twin behind the same training loop."""

    suffix = ".pt"

    def __init__(self, cfg):
        import torch

        from mlp_mnist.model import build_torch_mlp
        from shared.seeding import pick_device

        self.torch = torch
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.model = build_torch_mlp(
            [784, *cfg.hidden, 10],
            activation=cfg.activation,
            dropout=cfg.dropout,
            batchnorm=cfg.batchnorm,
            init=cfg.init,
            seed=cfg.seed,
        ).to(self.device)
        self.mse = cfg.loss == "mse"
        params = self.model.parameters()
        if cfg.optimizer in ("sgd", "momentum", "nesterov"):
            momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
            self.opt = torch.optim.SGD(
                params,
                lr=cfg.lr,
                momentum=momentum,
                nesterov=cfg.optimizer == "nesterov",
                weight_decay=cfg.weight_decay,
            )
        else:
            cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
            self.opt = cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def num_params(self):
        return sum(p.numel() for p in self.model.parameters())

    def _loss(self, logits, y):
        F = self.torch.nn.functional
        if self.mse:
            return F.mse_loss(logits, F.one_hot(y, 10).to(logits.dtype))
        return F.cross_entropy(logits, y)

    def train_batch(self, x, y, lr):
        torch = self.torch
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.model.train()
        x, y = torch.from_numpy(x).to(self.device), torch.tensor(y).to(self.device)
        loss = self._loss(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def predict(self, x):
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            return np.concatenate(
                [
                    self.model(torch.from_numpy(x[i : i + 2000]).to(self.device)).float().cpu().numpy()
                    for i in range(0, len(x), 2000)
                ]
            )

    def evaluate(self, x, y):
        if not len(x):
            return float("nan"), float("nan")
        logits = self.torch.from_numpy(self.predict(x))
        loss = self._loss(logits, self.torch.tensor(y)).item()
        return loss, float((logits.argmax(1).numpy() == y).mean())

    def weights(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights):
        self.model.load_state_dict(weights)

    def save(self, path, extra, data_rng):
        best = extra.pop("best_weights", {})
        save_torch(
            path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "best": best,
                "meta": json.dumps(extra),
                "rng": rng_state([data_rng]),
            },
        )

    def load(self, path, data_rng):
        state = load_torch(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"], [data_rng])
        extra = json.loads(state["meta"])
        extra["best_weights"] = state["best"]
        return extra


def build(cfg):
    return NumpyMLP(cfg) if cfg.impl == "numpy" else TorchMLP(cfg)


def train(cfg):
    """Train per cfg; returns (impl, run record path). The loop is the same for both implementations."""
    cfg = check(cfg)
    data = prepare_data(cfg)
    x_train_img, y_train = data["train"]
    x_val, y_val = to_inputs(data["val"][0], cfg), data["val"][1]
    x_test, y_test = to_inputs(data["test"][0], cfg), data["test"][1]
    impl = build(cfg)
    data_rng = np.random.default_rng([cfg.seed, 1])
    steps_per_epoch = math.ceil(len(x_train_img) / cfg.batch_size)

    resume_path = PROJECT_DIR / "checkpoints" / "resume" / f"{cfg.run}{impl.suffix}"
    # a checkpoint only resumes the run it came from: every setting but these two must match
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume", "progress")}
    config_json = json.dumps(settings, sort_keys=True, default=list)
    state = {
        "epoch": 0,
        "history": {},
        "elapsed": 0.0,
        "best_val_acc": -1.0,
        "best_epoch": 0,
        "config": config_json,
        "best_weights": {},
    }
    if cfg.resume and resume_path.exists():
        state = impl.load(resume_path, data_rng)
        check_resumable(resume_path, state["config"], config_json)
        print(f"resuming {cfg.run} from epoch {state['epoch']}")

    augment = None
    if cfg.augment:
        from mlp_mnist.augment import augment_batch

        augment = augment_batch
    logger = MetricsLogger("mlp_mnist", cfg.run, purge_step=state["epoch"] * steps_per_epoch or None)
    history = state["history"]
    start = time.perf_counter() - state["elapsed"]
    for epoch in range(state["epoch"], cfg.epochs):
        order = data_rng.permutation(len(x_train_img))
        total, seen = 0.0, 0
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not cfg.progress,
            mininterval=1.0,
        )
        for i in bar:
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            images = x_train_img[idx]
            if augment is not None:
                images = augment(images.astype(np.float32), data_rng)
            step = epoch * steps_per_epoch + i
            lr = learning_rate(cfg, step, steps_per_epoch)
            loss = check_finite(
                impl.train_batch(to_inputs(images, cfg), y_train[idx], lr), "training loss", step
            )
            total, seen = total + loss * len(idx), seen + len(idx)
            if i % 50 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
                logger.scalar("train/loss", loss, step)
                logger.scalar("train/lr", lr, step)
        val_loss, val_acc = impl.evaluate(x_val, y_val)
        test_loss, test_acc = impl.evaluate(x_test, y_test)
        row = {
            "epoch": epoch + 1,
            "train_loss": total / seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "time_s": time.perf_counter() - start,
        }
        for key, value in row.items():
            history.setdefault(key, []).append(value)
        logger.scalars(
            {k: v for k, v in row.items() if k != "epoch" and not math.isnan(v)},
            (epoch + 1) * steps_per_epoch,
            prefix="epoch/",
        )
        print(
            f"{cfg.run} epoch {epoch + 1:3d}: train loss {row['train_loss']:.4f}  val acc {val_acc:.4f}  "
            f"test acc {test_acc:.4f}  ({row['time_s']:.0f} s)"
        )

        stop = False
        if cfg.early_stopping:
            if val_acc > state["best_val_acc"]:
                state.update(best_val_acc=val_acc, best_epoch=epoch + 1, best_weights=impl.weights())
            stop = epoch + 1 - state["best_epoch"] >= cfg.early_stopping
        state.update(epoch=epoch + 1, history=history, elapsed=time.perf_counter() - start)
        impl.save(resume_path, dict(state), data_rng)
        if stop:
            print(
                f"early stopping: no better validation accuracy for {cfg.early_stopping} epochs; "
                f"restoring epoch {state['best_epoch']}"
            )
            break
    wall = time.perf_counter() - start
    logger.close()

    if cfg.early_stopping and state["best_weights"]:
        impl.set_weights(state["best_weights"])
    val_loss, val_acc = impl.evaluate(x_val, y_val)
    test_loss, test_acc = impl.evaluate(x_test, y_test)
    train_loss, train_acc = impl.evaluate(to_inputs(x_train_img, cfg), y_train)
    metrics = {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "train_acc": train_acc,
        "val_acc": val_acc,
        "epochs_run": len(history.get("epoch", [])),
        "best_epoch": state["best_epoch"] or None,
    }
    metrics = {
        k: v for k, v in metrics.items() if v is not None and not (isinstance(v, float) and math.isnan(v))
    }
    if cfg.save_weights:
        weights_path = PROJECT_DIR / "checkpoints" / f"{cfg.run}{impl.suffix}"
        if cfg.impl == "numpy":
            save_npz(weights_path, impl.weights())
        else:
            save_torch(weights_path, {k: v.cpu() for k, v in impl.weights().items()})
    model_name = f"mlp-{'x'.join(map(str, cfg.hidden))}-{cfg.activation}"
    path = write_run_record(
        project="mlp_mnist",
        run=cfg.run,
        impl=cfg.impl,
        model=model_name,
        dataset="mnist",
        metrics=metrics,
        history=history,
        params=impl.num_params(),
        wall_time_s=wall,
        config=cfg,
        seed=cfg.seed,
        group=cfg.group,
        device=impl.device,
    )
    print(
        f"{cfg.run}: test accuracy {test_acc:.4f} in {wall:.0f} s -> {path.relative_to(PROJECT_DIR.parent)}"
    )
    return impl, path


def main(argv):
    cfg = parse_config(Config(), argv)
    train(cfg)


if __name__ == "__main__":
    run_main(main)
