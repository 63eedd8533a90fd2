"""A few steps on a real MNIST slice lower the loss (NumPy, via train_step and via Adam); the bench runs and
ends with its ratio line, and without MNIST it stops with the loader's one-line error."""

import re

import numpy as np
import pytest

from mlp_mnist import bench
from mlp_mnist.augment import augment_batch
from mlp_mnist.scratch import build_mlp
from shared.cli import UserError, run_main
from shared.optim import Adam
from shared.threads import blas_threads


@pytest.fixture(scope="module")
def mnist_slice(mnist_train):
    x, y = mnist_train
    x = x[:3000].reshape(3000, -1).astype(np.float32)
    x = (x / 255.0 - 0.1307) / 0.3081
    return x.astype(np.float32), y[:3000]


@pytest.mark.parametrize("how", ["train_step", "adam"])
def test_a_few_steps_lower_the_loss(mnist_slice, how):
    x, y = mnist_slice
    net = build_mlp([784, 64, 10], seed=0)
    opt = Adam(net.layers, lr=1e-3) if how == "adam" else None
    held_x, held_y = x[2000:], y[2000:]  # not trained on
    loss0, acc0 = net.evaluate(held_x, held_y)
    rng = np.random.default_rng(0)
    for _ in range(80):
        idx = rng.choice(2000, size=64, replace=False)
        if opt is None:
            net.train_step(x[idx], y[idx], lr=0.05)
        else:
            net.loss_and_grads(x[idx], y[idx])
            opt.step()
    loss1, acc1 = net.evaluate(held_x, held_y)
    assert loss1 < 0.5 * loss0, (loss0, loss1)
    assert acc1 > 0.8 > acc0, (acc0, acc1)


def test_augmented_mnist_batch_keeps_the_digits(mnist_train):
    x, _ = mnist_train
    images = x[:64].astype(np.float32) / 255.0
    out = augment_batch(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.float32
    # small transforms: ink stays within 25% and the images stay highly correlated with the originals
    np.testing.assert_allclose(out.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=0.25)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(images, out)]
    assert np.median(corr) > 0.4


def test_bench_runs_and_prints_the_ratio(mnist_train, capsys):
    assert bench.main(["--sizes=[784,32,10]", "--max_steps=3", "--runs=1", "--warmup_steps=1"]) == 0
    out = capsys.readouterr().out
    assert "real MNIST" in out and "threads:" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"numpy/torch epoch time ratio: \d+\.\d\d", last), last


def test_blas_thread_count_is_found():
    n = blas_threads()
    assert n is not None and n >= 1


def test_bench_without_mnist_is_one_line_error_not_random_data(monkeypatch, capsys):
    def missing():
        raise UserError("MNIST not found in data/ or $REPRO_DATA_MIRROR")

    monkeypatch.setattr(bench, "load_mnist", missing)
    with pytest.raises(SystemExit) as stop:
        run_main(bench.main, ["--max_steps=1", "--runs=1", "--warmup_steps=0", "--threads=1"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert err == "error: MNIST not found in data/ or $REPRO_DATA_MIRROR\n"
    assert "data:" not in out and "run 1/1" not in out  # nothing was timed, on any data
