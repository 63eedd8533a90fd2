"""Train a character-level RNN or LSTM on tiny Shakespeare, from scratch in NumPy or in PyTorch, with one loop.

    python -m char_rnn.train --config=char_rnn/configs/lstm_numpy.py                 # the NumPy LSTM
    python -m char_rnn.train --config=char_rnn/configs/lstm_numpy.py --impl=torch    # its PyTorch twin
    python -m char_rnn.train --config=char_rnn/configs/lstm_torch.py --threads=1     # the PyTorch headline LSTM

Data (char_rnn/data.py, nanoGPT's split): losses are cross-entropies in nats per character. The training split is
cut into `batch_size` contiguous stripes; each step reads the next `seq_len` characters of every stripe, and the
recurrent state carries from chunk to chunk (truncated BPTT: the state is detached at the boundary). After a pass
(an epoch) the stripes are re-cut at a random offset in [0, seq_len) and the state is reset.

Budget and schedule: training stops after `max_steps` steps or `max_minutes` of training time (the steps only),
whichever comes first; the learning rate warms up for `warmup_steps`, then follows a cosine to `min_lr` over the
budget (a time-budgeted run ends at min_lr too, but is not repeatable step for step). Every `eval_interval` steps
the whole validation text (or its `eval_chars` prefix) is streamed with carried state, and an atomic checkpoint
is written (shared.run): rerunning the same command resumes exactly (--resume=false starts over). A finished run
writes char_rnn/results/<run>.json, TensorBoard scalars under runs/char_rnn/<run>, and with --save_weights the
weights, vocabulary and model settings to char_rnn/checkpoints/<run>.npz|.pt (char_rnn.sample, make eval-char_rnn).

--precision=bf16 (PyTorch only) runs the training step under bfloat16 autocast; weights, Adam's moments, the
carried state and every evaluation stay fp32. --threads=N: NumPy's BLAS and torch (0, the default: the libraries'
choice); on the busy 2-core machine one thread per run is fastest, and the Makefile passes --threads=1.
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from char_rnn.data import prepare_data, stream_loss, train_layout
from char_rnn.twin import build
from shared import optim
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.run import Run

PROJECT_DIR = Path(__file__).resolve().parent
DATASET = "tinyshakespeare"
MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
NOTES = (
    "losses in nats/char; val_loss streams the whole 10% validation split with carried state; "
    "train_time_s counts training steps only (the time budget's clock), wall_time_s includes evaluation"
)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<cell>-<layers>x<hidden>"
    impl: str = "numpy"  # numpy | torch
    cell: str = "lstm"  # lstm | rnn
    hidden: int = 256  # hidden units per recurrent layer
    layers: int = 1  # stacked recurrent layers
    embed: int = 0  # size of a learned embedding; 0 = one-hot input
    dropout: float = 0.0  # between stacked layers (training only)
    batch_size: int = 32  # parallel streams
    seq_len: int = 100  # characters per chunk (truncated BPTT length)
    lr: float = 2e-3  # Adam, peak learning rate
    min_lr: float = 2e-4  # end of the cosine
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | constant
    grad_clip: float = 5.0  # global gradient-norm clipping, 0 = off
    weight_decay: float = 0.0  # Adam's L2 term
    max_steps: int = 0  # training budget in steps (0 = none) ...
    max_minutes: float = 0.0  # ... and/or in minutes of training time (0 = none); the first reached stops
    eval_interval: int = 200  # steps between evaluations (each one ends with a checkpoint)
    eval_chars: int = 0  # intermediate evaluations on this prefix of the validation text; 0 = all of it
    eval_batch: int = 32  # streams of the validation text
    eval_seq: int = 256  # characters per evaluation chunk (the result does not depend on it)
    train_chars: int = 0  # use only this prefix of the training split (0 = all); for quick looks and tests
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "cpu"  # torch only: cpu | auto | cuda | mps
    precision: str = "fp32"  # torch only: fp32 | bf16 (autocast for the training step; evaluation stays fp32)
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in char_rnn/checkpoints/<run>.npz|.pt (< 10 MB)
    resume: bool = True
    progress: bool = True


def check(cfg):
    choices = {
        "impl": ("numpy", "torch"),
        "cell": ("lstm", "rnn"),
        "schedule": ("cosine", "constant"),
        "precision": ("fp32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    for name in ("hidden", "layers", "batch_size", "seq_len", "eval_interval", "eval_batch", "eval_seq"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    for name in ("embed", "warmup_steps", "max_steps", "eval_chars", "train_chars", "threads"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError(f"--dropout={cfg.dropout}: must be in [0, 1)")
    if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0 or cfg.max_minutes < 0:
        raise UserError("need --lr > 0 and --min_lr, --grad_clip, --weight_decay, --max_minutes >= 0")
    if not cfg.max_steps and not cfg.max_minutes:
        raise UserError("no training budget: set --max_steps=N and/or --max_minutes=M")
    if cfg.impl == "numpy" and cfg.device not in ("cpu", "auto"):
        raise UserError(f"--device={cfg.device}: the NumPy implementation runs on the CPU only")
    if cfg.impl == "numpy" and cfg.precision != "fp32":
        raise UserError(f"--precision={cfg.precision}: the NumPy implementation computes in fp32 only")
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg)}")
    return cfg


def model_name(cfg):
    """'lstm-2x384', 'rnn-1x256' (plus '-emb64' with a learned embedding)."""
    return f"{cfg.cell}-{cfg.layers}x{cfg.hidden}" + (f"-emb{cfg.embed}" if cfg.embed else "")


# ---- schedule


def learning_rate(cfg, step, train_time):
    """Linear warm-up to cfg.lr over warmup_steps, then a cosine to min_lr over the rest of the budget: over the
    larger of the fractions of the step and time budgets used after the warm-up."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    used = [0.0]
    if cfg.max_steps:
        used.append((step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.max_minutes:
        used.append(train_time / (60.0 * cfg.max_minutes))
    return optim.cosine_lr(cfg.lr, min(1.0, max(used)), 1.0, warmup=0, min_lr=cfg.min_lr)


def budget_spent(cfg, step, train_time):
    steps_spent = cfg.max_steps and step >= cfg.max_steps
    return bool(steps_spent or (cfg.max_minutes and train_time >= 60.0 * cfg.max_minutes))


# ---- the loop


def train(cfg, out_dir=None, stop_at=None):
    """Train per cfg; returns (model adapter, run record path). out_dir (tests) replaces char_rnn/ as the home of
    checkpoints/, results/ and runs/. `stop_at` (tests of resuming): leave after the checkpoint of that step, as
    if interrupted, and return (model, None)."""
    cfg = check(cfg)
    run = Run("char_rnn", cfg, out_dir)
    data = prepare_data(cfg)
    vocab, train_ids, val_ids = data["vocab"], data["train"], data["val"]
    B, T = cfg.batch_size, cfg.seq_len
    if (len(train_ids) - 1 - T) // B < T:
        raise UserError(
            f"--train_chars={cfg.train_chars} is too short for {B} streams of {T}-character chunks"
        )
    model = build(cfg, len(vocab))
    size = sum(v.nbytes for v in model.weights().values())
    if cfg.save_weights and size >= MAX_WEIGHTS_BYTES:
        raise UserError(
            f"--save_weights: {model.num_params():,} float32 parameters make a {size / 2**20:.1f} MB file, over "
            "the 10 MB limit for committed weights: use a smaller --hidden or --layers"
        )
    data_rng = np.random.default_rng([cfg.seed, 1])
    model.reset_state(B)
    # the stream position: `pos` chunks into the stripes cut at `offset`, in epoch `epoch` (counted from 0)
    state = run.resume(model, [data_rng], step=0, epoch=0, offset=0, pos=0, train_time=0.0)

    x_train, y_train = train_layout(train_ids, B, state["offset"])
    chunks = x_train.shape[1] // T
    eval_ids = val_ids[: cfg.eval_chars + 1] if cfg.eval_chars else val_ids
    loss_sum, loss_count = 0.0, 0  # since the last evaluation (always 0 at a checkpoint)
    bar = run.bar(total=cfg.max_steps or None, initial=state["step"], desc=cfg.run)
    while not budget_spent(cfg, state["step"], state["train_time"]):
        if state["pos"] >= chunks:  # end of an epoch: re-cut the stripes at a new offset, forget the state
            state.update(epoch=state["epoch"] + 1, offset=int(data_rng.integers(0, T)), pos=0)
            x_train, y_train = train_layout(train_ids, B, state["offset"])
            chunks = x_train.shape[1] // T
            model.reset_state(B)
        step, a = state["step"], state["pos"] * T
        lr = learning_rate(cfg, step, state["train_time"])
        t0 = time.perf_counter()
        stats = model.train_step(x_train[:, a : a + T], y_train[:, a : a + T], lr)
        state["train_time"] += time.perf_counter() - t0
        check_finite(stats["loss"], "training loss", step)
        state.update(step=step + 1, pos=state["pos"] + 1)
        loss_sum, loss_count = loss_sum + stats["loss"], loss_count + 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.1e}")
            run.log(
                {"train/loss": stats["loss"], "train/lr": lr, "train/grad_norm": stats["grad_norm"]}, step
            )

        if state["step"] % cfg.eval_interval == 0 or budget_spent(cfg, state["step"], state["train_time"]):
            val_loss = stream_loss(model, eval_ids, cfg.eval_batch, cfg.eval_seq)
            check_finite(val_loss, "val loss", step)
            row = {"step": state["step"], "epoch": state["epoch"] + state["pos"] / chunks, "lr": lr}
            row |= {"train_loss": loss_sum / loss_count, "val_loss": val_loss}
            row |= {"train_time_s": state["train_time"], "time_s": run.elapsed()}
            run.add_history(row, state["step"])
            run.log({"eval/val_loss_vs_seconds": val_loss}, int(state["train_time"]), is_step=False)
            run.say(
                f"{cfg.run} step {state['step']:6d}: train loss {row['train_loss']:.4f}  val loss {val_loss:.4f}  "
                f"lr {lr:.2e}  ({state['train_time']:.0f} s training, {row['time_s']:.0f} s wall)"
            )
            loss_sum, loss_count = 0.0, 0
            run.checkpoint(model, state)
            if stop_at is not None and state["step"] >= stop_at:
                bar.close()
                run.close()
                return model, None
    bar.close()

    history = run.history
    full = not cfg.eval_chars and history["step"][-1] == state["step"]
    val_loss = history["val_loss"][-1] if full else stream_loss(model, val_ids, cfg.eval_batch, cfg.eval_seq)
    metrics = {
        "val_loss": val_loss,
        "val_bpc": val_loss / math.log(2),
        "train_loss": history["train_loss"][-1],
        "steps": state["step"],
        "epochs": round(state["epoch"] + state["pos"] / chunks, 3),
        "train_time_s": round(state["train_time"], 1),
        "ms_per_step": round(1000 * state["train_time"] / max(1, state["step"]), 1),
    }
    if cfg.save_weights:  # the committed files' formats: .npz {weights, meta}, .pt {"model": weights, "meta"}
        # what sample.py and evaluate.py need beside the weights; config: the keyword arguments of both models
        meta = {
            "impl": cfg.impl,
            "run": cfg.run,
            "model": model_name(cfg),
            "vocab": vocab,
            "val_loss": val_loss,
        }
        meta |= {"config": model.net.config, "params": model.num_params()}
        meta = json.dumps(meta | {"eval_batch": cfg.eval_batch, "eval_seq": cfg.eval_seq})
        weights = model.weights()
        run.save_weights(
            {**weights, "meta": meta} if cfg.impl == "numpy" else {"model": weights, "meta": meta}
        )
    path = run.finish(model, model_name=model_name(cfg), dataset=DATASET, metrics=metrics, notes=NOTES)
    shown = path.relative_to(PROJECT_DIR.parent) if path.is_relative_to(PROJECT_DIR.parent) else path
    run.say(
        f"{cfg.run}: val loss {val_loss:.4f} nats/char after {state['step']} steps, {state['train_time']:.0f} s "
        f"training ({run.elapsed():.0f} s wall) -> {shown}"
    )
    return model, path


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
