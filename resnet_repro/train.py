"""Train a CIFAR-10 ResNet (or its plain counterpart) with the recipe of He et al. 2016, section 4.2.

    python -m resnet_repro.train                                       # ResNet-20, the paper's recipe
    python -m resnet_repro.train --depth=56 --run=resnet56             # ... any depth 6n + 2
    python -m resnet_repro.train --depth=56 --plain=true               # the plain counterpart
    python -m resnet_repro.train --config=resnet_repro/configs/fast.py # a few minutes' look
    python -m resnet_repro.train --impl=numpy --depth=8 --widths=8,16,32 --iterations=500   # the NumPy ResNet
    python -m resnet_repro.train --evaluate --checkpoint=resnet_repro/checkpoints/resnet20.pt

The defaults are the paper's: batch 128, SGD with momentum 0.9 and weight decay 1e-4 on every parameter, lr 0.1
divided by 10 at 32k and 48k iterations, 64k iterations, on 45k of the 50k training images (5k held out for
validation, the same split for every seed), the per-pixel mean subtracted, 4-pixel zero padding, random 32x32
crops and horizontal flips, one view of each test image (data.py). Any iteration's batch and its crops and flips
are a function of the seed and the iteration: a resumed run, and every process of a distributed one, reads
exactly the batches of an uninterrupted single process.

Every --eval_every iterations (and at the end) the model is scored on the validation and test images (float32,
evaluation mode) beside the running error of the augmented training batches since the last evaluation, which is
what the paper's Figure 6 plots, and an atomic checkpoint is written (shared.run): rerunning the same command
resumes exactly (--resume=false starts over). --session_minutes=M ends a session after M minutes of training with
a checkpoint, to go on in the next. The run record resnet_repro/results/<run>.json has test_acc and test_err (the
final weights on the 10,000 test images), train_time_s (time in training steps over all sessions; wall_time_s
adds evaluation), images/s and time_to_target_s (training time until the first evaluation at >= 91.25% test
accuracy, ResNet-20's 8.75% error in Table 6). --save_weights writes resnet_repro/checkpoints/<run>.pt|.npz;
--evaluate --checkpoint=PATH re-scores such a file against its record (results/<run>.json beside its folder; its
settings then come from the record, otherwise from the flags).

--bf16 runs the training step under bfloat16 autocast (evaluation stays float32 unless --eval_bf16), and
--channels_last (the default) stores activations NHWC, which CPUs convolve faster. --micro_batches=M computes each batch as M equal parts, each normalised by its own batch statistics,
their gradients summed (twin.py). More than one process (PyTorch; gloo on CPUs, nccl on CUDA, a GPU each):
    torchrun --standalone --nproc_per_node=2 -m resnet_repro.train --micro_batches=2     # one machine
    torchrun --nnodes=2 --node_rank=R --nproc_per_node=1 --master_addr=HOST --master_port=29500 \\
        -m resnet_repro.train --micro_batches=2                                          # machine R of 2
M must be a multiple of the N processes: each draws the global batch and takes its consecutive share of M / N
micro-batches, so N processes compute what one process computes with the same settings (to float round-off);
batch norm thus normalises over 128 / M images, whatever N. Each process scores a share of the evaluation images;
rank 0 alone prints, logs, checkpoints and writes the record (on several machines, resuming needs
resnet_repro/checkpoints/ on a folder they share). $REPRO_OUT_DIR (tests) stands for train()'s
out_dir; torchrun reads a --run=... flag as its own --run-path: name such a run in a --config file.
"""

import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

from resnet_repro.data import DTYPES, normalise, prepare_data, training_batch
from resnet_repro.model import PAPER_DEPTHS, blocks_per_stage, model_name
from resnet_repro.twin import build
from shared.cli import UserError, check_finite, run_main
from shared.config import check_choices, parse_config
from shared.nn import log_softmax
from shared.run import Run, train_under_torchrun

