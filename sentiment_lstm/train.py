"""Train an LSTM sentiment classifier on IMDB, from scratch in NumPy or in PyTorch, with one loop.

    python -m sentiment_lstm.train --config=sentiment_lstm/configs/lstm_numpy.py --threads=1    # the NumPy LSTM
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/lstm_numpy.py \\
        --config=sentiment_lstm/configs/lstm_twin.py --threads=1                               # its torch twin
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/bilstm.py --threads=1       # the BiLSTM
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm.py                   # MiniLM + LoRA
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/fast.py                     # a quick look

Data (sentiment_lstm/data.py): the 25,000 training reviews less a seeded validation split of `val_size`, the
vocabulary from the training portion only, reviews truncated to `max_len` tokens (`keep`: which end), batches
bucketed by length. Both implementations run this loop on the same batches (one seeded NumPy generator); the
torch twin of the NumPy model (--impl=torch --model=lstm) starts from the NumPy model's initial weights.
A batch goes to the model as x = (ids (B, T), lengths (B,)) (twin.py). --model=minilm fine-tunes the pretrained
MiniLM instead (finetune.py: the model, its WordPiece ids cut to max_len positions, LoRA), in this same loop.

Early stopping: after every epoch the model is scored on the validation split and the best weights so far (by
validation accuracy) are kept; training stops after `patience` epochs without a better one, after `epochs`, or
when `max_minutes` of training time (the steps only) are spent, mid-epoch if need be. The best weights are then
restored and scored once on the 25,000 test reviews. The learning rate warms up for `warmup_steps`, then follows
a cosine to `min_lr` over the larger of the fractions of the epoch and time budgets used (schedule=constant:
none). Each epoch ends with an atomic checkpoint (shared.run): rerunning the same command resumes exactly
(--resume=false starts over). A finished run writes sentiment_lstm/results/<run>.json, TensorBoard scalars
under runs/sentiment_lstm/<run>, and with --save_weights the weights, vocabulary and settings to
sentiment_lstm/checkpoints/<run>.npz|.pt. --threads=N: NumPy's BLAS and torch (0: the libraries' choice).
"""

import dataclasses
import json
import time

import numpy as np
import torch

from sentiment_lstm import data as sdata
from sentiment_lstm.twin import build
from shared import optim
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.nn import log_softmax
from shared.run import Run

MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
MODELS = ("lstm", "bilstm", "minilm")
POOLS = {"lstm": ("mean", "last"), "bilstm": ("mean", "max", "meanmax", "last")}  # minilm: BERT's pooler
NOTES = (
    "test_acc/test_loss: the best weights by validation accuracy, scored once on all 25,000 test reviews; "
    "train_time_s counts training steps only (the time budget's clock), wall_time_s includes evaluation"
)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<model name>"
    impl: str = "numpy"  # numpy | torch
    model: str = "lstm"  # lstm (NumPy, or its torch twin) | bilstm (torch: packed, bidirectional) | minilm
    embed: int = 64  # embedding size
    hidden: int = 128  # LSTM units (per direction)
    layers: int = 1  # bilstm only: stacked layers
    pool: str = "mean"  # over the valid steps: mean | last (both models), max | meanmax (bilstm)
    packed: bool = (
        False  # bilstm: pack_padded_sequence (true) or the same function on the padded batch (false)
    )
    dropout: float = 0.0  # on the embedded inputs and the pooled vector (and between bilstm layers)
    min_count: int = 2  # vocabulary: tokens seen at least this often in the training portion ...
    max_vocab: int = 20000  # ... at most this many entries, <pad> and <unk> included
    max_len: int = 256  # tokens kept of a review (0 = all; minilm: WordPiece positions, 8 to 512) ...
    keep: str = "last"  # ... last | first | both (head + tail)
    val_size: int = sdata.VAL_SIZE  # validation reviews held out of the 25,000 training reviews (seeded)
    batch_size: int = 32
    epochs: int = 10
    patience: int = 2  # early stopping: epochs without a better validation accuracy (0 = off)
    max_minutes: float = 0.0  # training-time budget (0 = none)
    lr: float = 2e-3  # Adam, peak learning rate
    min_lr: float = 2e-4  # end of the cosine
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | constant
    grad_clip: float = 5.0  # global gradient-norm clipping, 0 = off
    weight_decay: float = 0.0  # Adam's L2 term
    train_subset: int = 0  # seeded subsets for quick looks and tests (0 = all): training reviews ...
    eval_subset: int = 0  # ... and validation and test reviews
    eval_batch: int = 128
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "cpu"  # torch only: cpu | auto | cuda | mps
    precision: str = (
        "fp32"  # torch only: fp32 | bf16 (autocast for the training step; minilm: evaluation too)
    )
    lora: bool = True  # minilm: LoRA adapters + pooler + classifier (true) or every weight (false)
    lora_r: int = 8  # minilm: rank of the updates ...
    lora_alpha: float = 16.0  # ... their scale alpha / r ...
    lora_dropout: float = 0.1  # ... dropout on their inputs ...
    lora_targets: str = "query,value"  # ... and the layers of every block they update (finetune.LORA_TARGETS)
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the best weights in sentiment_lstm/checkpoints/<run>.npz|.pt (< 10 MB)
    resume: bool = True
    progress: bool = True


