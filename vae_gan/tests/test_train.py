"""vae_gan.train through train(out_dir=...) on real MNIST slices: each model's first steps lower its loss; an
interrupted run resumes to exactly the uninterrupted result; a NaN loss stops the run with one line and leaves
the last checkpoint as it was; bad flags are one line."""

import dataclasses
import json

import numpy as np
import pytest

from shared.cli import UserError
from vae_gan import train as T
from vae_gan import twin


def tiny(**overrides):
    base = dict(epochs=2, batch_size=64, train_subset=640, eval_subset=500, progress=False, device="cpu")
    base |= dict(track_classes=False, fid_samples=0)
    return T.Config(**(base | overrides))


def steps(cfg, n, mnist):
    """n training steps of a fresh model on the first n batches of real training images; the stats of each."""
    cfg = T.check(cfg)
    model = twin.build(cfg)
    (x, _), _ = mnist
    x = x[: n * 32].reshape(-1, 784).astype(np.float32) / 255.0
    x = x if cfg.model in T.VAES else 2.0 * x - 1.0
    return [model.train_step(x[i * 32 : (i + 1) * 32], cfg.lr) for i in range(n)]


@pytest.mark.parametrize(
    "impl, model, overrides",
    [
        ("numpy", "vae", {}),
        ("torch", "vae", {}),
        ("torch", "convvae", dict(latent=8, hidden=64, channels=8, lr=3e-3)),
    ],
)
def test_the_first_steps_lower_a_vae_loss(mnist, impl, model, overrides):
    stats = steps(tiny(impl=impl, model=model, **overrides), 20, mnist)
    assert np.mean([s["loss"] for s in stats[-5:]]) < 0.9 * np.mean([s["loss"] for s in stats[:5]])


@pytest.mark.parametrize(
    "impl, model, overrides",
    [
        ("numpy", "gan", dict(latent=16, g_hidden=(64,), d_hidden=(64,))),
        ("torch", "gan", dict(latent=16, g_hidden=(64,), d_hidden=(64,))),
        ("torch", "dcgan", dict(latent=16, channels=8)),
    ],
)
def test_the_first_steps_teach_the_discriminator(mnist, impl, model, overrides):
    """At the start D learns faster than G: its loss falls from ~2 log 2 and D(x) rises above D(G(z))."""
    stats = steps(tiny(impl=impl, model=model, lr=1e-3, **overrides), 20, mnist)
    assert stats[0]["d_loss"] == pytest.approx(2 * np.log(2), abs=0.35)
    assert np.mean([s["d_loss"] for s in stats[-5:]]) < 0.8 * stats[0]["d_loss"]
    assert stats[-1]["d_real"] > stats[-1]["d_fake"]


@pytest.mark.parametrize(
    "impl, model, binarize",
    [
        ("numpy", "vae", False),
        ("numpy", "vae", True),
        ("torch", "vae", False),
        ("numpy", "gan", False),
        ("torch", "dcgan", False),
    ],
)
def test_an_interrupted_run_resumes_exactly(mnist, tmp_path, impl, model, binarize):
    """2 epochs straight == 1 epoch, a checkpoint, a new start from it, 1 more: every logged number and every
    final weight bit for bit (the data order, the binarisation draws and the models' noise are all restored)."""
    small = dict(latent=8, hidden=32, g_hidden=(32,), d_hidden=(32,), channels=8, binarize=binarize)
    cfg = tiny(impl=impl, model=model, save_weights=True, **small)
    whole_model, whole = T.train(dataclasses.replace(cfg, run="whole"), out_dir=tmp_path)
    assert T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path, stop_at=1)[1] is None
    cut_model, cut = T.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    a, b = json.loads(whole.read_text()), json.loads(cut.read_text())
    assert b["history"]["epoch"] == [1, 2]
    for key, values in a["history"].items():
        if key != "time_s":
            assert b["history"][key] == values, key
    weights_a, weights_b = whole_model.weights(), cut_model.weights()
    for k in weights_a:
        np.testing.assert_array_equal(np.asarray(weights_b[k]), np.asarray(weights_a[k]), err_msg=k)


def test_the_data_each_model_reads(mnist):
    train_x, test_x = T.prepare_data(tiny())
    assert (
        train_x.shape == (640, 784) and test_x.shape == (500, 784) and 0 <= train_x.min() < train_x.max() <= 1
    )
    gan_train, _ = T.prepare_data(tiny(model="gan"))
    assert gan_train.min() == -1 and gan_train.max() == 1
    _, binary_test = T.prepare_data(tiny(binarize=True))
    assert set(np.unique(binary_test)) == {0.0, 1.0}
    assert abs(binary_test.mean() - test_x.mean()) < 0.01  # a pixel is 1 with probability its intensity


def test_a_vae_run_writes_its_record_and_weights(mnist, tmp_path):
    _, path = T.train(tiny(run="v", save_weights=True, hidden=64), out_dir=tmp_path)
    record = json.loads(path.read_text())
    assert record["model"] == "vae-64-z20" and record["metrics"]["epochs_run"] == 2
    assert 80 < record["metrics"]["test_loss"] < 550  # nats per image: learning, from ~543 at the start
    assert record["history"]["test_loss"][1] < record["history"]["test_loss"][0]
    assert (tmp_path / "checkpoints" / "v.npz").exists()


def test_a_vae_run_scores_the_fid_and_classes_of_its_decoded_means(mnist, tmp_path):
    """--fid_samples for a VAE: its samples are sigmoid(decoder(z)), scored on the committed classifier."""
    _, path = T.train(tiny(run="vf", hidden=32, fid_samples=300), out_dir=tmp_path)
    metrics = json.loads(path.read_text())["metrics"]
    assert metrics["fid_samples"] == 300 and metrics["fid"] > 0
    assert 0 <= metrics["class_uniformity"] <= np.log(10)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(mnist, tmp_path, monkeypatch):
    cfg = tiny(run="nan", hidden=32)
    T.train(cfg, out_dir=tmp_path, stop_at=1)  # epoch 1 of 2 checkpointed: 10 steps of 64
    resume = tmp_path / "checkpoints" / "resume" / "nan.npz"
    before = resume.read_bytes()
    real_step = twin.NumpyVAE.train_step

    def step_then_nan(self, x, lr):
        stats = real_step(self, x, lr)
        return stats | {"loss": float("nan")}

    monkeypatch.setattr(twin.NumpyVAE, "train_step", step_then_nan)
    with pytest.raises(UserError, match="training loss became nan at step 10"):
        T.train(cfg, out_dir=tmp_path)  # resumes at epoch 2
    assert resume.read_bytes() == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (dict(model="dcgan"), "exists only in PyTorch"),
        (dict(model="wgan"), "--model=wgan: choose one of"),
        (dict(real_label=1.5), "0 < --real_label <= 1"),
        (dict(latent=0), "--latent=0: must be >= 1"),
        (dict(nll_images=-1), "--nll_images must be >= 0"),
        (dict(model="gan", g_loss="wasserstein"), "--g_loss=wasserstein: choose one of"),
    ],
)
def test_bad_flags_are_one_line(flags, message):
    with pytest.raises(UserError, match=message):
        T.check(tiny(**flags))
