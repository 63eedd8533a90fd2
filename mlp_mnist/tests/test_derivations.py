"""The derivations of REPORT.md (section "Derivations"), each checked against the code it names, in float64.

Every formula is written out here as the report writes it, in matrix form, and compared with an independent
chain rule (torch autograd through the forward pass) and with the NumPy layer's own backward. The last test
checks that each line of code the report quotes still stands, word for word, in the function it names.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from mlp_mnist.scratch import BatchNorm, Dropout, Linear, Sigmoid, Tanh, build_mlp, mse_loss
from mlp_mnist.train import Config, to_inputs
from shared.nn import ReLU, softmax_cross_entropy
from shared.quotes import missing_quotes, quoted_code

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"
ROOT = REPORT.parents[1]


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def autograd(f, *arrays):
    """f(*tensors) -> scalar; returns (value, [d value / d array]) by torch autograd in float64."""
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    value = f(*tensors)
    value.backward()
    return value.item(), [t.grad.numpy() for t in tensors]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(y, classes):
    return np.eye(classes)[y]


# ---- the affine layer, activations and losses


def test_linear_backward_is_the_three_matrix_products():
    x, w, b, g = randn(6, 5, seed=1), randn(5, 4, seed=2), randn(4, seed=3), randn(6, 4, seed=4)
    # report: dW = X^T G (in, out), db = 1^T G (out,), dX = G W^T (N, in)
    dw, db, dx = x.T @ g, g.sum(axis=0), g @ w.T
    _, (ax, aw, ab) = autograd(lambda x, w, b: ((x @ w + b) * torch.from_numpy(g)).sum(), x, w, b)
    layer = Linear(5, 4, dtype=np.float64)
    layer.params["W"][...], layer.params["b"][...] = w, b
    layer.forward(x)
    lx = layer.backward(g)
    for formula, by_autograd, by_code in (
        (dw, aw, layer.grads["W"]),
        (db, ab, layer.grads["b"]),
        (dx, ax, lx),
    ):
        np.testing.assert_allclose(formula, by_autograd, rtol=1e-12)
        np.testing.assert_allclose(formula, by_code, rtol=1e-12)


@pytest.mark.parametrize(
    "layer, derivative, torch_f",
    [
        (ReLU(), lambda z: (z > 0).astype(np.float64), torch.relu),  # report: relu'(z) = 1[z > 0]
        (Sigmoid(), lambda z: (s := 1 / (1 + np.exp(-z))) * (1 - s), torch.sigmoid),  # sigma (1 - sigma)
        (Tanh(), lambda z: 1 - np.tanh(z) ** 2, torch.tanh),  # 1 - tanh^2
    ],
)
def test_activation_backward_is_upstream_times_the_derivative(layer, derivative, torch_f):
    z, g = randn(5, 7, seed=5), randn(5, 7, seed=6)
    z[np.abs(z) < 1e-3] = 0.5  # keep away from ReLU's kink
    formula = g * derivative(z)  # report: dL/dZ = dL/dH (elementwise) f'(Z)
    _, (by_autograd,) = autograd(lambda z: (torch_f(z) * torch.from_numpy(g)).sum(), z)
    layer.forward(z)
    np.testing.assert_allclose(formula, by_autograd, rtol=1e-12)
    np.testing.assert_allclose(formula, layer.backward(g), rtol=1e-12)


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    n, classes = 8, 10
    z, y = 3 * randn(n, classes, seed=7), np.random.default_rng(8).integers(0, classes, n)
    formula = (softmax(z) - onehot(y, classes)) / n  # report: dL/dZ = (P - Y) / N
    loss, dz = softmax_cross_entropy(z, y)
    value, (by_autograd,) = autograd(lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(y)), z)
    assert loss == pytest.approx(-np.log(softmax(z)[np.arange(n), y]).mean(), rel=1e-12)
    assert loss == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(dz, formula, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(by_autograd, formula, rtol=1e-10, atol=1e-15)


def test_softmax_jacobian_collapses_to_p_minus_onehot():
    # report: dl/dz = J^T (-e_y / p_y) with J = diag(p) - p p^T, which is p - e_y
    z, y = randn(10, seed=9), 3
    p = softmax(z[None])[0]
    jacobian = np.diag(p) - np.outer(p, p)
    dl_dp = -onehot([y], 10)[0] / p[y]
    np.testing.assert_allclose(jacobian.T @ dl_dp, p - onehot([y], 10)[0], rtol=1e-12, atol=1e-15)


def test_mse_gradient_is_two_residuals_over_nc():
    z, y = randn(6, 10, seed=10), np.random.default_rng(11).integers(0, 10, 6)
    formula = 2 * (z - onehot(y, 10)) / z.size  # report: dL/dZ = 2 (Z - Y) / (N C)
    _, dz = mse_loss(z, y)
    _, (by_autograd,) = autograd(lambda z: ((z - torch.from_numpy(onehot(y, 10))) ** 2).mean(), z)
    np.testing.assert_allclose(dz, formula, rtol=1e-12)
    np.testing.assert_allclose(by_autograd, formula, rtol=1e-12)


def test_two_layer_network_backward_is_the_report_chain():
    n, d, h, c = 9, 6, 5, 4
    x, y = randn(n, d, seed=12), np.random.default_rng(13).integers(0, c, n)
    net = build_mlp([d, h, c], activation="tanh", init="xavier", seed=14, dtype=np.float64)
    w1, b1, w2, b2 = (p.copy() for _, p in net.named_parameters())
    b1[...], b2[...] = randn(h, seed=15), randn(c, seed=16)
    net.load_state_dict({"layers.0.W": w1, "layers.0.b": b1, "layers.2.W": w2, "layers.2.b": b2})
    # the report's equations, forward then backward, shapes on the right
    z1 = x @ w1 + b1  # (N, H)
    h1 = np.tanh(z1)  # (N, H)
    z2 = h1 @ w2 + b2  # (N, C)
    g2 = (softmax(z2) - onehot(y, c)) / n  # (N, C)
    dw2, db2 = h1.T @ g2, g2.sum(axis=0)  # (H, C), (C,)
    g1 = (g2 @ w2.T) * (1 - h1**2)  # (N, H)
    dw1, db1, dx = x.T @ g1, g1.sum(axis=0), g1 @ w1.T  # (D, H), (H,), (N, D)
    logits = net.forward(x)
    _, dlogits = net.loss_fn(logits, y)
    net_dx = net.backward(dlogits)
    for key, formula in (("layers.0.W", dw1), ("layers.0.b", db1), ("layers.2.W", dw2), ("layers.2.b", db2)):
        np.testing.assert_allclose(net.grads[key], formula, rtol=1e-10)
    np.testing.assert_allclose(net_dx, dx, rtol=1e-10)


def test_dropout_backward_uses_the_forward_mask_and_scale():
    p, x, g = 0.3, randn(400, 50, seed=17), randn(400, 50, seed=18)
    layer = Dropout(p, seed=19)
    out = layer.forward(x)
    mask = layer.mask  # report: y = x m, m in {0, 1/(1 - p)}
    assert np.all((mask == 0) | np.isclose(mask, 1 / (1 - p), rtol=1e-15))
    assert abs(mask.mean() - 1) < 0.02  # E[m] = 1: inference (m = 1) sees the same expected activation
    np.testing.assert_allclose(out, x * mask, rtol=1e-15)
    np.testing.assert_allclose(
        layer.backward(g), g * mask, rtol=1e-15
    )  # dL/dx = dL/dy m: same mask, same scale


# ---- batch normalisation


def batchnorm_compact_backward(g, xhat, gamma, inv_std):
    """The report's compact form: dx = s/N (N dxhat - sum_n dxhat - xhat sum_n dxhat xhat), dxhat = g gamma."""
    n = len(g)
    dxhat = g * gamma
    return inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))


