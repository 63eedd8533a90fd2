"""Time one training step of the NumPy SimpleCNN and of its identical PyTorch twin on the CPU, same threads.

    python -m cnn_cifar.bench                      # batch 128, SGD momentum 0.9, 32-64-128 conv + 256 fc
    python -m cnn_cifar.bench --threads=1 --steps=30 --profile=true

A step is: forward, softmax cross-entropy, backward, one SGD step (lr 0.01, momentum 0.9), the loss read as a
Python float. Both sides get the same batch of real CIFAR-10 images (a missing dataset is the usual one-line error),
already normalised and in their own layout (NHWC float32 for NumPy, NCHW float32 for PyTorch). PyTorch gets
torch.set_num_threads(n) with n the OpenBLAS thread count NumPy uses (or --threads for both). After --warmup
steps each, NumPy and PyTorch steps alternate one by one (so a neighbour's load hits both alike) and each side's
median is reported.

Also measured: the machine's float32 matmul peak (best of several n x n np.matmul and torch.matmul), and the
GFLOP/s each implementation reaches, counting the conv/linear FLOPs of a step analytically (forward
2*N*Ho*Wo*kh*kw*Cin*Cout per conv and 2*N*in*out per linear; backward twice the forward, except the first
conv, whose input gradient neither side computes). Element-wise work (ReLU, pooling, im2col copies) is not
counted, so GFLOP/s is "useful GEMM work per second".

The line `numpy/torch step time ratio: X.XX` is the headline.
"""

import dataclasses
import os
import statistics
import sys
import time

import numpy as np

from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.threads import bench_threads


@dataclasses.dataclass
class BenchConfig:
    batch_size: int = 128
    channels: tuple = (32, 64, 128)
    hidden: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    steps: int = 20  # timed steps per implementation (median reported)
    warmup: int = 3
    threads: int = 0  # 0: keep OpenBLAS's own count and give torch the same
    peak_size: int = 2048  # n of the n x n matmul used to measure the float32 peak
    profile: bool = False  # also print the NumPy model's time per layer (forward and backward)
    seed: int = 0


# ---- pieces


