"""What every training script does around its loop, written once: an output folder, resuming with a settings check,
the progress bar, console and TensorBoard scalars, the history, atomic checkpoints and the run record.

    run = Run("mlp_mnist", cfg, out_dir)                    # cfg: the script's Config (run, impl, seed, group,
    state = run.resume(model, [data_rng], epoch=0)          #      threads, resume, progress); out_dir: tests
    for epoch in range(state["epoch"], cfg.epochs):
        for i in run.bar(range(steps), desc=f"epoch {epoch + 1}"):
            stats = model.train_step(x, y, lr)              # the loop is the script's own
            run.log({"train/loss": stats["loss"]}, step)
        run.add_history({"epoch": epoch + 1, "val_acc": val_acc}, step)
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)                        # atomic; rerunning the command resumes here
    run.finish(model, model_name="mlp-800x800", dataset="mnist", metrics={"test_acc": test_acc})

This is not a Trainer: the loop (epochs and early stopping, a time budget with carried state, two optimizers)
stays in each train.py, top to bottom. Under torch.distributed only rank 0 prints, logs, checkpoints and writes
the record; every rank may resume from the checkpoint.

The model adapters the loops drive (in each project's twin.py) are named alike in every project, one interface
per kind of model; shared/adapters.py has the common part (NumpyAdapter, TorchAdapter: a network `net`, an
optimizer `opt`):
    every adapter   device; num_params(); weights() / set_weights(w) (the model's parameters and buffers);
                    state_dict() / load_state_dict(d) ({"model": ..., "optimizer": ..., more sections}: what
                    resuming needs beside the random generators); generators (NumPy Generators inside the model)
    classifier      train_step(x, y, lr) -> {"loss": mean loss, "correct": right answers in the batch};
                    logits(x) -> (N, classes), evaluation mode
    sequence model  train_step(x, y, lr) -> {"loss": ..., "grad_norm": ...} from the carried state;
                    reset_state(batch); logits(x) -> (B, T, vocab), carrying the state; carried (get / set)
"""

import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared.checkpoint import (
    check_resumable,
    load_npz,
    load_torch,
    rng_state,
    save_npz,
    save_torch,
    set_rng_state,
)
from shared.runrecord import cpu_info, describe_cpu, git_commit, write_run_record
from shared.threads import set_threads

ROOT = Path(__file__).resolve().parent.parent
# Settings that may differ between the sessions of one run: they change how it runs, not what it computes.
FREE_SETTINGS = ("resume", "progress", "threads", "save_weights")


def rank():
    """This process's rank under torch.distributed (or torchrun's RANK), 0 otherwise."""
    import sys

    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def train_under_torchrun(train, cfg, out_dir=None):
    """train(cfg, out_dir) in torchrun's process group: gloo on CPUs, nccl on CUDA with one GPU per process (by
    LOCAL_RANK). Every process waits at a barrier once its training is over: a process that tears the group down
    while another still uses it (rank 0 scoring and writing the record) can abort the other ("terminate called
    without an active exception")."""
    import torch
    import torch.distributed as dist

    from shared.seeding import pick_device

    cuda = pick_device(getattr(cfg, "device", "auto")).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        result = train(cfg, out_dir)
        dist.barrier()
        return result
    finally:
        dist.destroy_process_group()


def _threads():
    import torch

    return torch.get_num_threads()


def _unflatten(flat):
    """npz files are flat: {"model/w1": a, "meta": m} -> {"model": {"w1": a}, "meta": m}."""
    sections = {}
    for key, value in flat.items():
        head, slash, rest = key.partition("/")
        if slash:
            sections.setdefault(head, {})[rest] = value
        else:
            sections[head] = value
    return sections


def _is_arrays(value):
    """A non-empty dict of arrays or tensors (e.g. early stopping's best weights) rather than a JSON value."""
    return isinstance(value, dict) and value and all(hasattr(v, "shape") for v in value.values())


