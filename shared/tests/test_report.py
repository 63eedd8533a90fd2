"""Run record -> REPORT.md round trip: tables are regenerated, hand-written text survives."""

import json

import pytest

from shared import report
from shared.cli import UserError, run_main
from shared.runrecord import load_run_records, write_run_record


def record(tmp_path, run, impl, acc, group="headline", config=None, wall_time_s=123.4):
    return write_run_record(
        project="mlp_mnist",
        run=run,
        impl=impl,
        model="mlp-800",
        dataset="mnist",
        metrics={"test_acc": acc, "test_loss": 0.05},
        history={"epoch": [1, 2], "val_acc": [0.9, acc]},
        params=636_010,
        wall_time_s=wall_time_s,
        config={"lr": 1e-3} if config is None else config,
        seed=0,
        group=group,
        results_dir=tmp_path,
    )


def test_run_record_has_every_field(tmp_path):
    data = json.loads(record(tmp_path, "a", "numpy", 0.98).read_text())
    for key in [
        "project",
        "run",
        "impl",
        "model",
        "dataset",
        "metrics",
        "history",
        "params",
        "wall_time_s",
        "config",
        "command",
        "git_commit",
        "env",
        "seed",
        "finished_at",
    ]:
        assert key in data, key
    assert data["command"].startswith("python") and data["env"]["numpy"]
    with pytest.raises(ValueError):
        record(tmp_path, "b", "jax", 0.5)


def test_report_round_trip_keeps_analysis(tmp_path):
    record(tmp_path, "np-run", "numpy", 0.9812)
    record(tmp_path, "torch-run", "torch", 0.9843)
    report_md = tmp_path / "REPORT.md"
    report_md.write_text(
        "# Title\n\nMy analysis.\n\n<!-- BEGIN table:headline -->\nstale\n<!-- END table:headline -->\n"
        "\nMore analysis.\n"
    )
    report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    text = report_md.read_text()
    assert "My analysis." in text and "More analysis." in text and "stale" not in text
    assert "98.12%" in text and "98.43%" in text and "636,010" in text and "2 min 03 s" in text
    # regenerating again is stable, and a new group gets its own section
    record(tmp_path, "sweep-1", "numpy", 0.95, group="sweep")
    report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    again = report_md.read_text()
    assert again.count("<!-- BEGIN table:headline -->") == 1 and "<!-- BEGIN table:sweep -->" in again
    assert "95.00%" in again
    assert len(load_run_records("mlp_mnist", tmp_path)) == 3
    # a FAST=1 quick look is a record, but not a result: it never reaches the report
    record(tmp_path, "fast-run", "numpy", 0.5123, group="fast")
    record(tmp_path, "smoke-run", "numpy", 0.4321, group="sweep")  # gitignored by its name (results/smoke-*)
    report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    assert report_md.read_text() == again


def test_format_metric():
    assert report.format_metric("test_acc", 0.98765) == "98.77%"
    assert report.format_metric("val_loss", 1.46971) == "1.47"
    assert report.format_seconds(995) == "16 min 35 s"
    assert report.format_metric("train_time_s", 995) == "16 min 35 s"
    assert report.format_metric("tokens_per_s", 18211.7) == "18,212"  # a rate, not a duration
    assert report.format_metric("converged", False) == "no"


