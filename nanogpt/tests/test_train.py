"""The training loop (both implementations) on real tiny Shakespeare: a few iterations lower the loss, the twins
follow one trajectory, an interrupted run resumes exactly, a resume with other settings is refused, --eval_only
scores the checkpoint; sample.py, evaluate.py and bench.py on what it saves; one-line errors for bad input."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from nanogpt import bench, evaluate, sample
from nanogpt import train as tr
from shared.cli import UserError, run_main
from shared.reevaluate import reevaluate
from shared.text import shakespeare_splits


@pytest.fixture(scope="module")
def text():
    from shared import data

    local = data.cache_dir() / "tinyshakespeare" / "input.txt"
    mirror = data.mirror_dir()
    if not local.is_file() and not (mirror and (mirror / "tinyshakespeare" / "input.txt").is_file()):
        pytest.skip(
            "tiny Shakespeare is in neither data/ nor $REPRO_DATA_MIRROR (unit tests do not download)"
        )
    return shakespeare_splits()


def tiny(**kw):
    base = dict(
        n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=32, max_iters=100, eval_interval=25,
        eval_iters=4, warmup_iters=10, lr_decay_iters=100, learning_rate=5e-3, min_lr=5e-4, threads=1,
        progress=False, run="t",
    )  # fmt: skip
    return tr.Config(**(base | kw))


def record_of(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def trained(text, tmp_path_factory):
    """One short real run per implementation, with saved weights, both in one folder: ({impl: (adapter, record)},
    the folder)."""
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for impl in ("numpy", "torch"):
        model, path = tr.train(tiny(impl=impl, run=f"{impl}-gpt", save_weights=True), out)
        runs[impl] = (model, record_of(path))
    return runs, out


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_few_iterations_lower_the_loss(trained, impl):
    model, record = trained[0][impl]
    history, metrics = record["history"], record["metrics"]
    assert history["iter"] == [0, 25, 50, 75, 100]
    assert abs(history["val_loss"][0] - math.log(65)) < 0.1  # the initial weights predict ~uniformly
    assert history["val_loss"][-1] < history["val_loss"][0] - 1.0, history["val_loss"]
    assert metrics["val_loss"] == history["val_loss"][-1] and metrics["iters"] == 100
    assert metrics["val_loss_full"] < math.log(65) - 1.0
    assert metrics["tokens_per_s"] > 0 and metrics["train_time_s"] >= 0
    assert record["model"] == "gpt-2x32" and record["dataset"] == "tinyshakespeare"
    assert record["params"] == model.num_params() == sum(math.prod(v.shape) for v in model.weights().values())
    assert set(history) >= {"iter", "train_loss", "val_loss", "lr", "time_s"}
    assert history["lr"][-1] == pytest.approx(5e-4)  # the cosine ends at min_lr


def test_numpy_and_torch_follow_the_same_trajectory(trained):
    """Same initial weights, same batches, the same AdamW: the two runs agree to float32 round-off."""
    a, b = (trained[0][impl][1] for impl in ("numpy", "torch"))
    np.testing.assert_allclose(a["history"]["val_loss"], b["history"]["val_loss"], atol=2e-3)
    np.testing.assert_allclose(a["history"]["train_loss"], b["history"]["train_loss"], atol=2e-3)
    assert abs(a["metrics"]["val_loss_full"] - b["metrics"]["val_loss_full"]) < 2e-3


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_an_interrupted_run_resumes_exactly(text, tmp_path, impl):
    """N iterations straight == N/2, a checkpoint, a fresh start of the script, N/2 more (dropout on: the
    generators in the checkpoint matter)."""
    cfg = tiny(impl=impl, dropout=0.1, max_iters=20, eval_interval=5, lr_decay_iters=20)
    straight, straight_path = tr.train(dataclasses.replace(cfg, run="straight"), tmp_path)
    _, none = tr.train(dataclasses.replace(cfg, run="cut"), tmp_path, stop_at=10)
    assert none is None
    resumed, path = tr.train(dataclasses.replace(cfg, run="cut"), tmp_path)
    a, b = straight.weights(), resumed.weights()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    h_a, h_b = record_of(straight_path)["history"], record_of(path)["history"]
    for key in ("iter", "lr", "train_loss", "val_loss"):
        assert h_a[key] == h_b[key], key


def test_resuming_with_other_settings_is_refused(text, tmp_path):
    short = dict(run="r", max_iters=4, eval_interval=2, warmup_iters=2, lr_decay_iters=4)
    tr.train(tiny(**short), tmp_path)
    with pytest.raises(UserError, match="different settings"):
        tr.train(tiny(**short, learning_rate=3e-3), tmp_path)
    # how it runs may change: threads, progress bar, saving the weights
    tr.train(tiny(**short, threads=2, progress=True, save_weights=True), tmp_path)


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_eval_only_scores_the_checkpoint_as_training_did(trained, impl, capsys):
    """The estimate at an iteration reads the same batches whenever it runs: --eval_only on the finished run's
    checkpoint gives back the recorded val_loss, train_loss and val_loss_full."""
    (_, record), out = trained[0][impl], trained[1]
    _, result = tr.train(tiny(impl=impl, run=f"{impl}-gpt", save_weights=True, eval_only=True), out)
    assert result["iter"] == 100
    for name in ("val_loss", "train_loss", "val_loss_full"):
        assert result[name] == pytest.approx(record["metrics"][name], abs=1e-9), name
    assert "val loss on the whole split" in capsys.readouterr().out
    with pytest.raises(UserError, match="--eval_only: no checkpoint"):
        tr.train(tiny(impl=impl, run="never-trained", eval_only=True), out)
    with pytest.raises(UserError, match="different settings"):
        tr.train(tiny(impl=impl, run=f"{impl}-gpt", eval_only=True, n_embd=64), out)


def test_full_loss_scores_every_prediction_once(trained, text):
    """full_loss == the mean of the per-window losses, each window read alone, the short last one included."""
    model = trained[0]["numpy"][0]
    ids = text["val"][:1001]  # 1,000 predictions: 62 windows of 16 and one of 8
    windows = [(ids[a : min(a + 16, 1000)], ids[a + 1 : a + 17]) for a in range(0, 1000, 16)]
    assert len(windows[-1][0]) == len(windows[-1][1]) == 8
    expected = sum(tr.nll_sum(model.logits(x[None]), y[None]) for x, y in windows)
    assert tr.full_loss(model, ids, 16, windows_per_batch=7) == pytest.approx(expected / 1000, rel=1e-6)


def test_the_split_is_nanogpts(text):
    assert len(text["vocab"]) == 65 and text["vocab"] == "".join(sorted(set(text["vocab"])))
    assert (len(text["train"]), len(text["val"])) == (1_003_854, 111_540)  # int(0.9 n) of 1,115,394


def test_batches_are_random_windows_and_their_next_characters(text):
    train = text["train"]
    x, y = tr.get_batch(train, 5, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 16)
    starts = np.random.default_rng(0).integers(0, len(train) - 16, size=5)  # the draws get_batch made
    for start, row, target in zip(starts, x, y):
        np.testing.assert_array_equal(row, train[start : start + 16])
        np.testing.assert_array_equal(target, train[start + 1 : start + 17])  # the next characters
    # the last start is len - T - 1, so the last target is the last id: 17 ids leave one window only
    x, y = tr.get_batch(train[:17], 50, 16, np.random.default_rng(0))
    assert (x == train[:16]).all() and (y == train[1:17]).all()


def test_learning_rate_warms_up_then_follows_the_cosine():
    cfg = tr.Config(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000)
    assert tr.learning_rate(cfg, 0) == pytest.approx(1e-5)  # (it + 1) / warmup_iters
    assert tr.learning_rate(cfg, 99) == pytest.approx(1e-3)
    assert tr.learning_rate(cfg, 100) == pytest.approx(1e-3)  # the top of the cosine
    assert tr.learning_rate(cfg, 1050) == pytest.approx(5.5e-4)  # half-way down
    assert tr.learning_rate(cfg, 2000) == tr.learning_rate(cfg, 5000) == pytest.approx(1e-4)


def test_under_a_time_budget_the_cosine_follows_the_time_used():
    cfg = tr.Config(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=10**6, lr_decay_iters=10**6)
    cfg = dataclasses.replace(cfg, max_minutes=10.0)
    assert tr.learning_rate(cfg, 0, 0.0) == pytest.approx(1e-5)  # the warm-up counts iterations still
    assert tr.learning_rate(cfg, 100, 0.0) == pytest.approx(1e-3)
    assert tr.learning_rate(cfg, 200, 300.0) == pytest.approx(5.5e-4)  # half the 600 s used: half-way down
    assert tr.learning_rate(cfg, 300, 600.0) == tr.learning_rate(cfg, 400, 900.0) == pytest.approx(1e-4)
    assert not tr.finished(cfg, {"iter": 5000, "train_time": 599.0})
    assert tr.finished(cfg, {"iter": 5000, "train_time": 600.0})
    assert tr.finished(dataclasses.replace(cfg, max_iters=5000), {"iter": 5000, "train_time": 1.0})


def test_a_time_budgeted_run_stops_on_time_and_evaluates_at_its_end(text, tmp_path):
    cfg = tiny(impl="torch", max_iters=10**6, lr_decay_iters=10**6, max_minutes=0.02, eval_interval=10**5)
    _, path = tr.train(cfg, tmp_path)
    record = record_of(path)
    iters = record["metrics"]["iters"]
    assert 1 < iters < 10**6 and 1.2 <= record["metrics"]["train_time_s"] < 1.2 + 1.0
    assert record["history"]["iter"] == [0, iters]  # the estimates at the start and at the end
    assert record["history"]["lr"][-1] == pytest.approx(cfg.min_lr)


def test_sample_prints_text_from_both_files(trained, capsys, tmp_path):
    out = trained[1]
    for impl, suffix in (("numpy", "npz"), ("torch", "pt")):
        ckpt = out / "checkpoints" / f"{impl}-gpt.{suffix}"
        run_main(
            sample.main, [f"--checkpoint={ckpt}", "--start=ROMEO:", "--num_samples=2", "--max_new_tokens=30"]
        )
        lines = capsys.readouterr().out.split(sample.SEPARATOR + "\n")
        assert len(lines) == 3 and lines[-1] == "" and all(s.startswith("ROMEO:") for s in lines[:2])
        assert all(len(s) == len("ROMEO:") + 30 + 1 for s in lines[:2])  # + print's newline
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("KING RICHARD III:\nNow is the winter of our discontent\n")  # longer than block_size
    run_main(sample.main, [f"--checkpoint={ckpt}", f"--start=FILE:{prompt}", "--num_samples=1", "--max_new_tokens=5",
                           "--temperature=0"])  # fmt: skip
    assert capsys.readouterr().out.startswith(prompt.read_text())


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--start=Ω ROMEO", "'Ω' not in the model's 65-character vocabulary"),
        ("--start=FILE:/nonexistent/prompt.txt", "cannot read it"),
        ("--checkpoint=resume", "is not a nanogpt weights file"),
        ("--checkpoint=nothing.pt", "no such file"),
        ("--temperature=-1", "--temperature=-1.0: must be >= 0"),
    ],
)
def test_sample_errors_are_one_line(trained, flag, message, capsys):
    out = trained[1]
    ckpt = out / "checkpoints" / "numpy-gpt.npz"
    paths = {"resume": out / "checkpoints" / "resume" / "torch-gpt.pt", "nothing.pt": out / "nothing.pt"}
    if flag.startswith("--checkpoint="):
        ckpt, flag = paths[flag.split("=", 1)[1]], "--num_samples=1"
    with pytest.raises(SystemExit) as e:
        run_main(sample.main, [f"--checkpoint={ckpt}", flag, "--max_new_tokens=3"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_evaluate_reproduces_the_recorded_full_loss(trained, capsys):
    out = trained[1]
    assert reevaluate("nanogpt", "val_loss_full", evaluate.validation_loss, 1e-3, folder=out) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("reproduced" in line for line in lines[:2]), lines
    measured = [float(line.split("val_loss_full ")[1].split()[0]) for line in lines[:2]]
    claimed = [trained[0][impl][1]["metrics"]["val_loss_full"] for impl in ("numpy", "torch")]
    np.testing.assert_allclose(measured, claimed, atol=1e-4)


def test_bench_times_both_on_real_text_and_ends_with_the_ratio(text, capsys):
    bench.main(["--n_layer=1", "--n_embd=16", "--n_head=2", "--block_size=8", "--batch_size=2", "--iters=1",
                "--warmup=1", "--threads=1"])  # fmt: skip
    out = capsys.readouterr().out
    assert "vocab=65" in out
    assert re.fullmatch(r"numpy/torch step time ratio: \d+\.\d\d", out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--impl=jax"], "--impl=jax: choose one of numpy, torch"),
        (["--pos=alibi"], "--pos=alibi: choose one of learned, sinusoidal, rotary"),
        (
            ["--pos=rotary", "--n_embd=12", "--n_head=4"],
            "--pos=rotary turns channel pairs: the head size 3 is odd",
        ),
        (["--bogus=1"], "unknown flag --bogus"),
        (["--n_embd=abc"], "--n_embd=abc: expected a int"),
        (["--n_embd=30"], "--n_embd=30 is not a multiple of --n_head=4"),
        (["--dropout=1.5"], "--dropout=1.5"),
        (["--attn_dropout=-0.1"], "--attn_dropout=-0.1: must be a number in [0, 1)"),
        (["--warmup_iters=300", "--lr_decay_iters=200"], "--warmup_iters=300 is past --lr_decay_iters=200"),
        (["--precision=bf16"], "--precision=bf16: the NumPy implementation computes in fp32"),
        (["--impl=torch", "--precision=fp16"], "--precision=fp16: choose one of fp32, bf16"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(tr.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_weights_over_10_mb_are_refused_before_training(text, tmp_path):
    with pytest.raises(UserError, match="over the 10 MB limit"):
        tr.train(tiny(n_embd=512, n_head=8, n_layer=1, block_size=16, save_weights=True), tmp_path)
