"""The training loop (both implementations): real steps lower the loss, resuming continues exactly, streams carry
their state across chunks, the schedule follows a step or time budget; sample.py and evaluate.py on the weights
it saves; one-line errors for bad input."""

import json
import math

import numpy as np
import pytest
import torch

from char_rnn import data, evaluate, figures, sample, twin
from char_rnn import train as tr
from char_rnn.tests.test_charlm import shakespeare_or_skip
from shared.cli import UserError, run_main
from shared.reevaluate import reevaluate


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def text():
    return shakespeare_or_skip()


def tiny(**kw):
    base = dict(
        hidden=32,
        batch_size=8,
        seq_len=16,
        max_steps=20,
        eval_interval=10,
        eval_chars=2000,
        warmup_steps=5,
        lr=1e-2,
        min_lr=1e-3,
        threads=1,
        progress=False,
        run="t",
    )
    return tr.Config(**(base | kw))


def weights_of(impl):
    return {k: np.asarray(v) for k, v in impl.weights().items()}


@pytest.fixture(scope="module")
def trained(text, tmp_path_factory):
    """One short real run per implementation, with saved weights: {impl: (impl object, record, out dir)}."""
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for impl in ("numpy", "torch"):
        cfg = tiny(
            impl=impl, run=f"{impl}-lstm", hidden=48, batch_size=16, seq_len=32, max_steps=60,
            eval_interval=20, train_chars=40_000, lr=4e-2, save_weights=True,
        )  # fmt: skip
        obj, path = tr.train(cfg, out)
        runs[impl] = (obj, json.loads(path.read_text()), out)
    return runs


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_few_steps_lower_the_loss(trained, impl):
    _, record, _ = trained[impl]
    history, metrics = record["history"], record["metrics"]
    assert history["step"] == [20, 40, 60]
    assert history["val_loss"][0] < math.log(65)
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.2, history["val_loss"]
    assert metrics["val_loss"] < math.log(65) - 1.0  # the whole validation split, not the 2000-char prefix
    assert record["model"] == "lstm-1x48" and record["dataset"] == "tinyshakespeare"
    assert set(history) >= {"step", "train_time_s", "time_s", "train_loss", "val_loss", "lr"}
    assert metrics["steps"] == 60 and record["params"] == 4 * 48 * (65 + 48 + 1) + 48 * 65 + 65


