"""NumPy against PyTorch on identical weights and inputs (real MNIST images): the VAE's loss terms and every
gradient for the same eps; one GAN training step (losses, every gradient, the parameters after the step)."""

import dataclasses

import numpy as np
import pytest
import torch

from vae_gan import model, scratch, twin
from vae_gan.train import Config, check


def _images(mnist, n, scale="unit"):
    (x, _), _ = mnist
    x = x[:n].reshape(n, -1).astype(np.float64) / 255.0
    return x if scale == "unit" else 2.0 * x - 1.0


def _close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b))), np.max(np.abs(a - b))


def test_vae_loss_and_every_gradient_match_autograd(mnist):
    x = _images(mnist, 16)
    eps = np.random.default_rng(0).standard_normal((16, 20))
    ours = scratch.VAE(hidden=400, latent=20, seed=0, dtype=np.float64)
    theirs = model.VAE(model.VAEConfig(hidden=400, latent=20)).double()
    twin.copy_numpy_to_torch(ours.layers, twin.torch_linears(theirs))

    out = ours.forward(x, eps)
    ours.backward()
    xt = torch.from_numpy(x)
    loss, recon, kl = model.vae_loss(*theirs(xt, torch.from_numpy(eps)), xt)
    loss.backward()

    for mine, ref in zip((out["loss"], out["recon"], out["kl"]), (loss, recon, kl)):
        assert mine == pytest.approx(ref.item(), rel=1e-12)
    torch_grads = twin.torch_grads_as_numpy(twin.torch_linears(theirs))
    for layer, (dw, db) in zip(ours.layers, torch_grads):
        _close(layer.grads["W"], dw, 1e-10)
        _close(layer.grads["b"], db, 1e-10)


def _gan_cfg(**overrides):
    base = dict(model="gan", latent=16, g_hidden=(32, 64), d_hidden=(64, 32), lr=2e-4, beta1=0.5)
    return check(dataclasses.replace(Config(), **(base | overrides), device="cpu"))


@pytest.mark.parametrize("minimax", [False, True])
def test_gan_gradients_match_autograd(mnist, minimax):
    """D's loss in D's weights (real target 0.9), and G's loss (non-saturating, or the minimax
    log(1 - D(G(z)))) in G's weights through D."""
    x = _images(mnist, 8, "signed")
    z = np.random.default_rng(1).standard_normal((8, 16))
    ours = scratch.GAN(latent=16, g_hidden=(32, 64), d_hidden=(64, 32), seed=0, dtype=np.float64)
    G = model.Generator(model.GANConfig(latent=16, g_hidden=(32, 64), d_hidden=(64, 32))).double()
    D = model.Discriminator(model.GANConfig(latent=16, g_hidden=(32, 64), d_hidden=(64, 32))).double()
    twin.copy_numpy_to_torch(ours.g_layers() + ours.d_layers(), twin.torch_linears(G, D))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    xt, zt = torch.from_numpy(x), torch.from_numpy(z)

    d = ours.d_step(x, z, real_target=0.9)
    logits_real, logits_fake = D(xt), D(G(zt).detach())
    d_loss = bce(logits_real, torch.full_like(logits_real, 0.9)) + bce(
        logits_fake, torch.zeros_like(logits_fake)
    )
    d_loss.backward()
    assert d["d_loss"] == pytest.approx(d_loss.item(), rel=1e-12)
    assert d["d_real"] == pytest.approx(torch.sigmoid(logits_real).mean().item(), rel=1e-12)
    for layer, (dw, db) in zip(ours.d_layers(), twin.torch_grads_as_numpy(twin.torch_linears(D))):
        _close(layer.grads["W"], dw, 1e-10)
        _close(layer.grads["b"], db, 1e-10)

    G.zero_grad()
    g = ours.g_step(z, minimax)
    logits = D(G(zt))
    g_loss = -bce(logits, torch.zeros_like(logits)) if minimax else bce(logits, torch.ones_like(logits))
    g_loss.backward()
    assert g["g_loss"] == pytest.approx(g_loss.item(), rel=1e-12)
    for layer, (dw, db) in zip(ours.g_layers(), twin.torch_grads_as_numpy(twin.torch_linears(G))):
        _close(layer.grads["W"], dw, 1e-10)
        _close(layer.grads["b"], db, 1e-10)


def _updates(before, after):
    return [a - b for pair_b, pair_a in zip(before, after) for b, a in zip(pair_b, pair_a)]


@pytest.mark.parametrize("g_loss", ["nonsaturating", "minimax"])
def test_four_gan_training_steps_equal_the_torch_twin(mnist, g_loss):
    """The adapters' train_step: the same z from the same seed, D's Adam step, then G's against the updated D.
    After the first step Adam's update depends on its betas and on the gradients' scale (at step 1 it is
    ~lr * sign(g)), so four steps on four batches compare the updates themselves, not just their signs."""
    cfg = _gan_cfg(real_label=0.9, g_loss=g_loss)
    x = _images(mnist, 4 * 32, "signed").astype(np.float32)
    ours, theirs = twin.NumpyGAN(cfg), twin.TorchGAN(cfg)
    layers = ours.net.g_layers() + ours.net.d_layers()
    start = [(layer.params["W"].copy(), layer.params["b"].copy()) for layer in layers]
    for i in range(4):
        a, b = (
            ours.train_step(x[i * 32 : (i + 1) * 32], cfg.lr),
            theirs.train_step(x[i * 32 : (i + 1) * 32], cfg.lr),
        )
        for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_fake_g"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), (i, key)
    mine = _updates(start, [(layer.params["W"], layer.params["b"]) for layer in layers])
    reference = _updates(start, twin.torch_params_as_numpy(twin.torch_linears(theirs.G, theirs.D)))
    for u, v in zip(mine, reference):
        _close(u, v, 2e-3 * np.max(np.abs(v)))


def test_four_vae_training_steps_equal_the_torch_twin(mnist):
    cfg = check(dataclasses.replace(Config(), model="vae", device="cpu"))
    x = _images(mnist, 4 * 64).astype(np.float32)
    ours, theirs = twin.NumpyVAE(cfg), twin.TorchVAE(cfg)
    start = [(layer.params["W"].copy(), layer.params["b"].copy()) for layer in ours.net.layers]
    for i in range(4):
        a, b = (
            ours.train_step(x[i * 64 : (i + 1) * 64], cfg.lr),
            theirs.train_step(x[i * 64 : (i + 1) * 64], cfg.lr),
        )
        for key in ("loss", "recon", "kl"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (i, key)
    mine = _updates(start, [(layer.params["W"], layer.params["b"]) for layer in ours.net.layers])
    reference = _updates(start, twin.torch_params_as_numpy(twin.torch_linears(theirs.net)))
    for u, v in zip(mine, reference):
        _close(u, v, 2e-3 * np.max(np.abs(v)))
