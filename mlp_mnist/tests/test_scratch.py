"""The NumPy layers, losses and Network: gradient checks in float64 (relative error < 1e-6), train/eval
semantics, float32 discipline, state dicts."""

import copy

import numpy as np
import pytest

from mlp_mnist.scratch import (
    BatchNorm,
    Dropout,
    Layer,
    Linear,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
    build_mlp,
    mse_loss,
    softmax_cross_entropy,
)
from shared.gradient_check import gradient_check, numerical_gradient, rel_error

TOL = 1e-6


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_grads_ok(errors):
    assert errors, "gradient_check returned nothing"
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


# ---- gradient checks, layer by layer


def test_linear_gradients():
    layer = Linear(5, 4, rng=np.random.default_rng(0), dtype=np.float64)
    layer.params["b"] = randn(4, seed=1)  # non-zero bias
    errors = gradient_check(layer, randn(3, 5))
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh])
def test_activation_gradients(cls):
    x = randn(4, 6)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    assert_grads_ok(gradient_check(cls(), x))


def test_sigmoid_values_and_no_overflow():
    x = np.array([[-1000.0, -2.0, 0.0, 3.0, 1000.0]])
    y = Sigmoid().forward(x)
    np.testing.assert_allclose(y[0, 1:4], 1 / (1 + np.exp(-x[0, 1:4])), rtol=1e-12)
    assert y[0, 0] == 0.0 and y[0, 4] == 1.0 and np.all(np.isfinite(y))


def test_dropout_gradients_with_fixed_mask():
    layer = Dropout(0.5, seed=3)
    x = randn(5, 8)
    # gradient_check deep-copies the layer for every evaluation, so the rng (and mask) is the same each time
    out = copy.deepcopy(layer).forward(x, training=True)
    assert np.any(out == 0) and np.any(out != 0), "the mask should drop some units and keep others"
    assert_grads_ok(gradient_check(layer, x, forward_kwargs={"training": True}))


def test_batchnorm_gradients_train_mode():
    bn = BatchNorm(4, dtype=np.float64)
    bn.params["gamma"] = 1.0 + 0.3 * randn(4, seed=1)
    bn.params["beta"] = randn(4, seed=2)
    x = 2.0 * randn(6, 4, seed=11) + 1.0  # not seed 0: gradient_check's dout is drawn from seed 0
    errors = gradient_check(bn, x, forward_kwargs={"training": True})
    assert set(errors) == {"x", "gamma", "beta"}
    assert_grads_ok(errors)


def test_batchnorm_gradients_eval_mode():
    bn = BatchNorm(3, dtype=np.float64)
    bn.buffers["running_mean"][:] = [0.5, -1.0, 2.0]
    bn.buffers["running_var"][:] = [2.0, 0.5, 1.5]
    bn.params["gamma"] = randn(3, seed=4)
    assert_grads_ok(gradient_check(bn, randn(5, 3, seed=11), forward_kwargs={"training": False}))


def test_mse_gradient():
    pred, target = randn(4, 3), randn(4, 3, seed=1)
    loss, dpred = mse_loss(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2))
    num = numerical_gradient(lambda: mse_loss(pred, target)[0], pred)
    assert rel_error(dpred, num) < TOL


def test_mse_integer_labels_are_one_hot():
    pred = randn(3, 4)
    y = np.array([0, 3, 1])
    onehot = np.eye(4)[y]
    assert mse_loss(pred, y)[0] == pytest.approx(mse_loss(pred, onehot)[0])


def test_softmax_cross_entropy_gradient():
    logits, y = randn(5, 4), np.array([0, 3, 1, 1, 2])
    loss, dlogits = softmax_cross_entropy(logits, y)
    num = numerical_gradient(lambda: softmax_cross_entropy(logits, y)[0], logits)
    assert rel_error(dlogits, num) < TOL
    assert loss == pytest.approx(
        -np.mean(np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[range(5), y])
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(activation="relu"),
        dict(activation="tanh", batchnorm=True),
        dict(activation="sigmoid", dropout=0.3),
        dict(activation="relu", batchnorm=True, dropout=0.2),
    ],
    ids=["relu", "tanh-bn", "sigmoid-dropout", "relu-bn-dropout"],
)
def test_whole_network_gradients(kwargs):
    net = build_mlp([6, 5, 4, 3], init="xavier", seed=1, dtype=np.float64, **kwargs)
    for layer in net.layers:
        if "b" in layer.params:
            layer.params["b"] += 0.1 * randn(*layer.params["b"].shape, seed=7)
    x = randn(5, 6, seed=2)
    errors = gradient_check(net, x, forward_kwargs={"training": True})
    n_params = sum(len(layer.params) for layer in net.layers)
    assert len(errors) == n_params + 1
    # a bias right before BatchNorm has gradient exactly 0 (BN subtracts the batch mean), so a relative error
    # there compares rounding noise: check that the analytic gradient is zero instead
    before_bn = {
        f"layers.{i}.b" for i, layer in enumerate(net.layers[:-1]) if isinstance(net.layers[i + 1], BatchNorm)
    }
    if before_bn:
        probe = copy.deepcopy(net)
        probe.forward(x, training=True)
        probe.backward(randn(5, 3, seed=0))
        for name in before_bn:
            assert np.abs(probe.grads[name]).max() < 1e-12, name
    assert_grads_ok({k: v for k, v in errors.items() if k not in before_bn})


