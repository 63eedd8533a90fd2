"""Re-evaluate the committed weights in resnet_repro/checkpoints/ on the CIFAR-10 test set and print each test
accuracy beside the one its run record claims (`make eval-resnet_repro`). Exits 1 when one does not reproduce.

    python -m resnet_repro.evaluate [--threads=N] [--tolerance=1e-4]
    python -m resnet_repro.train --evaluate --checkpoint=resnet_repro/checkpoints/resnet20.pt   # one file

Every <run>.pt / <run>.npz needs resnet_repro/results/<run>.json (shared.reevaluate runs the loop): the model is
rebuilt from the record's config, the file's own note of what it holds (its "meta" entry) is checked against it,
and the test images the record was scored on (all 10,000, or its seeded --test_subset) are scored again in
float32, one view each. The tolerance of 1e-4 is one test image in 10,000: a sum's last bits depend on the
thread count, which may flip an image whose two top logits tie to within them.
"""

import dataclasses
import json
import sys
from pathlib import Path

from resnet_repro.data import prepare_data
from resnet_repro.model import model_name
from resnet_repro.train import Config, check, evaluate
from resnet_repro.twin import build
from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-4  # largest accepted |measured - claimed| test accuracy


def config_from_record(record, **overrides):
    """The train.Config a run record was made with (keys this Config lacks dropped), with `overrides`."""
    fields = {f.name for f in dataclasses.fields(Config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    return check(dataclasses.replace(Config(), **values | overrides))


def load_weights(model, path, cfg):
    """Put the weights file `path` (train.py --save_weights) into `model`, built from cfg; returns the file's
    meta. A one-line UserError for a file of another architecture or of another kind."""
    content = load_npz(path) if Path(path).suffix == ".npz" else load_torch(path)
    if not isinstance(content, dict) or "meta" not in content:
        raise UserError(
            f"{path} is not a weights file of resnet_repro.train --save_weights (no 'meta' entry)"
        )
    meta = json.loads(str(content.pop("meta")))
    expected = model_name(cfg.depth, cfg.plain, cfg.widths)
    if (meta.get("impl"), meta.get("model")) != (cfg.impl, expected):
        raise UserError(
            f"{path} holds a {meta.get('impl')} {meta.get('model')}, not the {cfg.impl} {expected} these settings "
            "build: pass the --impl, --depth, --plain and --widths it was trained with"
        )
    model.set_weights(content if cfg.impl == "numpy" else content["model"])
    return meta


def test_accuracy(path, cfg):
    """The test accuracy of weights file `path` under cfg (a checked train.Config), and the test set's size."""
    set_threads(cfg.threads)
    model = build(cfg)
    load_weights(model, path, cfg)
    data = prepare_data(cfg)
    _, error = evaluate(model, *data["test"], data["mean"], cfg)
    return 1 - error, len(data["test"][0])


def measure(weights_path, record):
    """shared.reevaluate's `measure`: the test accuracy of one committed weights file, on the CPU."""
    return test_accuracy(weights_path, config_from_record(record, device="cpu", threads=0, progress=False))[0]


def evaluate_checkpoint(cfg, tolerance=1e-4):
    """train.py --evaluate: the test accuracy of cfg.checkpoint beside the claim of its run record
    (<folder>/../results/<name>.json, whose settings are then used; without one, cfg's). Prints one line;
    returns {"test_acc", "claimed" (None without a record), "reproduced" (None likewise)}."""
    if not cfg.checkpoint:
        raise UserError("--evaluate needs --checkpoint=PATH, a weights file written with --save_weights")
    path = Path(cfg.checkpoint)
    record_path = path.parent.parent / "results" / f"{path.stem}.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    if record is not None:
        cfg = config_from_record(record, threads=cfg.threads, device=cfg.device, progress=False)
    acc, size = test_accuracy(path, check(cfg))
    claimed = record["metrics"]["test_acc"] if record else None
    reproduced = None if claimed is None else abs(acc - claimed) <= tolerance
    verdict = "no run record to compare with" if claimed is None else f"its run record claims {claimed:.4f}: "
    verdict += "" if claimed is None else ("reproduced" if reproduced else "MISMATCH")
    print(f"{path}: test accuracy {acc:.4f} (error {1 - acc:.2%}) on {size:,} images; {verdict}")
    return {"test_acc": acc, "claimed": claimed, "reproduced": reproduced}


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("resnet_repro", "test_acc", measure, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