def test_batchnorm_compact_backward_equals_the_chain_rule():
    n, d, eps = 7, 5, 1e-5
    x, g = 2 + 3 * randn(n, d, seed=20), randn(n, d, seed=21)
    gamma, beta = randn(d, seed=22), randn(d, seed=23)
    mu, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    compact = batchnorm_compact_backward(g, xhat, gamma, inv_std)

    def step_by_step(
        x, gamma, beta
    ):  # mean, biased variance, normalise, scale and shift: autograd does the rest
        mu = x.mean(dim=0)
        var = ((x - mu) ** 2).mean(dim=0)
        y = gamma * (x - mu) / torch.sqrt(var + eps) + beta
        return (y * torch.from_numpy(g)).sum()

    _, (ax, agamma, abeta) = autograd(step_by_step, x, gamma, beta)
    layer = BatchNorm(d, eps=eps, dtype=np.float64)
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    layer.forward(x)
    lx = layer.backward(g)
    np.testing.assert_allclose(compact, ax, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lx, ax, rtol=1e-9, atol=1e-12)
    # report: dgamma = sum_n g xhat, dbeta = sum_n g
    np.testing.assert_allclose((g * xhat).sum(axis=0), agamma, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["gamma"], agamma, rtol=1e-10)
    np.testing.assert_allclose(g.sum(axis=0), abeta, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["beta"], abeta, rtol=1e-12)


