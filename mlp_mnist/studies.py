"""The experiments behind REPORT.md beyond the headline runs (`make study-mlp_mnist`), all with the NumPy MLP.

    python -m mlp_mnist.studies --study=sweep           # depth 2/3/5 x width 32/64/128 (AP1.2)
    python -m mlp_mnist.studies --study=activations     # sigmoid/tanh/ReLU x MSE/cross-entropy
    python -m mlp_mnist.studies --study=optimizers      # SGD/momentum/Nesterov/Adam, constant/step/cosine
    python -m mlp_mnist.studies --study=regularization  # none/dropout/batchnorm/early stopping/augmentation
    python -m mlp_mnist.studies --study=augmented       # dropout + augmentation, aiming at >= 99.0%
    python -m mlp_mnist.studies --study=batchnorm_lr    # a deep MLP with and without batch norm, lr 0.003..30
    python -m mlp_mnist.studies --study=all

Each run is an ordinary `mlp_mnist.train` run (same checkpoints and run records), tagged with the study's group.
A finished run is skipped when its record exists (delete the record to rerun it, or pass --force). In the
batch-norm study a run whose loss becomes NaN or infinite is a result, not a failure: it writes no run record,
so every run's outcome, diverged or trained, goes to results/batchnorm_lr.json and, as a table for the report,
results/batchnorm_lr.md. The initialisation study has its own script, mlp_mnist/init_study.py.
"""

import dataclasses
import json
import re

from mlp_mnist.train import PROJECT_DIR, Config, train
from shared.checkpoint import _atomic_write
from shared.cli import UserError, run_main
from shared.config import parse_config

RESULTS = PROJECT_DIR / "results"

# Shared settings of the comparison studies: short runs, so each study takes minutes, not hours.
BASE = Config(epochs=10, hidden=(256, 256), save_weights=False, progress=False)


def sweep():
    for depth in (2, 3, 5):
        for width in (32, 64, 128):
            yield f"sweep-d{depth}-w{width}", dict(hidden=(width,) * depth, epochs=15, schedule="constant")


def activations():
    for activation in ("sigmoid", "tanh", "relu"):
        for loss in ("ce", "mse"):
            init = "he" if activation == "relu" else "xavier"
            yield f"act-{activation}-{loss}", dict(activation=activation, loss=loss, init=init)


def optimizers():
    # optimizers on one schedule, each at a learning rate that suits it; then schedules on one optimizer
    for name, lr in (("sgd", 0.1), ("momentum", 0.02), ("nesterov", 0.02), ("adam", 1e-3)):
        yield f"opt-{name}", dict(optimizer=name, lr=lr, schedule="constant")
    for schedule in ("step", "exponential", "cosine"):
        yield (
            f"sched-momentum-{schedule}",
            dict(optimizer="momentum", lr=0.02, schedule=schedule, gamma=0.5, step_size=3),
        )


def regularization():
    # a wide net on 10,000 training images for many epochs, so that it has room to overfit
    base = dict(hidden=(1024, 1024), train_subset=10000, val_size=2000, epochs=40, schedule="constant")
    yield "reg-none", base
    yield "reg-dropout", {**base, "dropout": 0.5}
    yield "reg-batchnorm", {**base, "batchnorm": True}
    yield "reg-weight-decay", {**base, "optimizer": "adamw", "weight_decay": 0.05}
    yield "reg-early-stopping", {**base, "early_stopping": 5}
    yield "reg-augmentation", {**base, "augment": True}


def augmented():
    yield (
        "numpy-mlp-800x800-aug",
        dict(
            hidden=(800, 800),
            dropout=0.3,
            augment=True,
            epochs=60,
            val_size=5000,
            save_weights=True,
            group="headline",
        ),
    )


BATCHNORM_LRS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def batchnorm_lr():
    # one deep ReLU net (8 x 256, He init) with and without batch norm, plain SGD at a constant learning rate:
    # no momentum or adaptive step to blur what the learning rate alone does
    base = dict(hidden=(256,) * 8, epochs=5, optimizer="sgd", schedule="constant", threads=1)
    for batchnorm in (False, True):
        for lr in BATCHNORM_LRS:
            name = f"bnlr-{'bn' if batchnorm else 'plain'}-lr{lr:g}"
            yield name, {**base, "batchnorm": batchnorm, "lr": lr, "group": "batchnorm-lr"}