def matmul_peak(n=2048, repeats=5):
    """Best float32 GFLOP/s of an n x n x n product: (numpy, torch)."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flops = 2.0 * n**3
    best = {"numpy": 0.0, "torch": 0.0}
    for _ in range(repeats):
        for name, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
            t0 = time.perf_counter()
            fn()
            best[name] = max(best[name], flops / (time.perf_counter() - t0) / 1e9)
    return best["numpy"], best["torch"]


def load_batch(batch_size, seed):
    """(x NHWC float32 normalised, y int64, description): a seeded random batch of CIFAR-10 training images."""
    from cnn_cifar.augment import normalize
    from shared.data import load_cifar10

    (x, y), _ = load_cifar10()
    idx = np.random.default_rng(seed).permutation(len(x))[:batch_size]
    return normalize(x[idx]), np.asarray(y[idx], dtype=np.int64), "CIFAR-10 training images"


def numpy_step(model, opt, x, y):
    from shared.nn import softmax_cross_entropy

    logits = model.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    opt.step()
    return loss


def torch_step(model, opt, x, y):
    import torch.nn.functional as F

    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def profile_numpy(model, x, y, repeats=5):
    """Median ms per layer: [(name, forward_ms, backward_ms)]."""
    from shared.nn import softmax_cross_entropy

    fwd = [[] for _ in model.layers]
    bwd = [[] for _ in model.layers]
    for _ in range(repeats):
        h = x
        for i, layer in enumerate(model.layers):
            t0 = time.perf_counter()
            h = layer.forward(h)
            fwd[i].append(time.perf_counter() - t0)
        _, g = softmax_cross_entropy(h, y)
        for i in reversed(range(len(model.layers))):
            t0 = time.perf_counter()
            g = model.layers[i].backward(g)
            bwd[i].append(time.perf_counter() - t0)
            if g is None:
                break
    rows = []
    for i, layer in enumerate(model.layers):
        rows.append(
            (
                f"{i:2d} {type(layer).__name__}",
                1e3 * statistics.median(fwd[i]),
                1e3 * statistics.median(bwd[i]) if bwd[i] else 0.0,
            )
        )
    return rows


def run_bench(cfg, log=print):
    """Returns a dict: numpy_ms / torch_ms (lists and medians), ratio, gflop_per_step, peak GFLOP/s, threads."""
    import torch

    from cnn_cifar.scratch import SimpleCNN, model_forward_flops, model_step_flops
    from cnn_cifar.twin import torch_twin_of
    from shared.optim import SGD

    threads = bench_threads(cfg.threads, log)  # 0: keep the libraries' own counts

    x, y, source = load_batch(cfg.batch_size, cfg.seed)
    model = SimpleCNN(channels=cfg.channels, hidden=cfg.hidden, rng=np.random.default_rng(cfg.seed))
    twin = torch_twin_of(model)
    np_opt = SGD(model.layers, lr=cfg.lr, momentum=cfg.momentum)
    t_opt = torch.optim.SGD(twin.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y)

    flops = model_step_flops(model.config, cfg.batch_size)
    log(f"data: a batch of {cfg.batch_size} {source}")
    log(
        f"model: SimpleCNN conv {'-'.join(map(str, cfg.channels))} (3x3, pad 1, ReLU, maxpool 2) + fc {cfg.hidden} "
        f"+ fc 10, {model.num_params():,} params, float32; SGD lr {cfg.lr} momentum {cfg.momentum}"
    )
    log(
        f"threads: OpenBLAS {threads}, torch.set_num_threads({torch.get_num_threads()}); {os.cpu_count()} CPUs"
    )
    parts = ", ".join(
        f"{name} {f * (1 + m) / 1e9:.3f}" for name, f, m in model_forward_flops(model.config, cfg.batch_size)
    )
    log(f"GFLOP per step (forward + backward): {flops / 1e9:.3f} ({parts})")

    peak_np, peak_t = matmul_peak(cfg.peak_size)
    log(f"float32 matmul peak ({cfg.peak_size}^3): numpy {peak_np:.1f} GFLOP/s, torch {peak_t:.1f} GFLOP/s")

    for _ in range(cfg.warmup):
        numpy_step(model, np_opt, x, y)
        torch_step(twin, t_opt, xt, yt)
    times = {"numpy": [], "torch": []}
    for _ in range(cfg.steps):
        t0 = time.perf_counter()
        numpy_step(model, np_opt, x, y)
        t1 = time.perf_counter()
        torch_step(twin, t_opt, xt, yt)
        t2 = time.perf_counter()
        times["numpy"].append(1e3 * (t1 - t0))
        times["torch"].append(1e3 * (t2 - t1))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "numpy_ms": times["numpy"],
        "torch_ms": times["torch"],
        "numpy_median_ms": med["numpy"],
        "torch_median_ms": med["torch"],
        "ratio": med["numpy"] / med["torch"],
        "gflop_per_step": flops / 1e9,
        "numpy_gflops": flops / med["numpy"] / 1e6,
        "torch_gflops": flops / med["torch"] / 1e6,
        "peak_numpy_gflops": peak_np,
        "peak_torch_gflops": peak_t,
        "threads": threads,
        "batch_size": cfg.batch_size,
        "data": source,
    }
    if cfg.profile:
        rows = profile_numpy(model, x, y)
        log("NumPy time per layer (median ms): forward / backward")
        for name, f, b in rows:
            log(f"  {name:14s} {f:7.2f} {b:7.2f}")
        log(f"  {'total':14s} {sum(r[1] for r in rows):7.2f} {sum(r[2] for r in rows):7.2f}")
    return result


def main(argv):
    cfg = parse_config(BenchConfig(), argv)
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise UserError("--steps and --batch_size must be at least 1")
    r = run_bench(cfg)
    per_epoch = 50000 / cfg.batch_size / 1e3
    for name in ("numpy", "torch"):
        gf = r[f"{name}_gflops"]
        print(
            f"{name} step (median of {cfg.steps}): {r[f'{name}_median_ms']:.1f} ms, {gf:.1f} GFLOP/s "
            f"= {100 * gf / r['peak_numpy_gflops']:.0f}% of the numpy matmul peak; "
            f"~{r[f'{name}_median_ms'] * per_epoch:.0f} s per 50k-image epoch"
        )
    print(f"numpy/torch step time ratio: {r['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