def test_batchnorm_jacobian_entry():
    # report: d xhat_n / d x_m = s (delta_nm - 1/N - xhat_n xhat_m / N), one feature
    n, eps = 6, 1e-5
    x = randn(n, seed=24)
    s = 1 / np.sqrt(x.var() + eps)
    xhat = (x - x.mean()) * s
    formula = s * (np.eye(n) - 1 / n - np.outer(xhat, xhat) / n)
    by_autograd = torch.autograd.functional.jacobian(
        lambda t: (t - t.mean()) / torch.sqrt(t.var(unbiased=False) + eps), torch.from_numpy(x)
    )
    np.testing.assert_allclose(formula, by_autograd.numpy(), rtol=1e-10, atol=1e-14)


def linear_then_batchnorm_grads(w, x, g):
    """dL/dW, dL/db and the output of Linear -> BatchNorm (eps = 0) for upstream gradient g."""
    linear, norm = Linear(*w.shape, dtype=np.float64), BatchNorm(w.shape[1], eps=0.0, dtype=np.float64)
    linear.params["W"][...] = w
    out = norm.forward(linear.forward(x))
    linear.backward(norm.backward(g))
    return linear.grads["W"], linear.grads["b"], out


def test_batchnorm_makes_the_weights_scale_invariant():
    # report (section 8): BN(a x W) = BN(x W) for a > 0, so dL/dW at aW is dL/dW at W divided by a, every
    # column of dL/dW is orthogonal to that column of W, and the bias before BN gets no gradient
    x, w, g = randn(32, 6, seed=25), randn(6, 4, seed=26), randn(32, 4, seed=27)
    dw, db, out = linear_then_batchnorm_grads(w, x, g)
    dw_scaled, _, out_scaled = linear_then_batchnorm_grads(10 * w, x, g)
    np.testing.assert_allclose(out_scaled, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw_scaled, dw / 10, rtol=1e-10)
    np.testing.assert_allclose((w * dw).sum(axis=0), 0, atol=1e-12 * np.abs(w * dw).sum())
    np.testing.assert_allclose(db, 0, atol=1e-12 * np.abs(g).sum())


# ---- initialisation: the variance through a layer


def second_moments(net, x):
    """E[z^2] of the pre-activations (each Linear layer's output) of `net` on inputs x."""
    moments = []
    for layer in net.layers:
        x = layer.forward(x, training=False)
        if isinstance(layer, Linear):
            moments.append(float(np.mean(x**2)))
    return np.array(moments)


@pytest.mark.parametrize(
    "activation, init, input_scale, gain",
    [
        ("relu", "he", 1.0, 1.0),  # report: n_in (2 / n_in) / 2 = 1
        ("relu", "xavier", 1.0, 0.5),  # n_in (2 / (n_in + n_out)) / 2 = 1/2 when n_in = n_out
        # tanh is the identity near 0: in that regime Xavier's n_in (2 / (n_in + n_out)) = 1 holds
        ("tanh", "xavier", 0.05, 1.0),
    ],
)
def test_second_moment_through_a_layer_follows_the_init_variance(
    mnist_train, activation, init, input_scale, gain
):
    # report: E[z_l^2] = n_in sigma_w^2 E[h_{l-1}^2], and E[relu(z)^2] = E[z^2] / 2 for symmetric z
    images, _ = mnist_train
    x = input_scale * to_inputs(images[:1000], Config(normalize=True)).astype(np.float64)
    log_gains = []
    for seed in range(4):  # the formula is an expectation over the weights: average a few draws
        net = build_mlp(
            [784, *(256,) * 10, 10], activation=activation, init=init, seed=seed, dtype=np.float64
        )
        moments = second_moments(net, x)[:-1]  # the ten hidden pre-activations
        log_gains.append(np.mean(np.log(moments[1:] / moments[:-1])))  # per layer, layers 2..10
    assert np.exp(np.mean(log_gains)) == pytest.approx(gain, rel=0.1)


def test_relu_halves_the_second_moment_of_a_symmetric_input():
    z = randn(1_000_000, seed=28)
    assert np.mean(np.maximum(z, 0) ** 2) == pytest.approx(np.mean(z**2) / 2, rel=0.01)


# ---- the report quotes code that exists


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(REPORT.read_text())
    assert len(quotes) >= 20, "the derivation section quotes code as `file` `Function`: `code`"
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)
