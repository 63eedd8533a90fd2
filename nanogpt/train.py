"""Train a character-level GPT on tiny Shakespeare, from scratch in NumPy or in PyTorch, with nanoGPT's CPU recipe.

    python -m nanogpt.train --config=nanogpt/configs/nanogpt_cpu.py --impl=numpy --run=numpy-gpt-4x128
    python -m nanogpt.train --config=nanogpt/configs/nanogpt_cpu.py --impl=torch --run=torch-gpt-4x128
    python -m nanogpt.train --impl=torch --run=torch-gpt-4x128 --eval_only     # score its last checkpoint

The defaults are nanoGPT's "baby GPT" for a CPU (4 layers, 4 heads, 128 channels, context 64, batch 12, 2,000
iterations, AdamW 1e-3 with betas (0.9, 0.99) and weight decay 0.1 on the matrices, clipping at 1). Losses are
cross-entropies in nats per character.

Data (shared/text.py, nanoGPT's split): each iteration reads batch_size windows (times gradient_accumulation_steps,
below) at random starts i of the training split, x = ids[i : i + block_size], y = ids[i + 1 : i + block_size + 1]
(nanoGPT's get_batch), drawn by the seeded generator data_rng, which the checkpoints keep.

Schedule (shared.optim.cosine_lr): a linear warm-up to learning_rate over warmup_iters, lr = learning_rate *
(it + 1) / warmup_iters (nanoGPT divides by warmup_iters + 1), then a cosine to min_lr at lr_decay_iters, and
min_lr after it.

Evaluation, at iteration 0, every eval_interval iterations and at the end (nanoGPT's estimate_loss): the mean loss
over eval_iters random batches of each split, in evaluation mode. Those batches come from a generator of their
own, seeded by (seed, 2, iteration): an estimate draws nothing from data_rng, so training reads the same batches
however often it evaluates, and the estimate at an iteration is the same number after a resume and under
--eval_only. Each evaluation ends with an atomic checkpoint (shared.run): rerunning the same command resumes
exactly (--resume=false starts over). The final val_loss is the estimate at the last iteration (nanoGPT's figure);
val_loss_full scores the whole validation split once, cut into consecutive non-overlapping windows of block_size
predictions (the last one shorter), each read from a fresh context: deterministic, so `make eval-nanogpt` can
check it. A finished run writes nanogpt/results/<run>.json, TensorBoard scalars under runs/nanogpt/<run>, and with
--save_weights nanogpt/checkpoints/<run>.npz|.pt (weights, vocabulary, model settings; nanogpt.sample).

--precision=bf16 (PyTorch only) runs the training step under bfloat16 autocast; evaluation stays fp32.

More than one process, PyTorch only (nanoGPT's DistributedDataParallel; gloo on CPUs, nccl on CUDA, a GPU each):
    torchrun --standalone --nproc_per_node=4 -m nanogpt.train --impl=torch --gradient_accumulation_steps=4
An iteration reads A = gradient_accumulation_steps micro-batches of batch_size windows, counted over all
processes (nanoGPT's convention); the number N of processes must divide A. Every process draws that global batch
from data_rng and takes its own consecutive share of A / N micro-batches: N processes compute what one process
computes with the same settings, to float round-off, so neither the settings nor a checkpoint depend on N. Every
process evaluates (the others would wait anyway); rank 0 alone prints, logs, checkpoints and writes the record;
at the end the processes compare their weights. $REPRO_OUT_DIR (tests) stands for train()'s out_dir. torchrun
reads a --run=... flag as its own --run-path: name such a run in a --config file.
"""

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch.distributed as dist

from nanogpt.twin import build, gpt_fields
from shared import optim
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.nn import log_softmax
from shared.run import Run, train_under_torchrun
from shared.text import shakespeare_splits

