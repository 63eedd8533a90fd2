"""The training pipeline on real CIFAR-10 slices through train(cfg, out_dir=tmp_path): the paper's schedule and
recipe, the augmentation and the mean subtraction, SGD steps lowering the loss (NumPy and PyTorch), the twins
training identically in float64, an interrupted run (or an ended session) resuming exactly, the run records,
re-evaluating saved weights against them, and bad input as one line. Tiny networks and slices, one thread."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_repro import data as D
from resnet_repro import evaluate as E
from resnet_repro import train as T
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = dict(depth=8, widths=(4, 8, 16), batch_size=16, train_subset=256, val_size=32, test_subset=64)
TINY |= dict(iterations=4, milestones=(3,), eval_every=2, eval_batch=32, progress=False, group="test")


def tiny(**overrides):
    return dataclasses.replace(T.Config(), **TINY | overrides)


def test_the_default_config_is_the_papers_recipe_and_configs_parse():
    paper = parse_config(T.Config(), [f"--config={CONFIGS / 'paper.py'}"])
    assert dataclasses.replace(paper, run="", save_weights=False) == T.Config()
    cfg = T.Config()
    assert (cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (cfg.iterations, cfg.milestones, cfg.val_size, cfg.padding, cfg.flip) == (
        64000,
        (32000, 48000),
        5000,
        4,
        True,
    )
    for path in CONFIGS.glob("*.py"):
        T.check(parse_config(T.Config(), [f"--config={CONFIGS / 'paper.py'}", f"--config={path}"]))


def test_the_learning_rate_drops_tenfold_at_the_papers_milestones():
    cfg = T.Config()
    rates = {it: T.learning_rate(cfg, it) for it in (0, 31999, 32000, 47999, 48000, 63999)}
    assert rates == pytest.approx({0: 0.1, 31999: 0.1, 32000: 0.01, 47999: 0.01, 48000: 0.001, 63999: 0.001})
    warm = dataclasses.replace(cfg, warmup_iterations=400)  # ResNet-110's warm-up
    assert [T.learning_rate(warm, it) for it in (0, 399, 400)] == [0.01, 0.01, 0.1]


def test_augmentation_pads_with_zeros_crops_and_flips_each_image():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4) + 1  # no zero pixel
    out = D.augment(x, np.array([[0, 0], [2, 1]]), np.array([False, True]), padding=1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    assert torch.equal(out[0], padded[0, :, 0:4, 0:4])  # top-left window: a row and a column of zeros
    assert not out[0, :, 0, :].any() and not out[0, :, :, 0].any()
    assert torch.equal(out[1], padded[1, :, 2:6, 1:5].flip(2))  # mirrored left-right
    assert torch.equal(D.augment(x, np.full((2, 2), 1), np.zeros(2, bool), 1), x)  # centred, unflipped: x


def test_the_mean_image_is_the_training_splits_and_batches_depend_on_the_seed_alone(loaded_once):
    cfg = T.check(tiny())
    data = D.prepare_data(cfg)
    x_train = data["train"][0]
    assert len(x_train) == 224 and len(data["val"][0]) == 32 and len(data["test"][0]) == 64
    np.testing.assert_allclose(
        data["mean"].numpy(), x_train.mean(axis=0).transpose(2, 0, 1) / 255, atol=1e-12
    )
    assert np.array_equal(D.prepare_data(T.check(tiny(seed=5)))["val"][1], data["val"][1])  # one split
    x, y = D.training_batch(cfg, data, 3)
    x2, y2 = D.training_batch(cfg, data, 3)
    assert x.shape == (1, 16, 3, 32, 32) and y.shape == (1, 16)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, D.training_batch(T.check(tiny(seed=1)), data, 3)[0])
    parts = D.training_batch(dataclasses.replace(cfg, micro_batches=2), data, 3)[
        0
    ]  # (2, 8, ...): the same images
    assert torch.equal(parts.reshape(x.shape), x)
    share = D.training_batch(dataclasses.replace(cfg, micro_batches=2), data, 3, rank=1, processes=2)[0]
    assert torch.equal(share[0], x[0, 8:])  # rank 1 of 2: the second half of the same global batch


@pytest.mark.parametrize("impl", ["torch", "numpy"])
def test_sgd_steps_lower_the_loss_on_a_cifar10_slice(loaded_once, impl):
    cfg = T.check(tiny(impl=impl, batch_size=32, widths=(8, 8, 8), device="cpu"))
    data = D.prepare_data(cfg)
    x, y = D.training_batch(cfg, data, 0)
    model = T.build(cfg)
    losses = [model.train_step(x, y, lr=0.05)["loss_sum"] / 32 for _ in range(8)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.75 * losses[0], losses


def test_numpy_and_torch_twins_train_identically_in_float64(loaded_once, tmp_path):
    """Same initial weights, same augmented batches, 4 SGD steps with momentum and weight decay, a milestone."""
    cfg = tiny(dtype="float64", device="cpu")
    numpy_model, numpy_path = T.train(dataclasses.replace(cfg, impl="numpy", run="np"), tmp_path)
    torch_model, torch_path = T.train(dataclasses.replace(cfg, impl="torch", run="t"), tmp_path)
    numpy_weights = numpy_model.weights()
    torch_weights = {k: v for k, v in torch_model.weights().items() if not k.endswith("num_batches_tracked")}
    assert numpy_weights.keys() == torch_weights.keys()
    from resnet_repro.twin import to_numpy_layout

    for name, value in torch_weights.items():
        np.testing.assert_allclose(to_numpy_layout(name, value), numpy_weights[name], rtol=1e-9, atol=1e-12)
    start = T.build(T.check(dataclasses.replace(cfg, impl="numpy"))).weights()
    assert not np.allclose(
        start["conv1.weight"], numpy_weights["conv1.weight"]
    )  # the steps moved the weights
    histories = [json.loads(p.read_text())["history"] for p in (numpy_path, torch_path)]
    np.testing.assert_allclose(histories[0]["train_loss"], histories[1]["train_loss"], rtol=1e-9)
    assert histories[0]["test_err"] == histories[1]["test_err"]


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("impl", ["torch", "numpy"])
def test_resume_continues_exactly(loaded_once, tmp_path, impl):
    cfg = tiny(impl=impl, device="cpu")
    whole, whole_path = T.train(dataclasses.replace(cfg, run="whole"), tmp_path)
    cut, none = T.train(dataclasses.replace(cfg, run="cut"), tmp_path, stop_at=2)  # as if killed after it
    assert (
        none is None
        and (tmp_path / "checkpoints" / "resume" / f"cut{'.npz' if impl == 'numpy' else '.pt'}").exists()
    )
    resumed, path = T.train(dataclasses.replace(cfg, run="cut"), tmp_path)
    a, b = whole.weights(), resumed.weights()
    assert a.keys() == b.keys()
    assert not np.array_equal(
        np.asarray(a["fc.weight"]), np.asarray(cut.weights()["fc.weight"])
    )  # 2 more steps
    for name in a:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name
    whole_record, cut_record = (json.loads(p.read_text()) for p in (whole_path, path))
    for key in ("iter", "train_loss", "train_err", "val_err", "test_err", "lr"):
        assert whole_record["history"][key] == cut_record["history"][key], key
    assert cut_record["metrics"]["sessions"] == 2 and whole_record["metrics"]["sessions"] == 1
    assert (
        cut_record["metrics"]["train_time_s"] > 0
        and cut_record["wall_time_s"] >= cut_record["metrics"]["train_time_s"]
    )


def test_a_session_ends_with_a_checkpoint_and_the_next_goes_on(loaded_once, tmp_path):
    cfg = tiny(device="cpu", iterations=3, eval_every=3)
    whole, _ = T.train(dataclasses.replace(cfg, run="whole"), tmp_path)
    model, none = T.train(dataclasses.replace(cfg, run="s", session_minutes=1e-9), tmp_path)  # over at once
    assert none is None and not (tmp_path / "results" / "s.json").exists()
    resumed, path = T.train(
        dataclasses.replace(cfg, run="s", session_minutes=60.0), tmp_path
    )  # free to change
    for name, value in whole.weights().items():
        assert torch.equal(value, resumed.weights()[name]), name
    assert json.loads(path.read_text())["config"]["session_minutes"] == 0.0


def test_resuming_with_other_settings_is_refused(loaded_once, tmp_path):
    T.train(tiny(run="r", iterations=2, device="cpu"), tmp_path, stop_at=2)
    with pytest.raises(UserError, match="different settings"):
        T.train(tiny(run="r", iterations=2, device="cpu", lr=0.05), tmp_path)


def test_records_and_saved_weights_reproduce(loaded_once, tmp_path, capsys):
    for impl, plain in (("torch", False), ("numpy", True)):
        cfg = tiny(impl=impl, plain=plain, device="cpu", save_weights=True, run=f"{impl}-rec")
        _, path = T.train(cfg, tmp_path)
        record = json.loads(path.read_text())
        assert (
            record["model"] == ("plain8-4-8-16" if plain else "resnet8-4-8-16") and record["params"] == 5006
        )
        metrics = record["metrics"]
        assert metrics["test_acc"] == pytest.approx(1 - metrics["test_err"]) and metrics["test_size"] == 64
        assert {"val_err", "train_err", "train_time_s", "images_per_s", "iterations"} <= metrics.keys()
        assert record["history"]["iter"] == [2, 4] and len(record["history"]["train_err"]) == 2
    assert T.model_name(20, False) == "resnet20" and T.model_name(56, True) == "plain56"
    capsys.readouterr()
    assert reevaluate("resnet_repro", "test_acc", E.measure, tolerance=1e-9, folder=tmp_path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("reproduced" in line for line in lines) == 2 and lines[-1].endswith("0 mismatches"), lines
    result = E.evaluate_checkpoint(tiny(checkpoint=str(tmp_path / "checkpoints" / "torch-rec.pt")))
    assert result["reproduced"] is True and "reproduced" in capsys.readouterr().out


def one_line_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(T.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--depth=18"], "--depth=18: not 6n + 2"),
        (["--depth=21"], "--depth=21: not 6n + 2"),
        (["--depth=2"], "--depth=2: not 6n + 2"),
        (["--depth=resnet20"], "--depth=resnet20: expected a int"),
        (["--dept=20"], "unknown flag --dept"),
        (["--widths=16,32"], "--widths=(16, 32): three positive integers"),
        (["--milestones=48000,32000"], "--milestones=(48000, 32000): increasing"),
        (["--micro_batches=3"], "--batch_size=128 is not a multiple of --micro_batches=3"),
        (["--impl=numpy", "--bf16=true"], "--impl=numpy computes in float32 or float64"),
        (["--evaluate"], "--evaluate needs --checkpoint=PATH"),
    ],
)
def test_bad_input_is_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert message in one_line_error(argv, capsys)


def test_a_checkpoint_of_another_architecture_is_one_line(loaded_once, tmp_path, capsys):
    _, path = T.train(tiny(device="cpu", save_weights=True, run="r8", iterations=2), tmp_path)
    weights = tmp_path / "checkpoints" / "r8.pt"
    path.unlink()  # no record: the flags say what to build
    err = one_line_error(["--evaluate", f"--checkpoint={weights}", "--depth=14", "--widths=4,8,16"], capsys)
    assert "holds a torch resnet8-4-8-16, not the torch resnet14-4-8-16" in err
    err = one_line_error(["--evaluate", f"--checkpoint={tmp_path / 'nothing.pt'}"], capsys)
    assert "not found" in err
