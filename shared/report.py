"""Regenerate the tables of <project>/REPORT.md (and the README's project table) from run records.

    python -m shared.report mlp_mnist        # tables between <!-- BEGIN table:GROUP --> / <!-- END table:GROUP -->
    python -m shared.report --readme         # README.md headline table between <!-- BEGIN projects --> markers

Every number in a generated table comes from a results/*.json file that a real run wrote; text outside the
markers is hand-written analysis and is kept as it is. `<!-- BEGIN file:results/x.txt -->` blocks are filled with
the named file's text (benchmark output, diagnosis logs), as the command that wrote it printed it. A group with
records but no markers in REPORT.md gets a new section appended at the end. Quick looks (the `make <project>
FAST=1` records: group "fast", or a run name that .gitignore keeps out of git) are counted but never written
into a report, so regenerating after a quick look leaves every committed file as it was.

The README's row for a project, and the `<!-- BEGIN twins -->` table of its REPORT.md, compare twins: the NumPy
run and the PyTorch run of one recipe, declared in TWINS, whose configs may differ only in RUN_PLUMBING; a
declared pair whose configs differ elsewhere is refused. The project's best result (BEST) stands beside them in
the README, in a column of its own.
"""

import re
from pathlib import Path

from shared.cli import UserError, run_main
from shared.runrecord import describe_cpu, load_run_records

ROOT = Path(__file__).resolve().parent.parent
QUICK_LOOK_GROUP = "fast"
QUICK_LOOK_PREFIXES = ("fast-", "smoke-")  # the run names .gitignore keeps out of results/
PROJECTS = ["mlp_mnist", "cnn_cifar", "char_rnn", "sentiment_lstm", "nanogpt", "vae_gan", "resnet_repro"]
HEADLINE_METRIC = {
    "mlp_mnist": "test_acc",
    "cnn_cifar": "test_acc",
    "char_rnn": "val_loss",
    "sentiment_lstm": "test_acc",
    "nanogpt": "val_loss",
    "vae_gan": "test_loss",
    "resnet_repro": "test_acc",
}
# Each project's headline pair: (NumPy run, PyTorch run) of one recipe.
TWINS = {
    "mlp_mnist": ("numpy-mlp-800x800", "torch-mlp-800x800"),
    "cnn_cifar": ("numpy-simplecnn", "torch-simplecnn"),
    "char_rnn": ("numpy-lstm-1x512", "torch-lstm-1x512"),
    "sentiment_lstm": ("numpy-lstm-mean-e96-h128", "torch-lstm-mean-e96-h128"),
    "nanogpt": ("numpy-gpt-4x128", "torch-gpt-4x128"),
    "vae_gan": ("numpy-vae-400-z20", "torch-vae-400-z20"),
    "resnet_repro": ("numpy-resnet8", "torch-resnet8"),
}
# Each project's best result, whatever its recipe.
BEST = {
    "mlp_mnist": "numpy-mlp-800x800-aug",
    "cnn_cifar": "fast94",
    "char_rnn": "torch-lstm-2x384",
    "sentiment_lstm": "torch-bilstm-meanmax-e96-h128x1",
    "nanogpt": "gpt-6x160-rotary-hour",
    "resnet_repro": "resnet20",
}
# Config settings that say how a run was carried out, not what it computed: twins may differ in these.
RUN_PLUMBING = ("run", "impl", "device", "threads", "resume", "progress", "save_weights", "out_dir")
IMPL_NAMES = {"numpy": "NumPy", "torch": "PyTorch"}


def format_metric(name, value):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith("acc") or name.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    if name.endswith("_per_s"):  # a rate (tokens_per_s), not a duration
        return f"{value:,.0f}"
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
        if len(r.get("sessions", [])) > 1:
            where = "; ".join(
                f"session {i}: {s['machine']}, {s['threads']} threads, {format_seconds(s['wall_s'])}"
                for i, s in enumerate(r["sessions"], 1)
            )
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


def is_quick_look(record):
    """A `make <project> FAST=1` record: kept out of git, so out of every committed table and figure."""
    return group_of(record) == QUICK_LOOK_GROUP or record["run"].startswith(QUICK_LOOK_PREFIXES)


def committed_records(project, results_dir=None):
    """The project's run records without the quick looks."""
    return [r for r in load_run_records(project, results_dir) if not is_quick_look(r)]


def update_report(project, report_path=None, results_dir=None):
    records = load_run_records(project, results_dir)
    report_path = Path(report_path) if report_path else ROOT / project / "REPORT.md"
    text = report_path.read_text() if report_path.exists() else f"# {project}\n"
    groups = {}
    for r in records:
        if not is_quick_look(r):
            groups.setdefault(group_of(r), []).append(r)
    if project in TWINS:
        twins = replace_block(
            text, "<!-- BEGIN twins -->", "<!-- END twins -->", render_twins(project, records)
        )
        text = twins if twins is not None else text
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


def config_difference(a, b):
    """The first setting outside RUN_PLUMBING on which the configs of records a and b differ, as
    (key, a's value, b's value); None when they are one recipe."""
    config_a, config_b = a["config"], b["config"]
    for key in config_a:
        # compared only where both configs have the key: a record written before a Config field was added
        # lacks it, and a field one implementation has and the other lacks (precision) has nothing to match
        if key in config_b and key not in RUN_PLUMBING and config_a[key] != config_b[key]:
            return key, config_a[key], config_b[key]
    return None


