"""Regenerate the tables of <project>/REPORT.md (and the README's project table) from run records.

    python -m shared.report mlp_mnist        # tables between <!-- BEGIN table:GROUP --> / <!-- END table:GROUP -->
    python -m shared.report --readme         # README.md headline table between <!-- BEGIN projects --> markers

Every number in a generated table comes from a results/*.json file that a real run wrote; text outside the
markers is hand-written analysis and is kept as it is. `<!-- BEGIN file:results/x.txt -->` blocks are filled with
the named file's text (benchmark output, diagnosis logs), as the command that wrote it printed it. A group with
records but no markers in REPORT.md gets a new section appended at the end. Records of the "fast" group (the
`make <project> FAST=1` quick looks, kept out of git) are counted but never written into a report.
"""

import re
from pathlib import Path

from shared.cli import UserError, run_main
from shared.runrecord import describe_cpu, load_run_records

ROOT = Path(__file__).resolve().parent.parent
QUICK_LOOK_GROUP = "fast"
PROJECTS = ["mlp_mnist", "cnn_cifar", "char_rnn", "sentiment_lstm", "nanogpt", "vae_gan", "resnet_repro"]
HEADLINE_METRIC = {
    "mlp_mnist": "test_acc",
    "cnn_cifar": "test_acc",
    "char_rnn": "val_loss",
    "sentiment_lstm": "test_acc",
    "nanogpt": "val_loss",
    "vae_gan": "test_elbo",
    "resnet_repro": "test_acc",
}


def format_metric(name, value):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if name.endswith("acc") or name.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    if name.endswith("_s") or name.startswith("time"):
        return format_seconds(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def format_seconds(seconds):
    seconds = float(seconds)
    if seconds < 100:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def render_table(records):
    """A markdown table of the given run records: one row per run, one column per metric, then the commands."""
    metric_names = []
    for r in records:
        metric_names += [m for m in r["metrics"] if m not in metric_names]
    head = ["run", "impl", "model", *metric_names, "params", "wall time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        cells = [f"`{r['run']}`", r["impl"], r["model"]]
        cells += [format_metric(m, r["metrics"].get(m)) for m in metric_names]
        cells += [f"{r['params']:,}", format_seconds(r["wall_time_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("<details><summary>Commands, commits and machines behind these rows</summary>")
    lines.append("")
    for r in records:
        env = r.get("env", {})
        where = f"{describe_cpu(env)}, {env.get('torch_threads', '?')} threads, {env.get('device', '?')}"
        lines.append(
            f"- `{r['run']}`: `{r['command']}` (commit {r['git_commit'][:12]}, {where}, "
            f"finished {r['finished_at']})"
        )
    lines.append("")
    lines.append("</details>")
    return "\n".join(lines)


def replace_block(text, begin, end, body):
    """Replace what lies between the marker lines `begin` and `end`; None when the markers are absent."""
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def group_of(record):
    return record.get("group") or "runs"


def update_report(project, report_path=None, results_dir=None):
    records = load_run_records(project, results_dir)
    report_path = Path(report_path) if report_path else ROOT / project / "REPORT.md"
    text = report_path.read_text() if report_path.exists() else f"# {project}\n"
    groups = {}
    for r in records:
        groups.setdefault(group_of(r), []).append(r)
    groups.pop(QUICK_LOOK_GROUP, None)
    for group, rows in groups.items():
        begin, end = f"<!-- BEGIN table:{group} -->", f"<!-- END table:{group} -->"
        new = replace_block(text, begin, end, render_table(rows))
        if new is None:
            new = text.rstrip("\n") + f"\n\n## Runs: {group}\n\n{begin}\n{render_table(rows)}\n{end}\n"
        text = new
    text = include_files(text, report_path.parent)
    report_path.write_text(text)
    return report_path, len(records)


def include_files(text, folder):
    """Fill every <!-- BEGIN file:PATH --> ... <!-- END file:PATH --> block with the text of PATH (relative to
    the report's folder): benchmark output and logs fenced as they are, .md files as markdown. A missing file
    says so."""
    for path in re.findall(r"<!-- BEGIN file:(\S+) -->", text):
        source = folder / path
        if not source.exists():
            body = f"({path} not generated yet)"
        elif source.suffix == ".md":  # already markdown: included as it is
            body = source.read_text().rstrip()
        else:
            body = f"```\n{source.read_text().rstrip()}\n```"
        text = replace_block(text, f"<!-- BEGIN file:{path} -->", f"<!-- END file:{path} -->", body)
    return text


def headline_row(project):
    """The best run of the project's `headline` group, by its headline metric, per implementation."""
    metric = HEADLINE_METRIC[project]
    records = [r for r in load_run_records(project) if group_of(r) == "headline" and metric in r["metrics"]]
    lower_is_better = "loss" in metric
    best = {}
    for r in records:
        v = r["metrics"][metric]
        key = r["impl"]
        if key not in best or (
            v < best[key]["metrics"][metric] if lower_is_better else v > best[key]["metrics"][metric]
        ):
            best[key] = r
    return metric, best


def update_readme(readme_path=None):
    readme_path = Path(readme_path) if readme_path else ROOT / "README.md"
    lines = ["| project | metric | NumPy (from scratch) | PyTorch | report |", "|---|---|---|---|---|"]
    for project in PROJECTS:
        if not (ROOT / project / "scratch.py").exists():
            lines.append(f"| `{project}` | – | not built yet | not built yet | – |")
            continue
        if not (ROOT / project / "results").exists():
            lines.append(
                f"| `{project}` | – | no run recorded yet | no run recorded yet | [REPORT]({project}/REPORT.md) |"
            )
            continue
        metric, best = headline_row(project)
        cells = [
            f"{format_metric(metric, best[impl]['metrics'][metric])} ({format_seconds(best[impl]['wall_time_s'])})"
            if impl in best
            else "–"
            for impl in ("numpy", "torch")
        ]
        lines.append(f"| `{project}` | {metric} | {cells[0]} | {cells[1]} | [REPORT]({project}/REPORT.md) |")
    text = readme_path.read_text()
    new = replace_block(text, "<!-- BEGIN projects -->", "<!-- END projects -->", "\n".join(lines))
    if new is None:
        raise UserError(f"{readme_path} has no <!-- BEGIN projects --> / <!-- END projects --> markers")
    readme_path.write_text(new)
    return readme_path


def main(argv):
    if not argv:
        raise UserError("usage: python -m shared.report <project>... | --readme | --all")
    targets = PROJECTS if argv == ["--all"] else argv
    for target in targets:
        if target in ("--readme", "--all"):
            continue
        if target not in PROJECTS:
            raise UserError(f"unknown project {target!r}; choose one of {', '.join(PROJECTS)}")
        if not (ROOT / target / "results").exists():
            if argv == ["--all"]:
                continue
            raise UserError(f"{target} has no results/ folder yet: run 'make {target}' first")
        path, n = update_report(target)
        print(f"{path.relative_to(ROOT)}: tables regenerated from {n} run records")
    if "--readme" in argv or argv == ["--all"]:
        print(f"{update_readme().relative_to(ROOT)}: project table regenerated")


if __name__ == "__main__":
    run_main(main)