STUDIES = {
    "sweep": sweep,
    "activations": activations,
    "optimizers": optimizers,
    "regularization": regularization,
    "augmented": augmented,
    "batchnorm_lr": batchnorm_lr,
}


def train_run(run, settings, force):
    """Train one study run, or skip it when its record exists and not `force`. Returns its record's path."""
    path = RESULTS / f"{run}.json"
    if path.exists() and not force:
        print(f"{run}: record exists, skipped")
        return path
    _, path = train(dataclasses.replace(BASE, run=run, impl="numpy", resume=not force, **settings))
    return path


def outcomes_table(outcomes):
    """Markdown: one row per learning rate, one column per network; each cell the final and the first epoch's
    validation accuracy, or the step at which the training loss stopped being finite."""

    def cell(outcome):
        if outcome is None:
            return "not run"
        if "diverged_at_step" in outcome:
            return f"diverged (loss not finite at step {outcome['diverged_at_step']})"
        return f"{100 * outcome['val_acc']:.2f}% (epoch 1: {100 * outcome['epoch1_val_acc']:.2f}%)"

    by_key = {(o["lr"], o["batchnorm"]): o for o in outcomes}
    lines = ["| learning rate | without batch norm | with batch norm |", "|---|---|---|"]
    for lr in sorted({o["lr"] for o in outcomes}):
        lines.append(f"| {lr:g} | {cell(by_key.get((lr, False)))} | {cell(by_key.get((lr, True)))} |")
    return "\n".join(lines) + "\n"


def run_batchnorm_lr(force):
    """Every run of the batch-norm study, each noted as trained (validation accuracy from its record) or diverged
    (no record); results/batchnorm_lr.json and .md are rewritten after each run. A run noted as diverged is not
    rerun unless `force`."""
    summary = RESULTS / "batchnorm_lr.json"
    earlier = json.loads(summary.read_text())["runs"] if summary.exists() and not force else []
    diverged_before = {o["run"]: o for o in earlier if "diverged_at_step" in o}
    outcomes = []
    for run, settings in batchnorm_lr():
        if run in diverged_before:
            print(f"{run}: diverged in an earlier session, skipped")
            outcomes.append(diverged_before[run])
            continue
        outcome = {"run": run, "batchnorm": settings["batchnorm"], "lr": settings["lr"]}
        try:
            record = json.loads(train_run(run, settings, force).read_text())
            outcome |= {
                "val_acc": record["metrics"]["val_acc"],
                "epoch1_val_acc": record["history"]["val_acc"][0],
            }
        except UserError as e:
            found = re.match(r"training loss became \S+ at step (\d+)", str(e))
            if not found:  # anything but divergence (missing data, a resume refused) is still an error
                raise
            print(f"{run}: diverged: {e}")
            outcome |= {"diverged_at_step": int(found.group(1)), "message": str(e)}
        outcomes.append(outcome)
        text = json.dumps({"runs": outcomes}, indent=1)
        _atomic_write(summary, lambda f, text=text: f.write(text.encode()))
        table = outcomes_table(outcomes)
        _atomic_write(summary.with_suffix(".md"), lambda f, table=table: f.write(table.encode()))


@dataclasses.dataclass
class StudyConfig:
    study: str = "all"
    force: bool = False  # rerun runs whose record exists


def main(argv):
    cfg = parse_config(StudyConfig(), argv)
    if cfg.study != "all" and cfg.study not in STUDIES:
        raise UserError(f"--study={cfg.study}: choose one of all, {', '.join(STUDIES)}")
    for study in STUDIES if cfg.study == "all" else [cfg.study]:
        if study == "batchnorm_lr":
            run_batchnorm_lr(cfg.force)
            continue
        for run, overrides in STUDIES[study]():
            train_run(run, {"group": study, **overrides}, cfg.force)


if __name__ == "__main__":
    run_main(main)
