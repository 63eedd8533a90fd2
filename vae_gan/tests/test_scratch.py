"""The NumPy VAE and GAN: every backward against centred finite differences in float64 (relative error < 1e-6),
with the VAE's eps and the GAN's z held fixed, and the loss terms against their definitions."""

import numpy as np
import pytest

from shared.gradient_check import gradient_check, numerical_gradient, rel_error
from vae_gan import scratch

TOL = 1e-6
# The GAN's losses are means (~0.7) with gradients as small as ~1e-5: a step of 1e-5 leaves rounding errors of
# ~1e-6 relative in those, a step of 1e-4 balances rounding against the truncation error (~e^2).
GAN_EPSILON = 1e-4


def _params(layers):
    return [(i, k, layer) for i, layer in enumerate(layers) for k in layer.params]


def test_leaky_relu_backward():
    x = np.random.default_rng(0).standard_normal((4, 7))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    assert gradient_check(scratch.LeakyReLU(0.2), x)["x"] < TOL


@pytest.mark.parametrize("target", [0.0, 0.9, 1.0])
def test_bce_with_logits_gradient_and_value(target):
    logits = np.random.default_rng(1).standard_normal((6, 1)) * 3
    loss, dlogits = scratch.bce_with_logits(logits, target)
    p = 1 / (1 + np.exp(-logits))
    assert np.isclose(loss, np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))
    numeric = numerical_gradient(lambda: scratch.bce_with_logits(logits, target)[0], logits)
    assert rel_error(dlogits, numeric) < TOL


def test_bernoulli_nll_is_the_summed_bce_and_its_gradient():
    rng = np.random.default_rng(2)
    logits, x = rng.standard_normal((3, 10)) * 4, rng.random((3, 10))
    nll, dlogits = scratch.bernoulli_nll(logits, x)
    p = 1 / (1 + np.exp(-logits))
    assert np.isclose(nll, -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)))
    assert rel_error(dlogits, numerical_gradient(lambda: scratch.bernoulli_nll(logits, x)[0], logits)) < TOL


def test_softplus_and_sigmoid_do_not_overflow():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    assert np.all(np.isfinite(scratch.softplus(x))) and np.isclose(scratch.softplus(x)[-1], 1000.0)
    expected = [0.0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1.0]
    np.testing.assert_allclose(scratch.sigmoid(x), expected, rtol=1e-12, atol=0)  # 9.4e-14 at -30, not 0


def test_gaussian_kl_gradients():
    rng = np.random.default_rng(3)
    mu, logvar = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    _, dmu, dlogvar = scratch.gaussian_kl(mu, logvar)
    assert rel_error(dmu, numerical_gradient(lambda: scratch.gaussian_kl(mu, logvar)[0], mu)) < TOL
    assert rel_error(dlogvar, numerical_gradient(lambda: scratch.gaussian_kl(mu, logvar)[0], logvar)) < TOL


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)]: 400,000 draws of z from q agree with the closed form."""
    rng = np.random.default_rng(4)
    mu, logvar = np.array([[0.5, -1.0, 2.0]]), np.array([[0.3, -0.7, 0.1]])
    kl, _, _ = scratch.gaussian_kl(mu, logvar)
    sigma = np.exp(0.5 * logvar)
    z = mu + sigma * rng.standard_normal((400_000, 3))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + logvar + np.log(2 * np.pi)).sum(1)
    log_p = -0.5 * (z**2 + np.log(2 * np.pi)).sum(1)
    estimate = log_q - log_p
    assert abs(estimate.mean() - kl) < 4 * estimate.std() / np.sqrt(len(z))
    assert abs(estimate.mean() - kl) < 0.02 * kl


def test_reparameterize_backward():
    rng = np.random.default_rng(5)
    mu, logvar, eps, dz = (rng.standard_normal((3, 4)) for _ in range(4))
    z, sigma = scratch.reparameterize(mu, logvar, eps)
    dmu, dlogvar = scratch.reparameterize_backward(dz, sigma, eps)
    f = lambda: float(np.sum(scratch.reparameterize(mu, logvar, eps)[0] * dz))  # noqa: E731
    assert rel_error(dmu, numerical_gradient(f, mu)) < TOL
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < TOL


def _small_vae():
    """12 pixels, not 784: a summed loss of ~10^3 nats would leave f(w + e) - f(w - e) with rounding errors of
    ~10^-13, as large as the changes that the smallest gradients make."""
    vae = scratch.VAE(hidden=7, latent=3, seed=0, dtype=np.float64, pixels=12)
    rng = np.random.default_rng(6)
    x, eps = rng.random((5, 12)), rng.standard_normal((5, 3))
    return vae, x, eps


def test_vae_backward_against_finite_differences_with_eps_fixed():
    vae, x, eps = _small_vae()
    vae.forward(x, eps)
    vae.backward()
    f = lambda: vae.forward(x, eps)["loss"]  # noqa: E731
    for i, name, layer in _params(vae.layers):
        analytic = layer.grads[name].copy()
        numeric = numerical_gradient(f, layer.params[name])
        assert rel_error(analytic, numeric) < TOL, f"layer {i} {name}"


def test_vae_with_eps_zero_decodes_the_mean():
    vae, x, _ = _small_vae()
    out = vae.forward(x, np.zeros((5, 3)))
    mu, _ = vae.encode(x)
    assert np.allclose(out["logits"], vae.decode(mu))
    assert out["kl"] == scratch.gaussian_kl(mu, out["logvar"])[0]  # the KL does not depend on the sample


@pytest.mark.parametrize("minimax", [False, True])
def test_gan_backward_through_d_into_g(minimax):
    gan = scratch.GAN(latent=4, g_hidden=(6,), d_hidden=(5,), seed=0, dtype=np.float64, pixels=12)
    rng = np.random.default_rng(7)
    x, z = np.tanh(rng.standard_normal((3, 12))), rng.standard_normal((3, 4))
    # the discriminator's loss in D's weights, G fixed (each d_step / g_step rewrites the grads: copy them first)
    gan.d_step(x, z, real_target=0.9)
    analytic = {(i, name): layer.grads[name].copy() for i, name, layer in _params(gan.d_layers())}
    for i, name, layer in _params(gan.d_layers()):
        numeric = numerical_gradient(lambda: gan.d_step(x, z, 0.9)["d_loss"], layer.params[name], GAN_EPSILON)
        assert rel_error(analytic[i, name], numeric) < TOL, f"D layer {i} {name}"
    # the generator's loss (non-saturating, or minimax's log(1 - D(G(z)))) in G's weights, through D
    gan.g_step(z, minimax)
    analytic = {(i, name): layer.grads[name].copy() for i, name, layer in _params(gan.g_layers())}
    for i, name, layer in _params(gan.g_layers()):
        numeric = numerical_gradient(
            lambda: gan.g_step(z, minimax)["g_loss"], layer.params[name], GAN_EPSILON
        )
        assert rel_error(analytic[i, name], numeric) < TOL, f"G layer {i} {name}"


def test_state_dict_round_trip_and_a_bad_one():
    a, b = scratch.VAE(hidden=7, latent=3, seed=0), scratch.VAE(hidden=7, latent=3, seed=1)
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    with pytest.raises(ValueError, match="fc4.W"):
        b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "fc4.W"})