def test_file_blocks_are_filled_from_result_files(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bench.txt").write_text("numpy/torch epoch time ratio: 1.10\n")
    text = "<!-- BEGIN file:results/bench.txt -->\nold\n<!-- END file:results/bench.txt -->\n"
    text += "<!-- BEGIN file:results/none.txt -->\n<!-- END file:results/none.txt -->\n"
    out = report.include_files(text, tmp_path)
    assert "ratio: 1.10" in out and "old" not in out and "none.txt not generated yet" in out


def twin_config(**changes):
    """A config like the headline's, with what differs between the two runs of one recipe."""
    config = {"run": "numpy-mlp-800x800", "impl": "numpy", "hidden": [800, 800], "lr": 1e-3, "epochs": 20}
    return config | {"threads": 1, "device": "auto", "resume": True, "progress": False} | changes


def twin_records(tmp_path, **torch_changes):
    """The declared mlp_mnist twins and best run as temp records; torch_changes go into the PyTorch config."""
    record(tmp_path, "numpy-mlp-800x800", "numpy", 0.9857, config=twin_config(), wall_time_s=264)
    torch_config = twin_config(
        run="torch-mlp-800x800", impl="torch", threads=2, progress=True, precision="fp32"
    )
    record(
        tmp_path, "torch-mlp-800x800", "torch", 0.9865, config=torch_config | torch_changes, wall_time_s=307
    )
    record(tmp_path, "numpy-mlp-800x800-aug", "numpy", 0.9929, config=twin_config(epochs=60))


def readme_with_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- BEGIN projects -->\nstale\n<!-- END projects -->\n\nMore text.\n")
    empty = tmp_path / "no-records"
    empty.mkdir()
    # mlp_mnist from the temp records, the other projects from an empty folder: not recorded yet
    return readme, {"mlp_mnist": tmp_path, "cnn_cifar": empty, "char_rnn": empty}


def test_readme_row_and_report_table_are_the_twin_pair(tmp_path):
    twin_records(tmp_path)  # they differ in run plumbing (threads, progress) and a field only torch has
    readme, results_dirs = readme_with_markers(tmp_path)
    report.update_readme(readme, results_dirs)
    row = next(line for line in readme.read_text().splitlines() if line.startswith("| `mlp_mnist`"))
    assert "98.57% (`numpy-mlp-800x800`)" in row and "98.65% (`torch-mlp-800x800`)" in row
    assert "4 min 24 s / 5 min 07 s (0.86)" in row  # both wall times and numpy/torch
    assert "99.29%: NumPy mlp-800 (`numpy-mlp-800x800-aug`)" in row  # the best result, in its own column
    assert "More text." in readme.read_text() and "stale" not in readme.read_text()
    char_rnn = next(line for line in readme.read_text().splitlines() if line.startswith("| `char_rnn`"))
    assert "`torch-lstm-1x512` not recorded yet" in char_rnn

    report_md = tmp_path / "REPORT.md"
    report_md.write_text("# Title\n\nThe twins:\n\n<!-- BEGIN twins -->\n<!-- END twins -->\n")
    report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    table = report_md.read_text().split("<!-- BEGIN twins -->\n")[1].split("\n<!-- END twins -->")[0]
    rows = table.splitlines()
    assert rows[0] == "| | run | test_acc | wall time | params | machine |"
    assert rows[2].startswith("| NumPy | `numpy-mlp-800x800` | 98.57% | 4 min 24 s | 636,010 | ")
    assert rows[3].startswith("| PyTorch | `torch-mlp-800x800` | 98.65% | 5 min 07 s | 636,010 | ")
    assert rows[4] == "| NumPy / PyTorch |  | -0.08 points (difference) | 0.86 | 1.00 |  |"


def test_a_pair_that_is_not_one_recipe_is_refused_with_one_line(tmp_path, capsys):
    twin_records(tmp_path, lr=3e-3)
    readme, results_dirs = readme_with_markers(tmp_path)
    before = readme.read_text()
    with pytest.raises(UserError) as refused:
        report.update_readme(readme, results_dirs)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        "mlp_mnist: numpy-mlp-800x800 and torch-mlp-800x800 are not twins: lr is 0.001 vs 0.003"
    )
    assert readme.read_text() == before
    report_md = tmp_path / "REPORT.md"
    report_md.write_text("<!-- BEGIN twins -->\n<!-- END twins -->\n")
    with pytest.raises(UserError, match="not twins: lr"):
        report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    # through the command line: one line on stderr, exit status 2
    with pytest.raises(SystemExit) as stop:
        run_main(lambda argv: report.update_readme(readme, results_dirs), [])
    assert stop.value.code == 2 and capsys.readouterr().err == f"error: {message}\n"


def test_twins_on_different_machines_show_each_machine(tmp_path):
    twin_records(tmp_path)
    path = tmp_path / "torch-mlp-800x800.json"
    torch_record = json.loads(path.read_text())
    torch_record["env"] |= {"cpu": "Other CPU", "cpu_info": None, "torch_threads": 2}
    path.write_text(json.dumps(torch_record))
    readme, results_dirs = readme_with_markers(tmp_path)
    report.update_readme(readme, results_dirs)
    row = next(line for line in readme.read_text().splitlines() if line.startswith("| `mlp_mnist`"))
    assert "; PyTorch: Other CPU, 2 threads |" in row and "| NumPy: " in row