def test_whole_network_loss_gradient():
    """d CE / d every param through the loss too (the scalar the training actually minimises)."""
    net = build_mlp([4, 5, 3], seed=0, dtype=np.float64)
    x, y = randn(6, 4), np.array([0, 1, 2, 2, 1, 0])
    net.loss_and_grads(x, y)
    for name, p in net.named_parameters():
        analytic = net.grads[name].copy()
        num = numerical_gradient(lambda: softmax_cross_entropy(net.forward(x), y)[0], p)
        assert rel_error(analytic, num) < TOL, name


def test_gradient_check_catches_a_broken_layer():
    class NoBiasGrad(Linear):
        def backward(self, grad):
            dx = super().backward(grad)
            self.grads["b"] = np.zeros_like(self.params["b"])
            return dx

    errors = gradient_check(NoBiasGrad(3, 2, rng=np.random.default_rng(0), dtype=np.float64), randn(4, 3))
    assert errors["b"] > 0.1 and errors["W"] < TOL


def test_linear_backward_without_dx_gives_the_same_param_grads():
    layer = Linear(5, 4, rng=np.random.default_rng(0), dtype=np.float64)
    x, dy = randn(3, 5), randn(3, 4, seed=1)
    layer.forward(x)
    dx = layer.backward(dy)
    full = dict(layer.grads)
    np.testing.assert_allclose(dx, dy @ layer.params["W"].T, rtol=1e-12)
    np.testing.assert_allclose(full["W"], x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(full["b"], dy.sum(axis=0), rtol=1e-12)
    assert layer.backward(dy, need_dx=False) is None
    for k, v in layer.grads.items():
        np.testing.assert_array_equal(v, full[k])


def test_backward_without_input_grad_calls_a_subclass_own_backward():
    """A first layer that subclasses Linear with backward(grad) alone (diagnose's BuggyLinear) still works."""

    class Doubled(Linear):
        def backward(self, grad):
            dx = super().backward(grad)
            self.grads["W"] = 2 * self.grads["W"]
            return dx

    rng = np.random.default_rng(0)
    net = Network([Doubled(4, 3, rng=rng, dtype=np.float64), ReLU(), Linear(3, 2, rng=rng, dtype=np.float64)])
    x, d = randn(5, 4), randn(5, 2, seed=1)
    net.forward(x)
    net.backward(d)
    full = net.grads["layers.0.W"].copy()
    net.forward(x)
    assert net.backward(d, input_grad=False) is None
    np.testing.assert_array_equal(net.grads["layers.0.W"], full)


def test_backward_without_input_grad_gives_same_param_grads():
    net = build_mlp([8, 6, 3], seed=0, dtype=np.float64)
    x, y = randn(4, 8), np.array([0, 1, 2, 0])
    _, d = softmax_cross_entropy(net.forward(x), y)
    dx = net.backward(d)
    full = {k: v.copy() for k, v in net.grads.items()}
    assert dx.shape == x.shape
    net.forward(x)
    assert net.backward(d, input_grad=False) is None
    for k, v in net.grads.items():
        np.testing.assert_array_equal(v, full[k])


# ---- train / eval semantics


def test_dropout_train_vs_eval():
    layer = Dropout(0.25, seed=0)
    x = np.ones((400, 50), dtype=np.float32)
    assert layer.forward(x, training=False) is x
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02  # fraction dropped
    assert abs(y.mean() - 1.0) < 0.03  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)  # dx = mask
    assert np.array_equal(Dropout(0.0).forward(x), x)


def test_dropout_reproducible_per_seed():
    x = np.ones((10, 10))
    a, b, c = Dropout(0.5, seed=1), Dropout(0.5, seed=1), Dropout(0.5, seed=2)
    assert np.array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), c.forward(x))


def test_batchnorm_train_normalises_and_updates_running_stats():
    bn = BatchNorm(3, momentum=0.1, dtype=np.float64)
    x = randn(50, 3) * np.array([1.0, 3.0, 0.5]) + np.array([2.0, -1.0, 0.0])
    y = bn.forward(x, training=True)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-12)
    # eval uses the running statistics, leaves them alone and does not depend on the batch
    before = {k: v.copy() for k, v in bn.buffers.items()}
    z = bn.forward(x[:2], training=False)
    expected = (x[:2] - before["running_mean"]) / np.sqrt(before["running_var"] + bn.eps)
    np.testing.assert_allclose(z, expected, rtol=1e-12)
    for k in before:
        np.testing.assert_array_equal(bn.buffers[k], before[k])


