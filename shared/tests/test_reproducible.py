"""Regenerating the committed REPORT tables, the README table and the cheap figures from the committed run
records gives the committed files back byte for byte, and a quick look (a `make <project> FAST=1` record) beside
them changes none of them: its figures, if any, go to gitignored files of their own.

Everything is written into a temporary copy of each results/ folder (other work may be using the tree), then
compared with the files in the repository. Figures that need a model evaluated over a dataset
(cnn_cifar's confusion matrix, misclassified images, activation maps) are left out to keep this fast.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shared import report
from shared.runrecord import load_run_records

ROOT = Path(__file__).resolve().parents[2]

BUILT = ("mlp_mnist", "cnn_cifar", "char_rnn", "nanogpt")
# the committed record each project's quick look is made from (as FAST=1 writes: group "fast", a fast- name)
QUICK_LOOK_FROM = {
    "mlp_mnist": "numpy-mlp-800x800",
    "cnn_cifar": "numpy-simplecnn",
    "char_rnn": "numpy-rnn-1x256",
    "nanogpt": "numpy-gpt-4x128",
}


def copy_project(project, dest, with_figures=False):
    """<project>/REPORT.md and its results/ folder (no quick-look files; no PNGs unless with_figures) into
    dest/<project>, plus a quick-look record; returns dest/<project>."""
    folder = dest / project
    (folder / "results").mkdir(parents=True)
    shutil.copy2(ROOT / project / "REPORT.md", folder / "REPORT.md")
    for path in (ROOT / project / "results").iterdir():
        if path.name.startswith(report.QUICK_LOOK_PREFIXES) or (path.suffix == ".png" and not with_figures):
            continue
        if path.is_file():
            shutil.copy2(path, folder / "results" / path.name)
    quick = json.loads((ROOT / project / "results" / f"{QUICK_LOOK_FROM[project]}.json").read_text())
    quick |= {"run": f"fast-{quick['run']}", "group": "fast"}
    quick["metrics"] = {k: v * 0.5 if isinstance(v, float) else v for k, v in quick["metrics"].items()}
    (folder / "results" / f"{quick['run']}.json").write_text(json.dumps(quick, indent=1) + "\n")
    return folder


def assert_only_quick_look_figures_are_new(project, written):
    """Every PNG in `written` equals the committed figure of that name, or is a quick look's own, gitignored."""
    committed = ROOT / project / "results"
    new = []
    for path in sorted(written.glob("*.png")):
        if (committed / path.name).exists() and not path.name.startswith(report.QUICK_LOOK_PREFIXES):
            assert path.read_bytes() == (committed / path.name).read_bytes(), f"{project}/results/{path.name}"
        else:
            new.append(path.name)
    for name in new:
        assert name.startswith(report.QUICK_LOOK_PREFIXES), (
            f"{project}/results/{name} would be a new tracked file"
        )
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{project}/results/{name}"], cwd=ROOT)
        assert ignored.returncode in (0, 128), (
            f"{project}/results/{name} is not gitignored"
        )  # 128: no git here
    return new


@pytest.mark.parametrize("project", BUILT)
def test_report_tables_regenerate_byte_for_byte_beside_a_quick_look(project, tmp_path):
    folder = copy_project(project, tmp_path)
    report.update_report(project, report_path=folder / "REPORT.md", results_dir=folder / "results")
    assert (folder / "REPORT.md").read_bytes() == (ROOT / project / "REPORT.md").read_bytes()


def test_readme_table_regenerates_byte_for_byte_beside_quick_looks(tmp_path):
    results_dirs = {project: copy_project(project, tmp_path) / "results" for project in BUILT}
    shutil.copy2(ROOT / "README.md", tmp_path / "README.md")
    report.update_readme(tmp_path / "README.md", results_dirs)
    assert (tmp_path / "README.md").read_bytes() == (ROOT / "README.md").read_bytes()


def test_mlp_mnist_figures_regenerate_byte_for_byte_and_a_quick_look_gets_its_own(tmp_path):
    from mlp_mnist import figures

    results = copy_project("mlp_mnist", tmp_path) / "results"
    figures.draw(load_run_records("mlp_mnist", results), results)
    new = assert_only_quick_look_figures_are_new("mlp_mnist", results)
    assert new == ["fast-headline_loss.png", "fast-headline_test_acc.png"]
    assert (results / "headline_loss.png").exists() and (results / "sweep_test_acc.png").exists()


def test_cnn_cifar_cheap_figures_regenerate_byte_for_byte(tmp_path, monkeypatch):
    from cnn_cifar import figures

    results = copy_project("cnn_cifar", tmp_path) / "results"
    monkeypatch.setattr(figures, "RESULTS", results)
    records = load_run_records("cnn_cifar", results)
    figures.curves(records)
    figures.first_layer_filters(records)
    figures.augmentation_ablation(records)
    figures.transfer(records)
    assert assert_only_quick_look_figures_are_new("cnn_cifar", results) == []
    assert (results / "curves_test_acc.png").exists() and (results / "filters_numpy_simplecnn.png").exists()