def test_numpy_and_torch_follow_the_same_trajectory(trained):
    """Same initial weights, same data and the same Adam: the two runs agree to float32 round-off."""
    a, b = trained["numpy"][1]["history"], trained["torch"][1]["history"]
    np.testing.assert_allclose(a["val_loss"], b["val_loss"], atol=2e-3)
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], atol=2e-3)


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_resume_continues_exactly(text, tmp_path, impl):
    """N steps straight == N/2 steps, a checkpoint, a new process state, N/2 more. Two layers with dropout and an
    epoch boundary inside each half exercise the random generators, the stream position and the carried state."""
    kw = dict(impl=impl, layers=2, hidden=16, dropout=0.3, batch_size=4, seq_len=8, train_chars=400)
    kw |= dict(max_steps=30, eval_interval=10, eval_chars=300)
    straight, _ = tr.train(tiny(run="straight", **kw), tmp_path)
    cfg = tiny(run="resumed", **kw)
    _, none = tr.train(cfg, tmp_path, stop_at=10)
    assert none is None
    resumed, path = tr.train(cfg, tmp_path)
    a, b = weights_of(straight), weights_of(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    h_a = json.loads((tmp_path / "results" / "straight.json").read_text())["history"]
    h_b = json.loads(path.read_text())["history"]
    for key in ("step", "epoch", "lr", "train_loss", "val_loss"):
        assert h_a[key] == h_b[key], key
    assert h_a["epoch"][-1] > 2  # the stripes were re-cut twice


def test_bf16_autocast_trains_like_fp32(trained, tmp_path):
    """The same run as the fixture's torch run under bf16 autocast: the loss falls just as far, the carried state
    stays fp32, and evaluation (fp32) scores the whole split."""
    cfg = tiny(
        impl="torch", run="bf16", hidden=48, batch_size=16, seq_len=32, max_steps=60,
        eval_interval=20, train_chars=40_000, lr=4e-2, precision="bf16",
    )  # fmt: skip
    obj, path = tr.train(cfg, tmp_path)
    bf16, fp32 = json.loads(path.read_text()), trained["torch"][1]
    assert all(s.dtype == torch.float32 for s in obj.carried)
    assert bf16["history"]["val_loss"][-1] < bf16["history"]["val_loss"][0] - 0.2
    assert abs(bf16["metrics"]["val_loss"] - fp32["metrics"]["val_loss"]) < 0.05
    assert bf16["metrics"]["val_loss"] != fp32["metrics"]["val_loss"]  # it did run in a different precision


def test_train_layout_streams_are_contiguous_stripes():
    ids = np.arange(1000)
    x, y = data.train_layout(ids, batch=4, offset=3)
    S = (1000 - 1 - 3) // 4
    assert x.shape == y.shape == (4, S)
    np.testing.assert_array_equal(x.ravel(), ids[3 : 3 + 4 * S])  # row b is one contiguous stream
    np.testing.assert_array_equal(y, x + 1)  # targets: the next character
    T = 16  # chunk k + 1 of a row starts where chunk k ended
    assert all(x[b, (k + 1) * T] == x[b, k * T + T - 1] + 1 for b in range(4) for k in range(S // T - 1))


def test_eval_layout_scores_every_prediction_once():
    ids = np.arange(103)
    x, y = data.eval_layout(ids, batch=8)
    mask = y >= 0
    assert mask.sum() == 102
    np.testing.assert_array_equal(x[mask], ids[:-1])
    np.testing.assert_array_equal(y[mask], ids[1:])


def carried(obj, impl):
    return [s.numpy().copy() for s in obj.carried] if impl == "torch" else [s.copy() for s in obj.carried[0]]


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_streaming_evaluation_carries_state_across_chunks(trained, text, impl):
    """The streamed loss does not depend on the chunk length (the state carries over), equals the loss of each
    stream read in one piece, and leaves the training state alone."""
    obj = trained[impl][0]
    ids = data.prepare_data()["val"][:3001]
    before = carried(obj, impl)
    chunked = data.stream_loss(obj, ids, batch=5, seq=7)
    whole = data.stream_loss(obj, ids, batch=5, seq=10_000)
    assert abs(chunked - whole) < 1e-5
    after = carried(obj, impl)
    for s, t in zip(before, after):
        np.testing.assert_array_equal(s, t)
    x, y = data.eval_layout(ids, 5)  # against one forward pass over the full stripes
    obj.reset_state(5)
    direct = data.masked_nll_sum(obj.logits(x), y) / 3000
    assert abs(chunked - direct) < 1e-5


def test_learning_rate_follows_the_step_or_time_budget():
    cfg = tr.Config(lr=1e-2, min_lr=1e-3, warmup_steps=10, max_minutes=10.0)
    assert tr.learning_rate(cfg, 0, 0.0) == pytest.approx(1e-3)  # warm-up: (step + 1) / warmup
    assert tr.learning_rate(cfg, 10, 0.0) == pytest.approx(1e-2)
    assert tr.learning_rate(cfg, 10, 300.0) == pytest.approx(
        5.5e-3
    )  # half the time: half-way down the cosine
    assert tr.learning_rate(cfg, 10, 600.0) == pytest.approx(1e-3)
    steps = tr.Config(lr=1e-2, min_lr=1e-3, warmup_steps=10, max_steps=110)
    assert tr.learning_rate(steps, 60, 1e9) == pytest.approx(5.5e-3)
    both = tr.Config(lr=1e-2, min_lr=1e-3, warmup_steps=10, max_steps=110, max_minutes=10.0)
    assert tr.learning_rate(both, 60, 450.0) < tr.learning_rate(steps, 60, 0.0)  # the nearer budget rules
    assert tr.budget_spent(both, 110, 0.0) and tr.budget_spent(both, 1, 600.0)
    assert not tr.budget_spent(both, 109, 599.0)


def test_time_budget_stops_training(text, tmp_path):
    _, path = tr.train(tiny(max_steps=0, max_minutes=0.002, eval_interval=1000, train_chars=5000), tmp_path)
    record = json.loads(path.read_text())
    assert record["metrics"]["train_time_s"] >= 0.1 and record["metrics"]["steps"] >= 1


def test_sample_cli_prints_text_and_rejects_a_bad_prime(trained, capsys):
    out = trained["numpy"][2]
    for suffix in ("npz", "pt"):
        ckpt = out / "checkpoints" / f"{'numpy' if suffix == 'npz' else 'torch'}-lstm.{suffix}"
        run_main(sample.main, [f"--checkpoint={ckpt}", "--prime=ROMEO:", "--length=50", "--temperature=0.8"])
        text = capsys.readouterr().out
        assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 50 + 1
        run_main(sample.main, [f"--checkpoint={ckpt}", "--prime=ROMEO:", "--length=20", "--temperature=0"])
        greedy = capsys.readouterr().out
        assert len(greedy) == 27
    with pytest.raises(SystemExit) as e:
        run_main(sample.main, [f"--checkpoint={ckpt}", "--prime=Ω ROMEO"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "'Ω'" in err
    with pytest.raises(SystemExit):
        run_main(sample.main, [f"--checkpoint={out}/nothing.pt"])
    assert "no such file" in capsys.readouterr().err


def test_same_seed_same_sample_in_both_implementations(trained):
    """Copied weights and the same seed give the same characters from scratch.CharLM and model.CharRNN."""
    from char_rnn.twin import to_scratch

    torch_model, meta = sample.load_model(trained["torch"][2] / "checkpoints" / "torch-lstm.pt")
    a = sample.generate(torch_model, meta["vocab"], "ROMEO:", 60, 0.8, 0, seed=3)
    b = sample.generate(to_scratch(torch_model), meta["vocab"], "ROMEO:", 60, 0.8, 0, seed=3)
    assert a == b


def test_evaluate_reproduces_the_recorded_loss(trained, capsys):
    out = trained["numpy"][2]
    assert reevaluate("char_rnn", "val_loss", evaluate.validation_loss, 1e-3, folder=out) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("reproduced" in line for line in lines[:2]), lines
    measured = [float(line.split("val_loss ")[1].split()[0]) for line in lines[:2]]
    claimed = [trained[impl][1]["metrics"]["val_loss"] for impl in ("numpy", "torch")]
    np.testing.assert_allclose(measured, claimed, atol=1e-4)  # evaluate streams exactly as training did


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--cell=gru"], "--cell=gru: choose one of lstm, rnn"),
        (["--bogus=1"], "unknown flag --bogus"),
        (["--max_steps=10", "--hidden=abc"], "--hidden=abc: expected a int"),
        (["--impl=numpy"], "no training budget"),
        (["--max_steps=5", "--dropout=1.5"], "--dropout=1.5"),
        (
            ["--max_steps=5", "--precision=bf16"],
            "--precision=bf16: the NumPy implementation computes in fp32",
        ),
        (["--max_steps=5", "--impl=torch", "--precision=fp16"], "--precision=fp16: choose one of fp32, bf16"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(tr.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_nan_loss_is_a_one_line_error(text, tmp_path, monkeypatch):
    nan_step = lambda self, x, y, lr: {"loss": float("nan"), "grad_norm": 0.0}  # noqa: E731
    monkeypatch.setattr(twin.NumpyLM, "train_step", nan_step)
    with pytest.raises(UserError, match="training loss became nan at step 0"):
        tr.train(tiny(train_chars=5000), tmp_path)


def test_weights_over_10_mb_are_refused_before_training(text, tmp_path):
    with pytest.raises(UserError, match="over the 10 MB limit"):
        tr.train(tiny(impl="torch", hidden=600, layers=2, save_weights=True, train_chars=5000), tmp_path)


@pytest.mark.parametrize("cell,layers,embed", [("lstm", 2, None), ("rnn", 2, 8), ("lstm", 1, 8)])
def test_torch_model_matches_scratch_both_ways(cell, layers, embed):
    """model.CharRNN has scratch.CharLM's parameter count, and weights copied either way give the same logits."""
    from char_rnn.model import CharRNN
    from char_rnn.scratch import CharLM
    from char_rnn.twin import copy_numpy_to_torch, from_scratch, to_scratch

    np_model = CharLM(11, 6, cell, layers, embed, rng=np.random.default_rng(0), dtype=np.float64)
    assert CharRNN(11, 6, cell, layers, embed).num_params() == np_model.num_params()
    x = np.random.default_rng(1).integers(0, 11, size=(3, 9))

    def scratch_logits(model):
        model.reset_state(3)
        return model.forward(x, training=False)

    expected = scratch_logits(np_model)
    float32 = from_scratch(np_model)(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(float32, expected, atol=1e-5)
    torch_model = copy_numpy_to_torch(np_model, CharRNN(**np_model.config).double())
    logits = torch_model(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-12)
    np.testing.assert_allclose(scratch_logits(to_scratch(torch_model, dtype=np.float64)), logits, atol=1e-12)


def test_figures_store_gradient_norms_at_four_significant_digits():
    """The stored norms are rounded to what REPORT.md reads, so another BLAS or thread count writes the same file."""
    values = np.array([0.14483968472511644, 1.27698369365347e-48, 0.0])
    assert figures.significant(values) == [0.1448, 1.277e-48, 0.0]
    assert figures.significant(values * (1 + 1e-13)) == figures.significant(values)
    assert json.dumps(figures.significant(values)) == "[0.1448, 1.277e-48, 0.0]"
