"""The experiments behind REPORT.md beyond the headline runs (`make study-mlp_mnist`), all with the NumPy MLP.

    python -m mlp_mnist.studies --study=sweep           # depth 2/3/5 x width 32/64/128 (AP1.2)
    python -m mlp_mnist.studies --study=activations     # sigmoid/tanh/ReLU x MSE/cross-entropy
    python -m mlp_mnist.studies --study=optimizers      # SGD/momentum/Nesterov/Adam, constant/step/cosine
    python -m mlp_mnist.studies --study=regularization  # none/dropout/batchnorm/early stopping/augmentation
    python -m mlp_mnist.studies --study=augmented       # dropout + augmentation, aiming at >= 99.0%
    python -m mlp_mnist.studies --study=all

Each run is an ordinary `mlp_mnist.train` run (same checkpoints and run records), tagged with the study's group.
A finished run is skipped when its record exists (delete the record to rerun it). The initialisation study has
its own script, mlp_mnist/init_study.py.
"""

import dataclasses

from mlp_mnist.train import PROJECT_DIR, Config, train
from shared.cli import UserError, run_main
from shared.config import parse_config

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


STUDIES = {
    "sweep": sweep,
    "activations": activations,
    "optimizers": optimizers,
    "regularization": regularization,
    "augmented": augmented,
}


@dataclasses.dataclass
class StudyConfig:
    study: str = "all"
    force: bool = False  # rerun runs whose record exists


def main(argv):
    cfg = parse_config(StudyConfig(), argv)
    if cfg.study != "all" and cfg.study not in STUDIES:
        raise UserError(f"--study={cfg.study}: choose one of all, {', '.join(STUDIES)}")
    for study in STUDIES if cfg.study == "all" else [cfg.study]:
        for run, overrides in STUDIES[study]():
            if (PROJECT_DIR / "results" / f"{run}.json").exists() and not cfg.force:
                print(f"{run}: record exists, skipped")
                continue
            settings = {"group": study, **overrides}
            train(dataclasses.replace(BASE, run=run, impl="numpy", resume=not cfg.force, **settings))


if __name__ == "__main__":
    run_main(main)
