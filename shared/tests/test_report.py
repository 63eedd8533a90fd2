"""Run record -> REPORT.md round trip: tables are regenerated, hand-written text survives."""

import json

import pytest

from shared import report
from shared.runrecord import load_run_records, write_run_record


def record(tmp_path, run, impl, acc, group="headline"):
    return write_run_record(
        project="mlp_mnist",
        run=run,
        impl=impl,
        model="mlp-800",
        dataset="mnist",
        metrics={"test_acc": acc, "test_loss": 0.05},
        history={"epoch": [1, 2], "val_acc": [0.9, acc]},
        params=636_010,
        wall_time_s=123.4,
        config={"lr": 1e-3},
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
    report.update_report("mlp_mnist", report_path=report_md, results_dir=tmp_path)
    assert report_md.read_text() == again


def test_format_metric():
    assert report.format_metric("test_acc", 0.98765) == "98.77%"
    assert report.format_metric("val_loss", 1.46971) == "1.47"
    assert report.format_seconds(995) == "16 min 35 s"


def test_file_blocks_are_filled_from_result_files(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bench.txt").write_text("numpy/torch epoch time ratio: 1.10\n")
    text = "<!-- BEGIN file:results/bench.txt -->\nold\n<!-- END file:results/bench.txt -->\n"
    text += "<!-- BEGIN file:results/none.txt -->\n<!-- END file:results/none.txt -->\n"
    out = report.include_files(text, tmp_path)
    assert "ratio: 1.10" in out and "old" not in out and "none.txt not generated yet" in out
