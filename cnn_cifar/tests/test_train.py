"""The training pipeline on real CIFAR-10 slices through train(cfg, out_dir=tmp_path): SGD steps lower the
loss (NumPy, PyTorch SimpleCNN, LeNet-style), NumPy and PyTorch stay equal step for step, an interrupted run
resumes exactly, a resume with other settings is refused, evaluate.py re-evaluates the saved weights to their
run record, the figures draw, and bad flags are one-line errors. Tiny models and slices (one thread)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from cnn_cifar import train as T
from cnn_cifar import twin
from cnn_cifar.augment import normalize
from shared.cli import UserError

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "ms_per_step", "time_s")
TINY = dict(channels=(8, 16), hidden=(32,), batch_size=32, train_subset=96, test_subset=64, eval_batch=64)


def tiny_cfg(**overrides):
    values = dict(TINY, epochs=2, warmup_steps=1, progress=False, group="test")
    values.update(overrides)
    return dataclasses.replace(T.Config(), **values)


@pytest.mark.parametrize("impl,model", [("numpy", "simple"), ("torch", "simple"), ("torch", "lenet")])
def test_sgd_steps_lower_the_loss_on_a_cifar10_slice(cifar10_train, impl, model):
    x_train, y_train = cifar10_train
    idx = np.random.default_rng(0).permutation(len(x_train))[:64]
    x, y = normalize(x_train[idx]), y_train[idx]
    assert len(np.unique(y)) == 10  # a mixed slice
    cfg = T.check(dataclasses.replace(T.Config(), impl=impl, model=model, device="cpu", progress=False))
    adapter = T.build(cfg)
    losses = []
    for _ in range(9):  # each step reports the training-mode loss before its update
        stats = adapter.train_step(x, y, lr=0.02)
        assert np.isfinite(stats["loss"]) and 0 <= stats["correct"] <= len(y)
        losses.append(stats["loss"])
    assert losses[-1] < 0.75 * losses[0], losses
    assert adapter.logits(x).shape == (64, 10)


def _torch_weights_as_numpy_twin(numpy_impl):
    from cnn_cifar.twin import torch_twin_of

    return {k: v.numpy() for k, v in torch_twin_of(numpy_impl.net).state_dict().items()}


def test_numpy_and_torch_train_identically_in_float64(tmp_path):
    """Same initial weights, same augmented batches, 3 SGD steps (Nesterov, weight decay, warm-up): equal."""
    cfg = tiny_cfg(epochs=1, dtype="float64", device="cpu")
    numpy_impl, np_path = T.train(dataclasses.replace(cfg, impl="numpy", run="np"), out_dir=tmp_path)
    torch_impl, t_path = T.train(dataclasses.replace(cfg, impl="torch", run="t"), out_dir=tmp_path)
    expected = _torch_weights_as_numpy_twin(numpy_impl)
    got = {k: v.numpy() for k, v in torch_impl.net.state_dict().items()}
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)
    start = twin.NumpyCNN(T.check(dataclasses.replace(cfg, impl="numpy"))).weights()
    assert not np.allclose(start["0.W"], numpy_impl.weights()["0.W"])  # the steps did move the weights
    np_hist, t_hist = (json.loads(p.read_text())["history"] for p in (np_path, t_path))
    assert np_hist["epoch"] == [1] and len(np_hist["train_loss"]) == 1
    np.testing.assert_allclose(np_hist["train_loss"], t_hist["train_loss"], rtol=1e-9)
    assert np_hist["test_acc"] == t_hist["test_acc"]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_resume_continues_exactly(tmp_path, monkeypatch, impl):
    cfg = tiny_cfg(impl=impl, device="cpu")
    if impl == "torch":  # LeNet-style: batch norm statistics and dropout's random masks must resume too
        cfg = dataclasses.replace(cfg, model="lenet", hidden=(32, 16), dropout=0.3)
    whole, _ = T.train(dataclasses.replace(cfg, run="whole"), out_dir=tmp_path)

    original = T.Run.checkpoint

    def checkpoint_then_stop(self, model, state):
        original(self, model, state)
        raise Interrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(T.Run, "checkpoint", checkpoint_then_stop)
    with pytest.raises(Interrupt):
        T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    monkeypatch.setattr(T.Run, "checkpoint", original)
    assert (tmp_path / "checkpoints" / "resume" / f"cut{'.npz' if impl == 'numpy' else '.pt'}").exists()
    resumed, path = T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)

    a, b = whole.weights(), resumed.weights()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
    whole_hist = json.loads((tmp_path / "results" / "whole.json").read_text())["history"]
    cut_hist = json.loads(path.read_text())["history"]
    for key in ("epoch", "train_loss", "train_acc", "test_acc", "lr"):
        assert whole_hist[key] == cut_hist[key], key


def test_resuming_with_other_settings_is_refused(tmp_path):
    T.train(tiny_cfg(run="r", epochs=1), out_dir=tmp_path)
    with pytest.raises(UserError, match="different settings"):
        T.train(tiny_cfg(run="r", epochs=1, lr=0.01), out_dir=tmp_path)
    # how it runs may change: threads, progress bar, saving the weights
    T.train(tiny_cfg(run="r", epochs=1, threads=1, save_weights=True), out_dir=tmp_path)


def test_evaluate_reproduces_the_run_records_of_saved_weights(tmp_path, capsys):
    from cnn_cifar.evaluate import measure
    from shared.reevaluate import reevaluate

    for impl in ("numpy", "torch"):
        cfg = tiny_cfg(impl=impl, device="cpu", save_weights=True, run=f"{impl}-rec")
        _, path = T.train(cfg, out_dir=tmp_path)
        record = json.loads(path.read_text())
        assert record["impl"] == impl and record["model"] == "simplecnn-8-16" and record["group"] == "test"
        metrics = record["metrics"]
        assert 0 <= metrics["test_acc"] <= 1 and metrics["test_size"] == 64 and metrics["epochs_run"] == 2
        assert {"test_loss", "train_acc", "train_loss", "ms_per_step", "train_time_s"} <= metrics.keys()
        assert set(record["history"]) == set(HISTORY_KEYS)
        assert len(record["history"]["time_s"]) == 2 and record["history"]["time_s"][1] > 0
        assert (tmp_path / "runs" / f"{impl}-rec").is_dir()  # TensorBoard events went under out_dir too
    capsys.readouterr()
    assert reevaluate("cnn_cifar", "test_acc", measure, tolerance=1e-9, folder=tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("reproduced" in line for line in lines) == 2, lines
    assert lines[-1] == "2 weights files re-evaluated, 0 mismatches"


def test_figures_draw_from_records_and_weights(tmp_path, monkeypatch):
    from cnn_cifar import figures
    from shared.runrecord import load_run_records

    T.train(tiny_cfg(impl="numpy", run="numpy-fig", group="headline"), out_dir=tmp_path)
    T.train(tiny_cfg(impl="torch", device="cpu", run="torch-fig", group="headline"), out_dir=tmp_path)
    T.train(
        tiny_cfg(impl="torch", device="cpu", run="torch-noaug", augment=False, group="augmentation"), tmp_path
    )
    monkeypatch.setattr(figures, "PROJECT_DIR", tmp_path)
    monkeypatch.setattr(figures, "RESULTS", tmp_path / "results")
    records = load_run_records("cnn_cifar", results_dir=tmp_path / "results")
    figures.curves(records)
    figures.first_layer_filters(records)
    figures.activation_maps(records, 0)
    figures.augmentation_ablation(records)
    figures.confusion_and_mistakes(records)
    transfer = [  # the fields cnn_cifar.transfer writes that the plot reads
        {"group": "transfer", "model": m, "config": {"train_size": n, "mode": m}, "metrics": {"test_acc": a}}
        for m, a0 in (("pretrained", 0.8), ("scratch", 0.6))
        for n, a in ((100, a0), (1000, a0 + 0.1))
    ]
    figures.transfer(transfer)
    pngs = {p.name for p in (tmp_path / "results").glob("*.png")}
    expected = {
        "curves_test_acc.png",
        "curves_train_loss.png",
        "filters_numpy_simplecnn.png",
        "filters_torch_simplecnn.png",
        "activations_numpy_simplecnn.png",
        "augmentation_ablation.png",
        "confusion_matrix.png",
        "misclassified.png",
        "transfer_test_acc.png",
    }
    assert expected <= pngs, expected - pngs


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--bogus=1"], "unknown flag --bogus"),
        (["--impl=numpy", "--model=lenet"], "exists only in PyTorch"),
        (["--impl=jax"], "--impl=jax: choose one of numpy, torch"),
        (["--epochs=0"], "--epochs >= 1"),
        (["--epochs=two"], "expected a int"),
        (["--model=lenet", "--impl=torch", "--channels=8"], "two convolutions"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    from shared.cli import run_main

    with pytest.raises(SystemExit) as e:
        run_main(T.main, argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err


def test_lenet_shapes_and_flops():
    from cnn_cifar.model import LeNetStyle, count_params, lenet_flops

    net = LeNetStyle()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert count_params(net) == 1_116_922
    # conv1 28x28x(5*5*3)x48, conv2 10x10x(5*5*48)x96, fc 2400x384, 384x192, 192x10 (2 FLOPs per MAC)
    expected = 2 * (784 * 75 * 48 + 100 * 1200 * 96 + 2400 * 384 + 384 * 192 + 192 * 10)
    assert lenet_flops(net.config) == expected
