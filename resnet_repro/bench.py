"""Images per second of a CIFAR-10 ResNet on this machine, training and evaluation, in float32 and under bfloat16
autocast, with contiguous (NCHW) and channels_last (NHWC) tensors; then one step of the NumPy ResNet.

    python -m resnet_repro.bench                        # ResNet-20, batch 128, the libraries' thread counts
    python -m resnet_repro.bench --depth=56 --threads=2 --steps=20

A training step is train.py's (twin.TorchResNet.train_step: forward, cross-entropy, backward, SGD with momentum
and weight decay, the loss read back) on one real augmented batch of CIFAR-10 training images; an evaluation
step is the forward pass in evaluation mode on --eval_batch test images (train.py's evaluation: float32, or
bfloat16 autocast with --eval_bf16). After --warmup steps of each setting, the settings take one step in turn
(so a neighbour's load hits all alike) and each one's median is reported. The paper's schedule, 64k iterations
of 128, is 8.2M images: the time it would take at the fastest training setting is printed too. The NumPy step
(scratch.ResNet, float32, --numpy_steps of them) is the same arithmetic as the float32 contiguous PyTorch step;
the last line is their ratio.
"""

import dataclasses
import statistics
import sys
import time

import torch

from resnet_repro.data import normalise, prepare_data, training_batch
from resnet_repro.model import model_name
from resnet_repro.train import Config, check
from resnet_repro.twin import NumpyResNet, build
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.runrecord import cpu_info, describe_cpu
from shared.threads import set_threads

PAPER_IMAGES = 64000 * 128


@dataclasses.dataclass
class BenchConfig:
    depth: int = 20
    plain: bool = False
    widths: tuple = (16, 32, 64)
    batch_size: int = 128
    eval_batch: int = 500
    steps: int = 10  # timed steps per setting (median reported)
    warmup: int = 2
    numpy_steps: int = 2  # timed NumPy steps (0: none)
    threads: int = 0  # torch (and BLAS) threads; 0: the libraries' default, one per core
    seed: int = 0


SETTINGS = [(bf16, channels_last) for bf16 in (False, True) for channels_last in (False, True)]


def label(bf16, channels_last):
    return f"{'bf16' if bf16 else 'fp32'} {'channels_last' if channels_last else 'contiguous'}"


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_bench(cfg, log=print):
    """{"train": {setting: images/s}, "eval": {...}, "numpy_images_per_s", "ratio"}; prints as it goes."""
    set_threads(cfg.threads)
    train_cfg = check(dataclasses.replace(
        Config(), depth=cfg.depth, plain=cfg.plain, widths=cfg.widths, batch_size=cfg.batch_size, device="cpu",
        seed=cfg.seed,
    ))  # fmt: skip
    data = prepare_data(train_cfg)
    x, y = training_batch(train_cfg, data, 0)  # (1, B, 3, 32, 32): a real augmented batch
    x_eval = normalise(data["test"][0][: cfg.eval_batch], data["mean"])
    models = {
        s: build(dataclasses.replace(train_cfg, bf16=s[0], eval_bf16=s[0], channels_last=s[1]))
        for s in SETTINGS
    }
    name = model_name(cfg.depth, cfg.plain, cfg.widths)
    log(
        f"model: {name}, {models[SETTINGS[0]].num_params():,} params; training batch {cfg.batch_size}, evaluation batch {len(x_eval)}"
    )
    log(
        f"machine: {describe_cpu({'cpu_info': cpu_info()})}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    times = {(kind, s): [] for kind in ("train", "eval") for s in SETTINGS}
    for round_ in range(cfg.warmup + cfg.steps):
        for s in SETTINGS:
            spent = (
                timed(lambda m=models[s]: m.train_step(x, y, 0.1)),
                timed(lambda m=models[s]: m.logits(x_eval)),
            )
            if round_ >= cfg.warmup:
                times[("train", s)].append(spent[0])
                times[("eval", s)].append(spent[1])
    rates = {"train": {}, "eval": {}}
    for (kind, s), spent in times.items():
        images = cfg.batch_size if kind == "train" else len(x_eval)
        rates[kind][s] = images / statistics.median(spent)
        what = "training  " if kind == "train" else "evaluation"
        log(
            f"{what} {label(*s):22s} {1e3 * statistics.median(spent):8.1f} ms/step  {rates[kind][s]:8.0f} images/s"
        )
    best = max(rates["train"], key=rates["train"].get)
    hours = PAPER_IMAGES / rates["train"][best] / 3600
    log(f"fastest training: {label(*best)}, {rates['train'][best]:.0f} images/s: the paper's 64k x 128 "
        f"= {PAPER_IMAGES / 1e6:.1f}M images in {hours:.1f} h of training steps")  # fmt: skip

    result = {"train": rates["train"], "eval": rates["eval"], "best": best}
    if cfg.numpy_steps:
        numpy_model = NumpyResNet(train_cfg)
        numpy_model.train_step(x, y, 0.1)  # warm-up
        spent = statistics.median(
            timed(lambda: numpy_model.train_step(x, y, 0.1)) for _ in range(cfg.numpy_steps)
        )
        reference = statistics.median(times[("train", (False, False))])
        result |= {"numpy_images_per_s": cfg.batch_size / spent, "ratio": spent / reference}
        log(
            f"NumPy training step (scratch.ResNet, float32): {1e3 * spent:.0f} ms, {cfg.batch_size / spent:.0f} images/s"
        )
        log(f"numpy/torch step time ratio: {result['ratio']:.2f}")
    return result


def main(argv):
    cfg = parse_config(BenchConfig(), argv)
    if min(cfg.steps, cfg.batch_size, cfg.eval_batch) < 1 or min(cfg.warmup, cfg.numpy_steps) < 0:
        raise UserError(
            "--steps, --batch_size and --eval_batch must be >= 1, --warmup and --numpy_steps >= 0"
        )
    run_bench(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
