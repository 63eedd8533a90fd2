"""Re-evaluate the committed weights in mlp_mnist/checkpoints/ on the MNIST test set and print each figure beside
the one its run record claims (`make eval-mlp_mnist`). Exits 1 when a figure does not reproduce.

    python -m mlp_mnist.evaluate [--threads=N] [--tolerance=1e-4]
"""

import dataclasses
import sys

from mlp_mnist.train import Config, build, check, evaluate, to_inputs
from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.config import parse_config
from shared.data import load_mnist
from shared.reevaluate import reevaluate
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-4  # largest accepted |measured - claimed| test accuracy


def test_accuracy(weights_path, record):
    """The test accuracy of one committed weights file, with the model rebuilt from its run record's config."""
    fields = {f.name for f in dataclasses.fields(Config)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    cfg = check(dataclasses.replace(Config(), **{**config, "device": "cpu"}))
    model = build(cfg)
    model.set_weights(load_npz(weights_path) if weights_path.suffix == ".npz" else load_torch(weights_path))
    (_, _), (x_test, y_test) = load_mnist()
    return evaluate(model, to_inputs(x_test, cfg), y_test, cfg)[1]


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("mlp_mnist", "test_acc", test_accuracy, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
