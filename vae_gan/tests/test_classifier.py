"""vae_gan.classifier through train(out_dir=...) on real MNIST slices: a short run learns and writes its
record and weights, which load_classifier reads back; an interrupted run resumes to exactly the uninterrupted
weights; a missing weights file is one UserError that says how to make it; random_shift moves each image."""

import dataclasses
import json

import pytest
import torch

from shared.cli import UserError
from vae_gan import classifier as C


def tiny(**overrides):
    base = dict(
        epochs=2, batch_size=64, train_subset=640, val_size=200, test_subset=500, device="cpu", progress=False
    )
    return C.Config(**(base | overrides))


def test_a_short_run_learns_and_its_saved_weights_load_back(mnist, tmp_path):
    net, path = C.train(tiny(run="mnist-cnn-t", save_weights=True), out_dir=tmp_path)
    record = json.loads(path.read_text())
    assert record["model"].startswith("mnist-cnn") and record["impl"] == "torch"
    assert record["history"]["epoch"] == [1, 2]
    assert record["history"]["train_loss"][1] < record["history"]["train_loss"][0]
    assert 0.6 < record["metrics"]["test_acc"] <= 1  # after 20 steps of 64 images; chance is 0.1
    # the real-vs-real floor: every training image of the slice (640 < floor_samples) against the 500 test images
    assert record["metrics"]["floor_samples"] == 640 and 0 < record["metrics"]["fid_train_vs_test"] < 50

    loaded = C.load_classifier(tmp_path / "checkpoints" / "mnist-cnn-t.pt")
    assert not loaded.training
    x = torch.tensor(mnist[1][0][:50]).unsqueeze(1).float() / 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
        assert loaded.features(x).shape == (50, C.FEATURES)


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_exactly(mnist, tmp_path, monkeypatch, capsys):
    cfg = tiny(epochs=2, test_subset=100)
    whole, _ = C.train(dataclasses.replace(cfg, run="whole"), out_dir=tmp_path)

    real_evaluate, calls = C.evaluate, []

    # the 2nd call is epoch 2's validation, after epoch 1's checkpoint
    def evaluate_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(C, "evaluate", evaluate_then_stop)
    with pytest.raises(Interrupt):
        C.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    monkeypatch.setattr(C, "evaluate", real_evaluate)
    capsys.readouterr()
    cut, path = C.train(dataclasses.replace(cfg, run="cut"), out_dir=tmp_path)
    assert "resuming cut from epoch 1" in capsys.readouterr().out
    assert json.loads(path.read_text())["history"]["epoch"] == [1, 2]
    for (name, a), b in zip(whole.state_dict().items(), cut.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_missing_weights_file_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match=r"not found: run `python -m vae_gan.classifier --save_weights`"):
        C.load_classifier(tmp_path / "absent.pt")


def test_random_shift_moves_each_image_by_its_own_offset():
    x = torch.zeros(2, 1, 28, 28)
    x[:, 0, 10, 10] = 1.0
    out = C.random_shift(x, torch.tensor([[2, -1], [0, 0]]))
    assert out.shape == x.shape
    assert out[0, 0, 12, 9] == 1 and out[0].sum() == 1  # down 2, left 1
    torch.testing.assert_close(out[1], x[1])
