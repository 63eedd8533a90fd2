"""The bridge between the NumPy models (scratch.py) and the PyTorch ones (model.py), the only file importing both:
the models behind the interfaces the training loop drives, and weights and gradients copied either way for the
parity tests.

Adapters (see shared/run.py for the common part):
    VAE   train_step(x, lr) -> {"loss", "recon", "kl"} per image; loss_terms(x, eps) -> summed (loss, recon, kl)
          without training; encode(x) -> (mu, logvar); decode(z) -> pixel probabilities (N, 784); as_torch()
          -> the torch module (the NumPy VAE's weights copied into a model.VAE)
    GAN   train_step(x, lr) -> {"d_loss", "d_real", "d_fake", "g_loss", "d_fake_g"} (D(x), D(G(z)) before D's
          step, D(G(z)) after it); sample(z) -> images (N, 784) in [0, 1]
The noise (the VAE's eps, the GAN's z) comes from a seeded NumPy generator in both implementations, so twins of
one recipe see the same draws; the torch twins of the NumPy MLPs start from the NumPy models' initial weights.

Layouts: NumPy Linear W is (in, out) for y = x W + b; torch's weight is (out, in) for y = x W^T + b. Linear
layers pair up in order: scratch.VAE's fc1, fc21, fc22, fc3, fc4 with model.VAE's, scratch.GAN's G.k / D.k with
the k-th nn.Linear of model.Generator / model.Discriminator.
"""

import numpy as np
import torch
from torch import nn

from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device
from vae_gan import model, scratch

# ---- weights and gradients between the two


def torch_linears(*modules):
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def _pairs(numpy_layers, torch_layers):
    if len(numpy_layers) != len(torch_layers):
        raise ValueError(f"{len(numpy_layers)} NumPy Linear layers vs {len(torch_layers)} torch ones")
    for a, b in zip(numpy_layers, torch_layers):
        if a.params["W"].shape != tuple(b.weight.shape[::-1]):
            raise ValueError(
                f"NumPy W {a.params['W'].shape} does not pair with torch weight {tuple(b.weight.shape)}"
            )
    return zip(numpy_layers, torch_layers)


def copy_numpy_to_torch(numpy_layers, torch_layers):
    """Each NumPy Linear's W, b into the torch nn.Linear it pairs with (in place, torch's dtype kept)."""
    with torch.no_grad():
        for a, b in _pairs(numpy_layers, torch_layers):
            b.weight.copy_(torch.from_numpy(np.ascontiguousarray(a.params["W"].T)))
            b.bias.copy_(torch.from_numpy(a.params["b"]))


def torch_grads_as_numpy(torch_layers):
    """[(dW (in, out), db), ...] of the torch layers after backward, in the NumPy layout."""
    return [(b.weight.grad.cpu().numpy().T, b.bias.grad.cpu().numpy()) for b in torch_layers]


def torch_params_as_numpy(torch_layers):
    return [(b.weight.detach().cpu().numpy().T, b.bias.detach().cpu().numpy()) for b in torch_layers]


# ---- the VAEs


def vae_config(cfg):
    return dict(hidden=cfg.hidden, latent=cfg.latent)


