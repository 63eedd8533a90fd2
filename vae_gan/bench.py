"""Time one training step of the NumPy VAE and GAN against their torch twins at the headline recipes: the
adapters train.py drives (twin.NumpyVAE / TorchVAE on configs/vae.py, twin.NumpyGAN / TorchGAN on configs/gan.py),
same initial weights, same thread count, CPU, float32.

    python -m vae_gan.bench [--batch_size=128] [--threads=0] [--warmup=5] [--iters=50] [--seed=0]

Both read the same real MNIST batches (pixels in [0, 1] for the VAE, [-1, 1] for the GAN). A VAE step is
forward, backward and one Adam step; a GAN step is D's step on a real and a generated batch, then G's through D.
The two implementations are timed alternately, step by step, so that load from other processes hits both alike;
the median of `iters` steps is reported after `warmup` untimed steps. --threads=0 (the default) keeps OpenBLAS's
own thread count and gives torch the same (shared.threads.bench_threads). The last line is
`numpy/torch step time ratio: X.XX (VAE), X.XX (GAN)`.
"""

import dataclasses
import statistics
import time

import numpy as np

from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.data import load_mnist
from shared.threads import bench_threads
from vae_gan.train import Config, check
from vae_gan.twin import build

RECIPES = {"VAE": "vae_gan/configs/vae.py", "GAN": "vae_gan/configs/gan.py"}


@dataclasses.dataclass
class BenchConfig:
    batch_size: int = 128
    threads: int = 0  # 0: OpenBLAS's own count, and torch gets the same
    warmup: int = 5
    iters: int = 50
    seed: int = 0


def time_steps(models, batches, lr, warmup):
    """{impl: [seconds per step]} over the batches, the implementations alternating step by step."""
    times = {impl: [] for impl in models}
    for n, x in enumerate(batches):
        for impl, model in models.items():
            t0 = time.perf_counter()
            model.train_step(x, lr)
            if n >= warmup:
                times[impl].append(time.perf_counter() - t0)
    return times


def main(argv):
    bench = parse_config(BenchConfig(), argv)
    if bench.iters < 1 or bench.warmup < 0 or bench.batch_size < 1:
        raise UserError("--iters and --batch_size must be >= 1 and --warmup >= 0")
    threads = bench_threads(bench.threads)
    (x_train, _), _ = load_mnist()
    pick = np.random.default_rng(bench.seed).permutation(len(x_train))
    n, B = bench.warmup + bench.iters, bench.batch_size
    images = x_train[pick[: n * B]].reshape(n, B, 784).astype(np.float32) / 255.0
    print(
        f"vae_gan step: batch {B}, real MNIST, CPU, float32, threads={threads} "
        f"(median of {bench.iters} after {bench.warmup} warm-up)"
    )
    ratios = {}
    for kind, recipe in RECIPES.items():
        cfg = parse_config(Config(), [f"--config={recipe}", f"--batch_size={B}", f"--seed={bench.seed}"])
        cfg = check(dataclasses.replace(cfg, device="cpu"))
        models = {impl: build(dataclasses.replace(cfg, impl=impl)) for impl in ("numpy", "torch")}
        batches = images if kind == "VAE" else 2.0 * images - 1.0
        times = time_steps(models, batches, cfg.lr, bench.warmup)
        med = {impl: statistics.median(ts) for impl, ts in times.items()}
        print(f"{kind} ({recipe}, {models['numpy'].num_params():,} params):")
        for impl, ts in times.items():
            print(
                f"  {impl:5s}: {med[impl] * 1e3:7.2f} ms/step  (min {min(ts) * 1e3:.2f}, max {max(ts) * 1e3:.2f})"
                f"  {B / med[impl]:,.0f} images/s"
            )
        ratios[kind] = med["numpy"] / med["torch"]
    print("numpy/torch step time ratio: " + ", ".join(f"{r:.2f} ({kind})" for kind, r in ratios.items()))


if __name__ == "__main__":
    run_main(main)
