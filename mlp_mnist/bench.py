"""Time one training epoch of the headline MLP in NumPy and in PyTorch on the CPU, same thread count.

    python -m mlp_mnist.bench                       # 60,000 images, batch 128, Adam, 784-800-800-10 ReLU
    python -m mlp_mnist.bench --runs=5 --threads=1

Both sides do identical work per step: gather a shuffled batch, forward, softmax cross-entropy, backward, one
Adam step (lr 1e-3), read the loss as a Python float. PyTorch gets torch.set_num_threads(n) with n the OpenBLAS
thread count NumPy uses (or --threads for both). A warm-up of --warmup_steps steps precedes the timed epochs;
NumPy and PyTorch epochs alternate (so a neighbour's load hits both alike) and each side's median is reported.
The last line is `numpy/torch epoch time ratio: X.XX`.
"""

import dataclasses
import os
import statistics
import sys
import time

import numpy as np

from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.data import load_mnist
from shared.threads import bench_threads


@dataclasses.dataclass
class BenchConfig:
    sizes: list = dataclasses.field(default_factory=lambda: [784, 800, 800, 10])
    activation: str = "relu"
    batch_size: int = 128
    lr: float = 1e-3
    runs: int = 3  # timed epochs per implementation (median reported)
    warmup_steps: int = 50
    max_steps: int = 0  # 0: the whole epoch (60,000 / batch_size steps); >0: time only this many steps
    threads: int = 0  # shared.threads.bench_threads: 0 keeps OpenBLAS's own count, and torch gets the same
    seed: int = 0


def _load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


# ---- data


def load_data():
    """(x (60000, 784) float32 standardised, y (60000,) int64, description). Missing MNIST is the data loader's
    one-line UserError: a benchmark on stand-in data would time something else."""
    (x, y), _ = load_mnist()
    x = x.reshape(len(x), -1).astype(np.float32)
    x /= 255.0
    x -= 0.1307
    x /= 0.3081
    return x, np.array(y, dtype=np.int64), f"real MNIST training set ({len(x)} images)"


# ---- one epoch each


def numpy_epoch(net, opt, x, y, batch_size, steps, rng):
    from mlp_mnist.scratch import softmax_cross_entropy

    perm = rng.permutation(len(x))
    total = 0.0
    for s in range(steps):
        idx = perm[s * batch_size : (s + 1) * batch_size]
        logits = net.forward(x[idx])
        loss, dlogits = softmax_cross_entropy(logits, y[idx])
        net.backward(dlogits, input_grad=False)
        opt.step()
        total += loss
    return total / steps


def torch_epoch(model, opt, x, y, batch_size, steps, gen):
    import torch
    import torch.nn.functional as F

    perm = torch.randperm(len(x), generator=gen)
    total = 0.0
    for s in range(steps):
        idx = perm[s * batch_size : (s + 1) * batch_size]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item()
    return total / steps


def run_bench(cfg, log=print):
    """Returns {"numpy_s": [...], "torch_s": [...], "threads": n, "data": str, "steps": n, "ratio": float}."""
    import torch

    from mlp_mnist.model import build_torch_mlp
    from mlp_mnist.scratch import build_mlp
    from mlp_mnist.twin import copy_numpy_to_torch
    from shared.optim import Adam

    threads = bench_threads(cfg.threads, log)  # 0: keep the libraries' own counts
    x, y, source = load_data()
    steps = len(x) // cfg.batch_size + (len(x) % cfg.batch_size > 0)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
    log(f"data: {source}")
    log(
        f"model: MLP {'-'.join(map(str, cfg.sizes))} {cfg.activation}, batch {cfg.batch_size}, Adam lr {cfg.lr}, "
        f"float32; {steps} steps per epoch"
    )
    log(
        f"threads: OpenBLAS {threads}, torch.set_num_threads({torch.get_num_threads()}); {os.cpu_count()} CPUs"
    )
    log(f"load average before timing: {_load()} (other processes on these CPUs slow both sides, unevenly)")

    net = build_mlp(cfg.sizes, activation=cfg.activation, seed=cfg.seed)
    model = build_torch_mlp(cfg.sizes, activation=cfg.activation, seed=cfg.seed)
    copy_numpy_to_torch(net, model)
    np_opt = Adam(net.layers, lr=cfg.lr)
    t_opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)

    warm = min(cfg.warmup_steps, steps)
    if warm:
        numpy_epoch(net, np_opt, x, y, cfg.batch_size, warm, rng)
        torch_epoch(model, t_opt, xt, yt, cfg.batch_size, warm, gen)
    times = {"numpy": [], "torch": []}
    for r in range(cfg.runs):
        t0 = time.perf_counter()
        np_loss = numpy_epoch(net, np_opt, x, y, cfg.batch_size, steps, rng)
        t1 = time.perf_counter()
        t_loss = torch_epoch(model, t_opt, xt, yt, cfg.batch_size, steps, gen)
        t2 = time.perf_counter()
        times["numpy"].append(t1 - t0)
        times["torch"].append(t2 - t1)
        log(
            f"run {r + 1}/{cfg.runs}: numpy {t1 - t0:.2f} s (mean loss {np_loss:.4f}), "
            f"torch {t2 - t1:.2f} s (mean loss {t_loss:.4f})"
        )
    log(f"load average after timing: {_load()}")
    med_np, med_t = statistics.median(times["numpy"]), statistics.median(times["torch"])
    return {
        "numpy_s": times["numpy"],
        "torch_s": times["torch"],
        "numpy_median_s": med_np,
        "torch_median_s": med_t,
        "ratio": med_np / med_t,
        "threads": threads,
        "data": source,
        "steps": steps,
    }


def main(argv):
    cfg = parse_config(BenchConfig(), argv)
    if cfg.runs < 1 or cfg.batch_size < 1:
        raise UserError("--runs and --batch_size must be at least 1")
    result = run_bench(cfg)
    print(f"numpy epoch (median of {cfg.runs}): {result['numpy_median_s']:.2f} s")
    print(f"torch epoch (median of {cfg.runs}): {result['torch_median_s']:.2f} s")
    print(f"numpy/torch epoch time ratio: {result['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
