"""Checkpoints resume bit-identically on CPU, and a bad checkpoint gets one clear error."""

import numpy as np
import pytest
import torch

from shared.checkpoint import load_npz, load_torch, rng_state, save_npz, save_torch, set_rng_state
from shared.cli import UserError
from shared.nn import Linear, softmax_cross_entropy


def torch_training(steps, start=None):
    """A tiny dropout MLP trained on random batches; returns the state after `steps` more steps."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = 0
    if start is not None:
        model.load_state_dict(start["model"])
        opt.load_state_dict(start["optimizer"])
        step = start["step"]
        set_rng_state(start["rng"])
    for _ in range(steps):
        x, y = torch.randn(4, 8), torch.randint(0, 3, (4,))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "rng": rng_state()}


def test_torch_resume_is_bit_identical(tmp_path):
    straight = torch_training(10)
    save_torch(tmp_path / "ckpt.pt", torch_training(4))
    resumed = torch_training(6, start=load_torch(tmp_path / "ckpt.pt"))
    assert resumed["step"] == 10
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name


def numpy_training(steps, path=None, save_at=None):
    rng = np.random.default_rng(0)
    layer = Linear(6, 3, rng=rng)
    step = 0
    if path is not None and path.exists():
        state = load_npz(path)
        layer.params["W"], layer.params["b"], step = state["W"], state["b"], int(state["step"])
        set_rng_state(state["rng"], generators=[rng])
    while step < steps:
        x, y = rng.standard_normal((5, 6)).astype(np.float32), rng.integers(0, 3, 5)
        _, dlogits = softmax_cross_entropy(layer.forward(x), y)
        layer.backward(dlogits)
        for k in layer.params:
            layer.params[k] -= 0.1 * layer.grads[k]
        step += 1
        if step == save_at:
            save_npz(path, {**layer.params, "step": step, "rng": rng_state([rng])})
            return None
    return layer.params


def test_numpy_resume_is_bit_identical(tmp_path):
    straight = numpy_training(9)
    assert numpy_training(9, tmp_path / "c.npz", save_at=5) is None
    resumed = numpy_training(9, tmp_path / "c.npz")
    assert all(np.array_equal(straight[k], resumed[k]) for k in straight)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "c.npz"
    save_npz(path, {"w": np.arange(3)})

    class Unsaveable:
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_npz(path, {"w": Unsaveable()})
    assert np.array_equal(load_npz(path)["w"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"], "no temporary file left behind"


@pytest.mark.parametrize("loader, name", [(load_npz, "x.npz"), (load_torch, "x.pt")])
def test_corrupt_or_missing_checkpoint_is_a_user_error(tmp_path, loader, name):
    with pytest.raises(UserError, match="not found"):
        loader(tmp_path / name)
    (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        loader(tmp_path / name)
