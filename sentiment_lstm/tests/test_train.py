"""The training loop (both implementations) on real IMDB slices: a few epochs lower the loss, the twins follow
the same trajectory, early stopping keeps the best weights, resuming continues exactly; predicting with the
saved weights; the baselines write their records; one-line errors for bad input."""

import json

import numpy as np
import pytest

from sentiment_lstm import baselines, predict
from sentiment_lstm import train as tr
from sentiment_lstm.tests.test_data import imdb_or_skip
from shared.cli import run_main


@pytest.fixture
def imdb():
    imdb_or_skip()


def tiny(**kw):
    base = dict(
        embed=16, hidden=16, max_len=64, train_subset=640, eval_subset=300, epochs=3, patience=0, batch_size=16,
        lr=3e-2, min_lr=1e-3, warmup_steps=5, threads=1, progress=False, run="t",
    )  # fmt: skip
    return tr.Config(**(base | kw))


def weights_of(model):
    return {k: np.asarray(v) for k, v in model.weights().items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short real run per implementation (the same recipe: twins), with saved weights."""
    imdb_or_skip()
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for impl in ("numpy", "torch"):
        model, path = tr.train(tiny(impl=impl, run=f"{impl}-lstm", save_weights=True), out)
        runs[impl] = (model, json.loads(path.read_text()), out)
    return runs


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_few_epochs_lower_the_loss(trained, impl):
    _, record, _ = trained[impl]
    history, metrics = record["history"], record["metrics"]
    assert history["epoch"] == [1, 2, 3] and history["step"] == [40, 80, 120]
    assert history["train_loss"][-1] < history["train_loss"][0] - 0.2, history["train_loss"]
    assert min(history["val_loss"]) < 0.67, history["val_loss"]  # below chance's log 2 = 0.693
    assert record["model"] == "lstm-mean-e16-h16" and record["dataset"] == "imdb"
    assert 0.5 < metrics["test_acc"] <= 1 and metrics["test_size"] == 300
    assert metrics["val_acc"] == max(history["val_acc"])  # the best epoch's weights were scored
    assert history["val_acc"][metrics["best_epoch"] - 1] == metrics["val_acc"]


def test_numpy_and_torch_twins_follow_the_same_trajectory(trained):
    """Same initial weights, the same batches and the same Adam: the two runs agree to float32 round-off."""
    a, b = trained["numpy"][1]["history"], trained["torch"][1]["history"]
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], atol=2e-3)
    np.testing.assert_allclose(a["val_loss"], b["val_loss"], atol=2e-3)
    assert trained["numpy"][1]["params"] == trained["torch"][1]["params"]


@pytest.mark.parametrize("impl,model", [("numpy", "lstm"), ("torch", "lstm"), ("torch", "bilstm")])
def test_resume_continues_exactly(imdb, tmp_path, impl, model):
    """3 epochs straight == 1 epoch, a checkpoint, a new start from it, 2 more; dropout exercises the random
    generators, early stopping's best weights travel in the checkpoint."""
    kw = dict(impl=impl, model=model, dropout=0.3, train_subset=200, eval_subset=100, max_len=32, patience=2)
    kw |= dict(pool="max") if model == "bilstm" else {}
    straight, _ = tr.train(tiny(run="straight", **kw), tmp_path)
    cfg = tiny(run="resumed", **kw)
    _, none = tr.train(cfg, tmp_path, stop_at=1)
    assert none is None
    resumed, path = tr.train(cfg, tmp_path)
    a, b = weights_of(straight), weights_of(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    h_a = json.loads((tmp_path / "results" / "straight.json").read_text())["history"]
    h_b = json.loads(path.read_text())["history"]
    for key in ("epoch", "step", "lr", "train_loss", "val_loss", "val_acc"):
        assert h_a[key] == h_b[key], key


def test_time_budget_stops_mid_epoch(imdb, tmp_path):
    _, path = tr.train(tiny(max_minutes=0.0005, epochs=5, train_subset=300), tmp_path)
    record = json.loads(path.read_text())
    assert record["metrics"]["steps"] < 5 * 10 and record["history"]["epoch"] == [1]


def test_predict_with_the_saved_weights(trained, capsys):
    out = trained["numpy"][2] / "checkpoints"
    for name in ("numpy-lstm.npz", "torch-lstm.pt"):
        label, p = run_main(predict.main, [f"--checkpoint={out / name}", "What a film!"])
        line = capsys.readouterr().out
        assert line.startswith(("negative ", "positive ")) and 0.5 <= p <= 1 and line.count("\n") == 1
    np_model, meta = predict.load_model(out / "numpy-lstm.npz")
    torch_model, _ = predict.load_model(out / "torch-lstm.pt")
    text = "An awful, boring mess of a movie."
    p_np, p_torch = (
        predict.probabilities(np_model, meta, text),
        predict.probabilities(torch_model, meta, text),
    )
    assert p_np.sum() == pytest.approx(1) and p_torch.sum() == pytest.approx(1)


def test_baselines_write_their_records(imdb, tmp_path):
    paths = baselines.main(
        ["--train_subset=400", "--eval_subset=200", "--lr_c=1,10", "--progress=false"], tmp_path
    )
    records = {json.loads(p.read_text())["model"]: json.loads(p.read_text()) for p in paths}
    assert set(records) == set(baselines.MODELS)
    for name, r in records.items():
        assert 0 <= r["metrics"]["test_acc"] <= 1 and r["metrics"]["test_size"] == 200, name
        assert (
            r["metrics"]["train_size"] == 600 and r["group"] == "baselines"
        )  # refitted on train + validation
    assert abs(records["majority"]["metrics"]["test_acc"] - 0.5) < 0.1
    assert records["nbsvm-bi"]["metrics"]["test_acc"] > 0.65
    assert records["tfidf-lr-bi"]["config"]["chosen"]["C"] in (1.0, 10.0)


@pytest.mark.parametrize(
    "main,argv,message",
    [
        (tr.main, ["--impl=jax"], "--impl=jax: choose one of numpy, torch"),
        (tr.main, ["--model=gru"], "--model=gru: choose one of lstm, bilstm"),
        (tr.main, ["--pool=max"], "--pool=max: --model=lstm pools by mean, last"),
        (tr.main, ["--model=bilstm"], "--model=bilstm exists only in PyTorch"),
        (tr.main, ["--dropout=1.5"], "--dropout=1.5: must be in [0, 1)"),
        (tr.main, ["--max_len=-3"], "--max_len=-3: must be >= 0"),
        (tr.main, ["--hidden=abc"], "--hidden=abc: expected a int"),
        (tr.main, ["--keep=middle"], "--keep=middle: choose one of last, first, both"),
        (tr.main, ["--bogus=1"], "unknown flag --bogus"),
        (baselines.main, ["--models=svm"], "--models=svm: choose from majority"),
        (predict.main, ["--model=numpy-lstm", "   <br />  "], "the text is empty"),
        (
            predict.main,
            ["--model=gpt", "fine"],
            "--model=gpt: choose one of nbsvm, numpy-lstm, bilstm, minilm",
        ),
        (predict.main, ["--checkpoint=/nowhere/x.npz", "fine"], "checkpoint /nowhere/x.npz not found"),
    ],
)
def test_bad_input_is_one_line(main, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
