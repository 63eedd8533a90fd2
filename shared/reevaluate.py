"""The one loop behind every `make eval-<project>`: re-evaluate each committed weights file against the run
record that claims its figure, print both, and fail when one does not reproduce.

    def measure(weights_path, record):      # the project's own: rebuild the model from record["config"],
        ...                                 # load the weights, return the metric the record claims
        return test_acc
    sys.exit(reevaluate("mlp_mnist", "test_acc", measure, tolerance=1e-4))

`metric` is the name of the record's metric, or a function record -> name where the weights files of one project
claim different measures (vae_gan: a VAE's test_loss, a GAN's fid). Every <run>.npz / <run>.pt in
<project>/checkpoints/ needs <project>/results/<run>.json; a weights file with no
record is a mismatch (nothing says what it should score). `measure` may return None for a file it cannot
rebuild (it is reported as skipped).
"""

import json
from pathlib import Path

from shared.cli import UserError

ROOT = Path(__file__).resolve().parent.parent


def reevaluate(project, metric, measure, tolerance, folder=None):
    """Print one line per weights file; return the number of mismatches (the exit status to use: 0 = all
    reproduced). folder (tests) replaces <project>/ as the place of checkpoints/ and results/."""
    folder = Path(folder) if folder else ROOT / project
    paths = sorted(p for p in (folder / "checkpoints").glob("*") if p.suffix in (".npz", ".pt"))
    if not paths:
        raise UserError(f"no committed weights in {folder / 'checkpoints'}: run 'make {project}' first")
    failures = checked = 0
    for path in paths:
        record_path = folder / "results" / f"{path.stem}.json"
        if not record_path.exists():
            print(f"{path.name:40s} MISMATCH: no run record {record_path.name}, so nothing it claims")
            failures += 1
            continue
        record = json.loads(record_path.read_text())
        measured = measure(path, record)
        if measured is None:
            print(
                f"{path.name:40s} skipped: made by '{record.get('command', '?')}', which cannot be rebuilt here"
            )
            continue
        name = metric(record) if callable(metric) else metric
        claimed = record["metrics"][name]
        ok = abs(measured - claimed) <= tolerance
        failures += not ok
        checked += 1
        print(
            f"{path.name:40s} {name} {measured:.4f}   run record claims {claimed:.4f}   "
            f"{'reproduced' if ok else 'MISMATCH'}",
            flush=True,
        )
    print(f"{checked} weights files re-evaluated, {failures} mismatches")
    return min(failures, 1)