TARGET_TEST_ACC = 0.9125  # ResNet-20's 8.75% test error in Table 6
NOTES = (
    "test_acc/test_err: the final weights on the test images, one view each, float32; train_err: the running "
    "error of the augmented training batches of the last evaluation interval (training mode, before each "
    "update), as Figure 6 plots it; train_time_s: time in training steps (batches included) over all sessions; "
    "time_to_target_s: training time to the first evaluation at >= 91.25% test accuracy"
)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<model>", e.g. torch-resnet20
    impl: str = "torch"  # torch | numpy (scratch.ResNet: one process, no bf16, no channels_last)
    depth: int = 20  # 6n + 2: 20, 32, 44, 56, 110 in Table 6
    plain: bool = False  # the plain counterpart: the same layers, no shortcuts
    widths: tuple = (16, 32, 64)  # filters of the three stages
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4  # L2 on every parameter, as torch.optim.SGD's weight_decay
    iterations: int = 64000
    milestones: tuple = (32000, 48000)  # the lr is multiplied by lr_decay at each
    lr_decay: float = 0.1
    warmup_iterations: int = 0  # ResNet-110: warmup_lr first (the paper: until the error is below 80%)
    warmup_lr: float = 0.01
    padding: int = 4  # of the random crops (0: none)
    flip: bool = True
    val_size: int = 5000  # held out of the training images
    split_seed: int = 0  # draws the validation split (and --train_subset), the same for every --seed
    train_subset: int = 0  # this many seeded training images before the split (0 = all 50,000)
    test_subset: int = 0  # score this many seeded test images (0 = all 10,000)
    eval_every: int = 2000  # iterations between evaluations (and checkpoints)
    eval_batch: int = 500
    micro_batches: int = 1  # parts of a batch, each with its own batch statistics; a multiple of processes
    bf16: bool = False  # torch: bfloat16 autocast in the training step
    channels_last: bool = True  # torch: NHWC memory layout (the same model, faster on CPUs)
    eval_bf16: bool = False  # torch: evaluate under bfloat16 autocast too
    dtype: str = "float32"  # float32 | float64 (equality checks)
    session_minutes: float = 0.0  # end this session after so many minutes of training (0 = never)
    evaluate: bool = False  # score --checkpoint against its run record instead of training
    checkpoint: str = ""  # a weights file written with --save_weights
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "auto"  # torch: auto | cpu | cuda | mps
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in resnet_repro/checkpoints/<run>.pt|.npz
    resume: bool = True
    progress: bool = True


COMMAND_ONLY = dict(session_minutes=0.0, evaluate=False, checkpoint="")  # how a command runs, not the run


def check(cfg, processes=1):
    """Validate cfg for a run on `processes` processes and fill in the run name; UserError on a bad setting."""
    check_choices(cfg, {"impl": ("torch", "numpy"), "dtype": tuple(DTYPES)})
    try:
        blocks_per_stage(cfg.depth)
    except ValueError:
        raise UserError(f"--depth={cfg.depth}: not 6n + 2 (n >= 1); Table 6 has {PAPER_DEPTHS}") from None
    widths, milestones = (
        tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in (cfg.widths, cfg.milestones)
    )
    if len(widths) != 3 or not all(isinstance(w, int) and w > 0 for w in widths):
        raise UserError(f"--widths={cfg.widths}: three positive integers, e.g. --widths=16,32,64")
    if not all(isinstance(m, int) and m > 0 for m in milestones) or list(milestones) != sorted(milestones):
        raise UserError(
            f"--milestones={cfg.milestones}: increasing iterations, e.g. --milestones=32000,48000"
        )
    cfg = dataclasses.replace(cfg, widths=widths, milestones=milestones)
    if min(cfg.batch_size, cfg.iterations, cfg.eval_every, cfg.eval_batch, cfg.micro_batches) < 1:
        raise UserError(
            "--batch_size, --iterations, --eval_every, --eval_batch, --micro_batches must be >= 1"
        )
    if (
        min(cfg.lr, cfg.warmup_lr, cfg.lr_decay) <= 0
        or cfg.lr_decay > 1
        or min(cfg.momentum, cfg.weight_decay) < 0
    ):
        raise UserError("need --lr, --warmup_lr > 0, 0 < --lr_decay <= 1, --momentum, --weight_decay >= 0")
    if min(cfg.val_size, cfg.train_subset, cfg.test_subset, cfg.padding, cfg.warmup_iterations) < 0:
        raise UserError("sizes, --padding and --warmup_iterations cannot be negative")
    if cfg.train_subset > 50000 or cfg.test_subset > 10000 or cfg.val_size >= (cfg.train_subset or 50000):
        raise UserError(
            "need --train_subset <= 50000, --test_subset <= 10000, --val_size below the training set"
        )
    if cfg.batch_size % cfg.micro_batches:
        raise UserError(
            f"--batch_size={cfg.batch_size} is not a multiple of --micro_batches={cfg.micro_batches}"
        )
    if cfg.micro_batches % processes:
        raise UserError(
            f"--micro_batches={cfg.micro_batches} is not a multiple of the {processes} processes (each takes "
            f"an equal share, normalised by its own batch statistics): e.g. --micro_batches={processes}"
        )
    if cfg.impl == "numpy" and (processes > 1 or cfg.micro_batches > 1):
        raise UserError("--impl=numpy steps on one batch in one process: no torchrun, no --micro_batches")
    if cfg.impl == "numpy" and (cfg.bf16 or cfg.eval_bf16 or cfg.device not in ("auto", "cpu")):
        raise UserError("--impl=numpy computes in float32 or float64 on the CPU: no --bf16, --eval_bf16")
    if (cfg.bf16 or cfg.eval_bf16) and cfg.dtype == "float64":
        raise UserError("--bf16 and --eval_bf16 autocast float32 weights: use --dtype=float32")
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg.depth, cfg.plain, cfg.widths)}")
    return cfg