class Run:
    def __init__(self, project, cfg, out_dir=None):
        self.project, self.cfg, self.name = project, cfg, cfg.run
        self.impl = getattr(cfg, "impl", "torch")
        self.dir = Path(out_dir) if out_dir else ROOT / project  # results/ and checkpoints/ go here
        self.log_dir = self.dir / "runs" / self.name if out_dir else ROOT / "runs" / project / self.name
        self.suffix = ".npz" if self.impl == "numpy" else ".pt"
        self.resume_path = self.dir / "checkpoints" / "resume" / f"{self.name}{self.suffix}"
        self.main = rank() == 0
        settings = {k: v for k, v in vars(cfg).items() if k not in FREE_SETTINGS}
        self.settings = json.dumps(settings, sort_keys=True, default=list)
        self.history, self.logger, self.generators, self.last_step = {}, None, [], None
        set_threads(getattr(cfg, "threads", 0))
        # one entry per session: a run resumed on another machine names every machine it trained on
        self.sessions = [
            {"machine": describe_cpu({"cpu_info": cpu_info()}), "threads": _threads(), "wall_s": 0.0}
        ]
        self.commit = git_commit()  # the code this process runs, whatever is committed while it trains
        self._start, self._session_start = time.perf_counter(), 0.0

    def elapsed(self):
        """Wall-clock seconds of this run, earlier sessions included."""
        return time.perf_counter() - self._start

    def resume(self, model, generators=(), **fresh):
        """The loop state saved by the last checkpoint of this run (its weights, optimizer and `generators` put
        back in place), or `fresh` for a new run. UserError if the checkpoint was made with other settings."""
        self.generators = [*generators, *getattr(model, "generators", [])]
        state = dict(fresh)
        if getattr(self.cfg, "resume", True) and self.resume_path.exists():
            if self.impl == "numpy":
                sections = _unflatten(load_npz(self.resume_path))
            else:
                sections = load_torch(self.resume_path)
            meta = json.loads(str(sections.pop("meta")))
            check_resumable(self.resume_path, meta["settings"], self.settings)
            set_rng_state(sections.pop("rng"), self.generators)
            model.load_state_dict({k: sections.pop(k) for k in list(sections) if k not in meta["arrays"]})
            self.history = meta["history"]
            self._start -= meta["elapsed"]  # this session since Run(), plus the earlier sessions
            self._session_start = meta["elapsed"]
            self.sessions = meta.get("sessions", []) + self.sessions
            self.last_step = meta["last_step"]
            state = meta["state"] | sections
            where = ", ".join(f"{k} {state[k]}" for k in fresh if isinstance(state.get(k), int))
            self.say(f"resuming {self.name} from {where or 'its checkpoint'}")
        if self.main:
            from shared.metrics import MetricsLogger

            # purge_step drops what an interrupted session logged after its last checkpoint
            purge = self.last_step + 1 if self.last_step is not None else None
            self.logger = MetricsLogger(self.project, self.name, log_dir=self.log_dir, purge_step=purge)
        return state

    def bar(self, iterable=None, **kwargs):
        """A tqdm bar (off with --progress=false and on every rank but 0)."""
        off = not getattr(self.cfg, "progress", True) or not self.main
        return tqdm(iterable, leave=False, mininterval=1.0, disable=off, **kwargs)

    def say(self, text):
        if self.main:
            tqdm.write(text)

    def log(self, scalars, step, is_step=True):
        """TensorBoard scalars {tag: value} at `step` (NaN values are skipped). is_step=False for another x axis
        (e.g. seconds), which then does not count as the run's progress for resuming."""
        if is_step:
            self.last_step = step if self.last_step is None else max(self.last_step, step)
        if self.logger is not None:
            for tag, value in scalars.items():
                if not (isinstance(value, float) and np.isnan(value)):
                    self.logger.scalar(tag, value, step)

    def add_history(self, row, step, prefix="eval/"):
        """Append one row {name: value} to the history (the run record keeps it) and log it at `step`."""
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        axes = (
            "epoch",
            "step",
            "iter",
        )  # x axes, not scalars; lists (e.g. class counts) stay in the history only
        scalars = {prefix + k: v for k, v in row.items() if k not in axes and isinstance(v, (int, float))}
        self.log(scalars, step)

    def checkpoint(self, model, state):
        """Atomically save what resuming needs: model.state_dict(), the loop `state` (JSON values, plus dicts of
        arrays such as best weights), history, clock, settings and every random generator's state."""
        if not self.main:
            return
        arrays = {k: v for k, v in state.items() if _is_arrays(v)}
        plain = {k: v for k, v in state.items() if k not in arrays}
        meta = {"state": plain, "arrays": list(arrays), "history": self.history, "settings": self.settings}
        meta |= {"elapsed": self.elapsed(), "last_step": self.last_step, "sessions": self._session_log()}
        sections = model.state_dict() | arrays
        extra = {"meta": json.dumps(meta), "rng": rng_state(self.generators)}
        if self.impl == "numpy":
            flat = {f"{s}/{k}": v for s, part in sections.items() for k, v in part.items()}
            save_npz(self.resume_path, flat | extra)
        else:
            save_torch(self.resume_path, sections | extra)

    def _session_log(self):
        """self.sessions with this session's wall time brought up to now."""
        now = self.sessions[-1] | {"wall_s": round(self.elapsed() - self._session_start, 2)}
        return self.sessions[:-1] + [now]

    def close(self):
        """Close the TensorBoard logs (finish does it; call it when a loop leaves early)."""
        if self.logger is not None:
            self.logger.close()
            self.logger = None

    def save_weights(self, content):
        """Write the run's final weights file <dir>/checkpoints/<run>.npz|.pt (a dict of arrays, or for torch any
        weights-only object); returns its path."""
        path = self.dir / "checkpoints" / f"{self.name}{self.suffix}"
        if self.main:
            (save_npz if self.impl == "numpy" else save_torch)(path, content)
        return path

    def finish(self, model, *, model_name, dataset, metrics, notes=None, config=None):
        """Write <dir>/results/<run>.json from the metrics (NaN ones dropped), the history and the settings (the
        run's cfg, or `config` where the record keeps other ones, e.g. one run of a sweep); close the logs.
        Returns the record's path (None on ranks other than 0)."""
        self.close()
        if not self.main:
            return None
        metrics = {
            k: v for k, v in metrics.items() if v is not None and not (isinstance(v, float) and np.isnan(v))
        }
        path = write_run_record(
            project=self.project,
            run=self.name,
            impl=self.impl,
            model=model_name,
            dataset=dataset,
            metrics=metrics,
            history=self.history,
            params=model.num_params(),
            wall_time_s=self.elapsed(),
            config=self.cfg if config is None else config,
            seed=self.cfg.seed,
            group=getattr(self.cfg, "group", None),
            device=model.device,
            notes=notes,
            results_dir=self.dir / "results",
            commit=self.commit,
            sessions=self._session_log(),
        )
        return path
