"""The generated parts of resnet_repro/REPORT.md, from the committed run records (quick looks left out):

    python -m resnet_repro.figures

  results/table6.md    Table 6: for each depth, the paper's test error, akamaster's reimplementation's, and ours
                       (the paper's full recipe, group "headline"): mean, spread and count over seeds
  results/figure6.png  Figure 6: training error (thin, dashed: the running error of the augmented batches) and
                       test error (bold) against iterations, plain-20/56 on the left, ResNet-20/56 on the right
                       (group "figure6"); the paper's own figure is on its reduced schedule's scale

REPORT.md includes table6.md between <!-- BEGIN file:results/table6.md --> markers (shared.report fills them).
"""

import statistics
from pathlib import Path

from shared import plots
from shared.cli import UserError, run_main
from shared.report import committed_records

PROJECT_DIR = Path(__file__).resolve().parent
DEPTHS = (20, 32, 44, 56, 110)
PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M"}
PAPER = {
    20: 8.75,
    32: 7.51,
    44: 7.17,
    56: 6.97,
    110: 6.43,
}  # Table 6, test error %; 110: best of 5 (6.61 +- 0.16)
AKAMASTER = {20: 8.27, 32: 7.37, 44: 6.90, 56: 6.61, 110: 6.32}  # akamaster/pytorch_resnet_cifar10's README
PAPER_ITERATIONS = 64000


def paper_runs(records, depth):
    """The committed torch runs of ResNet-`depth` on the paper's whole schedule (group headline)."""
    return [
        r
        for r in records
        if r.get("group") == "headline" and r["impl"] == "torch" and r["model"] == f"resnet{depth}"
        and r["metrics"].get("iterations") == PAPER_ITERATIONS
    ]  # fmt: skip


def table6(records):
    """Markdown: depth, params, the paper's error, akamaster's, ours (mean +- spread over n seeds) and the runs."""
    lines = [
        "| network | params | paper (Table 6) | akamaster | ours: test error | seeds | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for depth in DEPTHS:
        runs = paper_runs(records, depth)
        errors = [100 * r["metrics"]["test_err"] for r in runs]
        if not errors:
            ours = "not trained yet"
        elif len(errors) == 1:
            ours = f"{errors[0]:.2f}%"
        else:  # mean +- sample standard deviation, as the paper's "6.61 +- 0.16" for ResNet-110
            ours = (
                f"{statistics.mean(errors):.2f}% +- {statistics.stdev(errors):.2f} (best {min(errors):.2f}%)"
            )
        names = ", ".join(f"`{r['run']}`" for r in runs) or "–"
        lines.append(
            f"| ResNet-{depth} | {PARAMS[depth]} | {PAPER[depth]:.2f}% | {AKAMASTER[depth]:.2f}% | {ours} | "
            f"{len(errors) or '–'} | {names} |"
        )
    return "\n".join(lines)


def figure6(records, path):
    """Two panels (plain, ResNet) of training and test error against iterations for depths 20 and 56; returns
    the path, or None when no figure6 run is recorded."""
    runs = {r["model"]: r for r in records if r.get("group") == "figure6"}
    if not runs:
        return None
    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, kind in zip(axes, ("plain", "resnet")):
        for depth, colour in ((20, "tab:orange"), (56, "tab:red")):
            record = runs.get(f"{kind}{depth}")
            if record is None:
                continue
            history, name = record["history"], f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
            iters = [i / 1e3 for i in history["iter"]]
            ax.plot(
                iters,
                [100 * e for e in history["train_err"]],
                "--",
                color=colour,
                lw=1,
                label=f"{name} train",
            )
            ax.plot(
                iters, [100 * e for e in history["test_err"]], "-", color=colour, lw=2, label=f"{name} test"
            )
        ax.set(xlabel="iterations (thousands)", title="plain networks" if kind == "plain" else "ResNets")
        ax.set_ylim(0, 40)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error (%)")
    return plots.save_figure(fig, path)


def main(argv):
    if argv:
        raise UserError(f"unexpected arguments {' '.join(argv)}: python -m resnet_repro.figures takes none")
    (PROJECT_DIR / "results").mkdir(exist_ok=True)
    records = committed_records("resnet_repro", PROJECT_DIR / "results")
    table = PROJECT_DIR / "results" / "table6.md"
    table.write_text(table6(records) + "\n")
    print(
        f"{table.relative_to(PROJECT_DIR.parent)}: {sum(map(len, (paper_runs(records, d) for d in DEPTHS)))} runs"
    )
    path = figure6(records, PROJECT_DIR / "results" / "figure6.png")
    print(f"{path.relative_to(PROJECT_DIR.parent)}" if path else "figure6.png: no figure6 run recorded yet")


if __name__ == "__main__":
    run_main(main)
