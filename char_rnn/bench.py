"""Time one training step (forward + BPTT + clipping + optimizer) of the NumPy CharLM against its torch twin
(nn.Embedding + nn.LSTM + nn.Linear, same sizes, same thread count, CPU, float32).

    python -m char_rnn.bench [--batch=32] [--seq=100] [--hidden=512] [--embed=64] [--vocab=65] [--cell=lstm]
                             [--layers=1] [--threads=2] [--warmup=3] [--iters=10] [--optim=adam]

The two implementations are timed alternately, step by step, so that load from other processes hits both alike;
the median of `iters` steps is reported after `warmup` untimed steps. The last line is
`numpy/torch step time ratio: X.XX`.
"""

import sys

from shared.threads import set_threads  # imports neither numpy nor torch


def _threads_from_argv(argv, default=2):
    for arg in argv:
        if arg.startswith("--threads="):
            try:
                return int(arg.split("=", 1)[1])
            except ValueError:
                return default  # argparse reports the bad value below
    return default


# BLAS thread pools are sized when numpy / torch load, so the thread count is set before they are imported
# (run as a script; importing this module elsewhere leaves the caller's thread settings alone).
if __name__ == "__main__":
    set_threads(_threads_from_argv(sys.argv[1:]))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from char_rnn.scratch import CharLM, clip_grad_norm  # noqa: E402
from char_rnn.twin import TorchCharLM, copy_numpy_to_torch  # noqa: E402
from shared import optim  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--embed", type=int, default=64, help="embedding size; 0 = one-hot input")
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--cell", choices=["lstm", "rnn"], default="lstm")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--optim", choices=["adam", "sgd"], default="adam")
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    embed = args.embed or None
    np_model = CharLM(args.vocab, args.hidden, args.cell, args.layers, embed, rng=rng, dtype=np.float32)
    t_model = copy_numpy_to_torch(
        np_model, TorchCharLM(args.vocab, args.hidden, args.cell, args.layers, embed)
    )
    if args.optim == "adam":
        np_opt, t_opt = optim.Adam(np_model.layers, 1e-3), torch.optim.Adam(t_model.parameters(), 1e-3)
    else:
        np_opt, t_opt = optim.SGD(np_model.layers, 0.1), torch.optim.SGD(t_model.parameters(), 0.1)
    B, T, V = args.batch, args.seq, args.vocab
    data = rng.integers(0, V, size=(args.warmup + args.iters, B, T + 1))
    t_state = [None]

    def np_step(chunk):
        loss = np_model.loss_and_backward(chunk[:, :-1], chunk[:, 1:])
        clip_grad_norm(np_model.layers, args.clip)
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
        torch.nn.utils.clip_grad_norm_(t_model.parameters(), args.clip)
        t_opt.step()
        return loss.item()

    times = {"numpy": [], "torch": []}
    for n, chunk in enumerate(data):
        for name, step in (("numpy", np_step), ("torch", torch_step)):
            t0 = time.perf_counter()
            step(chunk)
            if n >= args.warmup:
                times[name].append(time.perf_counter() - t0)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    n_params = np_model.num_params()
    print(
        f"char_rnn step: cell={args.cell} layers={args.layers} batch={B} seq={T} hidden={args.hidden} "
        f"embed={args.embed} vocab={V} params={n_params:,} optim={args.optim} threads={args.threads} "
        f"(median of {args.iters} after {args.warmup} warm-up, CPU, float32)"
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
    main()
