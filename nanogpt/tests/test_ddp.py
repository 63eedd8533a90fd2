"""Training on more than one process: torchrun starts two CPU processes (gloo, DistributedDataParallel) for a
few iterations; they end with identical weights, and those equal the weights of one process reading the same
global batch (its micro-batches accumulated). Accumulated micro-batches equal one batch of them all; bad
settings for processes are one-line errors."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nanogpt import train as tr
from shared.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
# a tiny GPT for 5 iterations, 2 micro-batches of 2 windows each; the default run name, because torchrun takes
# a --run=... flag for an abbreviation of its own --run-path
FLAGS = dict(
    impl="torch", n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=2, gradient_accumulation_steps=2,
    max_iters=5, eval_interval=5, eval_iters=2, warmup_iters=1, lr_decay_iters=5, save_weights=True,
    threads=1, progress=False,
)  # fmt: skip
RUN = "torch-gpt-1x16"


@pytest.fixture(scope="module")
def text():
    from shared import data

    local = data.cache_dir() / "tinyshakespeare" / "input.txt"
    mirror = data.mirror_dir()
    if not local.is_file() and not (mirror and (mirror / "tinyshakespeare" / "input.txt").is_file()):
        pytest.skip(
            "tiny Shakespeare is in neither data/ nor $REPRO_DATA_MIRROR (unit tests do not download)"
        )


def torchrun(processes, flags, out_dir):
    """Run nanogpt.train under torchrun on `processes` CPU processes, a thread each; returns its stdout."""
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    argv += ["-m", "nanogpt.train", *(f"--{k}={v}" for k, v in flags.items())]
    env = os.environ | {"OMP_NUM_THREADS": "1", "REPRO_OUT_DIR": str(out_dir)}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def saved_weights(out_dir):
    return torch.load(out_dir / "checkpoints" / f"{RUN}.pt")["model"]


@pytest.mark.parametrize("accumulation", [2, 4])
def test_two_processes_match_one_process_reading_the_same_global_batch(text, tmp_path, accumulation):
    """Each process takes 1 (then 2: no_sync before the last) of the micro-batches of 2 windows."""
    flags = FLAGS | dict(gradient_accumulation_steps=accumulation)
    stdout = torchrun(2, flags, tmp_path / "ddp")
    # the two ranks compare their weights at the end (all-reduced largest difference), and rank 0 alone prints
    assert f"{RUN}: the weights of the 2 processes differ by at most 0.0e+00" in stdout, stdout
    assert stdout.count(" iter     5: ") == 1, stdout
    single, path = tr.train(tr.Config(**flags), tmp_path / "single")

    ddp, one = saved_weights(tmp_path / "ddp"), single.weights()
    initial = tr.build(tr.Config(**FLAGS)).weights()
    assert ddp.keys() == one.keys()
    for name in one:
        np.testing.assert_allclose(ddp[name], one[name], rtol=0, atol=1e-5, err_msg=name)
    moved = max(float((one[name] - initial[name]).abs().max()) for name in one)
    assert moved > 1e-3  # 5 steps of AdamW at 1e-3: the comparison above is not between initial weights
    ddp_record = json.loads((tmp_path / "ddp" / "results" / f"{RUN}.json").read_text())
    one_record = json.loads(path.read_text())
    assert ddp_record["config"] == one_record["config"]  # the number of processes is no setting
    assert "trained by 2 processes" in ddp_record["notes"] and "processes" not in one_record["notes"]
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(ddp_record["history"][key], one_record["history"][key], atol=1e-6)


def test_accumulated_micro_batches_equal_one_batch_of_them_all(text, tmp_path):
    """2 micro-batches of 2 windows, and one batch of 4: the same windows (one draw of the global batch), the
    same mean loss and gradient, up to float round-off."""
    cfg = tr.Config(**FLAGS | dict(save_weights=False))
    accumulated, _ = tr.train(cfg, tmp_path)
    one_batch, _ = tr.train(
        dataclasses.replace(cfg, run="b4", batch_size=4, gradient_accumulation_steps=1), tmp_path
    )
    a, b = accumulated.weights(), one_batch.weights()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "processes,argv,message",
    [
        ("2", ["--impl=numpy"], "--impl=numpy steps on one batch in one process"),
        (None, ["--impl=numpy", "--gradient_accumulation_steps=2"], "--impl=numpy steps on one batch"),
        ("2", ["--impl=torch", "--gradient_accumulation_steps=3"], "=3 is not a multiple of the 2 processes"),
        (
            None,
            ["--impl=torch", "--gradient_accumulation_steps=0"],
            "--gradient_accumulation_steps=0: must be",
        ),
    ],
)
def test_bad_settings_for_processes_are_one_line_errors(processes, argv, message, monkeypatch, capsys):
    """Refused before joining a process group (WORLD_SIZE as torchrun sets it)."""
    if processes:
        monkeypatch.setenv("WORLD_SIZE", processes)
    else:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit) as e:
        run_main(tr.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err