class NumpyVAE(NumpyAdapter):
    """scratch.VAE and shared.optim.Adam."""

    def __init__(self, cfg):
        self.net = scratch.VAE(**vae_config(cfg), seed=cfg.seed)
        self.opt = optim.Adam(self.net.layers, cfg.lr)
        self.rng = np.random.default_rng([cfg.seed, 2])  # eps
        self.generators = [self.rng]
        self.latent = cfg.latent

    def num_params(self):
        return self.net.num_parameters()

    def train_step(self, x, lr):
        self.opt.lr = lr
        eps = self.rng.standard_normal((len(x), self.latent), dtype=np.float32)
        out = self.net.forward(x, eps)
        self.net.backward()
        self.opt.step()
        return {k: out[k] / len(x) for k in ("loss", "recon", "kl")}

    def loss_terms(self, x, eps):
        out = self.net.forward(x, eps)
        return out["loss"], out["recon"], out["kl"]

    def encode(self, x):
        return self.net.encode(x)

    def decode(self, z):
        return scratch.sigmoid(self.net.decode(z.astype(np.float32)))

    def sample(self, z):
        """A VAE's sample, as every model's: the decoded Bernoulli means (N, 784) of z."""
        return self.decode(z)

    def as_torch(self):
        """A model.VAE with this model's weights (for the importance-weighted NLL, which wants torch's speed)."""
        net = model.VAE(model.VAEConfig(hidden=self.net.fc1.params["W"].shape[1], latent=self.latent))
        copy_numpy_to_torch(self.net.layers, torch_linears(net))
        return net


class TorchVAE(TorchAdapter):
    """model.VAE (its weights copied from the NumPy VAE of the same seed) or model.ConvVAE, and torch Adam."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        if cfg.model == "convvae":
            net = model.ConvVAE(
                model.ConvVAEConfig(channels=cfg.channels, hidden=cfg.hidden, latent=cfg.latent)
            )
        else:
            net = model.VAE(model.VAEConfig(**vae_config(cfg)))
            copy_numpy_to_torch(scratch.VAE(**vae_config(cfg), seed=cfg.seed).layers, torch_linears(net))
        self.net = net.to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng([cfg.seed, 2])
        self.generators = [self.rng]
        self.latent = cfg.latent

    def _tensor(self, a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)

    def train_step(self, x, lr):
        self.set_lr(lr)
        self.net.train()
        eps = self.rng.standard_normal((len(x), self.latent), dtype=np.float32)
        x = self._tensor(x)
        loss, recon, kl = model.vae_loss(*self.net(x, self._tensor(eps)), x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item() / len(x), "recon": recon.item() / len(x), "kl": kl.item() / len(x)}

    @torch.no_grad()
    def loss_terms(self, x, eps):
        self.net.eval()
        x = self._tensor(x)
        return tuple(t.item() for t in model.vae_loss(*self.net(x, self._tensor(eps)), x))

    @torch.no_grad()
    def encode(self, x):
        self.net.eval()
        return tuple(t.cpu().numpy() for t in self.net.encode(self._tensor(x)))

    @torch.no_grad()
    def decode(self, z):
        self.net.eval()
        return torch.sigmoid(self.net.decode(self._tensor(z))).cpu().numpy()

    def sample(self, z):
        """A VAE's sample, as every model's: the decoded Bernoulli means (N, 784) of z."""
        return self.decode(z)

    def as_torch(self):
        return self.net


# ---- the GANs


def gan_config(cfg):
    return dict(
        latent=cfg.latent, g_hidden=tuple(cfg.g_hidden), d_hidden=tuple(cfg.d_hidden), slope=cfg.slope
    )


class TwoOptimizers:
    """What a GAN adapter's checkpoint keeps: the network `net` (G and D) and the optimizers of G and of D."""

    def state_dict(self):
        return {
            "model": self.net.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state):
        self.net.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])


class NumpyGAN(TwoOptimizers, NumpyAdapter):
    """scratch.GAN, one shared.optim.Adam for G and one for D (betas (beta1, 0.999))."""

    def __init__(self, cfg):
        self.net = scratch.GAN(**gan_config(cfg), seed=cfg.seed)
        betas = (cfg.beta1, 0.999)
        self.opt_g = optim.Adam(self.net.g_layers(), cfg.lr, betas=betas)
        self.opt_d = optim.Adam(self.net.d_layers(), cfg.lr, betas=betas)
        self.d_lr_scale, self.real_label = cfg.d_lr_scale, cfg.real_label
        self.minimax = cfg.g_loss == "minimax"
        self.rng = np.random.default_rng([cfg.seed, 2])  # z
        self.generators = [self.rng]
        self.latent = cfg.latent

    def num_params(self):
        return self.net.num_parameters()

    def train_step(self, x, lr):
        """One discriminator step on x (N, 784) in [-1, 1] and G(z), then one generator step on the same z
        against the updated discriminator (pytorch/examples' dcgan order)."""
        self.opt_g.lr, self.opt_d.lr = lr, lr * self.d_lr_scale
        z = self.rng.standard_normal((len(x), self.latent), dtype=np.float32)
        d = self.net.d_step(x, z, self.real_label)
        self.opt_d.step()
        g = self.net.g_step(z, minimax=self.minimax)
        self.opt_g.step()
        return d | g

    def sample(self, z):
        return (self.net.generate(z.astype(np.float32)) + 1.0) / 2.0


