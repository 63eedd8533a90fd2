"""Training on more than one process: torchrun starts two CPU processes (gloo, DistributedDataParallel) for three
iterations of a tiny ResNet on a real CIFAR-10 slice; both end with identical weights and batch norm statistics,
and those equal the weights of one process reading the same global batch of 16 as the same 2 micro-batches of 8
(batch norm normalises each micro-batch alone, in one process as in two). Settings that cannot be spread over
the processes are one-line errors before any process group is joined."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_repro import train as T
from shared.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
FLAGS = dict(
    depth=8, widths=(4, 8, 16), batch_size=16, micro_batches=2, train_subset=256, val_size=32, test_subset=64,
    iterations=3, milestones=(2,), eval_every=3, eval_batch=32, save_weights=True, threads=1, device="cpu",
    progress=False, group="test",
)  # fmt: skip
RUN = "torch-resnet8-4-8-16"  # the default name: torchrun would read --run=... as its own --run-path


def flag(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value).lower()


def torchrun(processes, out_dir):
    """Run resnet_repro.train under torchrun on `processes` CPU processes, a thread each; returns its stdout."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    argv += ["-m", "resnet_repro.train", *(f"--{k}={flag(v)}" for k, v in FLAGS.items())]
    env = os.environ | {"OMP_NUM_THREADS": "1", "REPRO_OUT_DIR": str(out_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_processes_match_one_process_reading_the_same_global_batch(loaded_once, tmp_path):
    stdout = torchrun(2, tmp_path / "ddp")
    # the processes compare their weights at the end (all-reduced largest difference); rank 0 alone prints
    assert f"{RUN}: the weights of the 2 processes differ by at most 0.0e+00" in stdout, stdout
    assert stdout.count(f"{RUN} iter      3:") == 1, stdout
    single, path = T.train(T.Config(**FLAGS), tmp_path / "single")

    ddp = torch.load(tmp_path / "ddp" / "checkpoints" / f"{RUN}.pt")["model"]
    one = single.weights()
    initial = T.build(T.check(T.Config(**FLAGS))).weights()
    assert ddp.keys() == one.keys()
    for name in one:  # parameters, running statistics and batch counts
        np.testing.assert_allclose(ddp[name], one[name], rtol=0, atol=1e-6, err_msg=name)
    moved = max(
        float((one[n] - initial[n]).abs().max()) for n in one if not n.endswith("num_batches_tracked")
    )
    assert moved > 1e-2  # 3 steps at lr 0.1: the comparison is not between initial weights
    ddp_record = json.loads((tmp_path / "ddp" / "results" / f"{RUN}.json").read_text())
    one_record = json.loads(path.read_text())
    assert ddp_record["config"] == one_record["config"]  # the number of processes is no setting
    assert "trained by 2 processes" in ddp_record["notes"] and "processes" not in one_record["notes"]
    for key in ("train_loss", "train_err", "val_loss", "test_loss", "test_err"):
        np.testing.assert_allclose(
            ddp_record["history"][key], one_record["history"][key], atol=1e-5, err_msg=key
        )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--micro_batches=1"], "--micro_batches=1 is not a multiple of the 2 processes"),
        (["--micro_batches=3", "--batch_size=129"], "--micro_batches=3 is not a multiple of the 2 processes"),
        (
            ["--impl=numpy", "--micro_batches=2", "--depth=8"],
            "--impl=numpy steps on one batch in one process",
        ),
    ],
)
def test_settings_that_do_not_spread_over_the_processes_are_one_line(argv, message, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before joining a process group
    with pytest.raises(SystemExit) as e:
        run_main(T.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err
