"""The PNG figures of mlp_mnist/REPORT.md, drawn from run records, init_stats.json, batchnorm_lr.json and
committed weights.

    python -m mlp_mnist.figures

Draws only what the results/ folder has data for, so it works after `make mlp_mnist` alone and again after the
studies. The committed figures are drawn from committed records only; the quick looks (`make mlp_mnist FAST=1`,
shared.report.is_quick_look) get curves of their own in results/fast-headline_*.png, which .gitignore keeps out
of git like their records, so a quick look leaves the committed files as they were.
"""

import json
from pathlib import Path

import numpy as np

from shared import plots
from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.report import is_quick_look
from shared.runrecord import load_run_records

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"


def curves(records, key, label=lambda r: r["run"]):
    return {label(r): (r["history"]["epoch"], r["history"][key]) for r in records if key in r["history"]}


def headline(runs, results, prefix="", what="Headline runs"):
    """Training loss and test accuracy per epoch of `runs`, into <prefix>headline_{loss,test_acc}.png."""
    if not runs:
        return
    plots.line_plot(
        curves(runs, "train_loss"),
        results / f"{prefix}headline_loss.png",
        "epoch",
        "training loss",
        f"{what}: training loss",
        logy=True,
    )
    plots.line_plot(
        curves(runs, "test_acc"),
        results / f"{prefix}headline_test_acc.png",
        "epoch",
        "test accuracy",
        f"{what}: test accuracy per epoch",
        hline=(0.985, "98.5% target"),
    )


def first_layer_weights(results):
    """First-layer weights of the committed headline models, each hidden unit's 784 weights as a 28x28 image."""
    for path in sorted((PROJECT_DIR / "checkpoints").glob("*-mlp-800x800*")):
        if path.suffix == ".npz":
            w = load_npz(path)["layers.0.W"].T  # (in, out) -> (out, in)
        else:
            w = load_torch(path)["0.weight"].numpy()
        plots.image_grid(
            w[:40].reshape(-1, 28, 28),
            results / f"weights_{path.stem}.png",
            ncols=10,
            title=f"First-layer weights of {path.stem} (first 40 of {len(w)} units)",
        )


def sweep(records, results):
    runs = [r for r in records if r["group"] == "sweep"]
    if not runs:
        return
    series_acc, series_gap, series_time = {}, {}, {}
    for depth in (2, 3, 5):
        rows = sorted(
            (r for r in runs if len(r["config"]["hidden"]) == depth), key=lambda r: r["config"]["hidden"][0]
        )
        widths = [r["config"]["hidden"][0] for r in rows]
        series_acc[f"{depth} hidden layers"] = (widths, [r["metrics"]["test_acc"] for r in rows])
        series_gap[f"{depth} hidden layers"] = (
            widths,
            [r["metrics"]["train_acc"] - r["metrics"]["test_acc"] for r in rows],
        )
        series_time[f"{depth} hidden layers"] = (widths, [r["wall_time_s"] for r in rows])
    plots.line_plot(
        series_acc,
        results / "sweep_test_acc.png",
        "width (units per hidden layer)",
        "test accuracy",
        "Depth x width: test accuracy",
        logx=True,
    )
    plots.line_plot(
        series_gap,
        results / "sweep_gap.png",
        "width (units per hidden layer)",
        "train accuracy - test accuracy",
        "Depth x width: overfitting gap",
        logx=True,
    )
    plots.line_plot(
        series_time,
        results / "sweep_time.png",
        "width (units per hidden layer)",
        "training time (s)",
        "Depth x width: training time",
        logx=True,
    )


def group_curves(records, results, group, key, filename, title, ylabel, logy=False):
    runs = [r for r in records if r["group"] == group]
    if runs:
        plots.line_plot(curves(runs, key), results / filename, "epoch", ylabel, title, logy=logy)


def init_figures(results):
    path = results / "init_stats.json"
    if not path.exists():
        return
    schemes = json.loads(path.read_text())["results"]
    for activation in ("tanh", "relu"):
        for when in ("at_init", "after_training"):
            rows = [r for r in schemes if r["activation"] == activation and when in r]
            if not rows:
                continue
            for key, ylabel in (("activation_std", "activation std"), ("grad_norm", "||dL/dW||")):
                series = {}
                for r in rows:
                    values = np.asarray(r[when][key], dtype=np.float64)
                    values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
                    series[r["scheme"]] = (list(range(1, len(values) + 1)), values)
                title = f"10-layer {activation} MLP, {when.replace('_', ' ')}: {ylabel} by layer"
                plots.line_plot(
                    series, results / f"init_{activation}_{key}_{when}.png", "layer", ylabel, title, logy=True
                )


# The learning rates at which the batch-norm study's epoch-by-epoch curves are compared
BATCHNORM_CURVE_LRS = (0.003, 0.1, 1.0)