class TorchGAN(TwoOptimizers, TorchAdapter):
    """model.Generator / model.Discriminator (the MLP twin, starting from the NumPy GAN's weights) or DCGAN's, and
    two torch Adams."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        if cfg.model == "dcgan":
            config = model.DCGANConfig(latent=cfg.latent, g_channels=cfg.channels, d_channels=cfg.channels)
            self.G, self.D = model.DCGenerator(config), model.DCDiscriminator(config)
        else:
            config = model.GANConfig(**gan_config(cfg))
            self.G, self.D = model.Generator(config), model.Discriminator(config)
            numpy_gan = scratch.GAN(**gan_config(cfg), seed=cfg.seed)
            copy_numpy_to_torch(numpy_gan.g_layers() + numpy_gan.d_layers(), torch_linears(self.G, self.D))
        self.G, self.D = self.G.to(self.device), self.D.to(self.device)
        self.net = nn.ModuleDict({"G": self.G, "D": self.D})  # weights(), num_params() see both
        betas = (cfg.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.d_lr_scale, self.real_label = cfg.d_lr_scale, cfg.real_label
        self.minimax = cfg.g_loss == "minimax"
        self.rng = np.random.default_rng([cfg.seed, 2])
        self.generators = [self.rng]
        self.latent = cfg.latent

    def train_step(self, x, lr):
        bce = nn.functional.binary_cross_entropy_with_logits
        for group in self.opt_g.param_groups:
            group["lr"] = lr
        for group in self.opt_d.param_groups:
            group["lr"] = lr * self.d_lr_scale
        self.net.train()
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        z = torch.from_numpy(self.rng.standard_normal((len(x), self.latent), dtype=np.float32)).to(
            self.device
        )
        fake = self.G(z)
        # D: real batch and fake batch in separate passes (DCGAN's batch norm normalises each on its own)
        logits_real, logits_fake = self.D(x), self.D(fake.detach())
        d_loss = bce(logits_real, torch.full_like(logits_real, self.real_label))
        d_loss = d_loss + bce(logits_fake, torch.zeros_like(logits_fake))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # G: the non-saturating loss -log D(G(z)) (or the minimax log(1 - D(G(z)))) through the updated D
        logits_g = self.D(fake)
        if self.minimax:
            g_loss = -bce(logits_g, torch.zeros_like(logits_g))
        else:
            g_loss = bce(logits_g, torch.ones_like(logits_g))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        p = lambda t: torch.sigmoid(t).mean().item()  # noqa: E731
        return {"d_loss": d_loss.item(), "d_real": p(logits_real), "d_fake": p(logits_fake)} | {
            "g_loss": g_loss.item(),
            "d_fake_g": p(logits_g),
        }

    @torch.no_grad()
    def sample(self, z):
        self.G.eval()
        z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(self.device)
        return ((self.G(z) + 1.0) / 2.0).cpu().numpy()


def build(cfg):
    if cfg.model in ("vae", "convvae"):
        return NumpyVAE(cfg) if cfg.impl == "numpy" else TorchVAE(cfg)
    return NumpyGAN(cfg) if cfg.impl == "numpy" else TorchGAN(cfg)
