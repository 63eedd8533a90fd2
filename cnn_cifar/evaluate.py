"""Re-evaluate the committed weights in cnn_cifar/checkpoints/ on the CIFAR-10 test set and print each test
accuracy beside the one its run record claims (`make eval-cnn_cifar`). Exits 1 when one does not reproduce.

    python -m cnn_cifar.evaluate [--threads=1] [--tolerance=1e-4]

Every <run>.npz / <run>.pt needs cnn_cifar/results/<run>.json. Weights written by cnn_cifar.train (NumPy or
PyTorch SimpleCNN, LeNet-style) are rebuilt from the record's config and evaluated on the same test images (the
whole test set, or the record's seeded --test_subset); weights written by cnn_cifar.fast94 are rebuilt with its
`load_weights` and evaluated with the test-time augmentation the record states. Anything else is skipped with a
note.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.config import parse_config

PROJECT_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy and torch threads; 0 = the libraries' default
    tolerance: float = 1e-4  # largest accepted |measured - claimed| test accuracy


def train_config(record):
    """The cnn_cifar.train Config a run record was made with (unknown or obsolete keys dropped)."""
    from cnn_cifar.train import Config, check

    fields = {f.name for f in dataclasses.fields(Config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    values.update(device="cpu", threads=0, progress=False)
    return check(dataclasses.replace(Config(), **values))


def load_trained(weights_path, record):
    """(implementation object with the weights loaded, its checked Config) for a cnn_cifar.train run."""
    from cnn_cifar.train import build

    cfg = train_config(record)
    impl = build(cfg)
    impl.set_weights(load_npz(weights_path) if weights_path.suffix == ".npz" else load_torch(weights_path))
    return impl, cfg


def evaluate_trained(weights_path, record):
    from cnn_cifar.train import evaluate, prepare_data

    impl, cfg = load_trained(weights_path, record)
    x_test, y_test = prepare_data(cfg)["test"]
    return evaluate(impl, x_test, y_test, cfg)[1]


def evaluate_fast94(weights_path, record):
    from cnn_cifar import fast94
    from shared.data import load_cifar10

    config = record["config"]
    model = fast94.load_weights(weights_path)
    _, (x_test, y_test) = load_cifar10()
    kwargs = dict(tta=config["tta"], precision=config["precision"], channels_last=config["channels_last"])
    return fast94.evaluate(model, fast94.to_nchw(x_test), np.array(y_test), **kwargs)[0]


def kind_of(record):
    """'train' (cnn_cifar.train), 'fast94' or None (not re-evaluable here)."""
    config = record.get("config") or {}
    if config.get("impl") in ("numpy", "torch") and config.get("model") in ("simple", "lenet"):
        return "train"
    if record.get("group") == "fast94" or str(record.get("model", "")).startswith("airbench"):
        return "fast94"
    return None


def main(argv):
    from shared.threads import set_threads

    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    paths = sorted(p for p in (PROJECT_DIR / "checkpoints").glob("*") if p.suffix in (".npz", ".pt"))
    if not paths:
        raise UserError("no committed weights in cnn_cifar/checkpoints/: run 'make cnn_cifar' first")
    failures = checked = 0
    for path in paths:
        record_path = PROJECT_DIR / "results" / f"{path.stem}.json"
        if not record_path.exists():
            print(f"{path.name:36s} MISMATCH: no run record {record_path.name}, so nothing it claims")
            failures += 1
            continue
        record = json.loads(record_path.read_text())
        kind = kind_of(record)
        if kind is None:
            print(
                f"{path.name:36s} skipped: made by '{record.get('command', '?')}', which this script cannot rebuild"
            )
            continue
        measured = (evaluate_trained if kind == "train" else evaluate_fast94)(path, record)
        claimed = record["metrics"]["test_acc"]
        ok = abs(measured - claimed) <= cfg.tolerance
        failures += not ok
        checked += 1
        print(
            f"{path.name:36s} test_acc {measured:.4f}   run record claims {claimed:.4f}   "
            f"{'reproduced' if ok else 'MISMATCH'}",
            flush=True,
        )
    print(f"{checked} weights files re-evaluated, {failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    run_main(main)
