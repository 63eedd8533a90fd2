"""The importance-weighted NLL estimate (model.importance_weighted_nll) on real binarised MNIST: one sample is the
negative ELBO of that sample; more samples tighten the bound; the NumPy VAE's torch copy computes its loss."""

import dataclasses

import numpy as np
import pytest
import torch

from vae_gan import model, twin
from vae_gan import train as T


@pytest.fixture(scope="module")
def trained(mnist):
    """A small VAE after 60 steps on binarised training images, and 200 binarised test images."""
    cfg = T.check(
        dataclasses.replace(T.Config(), impl="torch", hidden=64, latent=8, binarize=True, device="cpu")
    )
    vae = twin.build(cfg)
    (x_train, _), (x_test, _) = mnist
    rng = np.random.default_rng(0)
    x = x_train[:3840].reshape(-1, 784).astype(np.float32) / 255.0
    for i in range(60):
        vae.train_step(T.binarize(x[i * 64 : (i + 1) * 64], rng), 3e-3)
    test = T.binarize(x_test[:200].reshape(-1, 784).astype(np.float32) / 255.0, rng)
    return vae, torch.from_numpy(test)


def _log_weights(vae, x, eps):
    """log p(x | z) + log p(z) - log q(z | x) at z = mu + sigma eps, eps (k, N, J): (k, N), every density from
    torch.distributions (an implementation apart from the estimator's)."""
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
        z = mu + q.scale * eps
        p_x = torch.distributions.Bernoulli(
            logits=vae.decode(z.reshape(-1, mu.shape[1])).view(*z.shape[:2], 784)
        )
        prior = torch.distributions.Normal(0.0, 1.0)
        return p_x.log_prob(x).sum(-1) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)


@pytest.mark.parametrize("k, chunk", [(1, 1), (7, 3), (20, 20)])
def test_the_estimate_is_the_log_mean_weight(trained, k, chunk):
    """-log (1/k sum_i w_i) for the same draws of eps, taken `chunk` at a time: the log k term and the reduction
    across chunks (7 = 3 + 3 + 1) included."""
    vae, x = trained
    nll = model.importance_weighted_nll(
        vae.net, x, k=k, chunk=chunk, generator=torch.Generator().manual_seed(3)
    )
    gen = torch.Generator().manual_seed(3)
    eps = torch.cat([torch.randn((min(chunk, k - s), len(x), 8), generator=gen) for s in range(0, k, chunk)])
    log_w = _log_weights(vae.net, x, eps).double()
    np.testing.assert_allclose(nll, -(torch.logsumexp(log_w, 0) - np.log(k)).numpy(), rtol=1e-6)


def test_one_sample_averages_to_the_analytic_elbo(trained):
    """The mean of many k = 1 estimates is the negative ELBO with the KL in closed form (model.vae_loss), to within
    its Monte-Carlo error."""
    vae, x = trained
    gen = torch.Generator().manual_seed(1)
    draws = np.stack([model.importance_weighted_nll(vae.net, x, k=1, generator=gen) for _ in range(50)])
    with torch.no_grad():
        mu, logvar = vae.net.encode(x)
        recon = [
            model.vae_loss(*vae.net(x, torch.randn(mu.shape, generator=gen)), x)[1].item() for _ in range(50)
        ]
        kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar).item()
    analytic = (np.mean(recon) + kl) / len(x)
    mc_error = (draws - draws.mean(0)).std() / np.sqrt(draws.size)  # the spread over draws, not over images
    assert draws.mean() == pytest.approx(analytic, abs=5 * mc_error + 0.05)


def test_more_samples_tighten_the_bound(trained):
    vae, x = trained
    gen = torch.Generator().manual_seed(0)
    elbo = model.importance_weighted_nll(vae.net, x, k=1, chunk=1, generator=gen)
    by_k = {
        k: model.importance_weighted_nll(vae.net, x, k=k, chunk=50, generator=gen).mean() for k in (10, 200)
    }
    assert np.all(np.isfinite(elbo)) and by_k[200] < by_k[10] < elbo.mean()
    assert elbo.mean() - by_k[200] < 0.2 * elbo.mean()  # a tighter bound, not a different quantity


def test_the_numpy_vae_as_torch_computes_its_loss(mnist):
    cfg = T.check(dataclasses.replace(T.Config(), hidden=32, latent=4))
    ours = twin.NumpyVAE(cfg)
    (x, _), _ = mnist
    x = x[:16].reshape(16, 784).astype(np.float32) / 255.0
    eps = np.random.default_rng(1).standard_normal((16, 4), dtype=np.float32)
    xt = torch.from_numpy(x)
    theirs = model.vae_loss(*ours.as_torch()(xt, torch.from_numpy(eps)), xt)
    np.testing.assert_allclose(ours.loss_terms(x, eps), [t.item() for t in theirs], rtol=1e-5)


def test_nll_needs_binarised_images():
    with pytest.raises(T.UserError, match="--binarize=true"):
        T.check(dataclasses.replace(T.Config(), nll_k=100))