PROJECT_DIR = Path(__file__).resolve().parent
DATASET = "tinyshakespeare"
MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
NOTES = (
    "losses in nats/char; val_loss and train_loss: means over eval_iters random batches at the last iteration "
    "(nanoGPT's estimate); val_loss_full: the whole 10% validation split once, in non-overlapping block_size "
    "windows; train_time_s and tokens_per_s count training steps only, wall_time_s includes evaluation"
)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-gpt-<n_layer>x<n_embd>"
    impl: str = "numpy"  # numpy | torch
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # context length
    dropout: float = 0.0  # on the embeddings' sum and each block's two residual branches ...
    attn_dropout: float | None = (
        None  # ... and on the attention weights (None: dropout's rate, as in nanoGPT)
    )
    bias: bool = False  # biases in the Linears and LayerNorms
    pos: str = (
        "learned"  # learned | sinusoidal (added to the input) | rotary (q and k turned in each attention)
    )
    batch_size: int = 12
    gradient_accumulation_steps: int = 1  # micro-batches of batch_size per iteration, over all processes
    max_iters: int = 2000
    max_minutes: float = (
        0.0  # a training-time budget (0 = none): the run ends after this many minutes of training
    )
    # steps (or at max_iters, if first), and the cosine runs over the budget: min_lr when it is spent
    learning_rate: float = 1e-3  # AdamW, peak
    min_lr: float = 1e-4  # end of the cosine
    warmup_iters: int = 100
    lr_decay_iters: int = 2000  # the cosine reaches min_lr here
    weight_decay: float = 0.1  # decoupled, on the matrices (embeddings too), not on LayerNorms and biases
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # global gradient-norm clipping, 0 = off
    eval_interval: int = 250  # iterations between evaluations (each one ends with a checkpoint)
    eval_iters: int = 20  # random batches per split in each estimate
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "cpu"  # torch only: cpu | auto | cuda | mps
    precision: str = "fp32"  # torch only: fp32 | bf16 (autocast for the training step)
    fused: bool = False  # torch only: the fused AdamW kernel (~10% shorter steps on a CPU at this size)
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in nanogpt/checkpoints/<run>.npz|.pt (< 10 MB)
    resume: bool = True
    progress: bool = True
    eval_only: bool = False  # load the run's checkpoint, evaluate it, print the losses and exit