def learning_rate(cfg, it):
    """The rate of iteration `it` (from 0): warmup_lr during the warm-up, then lr times lr_decay per milestone
    reached (the paper: 0.1, 0.01 from 32k, 0.001 from 48k)."""
    if it < cfg.warmup_iterations:
        return cfg.warmup_lr
    return cfg.lr * cfg.lr_decay ** sum(it >= m for m in cfg.milestones)


def evaluate(model, images, labels, mean, cfg):
    """(mean cross-entropy, error) on uint8 images, each process scoring a contiguous share; nans if empty."""
    if not len(images):
        return float("nan"), float("nan")
    processes, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    share = -(-len(images) // processes)
    end = min((rank + 1) * share, len(images))
    loss_sum = wrong = 0.0
    for a in range(rank * share, end, cfg.eval_batch):
        b = min(a + cfg.eval_batch, end)
        logits = model.logits(normalise(images[a:b], mean, DTYPES[cfg.dtype])).astype(np.float64)
        loss_sum -= log_softmax(logits)[np.arange(b - a), labels[a:b]].sum()
        wrong += int((logits.argmax(1) != labels[a:b]).sum())
    sums = torch.tensor([loss_sum, wrong], dtype=torch.float64, device=model.device)  # nccl: on the GPU
    if dist.is_initialized():
        dist.all_reduce(sums)
    loss, error = (sums / len(images)).tolist()
    return loss, error


def evaluate_and_checkpoint(run, model, data, cfg, state, lr):
    """Score val and test, add a history row with the running training loss and error since the last one, and
    checkpoint."""
    it, (loss_sum, correct, count) = state["iter"], state["window"]
    val_loss, val_err = evaluate(model, *data["val"], data["mean"], cfg)
    test_loss, test_err = evaluate(model, *data["test"], data["mean"], cfg)
    check_finite(test_loss, "test loss", it)
    if state["time_to_target"] is None and 1 - test_err >= TARGET_TEST_ACC:
        state["time_to_target"] = state["train_time"]
    row = {"iter": it, "lr": lr, "train_loss": loss_sum / count, "train_err": 1 - correct / count}
    row |= {"val_loss": val_loss, "val_err": val_err, "test_loss": test_loss, "test_err": test_err}
    row |= {"train_time_s": state["train_time"], "time_s": run.elapsed()}
    run.add_history(row, it)
    run.say(
        f"{cfg.run} iter {it:6d}: train err {row['train_err']:.2%} (augmented)  val err {val_err:.2%}  "
        f"test err {test_err:.2%}  lr {lr:g}  ({state['train_time']:.0f} s training, {row['time_s']:.0f} s wall)"
    )
    state["window"] = [0.0, 0, 0]
    run.checkpoint(model, state)


def session_over(cfg, started, device):
    """This session has trained --session_minutes (the processes agree: the slowest clock decides)."""
    over = torch.tensor(float(time.perf_counter() - started >= 60 * cfg.session_minutes), device=device)
    if dist.is_initialized():
        dist.all_reduce(over, op=dist.ReduceOp.MAX)
    return bool(over)


def train(cfg, out_dir=None, stop_at=None):
    """Train per cfg; returns (model adapter, run record path; None on ranks other than 0). out_dir (tests)
    replaces resnet_repro/ as the home of checkpoints/, results/ and runs/. stop_at (tests): leave after the
    checkpoint at that iteration, as if interrupted, and return (model, None)."""
    processes, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    cfg = check(cfg, processes)
    run = Run("resnet_repro", dataclasses.replace(cfg, **COMMAND_ONLY), out_dir)
    data = prepare_data(cfg)
    model = build(cfg)
    if dist.is_initialized():
        model.distribute()
    state = run.resume(model, iter=0, train_time=0.0, sessions=0, window=[0.0, 0, 0], time_to_target=None)
    state["sessions"] += 1
    if dist.is_initialized():  # every process has read the checkpoint before rank 0 may write the next one
        resumed_at = torch.tensor([state["iter"], -state["iter"]], device=model.device)
        dist.all_reduce(resumed_at, op=dist.ReduceOp.MAX)  # the latest and the earliest iteration resumed at
        if resumed_at[0] != -resumed_at[1]:
            raise UserError(
                f"the processes resumed {cfg.run} at different iterations: on several machines, "
                f"{run.resume_path.parent} must be one shared folder (or pass --resume=false)"
            )
    n_train, name = len(data["train"][0]), model_name(cfg.depth, cfg.plain, cfg.widths)
    if n_train < cfg.batch_size:
        raise UserError(f"--batch_size={cfg.batch_size} is more than the {n_train} training images")
    if state["iter"] == 0:
        run.say(
            f"{cfg.run}: {cfg.impl} {name}, {model.num_params():,} params; {n_train:,} training, "
            f"{len(data['val'][0]):,} val, {len(data['test'][0]):,} test images; {cfg.iterations:,} iterations "
            f"of {cfg.batch_size} ({cfg.iterations * cfg.batch_size / n_train:.1f} epochs); {processes} process(es)"
        )
    started = time.perf_counter()
    bar = run.bar(total=cfg.iterations, initial=state["iter"], desc=cfg.run)
    while state["iter"] < cfg.iterations:
        it = state["iter"]
        lr = learning_rate(cfg, it)
        t0 = time.perf_counter()
        x, y = training_batch(cfg, data, it, rank, processes)  # this process's micro-batches
        stats = model.train_step(x, y, lr)  # sums over the global batch
        state["train_time"] += time.perf_counter() - t0
        check_finite(stats["loss_sum"], "training loss", it)
        state["window"] = [w + stats[k] for w, k in zip(state["window"], ("loss_sum", "correct", "count"))]
        state["iter"] = it + 1
        bar.update(1)
        if it % 50 == 0:
            run.log({"train/loss": stats["loss_sum"] / stats["count"], "train/lr": lr}, it)
        if state["iter"] % cfg.eval_every == 0 or state["iter"] == cfg.iterations:
            evaluate_and_checkpoint(run, model, data, cfg, state, lr)
            if stop_at is not None and state["iter"] >= stop_at:
                break
        elif cfg.session_minutes and it % 20 == 0 and session_over(cfg, started, model.device):
            run.checkpoint(model, state)
            run.say(
                f"{cfg.run}: session over at iteration {state['iter']:,}: rerun the same command to go on"
            )
            break
    bar.close()
    if state["iter"] < cfg.iterations:  # left early: stop_at, or the session is over
        run.close()
        return model, None
    if dist.is_initialized():
        spread = model.weight_spread()  # a collective: every process takes part
        run.say(f"{cfg.run}: the weights of the {processes} processes differ by at most {spread:.1e}")
    if not run.main:  # rank 0 alone writes the record
        run.close()
        return model, None

    last = {k: v[-1] for k, v in run.history.items()}
    metrics = {"test_acc": 1 - last["test_err"], "test_err": last["test_err"], "test_loss": last["test_loss"]}
    metrics |= {"val_acc": 1 - last["val_err"], "val_err": last["val_err"], "train_err": last["train_err"]}
    metrics |= {"iterations": state["iter"], "epochs": round(state["iter"] * cfg.batch_size / n_train, 2)}
    metrics |= {"train_time_s": round(state["train_time"], 3), "sessions": state["sessions"]}
    metrics["images_per_s"] = round(state["iter"] * cfg.batch_size / max(state["train_time"], 1e-9), 1)
    metrics |= {"time_to_target_s": state["time_to_target"], "test_size": len(data["test"][0])}
    if cfg.save_weights:  # the state dict and what it is: evaluate.py checks the architecture before loading
        meta = json.dumps({"impl": cfg.impl, "run": cfg.run, "model": name, "test_acc": metrics["test_acc"]})
        weights = model.weights()
        run.save_weights(
            {**weights, "meta": meta} if cfg.impl == "numpy" else {"model": weights, "meta": meta}
        )
    notes = NOTES + (f"; trained by {processes} processes (torchrun, DDP)" if processes > 1 else "")
    path = run.finish(model, model_name=name, dataset="cifar10", metrics=metrics, notes=notes)
    run.say(
        f"{cfg.run}: test error {metrics['test_err']:.2%} after {state['iter']:,} iterations, "
        f"{state['train_time']:.0f} s training ({run.elapsed():.0f} s wall, "
        f"{metrics['images_per_s']:.0f} images/s) -> {path}"
    )
    return model, path


def main(argv):
    cfg = parse_config(Config(), argv)
    if cfg.evaluate:
        from resnet_repro.evaluate import evaluate_checkpoint  # evaluate.py imports this module

        result = evaluate_checkpoint(cfg)
        if result["reproduced"] is False:
            sys.exit(1)
        return result
    cfg = check(cfg, int(os.environ.get("WORLD_SIZE", "1")))  # before joining a process group
    out_dir = os.environ.get("REPRO_OUT_DIR")
    if "WORLD_SIZE" not in os.environ:
        return train(cfg, out_dir)
    return train_under_torchrun(train, cfg, out_dir)


if __name__ == "__main__":
    run_main(main)
