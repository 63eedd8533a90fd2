"""NumPy vs PyTorch: same weights and batch -> same loss and gradients; same parameters after several optimizer
steps; BatchNorm running statistics and train/eval behaviour; Dropout semantics; weight copying."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlp_mnist.model import build_torch_mlp
from mlp_mnist.scratch import Dropout, build_mlp, mse_loss, softmax_cross_entropy
from mlp_mnist.twin import copy_numpy_to_torch, copy_torch_to_numpy, torch_grads_as_numpy
from shared.optim import SGD, Adam

SIZES = [12, 10, 8, 4]


def batch(n=16, d=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, size=n)


def twins(dtype=np.float64, **kwargs):
    net = build_mlp(SIZES, seed=0, dtype=dtype, **kwargs)
    model = build_torch_mlp(
        SIZES, seed=123, dtype=torch.float64 if dtype == np.float64 else torch.float32, **kwargs
    )
    copy_numpy_to_torch(net, model)
    return net, model


ARCHS = [
    dict(activation="relu"),
    dict(activation="sigmoid"),
    dict(activation="tanh"),
    dict(activation="relu", batchnorm=True),
]
ARCH_IDS = ["relu", "sigmoid", "tanh", "relu-bn"]


@pytest.mark.parametrize("kwargs", ARCHS, ids=ARCH_IDS)
def test_same_loss_and_gradients(kwargs):
    net, model = twins(**kwargs)
    x, y = batch()
    model.train()
    loss_t = F.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
    loss_t.backward()
    loss, _ = net.loss_and_grads(x, y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    theirs = torch_grads_as_numpy(model)
    ours = net.grads
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_same_mse_loss_and_gradients():
    net, model = twins()
    net.loss_fn = mse_loss
    x, y = batch()
    out = model(torch.tensor(x))
    loss_t = F.mse_loss(out, F.one_hot(torch.tensor(y), 4).double())
    loss_t.backward()
    loss, _ = net.loss_and_grads(x, y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    theirs = torch_grads_as_numpy(model)
    for k, g in net.grads.items():
        np.testing.assert_allclose(g, theirs[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_float32_loss_and_gradients_close():
    net, model = twins(dtype=np.float32)
    x, y = batch(n=64)
    loss_t = F.cross_entropy(model(torch.tensor(x, dtype=torch.float32)), torch.tensor(y))
    loss_t.backward()
    loss, _ = net.loss_and_grads(x.astype(np.float32), y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-5)
    theirs = torch_grads_as_numpy(model)
    for k, g in net.grads.items():
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, theirs[k], rtol=1e-4, atol=1e-6, err_msg=k)


OPTIMIZERS = [
    ("sgd", lambda layers: SGD(layers, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (
        "nesterov-wd",
        lambda layers: SGD(layers, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    ("adam", lambda layers: Adam(layers, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    (
        "adamw",
        lambda layers: Adam(layers, lr=1e-2, weight_decay=0.1, decoupled=True),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    ),
]


@pytest.mark.parametrize("name,make_np,make_torch", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("kwargs", [ARCHS[0], ARCHS[3]], ids=["relu", "relu-bn"])
def test_same_params_after_training_steps(name, make_np, make_torch, kwargs):
    net, model = twins(**kwargs)
    opt_np, opt_t = make_np(net.layers), make_torch(model.parameters())
    model.train()
    for step in range(8):
        x, y = batch(seed=step)
        net.loss_and_grads(x, y)
        opt_np.step()
        opt_t.zero_grad()
        F.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
        opt_t.step()
    ref = build_mlp(SIZES, seed=0, dtype=np.float64, **kwargs)
    copy_torch_to_numpy(model, ref)
    theirs = ref.state_dict()  # includes BatchNorm running statistics
    ours = net.state_dict()
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-8, atol=1e-9, err_msg=k)
    start = build_mlp(SIZES, seed=0, dtype=np.float64, **kwargs).state_dict()
    assert not np.allclose(ours["layers.0.W"], start["layers.0.W"])  # training did move the weights


def test_batchnorm_running_stats_and_eval_match_torch():
    net, model = twins(batchnorm=True)
    model.train()
    for step in range(5):
        x, _ = batch(seed=10 + step)
        net.forward(x, training=True)
        model(torch.tensor(x))
    for k in (1, 4):  # the two BatchNorm layers
        bn, tbn = net.layers[k], model[k]
        np.testing.assert_allclose(bn.buffers["running_mean"], tbn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.buffers["running_var"], tbn.running_var.numpy(), rtol=1e-12)
    # eval mode: running statistics, outputs equal; train mode differs from eval mode
    x, _ = batch(n=3, seed=99)
    model.eval()
    with torch.no_grad():
        out_t = model(torch.tensor(x)).numpy()
    np.testing.assert_allclose(net.forward(x, training=False), out_t, rtol=1e-10)
    assert not np.allclose(net.forward(x, training=True), out_t)


def test_dropout_semantics_match_torch():
    p = 0.3
    x = np.random.default_rng(0).standard_normal((200, 100))
    ours = Dropout(p, seed=0).forward(x, training=True)
    layer = torch.nn.Dropout(p).train()
    theirs = layer(torch.tensor(x)).numpy()
    for out in (ours, theirs):  # kept units scaled by 1/(1-p), dropped units zero, about p of them
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
        assert abs(1 - kept.mean() - p) < 0.02
    # eval: identity in both
    assert np.array_equal(Dropout(p).forward(x, training=False), x)
    assert np.array_equal(layer.eval()(torch.tensor(x)).numpy(), x)


def test_network_with_dropout_eval_matches_torch():
    net, model = twins(dropout=0.5)
    x, _ = batch()
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x, training=False), model(torch.tensor(x)).numpy(), rtol=1e-12)


def test_weight_copy_round_trip_and_layout():
    net = build_mlp([5, 4, 3], batchnorm=True, seed=0)
    model = build_torch_mlp([5, 4, 3], batchnorm=True, seed=1)
    assert tuple(model[0].weight.shape) == (4, 5) and net.layers[0].params["W"].shape == (5, 4)
    copy_numpy_to_torch(net, model)
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), net.layers[0].params["W"].T)
    back = build_mlp([5, 4, 3], batchnorm=True, seed=7)
    copy_torch_to_numpy(model, back)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)
    with pytest.raises(ValueError):
        copy_numpy_to_torch(build_mlp([5, 4, 3]), model)  # 3 layers vs 4 modules


def test_torch_builder_mirrors_numpy_builder():
    for kwargs in (dict(activation="tanh", dropout=0.2, batchnorm=True), dict(activation="sigmoid")):
        net = build_mlp([6, 5, 4, 2], **kwargs)
        model = build_torch_mlp([6, 5, 4, 2], **kwargs)
        assert len(net.layers) == len(model)
        assert sum(p.numel() for p in model.parameters()) == net.num_parameters()
    model = build_torch_mlp([2000, 1000, 10], init="he", seed=0)
    assert model[0].weight.std().item() == pytest.approx(np.sqrt(2 / 2000), rel=0.02)
    assert torch.all(model[0].bias == 0)


def test_softmax_cross_entropy_matches_torch_extreme_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 1])
    loss, _ = softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item(), rel=1e-12)