def twin_records(project, records):
    """(NumPy record, PyTorch record) of the project's declared pair, None for a run not recorded yet; a UserError
    when the two are not the same recipe in the two implementations."""
    found = {r["run"]: r for r in records if not is_quick_look(r)}
    pair = tuple(found.get(run) for run in TWINS[project])
    for record, impl in zip(pair, IMPL_NAMES):
        if record is not None and record["impl"] != impl:
            raise UserError(f"{project}: twin {record['run']!r} is a {record['impl']} run, not a {impl} one")
    if None not in pair:
        difference = config_difference(*pair)
        if difference is not None:
            key, value_a, value_b = difference
            raise UserError(
                f"{project}: {pair[0]['run']} and {pair[1]['run']} are not twins: {key} is {value_a!r} vs "
                f"{value_b!r} (twins' configs may differ only in {', '.join(RUN_PLUMBING)}; see shared.report.TWINS)"
            )
    return pair


def describe_machine(record):
    """Where a run's wall time was measured: CPU (shared.runrecord.describe_cpu), threads, and the GPU if any."""
    env = record.get("env", {})
    threads = env.get("torch_threads")
    where = describe_cpu(env) + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
    return where + (f", {env['gpu']}" if env.get("gpu") else "")


def metric_difference(name, a, b):
    """'a - b (difference)', in points for accuracies."""
    if a is None or b is None:
        return "–"
    points = name.endswith("acc") or name.endswith("accuracy")
    difference, digits = (100 * (a - b), 2) if points else (a - b, 3)
    if round(difference, digits) == 0:
        difference = 0.0  # no "-0.000" for twins that agree to the shown digits
    return f"{difference:+.{digits}f}{' points' if points else ''} (difference)"


def render_twins(project, records):
    """The twin table of a REPORT: rows NumPy, PyTorch and NumPy / PyTorch; the headline metric, wall time,
    parameters and each run's machine."""
    metric = HEADLINE_METRIC[project]
    pair = twin_records(project, records)
    lines = [
        f"| | run | {metric} | wall time | params | machine |",
        "|---|---|---|---|---|---|",
    ]
    for impl, run, record in zip(IMPL_NAMES.values(), TWINS[project], pair):
        if record is None:
            lines.append(f"| {impl} | `{run}` | not recorded yet | – | – | – |")
            continue
        cells = [
            impl,
            f"`{run}`",
            format_metric(metric, record["metrics"].get(metric)),
            format_seconds(record["wall_time_s"]),
            f"{record['params']:,}",
            describe_machine(record),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if None not in pair:
        numpy_run, torch_run = pair
        cells = [
            "NumPy / PyTorch",
            "",
            metric_difference(metric, numpy_run["metrics"].get(metric), torch_run["metrics"].get(metric)),
            f"{numpy_run['wall_time_s'] / torch_run['wall_time_s']:.2f}",
            f"{numpy_run['params'] / torch_run['params']:.2f}",
            "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_row(project, records):
    """The README cells of a project: metric, NumPy twin, PyTorch twin, wall times and their ratio, machines,
    best result."""
    metric = HEADLINE_METRIC[project]
    if project not in TWINS:
        return [metric, "no twin pair declared (shared.report.TWINS)", "–", "–", "–", "–"]
    pair = twin_records(project, records)
    twins = [
        f"{format_metric(metric, r['metrics'].get(metric))} (`{run}`)" if r else f"`{run}` not recorded yet"
        for r, run in zip(pair, TWINS[project])
    ]
    times = " / ".join(format_seconds(r["wall_time_s"]) if r else "–" for r in pair)
    if None not in pair:
        times += f" ({pair[0]['wall_time_s'] / pair[1]['wall_time_s']:.2f})"
    machines = {impl: describe_machine(r) for impl, r in zip(IMPL_NAMES.values(), pair) if r}
    if len(machines) == 2 and len(set(machines.values())) == 1:
        machine = machines["NumPy"]
    else:  # each side's own: the ratio of times measured on different machines says less
        machine = "; ".join(f"{impl}: {where}" for impl, where in machines.items())
    best = {r["run"]: r for r in records}.get(BEST.get(project))
    if best is None:
        best_cell = f"`{BEST[project]}` not recorded yet" if project in BEST else "–"
    else:
        best_cell = (
            f"{format_metric(metric, best['metrics'].get(metric))}: {IMPL_NAMES[best['impl']]} {best['model']} "
            f"(`{best['run']}`)"
        )
    return [metric, *twins, times, machine, best_cell]


def update_readme(readme_path=None, results_dirs=None):
    """results_dirs: {project: results folder} in place of <project>/results (for tests)."""
    readme_path = Path(readme_path) if readme_path else ROOT / "README.md"
    results_dirs = results_dirs or {}
    head = [
        "project",
        "metric",
        "NumPy twin (from scratch)",
        "PyTorch twin",
        "wall time NumPy / PyTorch (ratio)",
        "machine",
        "best result",
        "report",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for project in PROJECTS:
        results = Path(results_dirs.get(project, ROOT / project / "results"))
        if not (ROOT / project / "scratch.py").exists():
            cells = ["–", "not built yet", "not built yet", "–", "–", "–", "–"]
        elif not results.exists():
            cells = ["–", "no run recorded yet", "no run recorded yet", "–", "–", "–"]
            cells.append(f"[REPORT]({project}/REPORT.md)")
        else:
            cells = [
                *readme_row(project, committed_records(project, results)),
                f"[REPORT]({project}/REPORT.md)",
            ]
        lines.append(f"| `{project}` | " + " | ".join(cells) + " |")
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
