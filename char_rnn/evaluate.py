"""Recompute the validation loss of every committed weights file in char_rnn/checkpoints/ and print it beside the
one its run record claims (`make eval-char_rnn`). Exits 1 when a loss differs by more than 1e-3 nats/char.

    python -m char_rnn.evaluate

The loss is train.py's final metric: the whole 111,540-character validation split streamed with carried state,
in as many streams as the run used (eval_batch).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from char_rnn.sample import load_model  # noqa: E402
from shared.cli import UserError, run_main  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent
TOLERANCE = 1e-3


class _Evaluator:
    """The eval half of train.NumpyLM / train.TorchLM around a loaded model, for train.stream_loss."""

    def __init__(self, model):
        self.model = model
        self.torch = hasattr(model, "init_state")

    def eval_begin(self, batch):
        if self.torch:
            self.model.eval()
            self.state = self.model.init_state(batch)
        else:
            self.model.reset_state(batch)

    def eval_chunk(self, x, y):
        from char_rnn.train import masked_nll_sum

        if not self.torch:
            return masked_nll_sum(self.model.forward(x, training=False), y)
        import torch

        with torch.no_grad():
            logits, self.state = self.model(torch.from_numpy(x), self.state)
            logits = logits.double().reshape(-1, logits.shape[-1])
            return torch.nn.functional.cross_entropy(
                logits, torch.from_numpy(y).reshape(-1), ignore_index=-1, reduction="sum"
            ).item()

    def eval_end(self):
        pass


def validation_loss(model, meta):
    """The full validation loss (nats/char) of a loaded model, as train.py measures it."""
    from char_rnn.train import prepare_data, stream_loss

    data = prepare_data()
    if data["vocab"] != meta["vocab"]:
        raise UserError(f"{meta['run']}: its vocabulary differs from tiny Shakespeare's sorted(set(text))")
    return stream_loss(_Evaluator(model), data["val"], meta.get("eval_batch", 32), meta.get("eval_seq", 256))


def check_weights(weights_path, results_dir=None):
    """(measured val loss, claimed val loss) for one weights file and its run record."""
    results_dir = Path(results_dir) if results_dir else PROJECT_DIR / "results"
    record_path = results_dir / f"{weights_path.stem}.json"
    if not record_path.exists():
        raise UserError(f"{weights_path} has no run record {record_path.name}: cannot tell what it claims")
    claimed = json.loads(record_path.read_text())["metrics"]["val_loss"]
    model, meta = load_model(weights_path)
    return validation_loss(model, meta), claimed


def check_all(checkpoints_dir=None, results_dir=None):
    """Print one line per weights file; return the number of mismatches."""
    folder = Path(checkpoints_dir) if checkpoints_dir else PROJECT_DIR / "checkpoints"
    paths = sorted(p for p in folder.glob("*") if p.suffix in (".npz", ".pt"))
    if not paths:
        raise UserError(f"no committed weights in {folder}: run 'make char_rnn' first")
    failures = 0
    for path in paths:
        measured, claimed = check_weights(path, results_dir)
        ok = abs(measured - claimed) <= TOLERANCE
        failures += not ok
        print(
            f"{path.name:36s} val_loss {measured:.4f}   run record claims {claimed:.4f}   "
            f"{'reproduced' if ok else 'MISMATCH'}"
        )
    return failures


def main(argv):
    if argv:
        raise UserError(f"unexpected argument {argv[0]!r}: python -m char_rnn.evaluate takes none")
    import torch

    torch.set_num_threads(1)
    sys.exit(1 if check_all() else 0)


if __name__ == "__main__":
    run_main(main)