def test_batchnorm_rejects_single_sample_batches_in_training():
    with pytest.raises(ValueError):
        BatchNorm(3).forward(np.ones((1, 3), dtype=np.float32), training=True)


# ---- Network API


def test_build_mlp_structure():
    net = build_mlp([784, 32, 16, 10], activation="tanh", dropout=0.5, batchnorm=True, seed=0)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == [
        "Linear",
        "BatchNorm",
        "Tanh",
        "Dropout",
        "Linear",
        "BatchNorm",
        "Tanh",
        "Dropout",
        "Linear",
    ]
    assert net.num_parameters() == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10 + 2 * (32 + 16)
    assert all(p.dtype == np.float32 for _, p in net.named_parameters())
    with pytest.raises(ValueError):
        build_mlp([4, 3], activation="swish")


def test_build_mlp_init_schemes_and_seed():
    he = build_mlp([1000, 500, 10], init="he", seed=0)
    assert he.layers[0].params["W"].std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02)
    assert np.all(build_mlp([5, 4, 3], init="zero").layers[0].params["W"] == 0)
    a, b, c = build_mlp([5, 4, 3], seed=1), build_mlp([5, 4, 3], seed=1), build_mlp([5, 4, 3], seed=2)
    assert np.array_equal(a.layers[0].params["W"], b.layers[0].params["W"])
    assert not np.array_equal(a.layers[0].params["W"], c.layers[0].params["W"])


def test_float32_end_to_end_no_upcast():
    from shared.optim import Adam

    net = build_mlp([20, 16, 10], batchnorm=True, dropout=0.1, seed=0)
    opt = Adam(net.layers, lr=1e-3)
    x = np.random.default_rng(0).integers(0, 255, size=(8, 20)).astype(np.uint8)  # uint8 gets cast
    y = np.arange(8) % 10
    loss, logits = net.loss_and_grads(x, y)
    opt.step()
    assert logits.dtype == np.float32
    for layer in net.layers:
        for k, g in layer.grads.items():
            assert g.dtype == np.float32, (type(layer).__name__, k)
        for k, p in {**layer.params, **getattr(layer, "buffers", {})}.items():
            assert p.dtype == np.float32, (type(layer).__name__, k)
    _, d = mse_loss(logits, y)
    assert d.dtype == np.float32
    x64 = np.random.default_rng(1).standard_normal((4, 20))  # float64 input: cast, not upcasting the net
    assert net.forward(x64).dtype == np.float32


def test_train_step_is_one_sgd_step():
    net = build_mlp([4, 5, 3], seed=0, dtype=np.float64)
    x, y = randn(6, 4), np.array([0, 1, 2, 2, 1, 0])
    ref = copy.deepcopy(net)
    ref.loss_and_grads(x, y)
    expected = {k: p - 0.1 * ref.grads[k] for k, p in ref.params.items()}
    loss = net.train_step(x, y, lr=0.1)
    assert loss == pytest.approx(softmax_cross_entropy(ref.forward(x), y)[0])
    for k, p in net.params.items():
        np.testing.assert_allclose(p, expected[k], rtol=1e-12)
    # and repeated steps lower the loss on this batch
    losses = [net.train_step(x, y, lr=0.5) for _ in range(50)]
    assert losses[-1] < 0.5 * losses[0]


def test_state_dict_round_trip(tmp_path):
    net = build_mlp([6, 5, 3], batchnorm=True, seed=0)
    net.loss_and_grads(randn(8, 6), np.arange(8) % 3)  # moves BN running stats
    sd = net.state_dict()
    assert "layers.1.running_mean" in sd and "layers.0.W" in sd
    np.savez(tmp_path / "w.npz", **sd)
    other = build_mlp([6, 5, 3], batchnorm=True, seed=5)
    w_ref = other.layers[0].params["W"]
    with np.load(tmp_path / "w.npz") as f:
        other.load_state_dict(dict(f))
    assert other.layers[0].params["W"] is w_ref  # loaded in place
    x = randn(4, 6, seed=3)
    np.testing.assert_array_equal(other.forward(x, training=False), net.forward(x, training=False))
    with pytest.raises(ValueError, match=r"missing \[.layers.0.b.\]"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "layers.0.b"})
    with pytest.raises(ValueError):
        other.load_state_dict({**sd, "layers.0.W": np.zeros((2, 2), np.float32)})


def test_network_evaluate_and_predict():
    net = build_mlp([4, 8, 3], seed=0)
    x = randn(10, 4).astype(np.float32)
    y = net.predict(x, batch_size=3).argmax(1)
    loss, acc = net.evaluate(x, y, batch_size=4)
    assert acc == 1.0 and np.isfinite(loss)


def test_layer_base_is_abstract():
    with pytest.raises(NotImplementedError):
        Layer().forward(np.zeros(1))
    assert isinstance(Network([ReLU()]).forward(np.array([[-1.0, 2.0]])), np.ndarray)
