"""Recompute the whole-split validation loss of every committed weights file in nanogpt/checkpoints/ and print it
beside the one its run record claims (`make eval-nanogpt`). Exits 1 when a loss differs by more than 1e-3
nats/char.

    python -m nanogpt.evaluate [--threads=N] [--tolerance=1e-3]

The figure is the record's val_loss_full, measured by train.full_loss on a train.py model adapter built from the
record's config: the 111,540-character validation split cut into non-overlapping windows of block_size
predictions, each read from a fresh context. (The headline val_loss is nanoGPT's estimate over random batches; it
is not what this checks.)
"""

import dataclasses
import sys

from nanogpt.sample import read_weights
from nanogpt.train import Config, build, check, full_loss
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate
from shared.text import shakespeare_splits
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-3  # largest accepted |measured - claimed| validation loss (nats/char)


def validation_loss(weights_path, record):
    """The whole-split validation loss (nats/char) of one weights file, in the model its record's config builds."""
    fields = {f.name for f in dataclasses.fields(Config)}
    config = {k: v for k, v in record["config"].items() if k in fields}
    cfg = check(dataclasses.replace(Config(), **{**config, "device": "cpu"}))
    weights, meta = read_weights(weights_path)
    data = shakespeare_splits()
    if meta["vocab"] != data["vocab"]:
        raise UserError(f"{weights_path}: its vocabulary differs from tiny Shakespeare's sorted(set(text))")
    model = build(cfg, len(data["vocab"]))
    model.set_weights(weights)
    return full_loss(model, data["val"], cfg.block_size)


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("nanogpt", "val_loss_full", validation_loss, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
