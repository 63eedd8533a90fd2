"""Time one training step (forward, backward, clipping, AdamW) of the NumPy GPT against its torch twin at
nanoGPT's CPU recipe: the two adapters train.py drives (twin.NumpyGPT, twin.TorchGPT), same initial weights, same
thread count, CPU, float32.

    python -m nanogpt.bench [--batch_size=12] [--block_size=64] [--n_layer=4] [--n_head=4] [--n_embd=128]
                            [--threads=0] [--warmup=3] [--iters=10] [--seed=0]

Both read the same real tiny Shakespeare batches (train.get_batch on the training split). The two implementations
are timed alternately, step by step, so that load from other processes hits both alike; the median of `iters`
steps is reported after `warmup` untimed steps. --threads=0 (the default) keeps OpenBLAS's own thread count and
gives torch the same (shared.threads.bench_threads). The last line is `numpy/torch step time ratio: X.XX`.
"""

import dataclasses
import statistics
import time

import numpy as np

from nanogpt.train import Config, check, get_batch
from nanogpt.twin import NumpyGPT, TorchGPT
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.text import shakespeare_splits
from shared.threads import bench_threads


@dataclasses.dataclass
class BenchConfig:
    batch_size: int = 12
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    threads: int = 0  # 0: OpenBLAS's own count, and torch gets the same
    warmup: int = 3
    iters: int = 10
    seed: int = 0


def main(argv):
    bench = parse_config(BenchConfig(), argv)
    if bench.iters < 1 or bench.warmup < 0:
        raise UserError("--iters must be >= 1 and --warmup >= 0")
    model_fields = ("batch_size", "block_size", "n_layer", "n_head", "n_embd", "seed")
    cfg = check(
        Config(**{name: getattr(bench, name) for name in model_fields})
    )  # the recipe's other settings
    threads = bench_threads(bench.threads)
    text = shakespeare_splits()
    rng = np.random.default_rng(bench.seed)
    B, T = cfg.batch_size, cfg.block_size
    batches = [get_batch(text["train"], B, T, rng) for _ in range(bench.warmup + bench.iters)]
    models = {"numpy": NumpyGPT(cfg, len(text["vocab"])), "torch": TorchGPT(cfg, len(text["vocab"]))}

    times = {name: [] for name in models}
    for n, (x, y) in enumerate(batches):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.train_step(x, y, cfg.learning_rate)
            if n >= bench.warmup:
                times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"nanogpt step: n_layer={cfg.n_layer} n_head={cfg.n_head} n_embd={cfg.n_embd} block_size={T} "
        f"batch_size={B} vocab={len(text['vocab'])} params={models['numpy'].num_params():,} AdamW "
        f"threads={threads} (median of {bench.iters} after {bench.warmup} warm-up, CPU, float32)"
    )
    for name, ts in times.items():
        print(
            f"  {name:5s}: {med[name] * 1e3:8.1f} ms/step  (min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})  "
            f"{B * T / med[name]:,.0f} tokens/s"
        )
    print(f"numpy/torch step time ratio: {med['numpy'] / med['torch']:.2f}")


if __name__ == "__main__":
    run_main(main)