def batchnorm_label(batchnorm):
    return "with batch norm" if batchnorm else "without batch norm"


def batchnorm_lr_figures(records, results):
    """The batch-norm study: validation error against the learning rate, the runs that diverged marked on the
    top edge (they have no record; results/batchnorm_lr.json names them), and the epoch-by-epoch curves."""
    runs = [r for r in records if r["group"] == "batchnorm-lr"]
    path = results / "batchnorm_lr.json"
    if not runs or not path.exists():
        return
    diverged = [o for o in json.loads(path.read_text())["runs"] if "diverged_at_step" in o]
    # error on a log axis: 2% vs 3% is as visible as 90% (chance) vs 10%
    fig, ax = plots.plt.subplots(figsize=(6.4, 5.2))
    for batchnorm, color in ((False, "C0"), (True, "C1")):
        rows = sorted(
            (r for r in runs if r["config"]["batchnorm"] == batchnorm), key=lambda r: r["config"]["lr"]
        )
        lrs = [r["config"]["lr"] for r in rows]
        name = batchnorm_label(batchnorm)
        final = [1 - r["metrics"]["val_acc"] for r in rows]
        ax.plot(lrs, final, marker="o", color=color, label=f"{name}: after epoch 5")
        first = [1 - r["history"]["val_acc"][0] for r in rows]
        ax.plot(lrs, first, marker=".", linestyle=":", color=color, label=f"{name}: after epoch 1")
        lost = [o["lr"] for o in diverged if o["batchnorm"] == batchnorm]
        if lost:  # no accuracy to plot: a cross on the top edge of the axes
            ax.plot(
                lost,
                [0.97] * len(lost),
                "x",
                markersize=9,
                color=color,
                transform=ax.get_xaxis_transform(),
                label=f"{name}: diverged (NaN loss)",
            )
    ax.axhline(0.9, color="gray", linestyle="--", linewidth=1, label="chance (90% error)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(
        xlabel="learning rate (plain SGD, constant)",
        ylabel="validation error (1 - accuracy)",
        title="8 x 256 ReLU MLP: validation error by learning rate",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    plots.save_figure(fig, results / "batchnorm_lr_val_error.png")

    shared = [r for r in runs if r["config"]["lr"] in BATCHNORM_CURVE_LRS]
    shared.sort(key=lambda r: (r["config"]["lr"], r["config"]["batchnorm"]))

    def label(r):
        return f"lr {r['config']['lr']:g}, {batchnorm_label(r['config']['batchnorm'])}"

    plots.line_plot(
        curves(shared, "val_acc", label),
        results / "batchnorm_lr_curves_val_acc.png",
        "epoch",
        "validation accuracy",
        "8 x 256 ReLU MLP, with and without batch norm: validation accuracy",
    )
    plots.line_plot(
        curves(shared, "train_loss", label),
        results / "batchnorm_lr_curves_train_loss.png",
        "epoch",
        "training loss (mean over the epoch)",
        "8 x 256 ReLU MLP, with and without batch norm: training loss",
        logy=True,
    )


def draw(records, results=RESULTS):
    """Every figure `records`, results/init_stats.json and results/batchnorm_lr.json have data for, into the
    folder `results`."""
    committed = [r for r in records if not is_quick_look(r)]
    headline([r for r in committed if r["group"] == "headline"], results)
    headline([r for r in records if is_quick_look(r)], results, "fast-", "Quick look (FAST=1, not committed)")
    first_layer_weights(results)
    sweep(committed, results)
    group_curves(
        committed,
        results,
        "activations",
        "test_acc",
        "activations_test_acc.png",
        "Activations and losses: test accuracy",
        "test accuracy",
    )
    group_curves(
        committed,
        results,
        "optimizers",
        "train_loss",
        "optimizers_train_loss.png",
        "Optimizers and schedules: training loss",
        "training loss",
        logy=True,
    )
    group_curves(
        committed,
        results,
        "optimizers",
        "test_acc",
        "optimizers_test_acc.png",
        "Optimizers and schedules: test accuracy",
        "test accuracy",
    )
    group_curves(
        committed,
        results,
        "regularization",
        "val_acc",
        "regularization_val_acc.png",
        "Regularisation (10,000 training images): validation accuracy",
        "validation accuracy",
    )
    group_curves(
        committed,
        results,
        "regularization",
        "train_loss",
        "regularization_train_loss.png",
        "Regularisation (10,000 training images): training loss",
        "training loss",
        logy=True,
    )
    init_figures(results)
    batchnorm_lr_figures(committed, results)


def main(argv):
    draw(load_run_records("mlp_mnist"))
    print(f"figures written to {RESULTS.relative_to(PROJECT_DIR.parent)}/")


if __name__ == "__main__":
    run_main(main)