def check(cfg):
    choices = {
        "impl": ("numpy", "torch"),
        "model": MODELS,
        "keep": sdata.KEEP,
        "schedule": ("cosine", "constant"),
        "precision": ("fp32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    if cfg.model in POOLS and cfg.pool not in POOLS[cfg.model]:
        raise UserError(f"--pool={cfg.pool}: --model={cfg.model} pools by {', '.join(POOLS[cfg.model])}")
    for name in ("embed", "hidden", "layers", "batch_size", "epochs", "eval_batch", "val_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    for name in ("patience", "max_len", "warmup_steps", "train_subset", "eval_subset", "threads"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError(f"--dropout={cfg.dropout}: must be in [0, 1)")
    if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0 or cfg.max_minutes < 0:
        raise UserError("need --lr > 0 and --min_lr, --grad_clip, --weight_decay, --max_minutes >= 0")
    if cfg.model == "minilm":
        from sentiment_lstm.finetune import check_minilm

        check_minilm(cfg)
    if cfg.impl == "numpy" and cfg.model != "lstm":
        raise UserError(
            f"--model={cfg.model} exists only in PyTorch: use --impl=torch (NumPy has --model=lstm)"
        )
    if cfg.impl == "numpy" and cfg.device not in ("cpu", "auto"):
        raise UserError(f"--device={cfg.device}: the NumPy implementation runs on the CPU only")
    if cfg.impl == "numpy" and cfg.precision != "fp32":
        raise UserError(f"--precision={cfg.precision}: the NumPy implementation computes in fp32 only")
    if not cfg.run:
        default = model_name(cfg) if cfg.model == "minilm" else f"{cfg.impl}-{model_name(cfg)}"
        cfg = dataclasses.replace(cfg, run=default)
    return cfg


def model_name(cfg):
    """'lstm-mean-e64-h128', 'bilstm-meanmax-e96-h128x1', 'minilm-l6-lora-r8-len256'."""
    if cfg.model == "minilm":
        return f"minilm-l6-{f'lora-r{cfg.lora_r}' if cfg.lora else 'full'}-len{cfg.max_len}"
    name = f"{cfg.model}-{cfg.pool}-e{cfg.embed}-h{cfg.hidden}"
    return name + (f"x{cfg.layers}" if cfg.model == "bilstm" else "")


def learning_rate(cfg, step, total_steps, train_time):
    """Linear warm-up to cfg.lr, then a cosine to min_lr over the larger used fraction of the two budgets."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    used = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    if cfg.max_minutes:
        used = max(used, train_time / (60.0 * cfg.max_minutes))
    return optim.cosine_lr(cfg.lr, min(1.0, used), 1.0, min_lr=cfg.min_lr)


def evaluate(model, split, batch_size):
    """(mean cross-entropy, accuracy) of a model on a data.Split, in batches sorted by length."""
    nll, correct = 0.0, 0
    for idx in sdata.length_batches(split.lengths, batch_size):
        x, y = split.batch(idx)
        logp = log_softmax(np.asarray(model.logits(x), dtype=np.float64))
        nll -= float(logp[np.arange(len(y)), y].sum())
        correct += int((logp.argmax(1) == y).sum())
    return nll / len(split), correct / len(split)


def train(cfg, out_dir=None, stop_at=None):
    """Train per cfg; returns (model adapter, run record path). out_dir (tests) replaces sentiment_lstm/ as the
    home of checkpoints/, results/ and runs/. `stop_at` (tests of resuming): leave after the checkpoint of that
    epoch, as if interrupted, and return (model, None)."""
    cfg = check(cfg)
    run = Run("sentiment_lstm", cfg, out_dir)
    if cfg.model == "minilm":  # the pretrained encoder and its own tokenizer; no vocabulary of ours
        from sentiment_lstm import finetune

        model, vocab = finetune.MiniLMClassifier(cfg), None
        data = finetune.encoded_splits(cfg, model.tokenizer)
        smaller = "use --lora=true, or --save_weights=false (the run record's command re-creates the model)"
    else:
        keys = (
            "val_size",
            "seed",
            "min_count",
            "max_vocab",
            "max_len",
            "keep",
            "train_subset",
            "eval_subset",
        )
        data = sdata.prepare(**{k: getattr(cfg, k) for k in keys})
        vocab = data["vocab"]
        model = build(cfg, len(vocab))
        smaller = "use a smaller --max_vocab, --embed or --hidden"
    train_split, val_split = data["train"], data["val"]
    size = sum(v.nbytes for v in model.weights().values())  # what --save_weights writes (minilm: the delta)
    if cfg.save_weights and size >= MAX_WEIGHTS_BYTES:
        raise UserError(
            f"--save_weights: {size // 4:,} float32 parameters make a {size / 2**20:.1f} MB file, over the 10 MB "
            f"limit for committed weights: {smaller}"
        )
    data_rng = np.random.default_rng([cfg.seed, 1])  # the batches of both implementations
    steps_per_epoch = -(-len(train_split) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    fresh = dict(epoch=0, step=0, train_time=0.0, train_tokens=0, best_val_acc=-1.0, best_epoch=0)
    state = run.resume(model, [data_rng], **fresh)
    if state["epoch"] == 0:
        if vocab is None:
            cut = np.mean([n == cfg.max_len for n in train_split.lengths])
            words = f"{size // 4:,} trained, {torch.get_num_threads()} threads; {cut:.0%} of the reviews cut to {cfg.max_len} positions"
        else:
            words = f"vocabulary {len(vocab):,}"
        run.say(
            f"{cfg.run}: {cfg.impl} {model_name(cfg)}, {model.num_params():,} params ({words}); "
            f"{len(train_split):,} training reviews ({steps_per_epoch} batches of {cfg.batch_size}), "
            f"{len(val_split):,} validation"
        )

    out_of_time = lambda: cfg.max_minutes and state["train_time"] >= 60.0 * cfg.max_minutes  # noqa: E731
    for epoch in range(state["epoch"], cfg.epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        batches = sdata.bucketed_batches(train_split.lengths, cfg.batch_size, data_rng)
        bar = run.bar(batches, desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}")
        for idx in bar:
            if out_of_time():
                break
            x, y = train_split.batch(idx)
            step = state["step"]
            lr = learning_rate(cfg, step, total_steps, state["train_time"])
            t0 = time.perf_counter()
            stats = model.train_step(x, y, lr)
            state["train_time"] += time.perf_counter() - t0
            check_finite(stats["loss"], "training loss", step)
            state.update(step=step + 1, train_tokens=state["train_tokens"] + int(x[1].sum()))
            loss_sum += stats["loss"] * len(y)
            correct, seen = correct + stats["correct"], seen + len(y)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.1e}")
                scalars = {"train/loss": stats["loss"], "train/lr": lr, "train/grad_norm": stats["grad_norm"]}
                run.log(scalars | {"train/tokens_per_s": state["train_tokens"] / state["train_time"]}, step)
        bar.close()
        if not seen:  # the budget ran out at the end of the previous epoch
            break
        val_loss, val_acc = evaluate(model, val_split, cfg.eval_batch)
        check_finite(val_loss, "validation loss", state["step"])
        row = {"epoch": epoch + 1, "step": state["step"], "lr": lr, "train_loss": loss_sum / seen}
        row |= {"train_acc": correct / seen, "val_loss": val_loss, "val_acc": val_acc}
        row |= {"train_time_s": state["train_time"], "time_s": run.elapsed()}
        run.add_history(row, state["step"], prefix="epoch/")
        run.say(
            f"{cfg.run} epoch {epoch + 1:2d}: train loss {row['train_loss']:.4f} (acc {row['train_acc']:.4f})  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  ({state['train_time']:.0f} s training, "
            f"{row['time_s']:.0f} s wall)"
        )
        if val_acc > state["best_val_acc"]:  # keep the best weights by validation accuracy
            state.update(best_val_acc=val_acc, best_epoch=epoch + 1, best_weights=model.weights())
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)  # atomic; rerunning the command resumes here
        if stop_at is not None and state["epoch"] >= stop_at:
            run.close()
            return model, None
        if cfg.patience and epoch + 1 - state["best_epoch"] >= cfg.patience:
            run.say(f"early stopping: no better validation accuracy for {cfg.patience} epochs")
            break
        if out_of_time():
            run.say(f"the {cfg.max_minutes:g}-minute training budget is spent")
            break

    model.set_weights(state["best_weights"])
    run.say(f"restoring the weights of epoch {state['best_epoch']}, the best on validation")
    test_loss, test_acc = evaluate(model, data["test"], cfg.eval_batch)
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": state["best_val_acc"]}
    metrics |= {"best_epoch": state["best_epoch"], "epochs_run": len(run.history["epoch"])}
    metrics |= {"steps": state["step"], "train_time_s": round(state["train_time"], 1)}
    metrics |= {"ms_per_step": round(1000 * state["train_time"] / max(1, state["step"]), 1)}
    tokens_per_s = round(state["train_tokens"] / max(1e-9, state["train_time"]))
    metrics |= {"test_size": len(data["test"])}
    if vocab is None:  # minilm: tokens are WordPiece positions, [CLS] and [SEP] included
        metrics |= {"tokens_per_s": tokens_per_s, "max_len": cfg.max_len, "threads": torch.get_num_threads()}
        metrics |= {"trainable_params": model.num_trainable()}
    else:
        metrics |= {"train_tokens_per_s": tokens_per_s, "vocab_size": len(vocab)}
    if cfg.save_weights:  # .npz {weights, meta}, .pt {"model": weights, "meta"}: what predicting needs
        if vocab is None:  # the delta and what finetune.load_finetuned needs beside it
            meta = finetune.delta_meta(cfg, model_name(cfg), test_acc)
        else:
            meta = {
                "impl": cfg.impl,
                "run": cfg.run,
                "model": model_name(cfg),
                "kind": cfg.model,
                "vocab": vocab,
            }
            meta |= {
                "config": model.net.config,
                "max_len": cfg.max_len,
                "keep": cfg.keep,
                "test_acc": test_acc,
            }
        weights, meta = model.weights(), json.dumps(meta)
        run.save_weights(
            {**weights, "meta": meta} if cfg.impl == "numpy" else {"model": weights, "meta": meta}
        )
    notes = finetune.NOTES if vocab is None else NOTES
    path = run.finish(model, model_name=model_name(cfg), dataset="imdb", metrics=metrics, notes=notes)
    run.say(
        f"{cfg.run}: test accuracy {test_acc:.4f} ({state['train_time']:.0f} s training, {tokens_per_s:,} "
        f"tokens/s) -> {path}"
    )
    return model, path


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
