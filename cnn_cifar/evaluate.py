"""Re-evaluate the committed weights in cnn_cifar/checkpoints/ on the CIFAR-10 test set and print each test
accuracy beside the one its run record claims (`make eval-cnn_cifar`). Exits 1 when one does not reproduce.

    python -m cnn_cifar.evaluate [--threads=N] [--tolerance=1e-4]

Every <run>.npz / <run>.pt needs cnn_cifar/results/<run>.json (shared.reevaluate runs the loop). Weights
written by cnn_cifar.train (NumPy or PyTorch SimpleCNN, LeNet-style) are rebuilt from the record's config and
evaluated on the same test images (the whole test set, or the record's seeded --test_subset); weights written
by cnn_cifar.fast94 are rebuilt with its `load_weights` and evaluated with the test-time augmentation the
record states. Anything else is skipped with a note.
"""

import dataclasses
import sys

import numpy as np

from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-4  # largest accepted |measured - claimed| test accuracy


def kind_of(record):
    """'train' (cnn_cifar.train), 'fast94' or None (not re-evaluable here)."""
    config = record.get("config") or {}
    if config.get("impl") in ("numpy", "torch") and config.get("model") in ("simple", "lenet"):
        return "train"
    if record.get("group") == "fast94" or str(record.get("model", "")).startswith("airbench"):
        return "fast94"
    return None


def train_config(record):
    """The cnn_cifar.train Config a run record was made with (unknown or obsolete keys dropped), on CPU."""
    from cnn_cifar.train import Config, check

    fields = {f.name for f in dataclasses.fields(Config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    values.update(device="cpu", threads=0, progress=False)
    return check(dataclasses.replace(Config(), **values))


def evaluate_trained(weights_path, record):
    """Test accuracy of a cnn_cifar.train run's weights, on the test images its record was scored on."""
    from cnn_cifar.train import build, evaluate, prepare_data

    cfg = train_config(record)
    model = build(cfg)
    model.set_weights(load_npz(weights_path) if weights_path.suffix == ".npz" else load_torch(weights_path))
    x_test, y_test = prepare_data(cfg)["test"]
    return evaluate(model, x_test, y_test, cfg)[1]


def evaluate_fast94(weights_path, record):
    """Test accuracy of cnn_cifar.fast94's weights on all 10,000 test images, with the record's TTA level."""
    from cnn_cifar import fast94
    from cnn_cifar.augment import to_nchw
    from shared.data import load_cifar10

    config = record["config"]
    model = fast94.load_weights(weights_path)
    _, (x_test, y_test) = load_cifar10()
    kwargs = dict(tta=config["tta"], precision=config["precision"], channels_last=config["channels_last"])
    return fast94.evaluate(model, to_nchw(x_test), np.array(y_test), **kwargs)[0]


def measure(weights_path, record):
    """shared.reevaluate's `measure`: the test accuracy of one weights file, None if it cannot be rebuilt."""
    kind = kind_of(record)
    if kind is None:
        return None
    return (evaluate_trained if kind == "train" else evaluate_fast94)(weights_path, record)


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("cnn_cifar", "test_acc", measure, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