def check(cfg, processes=1):
    choices = {
        "impl": ("numpy", "torch"),
        "pos": ("learned", "sinusoidal", "rotary"),
        "precision": ("fp32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    positive = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps")
    positive += ("max_iters", "eval_interval")
    for name in (*positive, "eval_iters"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    for name in ("warmup_iters", "lr_decay_iters", "threads"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    if cfg.n_embd % cfg.n_head:
        raise UserError(f"--n_embd={cfg.n_embd} is not a multiple of --n_head={cfg.n_head}")
    if cfg.pos == "rotary" and (cfg.n_embd // cfg.n_head) % 2:
        raise UserError(f"--pos=rotary turns channel pairs: the head size {cfg.n_embd // cfg.n_head} is odd")
    if cfg.max_minutes < 0:
        raise UserError(f"--max_minutes={cfg.max_minutes}: must be >= 0 (0 = no time budget)")
    if cfg.max_minutes and processes > 1:
        raise UserError(
            "--max_minutes: a time budget ends each process at its own iteration: use --max_iters"
        )
    if cfg.warmup_iters > cfg.lr_decay_iters:
        raise UserError(f"--warmup_iters={cfg.warmup_iters} is past --lr_decay_iters={cfg.lr_decay_iters}")
    for name in ("dropout", "attn_dropout"):
        rate = getattr(cfg, name)
        unset = rate is None and name == "attn_dropout"  # then dropout's rate
        if not unset and not (type(rate) in (int, float) and 0.0 <= rate < 1.0):
            raise UserError(f"--{name}={rate}: must be a number in [0, 1)")
    if not (0.0 <= cfg.beta1 < 1.0 and 0.0 <= cfg.beta2 < 1.0):
        raise UserError(f"--beta1={cfg.beta1}, --beta2={cfg.beta2}: each must be in [0, 1)")
    if cfg.learning_rate <= 0 or cfg.min_lr < 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0:
        raise UserError("need --learning_rate > 0 and --min_lr, --grad_clip, --weight_decay >= 0")
    if cfg.impl == "numpy" and cfg.device not in ("cpu", "auto"):
        raise UserError(f"--device={cfg.device}: the NumPy implementation runs on the CPU only")
    if cfg.impl == "numpy" and cfg.fused:
        raise UserError(
            "--fused: the fused AdamW kernel is torch's; the NumPy implementation has its own AdamW"
        )
    if cfg.impl == "numpy" and cfg.precision != "fp32":
        raise UserError(f"--precision={cfg.precision}: the NumPy implementation computes in fp32 only")
    if cfg.impl == "numpy" and (processes > 1 or cfg.gradient_accumulation_steps > 1):
        raise UserError("--impl=numpy steps on one batch in one process: no torchrun, no accumulation")
    if cfg.gradient_accumulation_steps % processes:
        raise UserError(
            f"--gradient_accumulation_steps={cfg.gradient_accumulation_steps} is not a multiple of the "
            f"{processes} processes (each takes an equal share of the micro-batches)"
        )
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg)}")
    return cfg


def model_name(cfg):
    return f"gpt-{cfg.n_layer}x{cfg.n_embd}"


def learning_rate(cfg, it, train_time=0.0):
    """nanoGPT's schedule over iterations; under a time budget the cosine follows the larger of the fractions of
    lr_decay_iters and of the budget used after the warm-up."""
    if not cfg.max_minutes or it < cfg.warmup_iters:
        return optim.cosine_lr(
            cfg.learning_rate, it, cfg.lr_decay_iters, warmup=cfg.warmup_iters, min_lr=cfg.min_lr
        )
    used = max(
        (it - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters),
        train_time / (60.0 * cfg.max_minutes),
    )
    return optim.cosine_lr(cfg.learning_rate, min(1.0, used), 1.0, min_lr=cfg.min_lr)


def finished(cfg, state):
    """The iteration budget or the time budget is spent."""
    out_of_time = cfg.max_minutes and state["train_time"] >= 60.0 * cfg.max_minutes
    return state["iter"] >= cfg.max_iters or bool(out_of_time)


# ---- data and losses


def get_batch(ids, batch_size, block_size, rng):
    """x, y (B, T): B windows at random starts i in [0, len(ids) - T); y is x shifted by one character."""
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    where = starts[:, None] + np.arange(block_size)  # (B, T)
    return ids[where], ids[where + 1]


def nll_sum(logits, y):
    """Sum of -log softmax(logits)[y] over every position, in float64. logits (B, T, V), y (B, T)."""
    log_p = log_softmax(logits.reshape(-1, logits.shape[-1]).astype(np.float64))  # (B T, V)
    return -float(log_p[np.arange(len(log_p)), y.reshape(-1)].sum())


def estimate_loss(model, splits, cfg, it):
    """{"train": ..., "val": ...}: the mean loss of eval_iters random batches of each split, drawn by a generator
    seeded by (seed, 2, it) (see the module docstring)."""
    rng = np.random.default_rng([cfg.seed, 2, it])
    losses = {}
    for split in ("train", "val"):
        batch_losses = []
        for _ in range(cfg.eval_iters):
            x, y = get_batch(splits[split], cfg.batch_size, cfg.block_size, rng)
            batch_losses.append(nll_sum(model.logits(x), y) / y.size)
        losses[split] = float(np.mean(batch_losses))
    return losses


def full_loss(model, ids, block_size, windows_per_batch=64):
    """Mean loss over all len(ids) - 1 predictions of `ids`, each scored once: consecutive non-overlapping windows of
    block_size predictions (the last one shorter), each read from a fresh context."""
    n = len(ids) - 1
    full = n // block_size  # complete windows
    x = ids[: full * block_size].reshape(full, block_size)
    y = ids[1 : full * block_size + 1].reshape(full, block_size)
    total = sum(
        nll_sum(model.logits(x[a : a + windows_per_batch]), y[a : a + windows_per_batch])
        for a in range(0, full, windows_per_batch)
    )
    if n > full * block_size:  # the shorter last window
        total += nll_sum(model.logits(ids[full * block_size : n][None]), ids[full * block_size + 1 :][None])
    return total / n


# ---- the loop


def evaluate_and_checkpoint(run, model, splits, cfg, state):
    """Estimate both losses at the current iteration, add them to the history, print them, save a checkpoint."""
    it = state["iter"]
    losses = estimate_loss(model, splits, cfg, it)
    check_finite(losses["val"], "val loss", it)
    lr = learning_rate(cfg, it, state["train_time"])
    row = {"iter": it, "train_loss": losses["train"], "val_loss": losses["val"], "lr": lr}
    row |= {"train_time_s": state["train_time"], "time_s": run.elapsed()}
    run.add_history(row, it)
    run.say(
        f"{cfg.run} iter {it:5d}: train loss {losses['train']:.4f}  val loss {losses['val']:.4f}  lr "
        f"{row['lr']:.2e}  ({state['train_time']:.0f} s training, {row['time_s']:.0f} s wall)"
    )
    run.checkpoint(model, state)


def train(cfg, out_dir=None, stop_at=None):
    """Train per cfg; returns (model adapter, run record path). out_dir (tests) replaces nanogpt/ as the home of
    checkpoints/, results/ and runs/. stop_at (tests of resuming): leave after the checkpoint of that iteration,
    as if interrupted, and return (model, None). With cfg.eval_only: (model, {"iter", "train_loss", "val_loss",
    "val_loss_full"}) of the run's checkpoint. Inside a process group (main under torchrun) every process calls
    it; only rank 0 returns the record's path."""
    processes, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    cfg = check(cfg, processes)
    # --eval_only changes what this command does, not what the run computes: the checkpoint's settings must match
    run = Run("nanogpt", dataclasses.replace(cfg, eval_only=False), out_dir)
    data = shakespeare_splits()
    vocab, splits = data["vocab"], {"train": data["train"], "val": data["val"]}
    model = build(cfg, len(vocab))
    if dist.is_initialized():
        model.distribute()
    size = sum(v.nbytes for v in model.weights().values())
    if cfg.save_weights and size >= MAX_WEIGHTS_BYTES:
        raise UserError(
            f"--save_weights: {model.num_params():,} float32 parameters make a {size / 2**20:.1f} MB file, over "
            "the 10 MB limit for committed weights: use a smaller --n_embd or --n_layer"
        )
    data_rng = np.random.default_rng([cfg.seed, 1])
    if cfg.eval_only and not (cfg.resume and run.resume_path.exists()):
        raise UserError(f"--eval_only: no checkpoint {run.resume_path}: train run {cfg.run!r} first")
    state = run.resume(model, [data_rng], iter=0, train_time=0.0)
    if dist.is_initialized():
        dist.barrier()  # every process has read the checkpoint before rank 0 may write the next one

    if cfg.eval_only:
        run.close()
        losses = estimate_loss(model, splits, cfg, state["iter"])
        result = {"iter": state["iter"], "train_loss": losses["train"], "val_loss": losses["val"]}
        result["val_loss_full"] = full_loss(model, splits["val"], cfg.block_size)
        run.say(
            f"{cfg.run} iter {state['iter']}: train loss {result['train_loss']:.4f}  val loss "
            f"{result['val_loss']:.4f}  val loss on the whole split {result['val_loss_full']:.4f}"
        )
        return model, result

    B, T, A = cfg.batch_size, cfg.block_size, cfg.gradient_accumulation_steps
    share = A // processes  # this process's micro-batches of each iteration
    mine = slice(rank * share * B, (rank + 1) * share * B)
    if not run.history:  # a fresh run: the loss of the initial weights (about ln 65 = 4.17), nanoGPT's step 0
        evaluate_and_checkpoint(run, model, splits, cfg, state)
    bar = run.bar(total=None if cfg.max_minutes else cfg.max_iters, initial=state["iter"], desc=cfg.run)
    while not finished(cfg, state):
        it = state["iter"]
        lr = learning_rate(cfg, it, state["train_time"])
        x, y = get_batch(splits["train"], A * B, T, data_rng)  # the global batch, (A B, T)
        x, y = x[mine], y[mine]  # this process's share, (share B, T)
        if share > 1:  # micro-batches (share, B, T), PyTorch only (check)
            x, y = x.reshape(share, B, T), y.reshape(share, B, T)
        t0 = time.perf_counter()
        stats = model.train_step(x, y, lr)
        state["train_time"] += time.perf_counter() - t0
        check_finite(stats["loss"], "training loss", it)
        state["iter"] = it + 1
        bar.update(1)
        if it % 10 == 0:
            bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.1e}")
            run.log({"train/loss": stats["loss"], "train/lr": lr, "train/grad_norm": stats["grad_norm"]}, it)
        if state["iter"] % cfg.eval_interval == 0 or finished(cfg, state):
            evaluate_and_checkpoint(run, model, splits, cfg, state)
            if stop_at is not None and state["iter"] >= stop_at:
                bar.close()
                run.close()
                return model, None
    bar.close()
    if dist.is_initialized():
        spread = model.weight_spread()
        run.say(f"{cfg.run}: the weights of the {processes} processes differ by at most {spread:.1e}")
    if not run.main:  # rank 0 alone scores the whole split and writes the record
        run.close()
        return model, None

    history, iters = run.history, state["iter"]
    val_loss_full = full_loss(model, splits["val"], T)
    metrics = {
        "val_loss": history["val_loss"][-1],
        "val_loss_full": val_loss_full,
        "train_loss": history["train_loss"][-1],
        "iters": iters,
        "tokens_per_s": round(iters * A * B * T / max(state["train_time"], 1e-9), 1),
        "train_time_s": round(state["train_time"], 1),
    }
    if cfg.save_weights:  # .npz {weights, "meta"} or .pt {"model": weights, "meta"}, as char_rnn's
        meta = {"impl": cfg.impl, "run": cfg.run, "model": model_name(cfg), "vocab": vocab}
        meta |= {"config": gpt_fields(cfg, len(vocab)), "params": model.num_params()}
        meta = json.dumps(meta | {"val_loss_full": val_loss_full})
        weights = model.weights()
        run.save_weights(
            {**weights, "meta": meta} if cfg.impl == "numpy" else {"model": weights, "meta": meta}
        )
    notes = NOTES + (f"; trained by {processes} processes (torchrun, DDP)" if processes > 1 else "")
    path = run.finish(model, model_name=model_name(cfg), dataset=DATASET, metrics=metrics, notes=notes)
    shown = path.relative_to(PROJECT_DIR.parent) if path.is_relative_to(PROJECT_DIR.parent) else path
    run.say(
        f"{cfg.run}: val loss {metrics['val_loss']:.4f} (whole split {val_loss_full:.4f}) nats/char after "
        f"{iters} iterations, {state['train_time']:.0f} s training ({run.elapsed():.0f} s wall) -> {shown}"
    )
    return model, path


def main(argv):
    cfg = check(parse_config(Config(), argv), int(os.environ.get("WORLD_SIZE", "1")))  # before joining
    out_dir = os.environ.get("REPRO_OUT_DIR")
    if "WORLD_SIZE" not in os.environ or cfg.impl == "numpy":
        return train(cfg, out_dir)
    return train_under_torchrun(train, cfg, out_dir)  # nanoGPT's DDP, even for one process


if __name__ == "__main__":
    run_main(main)
