"""Run records: one JSON file per finished training run, the only source of the numbers in the reports.

`<project>/results/<run>.json` holds what the run measured (metrics, history), what it was (impl, model,
params, config, seed) and how to reproduce it (command, git commit, environment).
"""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from shared.checkpoint import _atomic_write

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line():
    """The command that reproduces this process, as a user would type it from the repository root."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and Path(argv[0]).name.startswith("python"):
        argv[0] = "python"
    return " ".join(shlex.quote(a) for a in argv)


def environment(device="cpu"):
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else None,
        "platform": platform.platform(),
    }


def _plain(value):
    """Make numpy scalars/arrays JSON-serialisable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def write_run_record(
    project,
    run,
    impl,
    model,
    dataset,
    metrics,
    history,
    params,
    wall_time_s,
    config,
    seed,
    group=None,
    device="cpu",
    notes=None,
    results_dir=None,
):
    """Write `<project>/results/<run>.json` and return its path.

    impl: "numpy" or "torch"; metrics: final figures (accuracies as fractions, e.g. test_acc);
    history: per-epoch/per-eval figures, e.g. {"epoch": [...], "val_loss": [...]}; params: parameter count;
    config: every hyperparameter (a dict or dataclass); group: the REPORT table it belongs to.
    """
    if impl not in ("numpy", "torch"):
        raise ValueError(f"impl must be 'numpy' or 'torch', not {impl!r}")
    if hasattr(config, "__dataclass_fields__"):
        import dataclasses

        config = dataclasses.asdict(config)
    record = {
        "project": project,
        "run": run,
        "impl": impl,
        "model": model,
        "dataset": dataset,
        "group": group,
        "metrics": metrics,
        "history": history,
        "params": int(params),
        "wall_time_s": round(float(wall_time_s), 2),
        "config": config,
        "command": command_line(),
        "git_commit": _git_commit(),
        "env": environment(device),
        "seed": seed,
        "notes": notes,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    out = Path(results_dir) if results_dir else ROOT / project / "results"
    path = out / f"{run}.json"
    text = json.dumps(_plain(record), indent=1) + "\n"
    return _atomic_write(path, lambda f: f.write(text.encode()))


def load_run_records(project, results_dir=None):
    """All run records of a project, sorted by run name (other JSON files in results/ are skipped)."""
    folder = Path(results_dir) if results_dir else ROOT / project / "results"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [r for r in records if isinstance(r, dict) and {"run", "impl", "metrics"} <= r.keys()]
