"""Re-evaluate the committed weights in mlp_mnist/checkpoints/ on the MNIST test set and print each figure beside
the one its run record claims (`make eval-mlp_mnist`). Exits non-zero when a figure does not reproduce."""

import dataclasses
import json
import sys
from pathlib import Path

from mlp_mnist.train import Config, build, check, to_inputs
from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.data import load_mnist

PROJECT_DIR = Path(__file__).resolve().parent


def evaluate_weights(weights_path):
    """(measured test accuracy, claimed test accuracy) for one committed weights file."""
    record_path = PROJECT_DIR / "results" / f"{weights_path.stem}.json"
    if not record_path.exists():
        raise UserError(f"{weights_path} has no run record {record_path.name}: cannot tell what it claims")
    record = json.loads(record_path.read_text())
    fields = {f.name for f in dataclasses.fields(Config)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    cfg = check(dataclasses.replace(Config(), **{**config, "device": "cpu"}))
    impl = build(cfg)
    impl.set_weights(load_npz(weights_path) if weights_path.suffix == ".npz" else load_torch(weights_path))
    (_, _), (x_test, y_test) = load_mnist()
    _, acc = impl.evaluate(to_inputs(x_test, cfg), y_test)
    return acc, record["metrics"]["test_acc"]


def main(argv):
    paths = sorted(p for p in (PROJECT_DIR / "checkpoints").glob("*") if p.suffix in (".npz", ".pt"))
    if not paths:
        raise UserError("no committed weights in mlp_mnist/checkpoints/: run 'make mlp_mnist' first")
    failures = 0
    for path in paths:
        measured, claimed = evaluate_weights(path)
        ok = abs(measured - claimed) < 1e-4
        failures += not ok
        print(
            f"{path.name:40s} test_acc {measured:.4f}   run record claims {claimed:.4f}   "
            f"{'reproduced' if ok else 'MISMATCH'}"
        )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    run_main(main)
