"""Time one training step (forward + BPTT + clipping + optimizer) of the NumPy CharLM against its torch twin
(nn.Embedding + nn.LSTM + nn.Linear, same sizes, same thread count, CPU, float32).

    python -m char_rnn.bench [--batch=32] [--seq=100] [--hidden=512] [--embed=64] [--cell=lstm]
                             [--layers=1] [--threads=0] [--warmup=3] [--iters=10] [--optim=adam]

The two implementations are timed alternately, step by step, so that load from other processes hits both alike;
the median of `iters` steps is reported after `warmup` untimed steps. --threads=0 (the default) keeps OpenBLAS's
own thread count and gives torch the same (shared.threads.bench_threads). The last line is
`numpy/torch step time ratio: X.XX`.
"""

import dataclasses
import statistics
import time

import numpy as np
import torch

from char_rnn.data import prepare_data, train_layout
from char_rnn.scratch import CharLM, clip_grad_norm
from char_rnn.twin import TorchCharLM, copy_numpy_to_torch
from shared import optim
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.threads import bench_threads


@dataclasses.dataclass
class BenchConfig:
    batch: int = 32
    seq: int = 100
    hidden: int = 512
    embed: int = 64  # embedding size; 0 = one-hot input
    cell: str = "lstm"  # lstm | rnn
    layers: int = 1
    threads: int = 0  # 0: OpenBLAS's own count, and torch gets the same
    warmup: int = 3
    iters: int = 10
    optim: str = "adam"  # adam | sgd
    clip: float = 5.0
    seed: int = 0


def main(argv):
    cfg = parse_config(BenchConfig(), argv)
    if cfg.cell not in ("lstm", "rnn") or cfg.optim not in ("adam", "sgd"):
        raise UserError("--cell: choose lstm or rnn; --optim: choose adam or sgd")
    if min(cfg.batch, cfg.seq, cfg.hidden, cfg.layers, cfg.iters) < 1:
        raise UserError("--batch, --seq, --hidden, --layers and --iters must be >= 1")
    threads = bench_threads(cfg.threads)
    # real tiny Shakespeare, as training reads it: `batch` stripes, consecutive chunks of seq + 1 characters
    text = prepare_data()
    B, T, V = cfg.batch, cfg.seq, len(text["vocab"])
    stripes, _ = train_layout(text["train"], B)
    data = [stripes[:, k * T : k * T + T + 1].copy() for k in range(cfg.warmup + cfg.iters)]  # writable
    rng = np.random.default_rng(cfg.seed)
    embed = cfg.embed or None
    np_model = CharLM(V, cfg.hidden, cfg.cell, cfg.layers, embed, rng=rng, dtype=np.float32)
    t_model = copy_numpy_to_torch(np_model, TorchCharLM(V, cfg.hidden, cfg.cell, cfg.layers, embed))
    if cfg.optim == "adam":
        np_opt, t_opt = optim.Adam(np_model.layers, 1e-3), torch.optim.Adam(t_model.parameters(), 1e-3)
    else:
        np_opt, t_opt = optim.SGD(np_model.layers, 0.1), torch.optim.SGD(t_model.parameters(), 0.1)
    t_state = [None]

    def np_step(chunk):
        loss = np_model.loss_and_backward(chunk[:, :-1], chunk[:, 1:])
        clip_grad_norm(np_model.layers, cfg.clip)
        np_opt.step()
        return loss

    def torch_step(chunk):
        chunk = torch.from_numpy(chunk)
        state = t_state[0]
        if state is not None:  # truncated BPTT: carry the state, cut the graph
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        logits, t_state[0] = t_model(chunk[:, :-1], state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), chunk[:, 1:].reshape(-1))
        t_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t_model.parameters(), cfg.clip)
        t_opt.step()
        return loss.item()

    times = {"numpy": [], "torch": []}
    for n, chunk in enumerate(data):
        for name, step in (("numpy", np_step), ("torch", torch_step)):
            t0 = time.perf_counter()
            step(chunk)
            if n >= cfg.warmup:
                times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    n_params = np_model.num_params()
    print(
        f"char_rnn step: cell={cfg.cell} layers={cfg.layers} batch={B} seq={T} hidden={cfg.hidden} "
        f"embed={cfg.embed} vocab={V} params={n_params:,} optim={cfg.optim} threads={threads} "
        f"(median of {cfg.iters} after {cfg.warmup} warm-up, CPU, float32)"
    )
    chars = B * T
    for name in ("numpy", "torch"):
        ts = times[name]
        print(
            f"  {name:5s}: {med[name] * 1e3:8.1f} ms/step  (min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})  "
            f"{chars / med[name]:,.0f} chars/s"
        )
    print(f"numpy/torch step time ratio: {med['numpy'] / med['torch']:.2f}")


if __name__ == "__main__":
    run_main(main)
