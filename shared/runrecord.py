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


# Flags that change how fast this repository's kernels run (AVX-512 and bf16 matrix units).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def _amd_core(family, model):
    """AMD's microarchitecture from the cpuid family and model (Zen 4 and Zen 5 differ 2-4x in bf16 speed)."""
    if family == 26:
        return "Zen 5"
    if family == 25:
        return "Zen 3" if model < 0x10 or 0x20 <= model < 0x60 else "Zen 4"
    return None


def cpu_info():
    """{"name", "vendor", "family", "model", "stepping", "core", "flags"} from /proc/cpuinfo: the name alone
    ("AMD EPYC") is the same for every machine here, so the numbers and flags tell one from another."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break
    except OSError:
        pass
    number = lambda key: int(fields[key]) if fields.get(key, "").isdigit() else None  # noqa: E731
    family, model = number("cpu family"), number("model")
    flags = set(fields.get("flags", "").split())
    vendor = fields.get("vendor_id")
    return {
        "name": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": vendor,
        "family": family,
        "model": model,
        "stepping": number("stepping"),
        "core": _amd_core(family, model) if vendor == "AuthenticAMD" and family else None,
        "flags": [f for f in SPEED_FLAGS if f in flags],
    }


def describe_cpu(env):
    """One line for a report: 'AMD EPYC (Zen 5, family 26 model 2; avx512f avx512_bf16)'; older records kept
    only the name."""
    info = env.get("cpu_info")
    if not info:
        return env.get("cpu", "?")
    what = [info["core"]] if info.get("core") else []
    if info.get("family") is not None:
        what.append(f"family {info['family']} model {info['model']}")
    flags = " ".join(f for f in info.get("flags", []) if f.startswith(("avx512", "amx")))
    return f"{info['name']} ({', '.join(what)}{'; ' + flags if flags else ''})"


def git_commit():
    """HEAD's hash, with "-dirty" when tracked files differ from it ("unknown" outside a git checkout)."""
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
        "cpu": cpu_info()["name"],
        "cpu_info": cpu_info(),
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
    commit=None,
    sessions=None,
):
    """Write `<project>/results/<run>.json` and return its path.

    impl: "numpy" or "torch"; metrics: final figures (accuracies as fractions, e.g. test_acc);
    history: per-epoch/per-eval figures, e.g. {"epoch": [...], "val_loss": [...]}; params: parameter count;
    config: every hyperparameter (a dict or dataclass); group: the REPORT table it belongs to; commit: the code's
    git_commit() when the run started (default: now; the two differ when commits land while a run trains);
    sessions: [{machine, threads, wall_s}] per session, kept in the record when the run took more than one.
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
        "git_commit": commit or git_commit(),
        "env": environment(device),
        "seed": seed,
        "notes": notes,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if sessions and len(sessions) > 1:
        record["sessions"] = sessions
    out = Path(results_dir) if results_dir else ROOT / project / "results"
    path = out / f"{run}.json"
    text = json.dumps(_plain(record), indent=1) + "\n"
    return _atomic_write(path, lambda f: f.write(text.encode()))


def load_run_records(project, results_dir=None):
    """All run records of a project, sorted by run name (other JSON files in results/ are skipped)."""
    folder = Path(results_dir) if results_dir else ROOT / project / "results"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [r for r in records if isinstance(r, dict) and {"run", "impl", "metrics"} <= r.keys()]
