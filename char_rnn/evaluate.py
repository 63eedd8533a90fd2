"""Recompute the validation loss of every committed weights file in char_rnn/checkpoints/ and print it beside the
one its run record claims (`make eval-char_rnn`). Exits 1 when a loss differs by more than 1e-3 nats/char.

    python -m char_rnn.evaluate [--threads=N] [--tolerance=1e-3]

The loss is train.py's final metric, measured by the same code (train.stream_loss on a train.py model adapter
built from the record's config): the whole 111,540-character validation split streamed with carried state, in
as many streams as the run used (eval_batch).
"""

import dataclasses
import sys

from char_rnn.data import prepare_data, stream_loss
from char_rnn.sample import read_weights
from char_rnn.train import Config, build, check
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-3  # largest accepted |measured - claimed| validation loss (nats/char)


def validation_loss(weights_path, record):
    """The full validation loss (nats/char) of one weights file, in the model its run record's config builds."""
    fields = {f.name for f in dataclasses.fields(Config)}
    config = {k: v for k, v in record["config"].items() if k in fields}  # older records hold more settings
    cfg = check(dataclasses.replace(Config(), **{**config, "device": "cpu"}))
    weights, meta = read_weights(weights_path)
    data = prepare_data()
    if meta["vocab"] != data["vocab"]:
        raise UserError(f"{weights_path}: its vocabulary differs from tiny Shakespeare's sorted(set(text))")
    model = build(cfg, len(data["vocab"]))
    model.set_weights(weights)
    return stream_loss(model, data["val"], cfg.eval_batch, cfg.eval_seq)


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("char_rnn", "val_loss", validation_loss, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
