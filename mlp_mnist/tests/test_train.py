"""mlp_mnist.train through train(out_dir=...): a run on a real MNIST slice learns and writes its record; an
interrupted run resumes to exactly the uninterrupted result; early stopping restores the best epoch's weights;
a resume with other settings is refused."""

import dataclasses
import json

import numpy as np
import pytest

from mlp_mnist import train as T
from shared.checkpoint import load_npz
from shared.cli import UserError


def tiny(**overrides):
    base = dict(hidden=(32,), epochs=3, batch_size=64, train_subset=1200, val_size=200, progress=False)
    return T.Config(**(base | overrides))


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_short_run_learns_and_writes_its_record(mnist_train, tmp_path, impl):
    model, path = T.train(tiny(impl=impl, device="cpu", run=f"t-{impl}", save_weights=True), out_dir=tmp_path)
    record = json.loads(path.read_text())
    assert path == tmp_path / "results" / f"t-{impl}.json"
    assert record["impl"] == impl and record["metrics"]["test_acc"] > 0.6
    assert record["history"]["epoch"] == [1, 2, 3]
    assert record["history"]["train_loss"][-1] < record["history"]["train_loss"][0]
    assert (tmp_path / "checkpoints" / f"t-{impl}{'.npz' if impl == 'numpy' else '.pt'}").exists()
    assert (tmp_path / "runs" / f"t-{impl}").is_dir()  # TensorBoard events went under out_dir too


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_an_interrupted_run_resumes_exactly(mnist_train, tmp_path, monkeypatch, impl):
    cfg = tiny(impl=impl, device="cpu", dropout=0.2)
    _, whole = T.train(dataclasses.replace(cfg, run="whole"), out_dir=tmp_path)

    real_evaluate, calls = T.evaluate, []

    def evaluate_then_stop(
        *args, **kwargs
    ):  # interrupt during epoch 2's evaluation, after epoch 1's checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise Interrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(T, "evaluate", evaluate_then_stop)
    with pytest.raises(Interrupt):
        T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    monkeypatch.setattr(T, "evaluate", real_evaluate)
    _, cut = T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    a, b = json.loads(whole.read_text()), json.loads(cut.read_text())
    assert b["history"]["epoch"] == [1, 2, 3]
    np.testing.assert_allclose(b["history"]["train_loss"], a["history"]["train_loss"], rtol=1e-6)
    assert b["metrics"]["test_acc"] == a["metrics"]["test_acc"]


def test_resuming_with_other_settings_is_refused(mnist_train, tmp_path):
    T.train(tiny(run="r", epochs=1), out_dir=tmp_path)
    with pytest.raises(UserError, match="different settings"):
        T.train(tiny(run="r", epochs=1, lr=0.01), out_dir=tmp_path)
    # how it runs may change: threads, progress bar, saving the weights
    T.train(tiny(run="r", epochs=1, threads=1, save_weights=True), out_dir=tmp_path)


def test_early_stopping_restores_the_best_epoch(mnist_train, tmp_path):
    # plain SGD at a constant 0.3 on 1,000 images: validation accuracy peaks at epoch 5 of 8, then wobbles
    cfg = tiny(run="es", optimizer="sgd", lr=0.3, schedule="constant", epochs=8, early_stopping=2)
    model, path = T.train(dataclasses.replace(cfg, save_weights=True), out_dir=tmp_path)
    record = json.loads(path.read_text())
    history, best = record["history"], record["metrics"]["best_epoch"]
    assert best == int(np.argmax(history["val_acc"])) + 1
    assert record["metrics"]["epochs_run"] == best + 2 < 8  # stopped after two epochs without a better one
    # the final metrics are those of the best epoch's weights, not of the last epoch's
    assert record["metrics"]["test_acc"] == pytest.approx(history["test_acc"][best - 1], abs=1e-12)
    assert record["metrics"]["test_acc"] != history["test_acc"][-1]
    saved = load_npz(tmp_path / "checkpoints" / "es.npz")
    np.testing.assert_array_equal(saved["layers.0.W"], model.weights()["layers.0.W"])
