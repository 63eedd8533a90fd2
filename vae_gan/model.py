"""The PyTorch VAEs and GANs on MNIST (28 x 28 images, one channel).

    VAE         pytorch/examples' vae: 784 -> 400 -> (mu, logvar) in R^20; z -> 400 -> 784 logits. The twin of
                scratch.VAE, same layer names (fc1, fc21, fc22, fc3, fc4).
    ConvVAE     a convolutional encoder (two stride-2 convolutions) and its mirror image as decoder.
    Generator, Discriminator
                the MLP GAN, twin of scratch.GAN: z -> 256 -> 512 -> 784 tanh; 784 -> 512 -> 256 -> 1 logit.
    DCGenerator, DCDiscriminator
                DCGAN (Radford et al. 2016) sized for 28 x 28: transposed convolutions 1 -> 7 -> 14 -> 28 with
                batch norm and ReLU, tanh out; strided convolutions 28 -> 14 -> 7 -> 1 with LeakyReLU(0.2).

The VAEs' forward returns (logits, mu, logvar); `vae_loss` is the negative ELBO summed over the batch, as
pytorch/examples computes it (binary cross-entropy summed over pixels, plus the analytic KL). GAN pixels are in
[-1, 1], VAE pixels in [0, 1].
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    hidden: int = 400
    latent: int = 20


class VAE(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or VAEConfig()
        self.config = config
        self.fc1 = nn.Linear(784, config.hidden)
        self.fc21 = nn.Linear(config.hidden, config.latent)  # mu
        self.fc22 = nn.Linear(config.hidden, config.latent)  # log sigma^2
        self.fc3 = nn.Linear(config.latent, config.hidden)
        self.fc4 = nn.Linear(config.hidden, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))  # (N, hidden)
        return self.fc21(h), self.fc22(h)  # (N, latent) each

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # (N, 784) logits

    def forward(self, x, eps=None):
        """x (N, 784) or (N, 1, 28, 28) in [0, 1]; eps (N, latent) or None to draw it. -> logits, mu, logvar."""
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + torch.exp(0.5 * logvar) * eps  # the reparameterisation: z is differentiable in mu, logvar
        return self.decode(z), mu, logvar


@dataclass
class ConvVAEConfig:
    channels: int = 32  # of the first convolution; the second has twice as many
    hidden: int = 256
    latent: int = 32


class ConvVAE(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or ConvVAEConfig()
        self.config = config
        c, h = config.channels, config.hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(),  # (N, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),  # (N, 2c, 7, 7)
            nn.Flatten(), nn.Linear(2 * c * 49, h), nn.ReLU(),  # (N, hidden)
        )  # fmt: skip
        self.to_mu, self.to_logvar = nn.Linear(h, config.latent), nn.Linear(h, config.latent)
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, h), nn.ReLU(),
            nn.Linear(h, 2 * c * 49), nn.ReLU(), nn.Unflatten(1, (2 * c, 7, 7)),  # (N, 2c, 7, 7)
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(),  # (N, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Flatten(),  # (N, 784) logits
        )  # fmt: skip

    def encode(self, x):
        h = self.encoder(x.view(-1, 1, 28, 28))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps
        return self.decode(mu + torch.exp(0.5 * logvar) * eps), mu, logvar


def vae_loss(logits, mu, logvar, x):
    """(loss, recon, kl) of a forward's (logits, mu, logvar) and the images x: the negative ELBO summed over the
    batch, -log p(x | z) (Bernoulli) + KL(q(z | x) || N(0, I))."""
    recon = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
    kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return recon + kl, recon, kl


@torch.no_grad()
def importance_weighted_nll(vae, x, k=5000, chunk=250, generator=None):
    """-log p(x) per image (N,) float64, estimated with k importance samples from q(z | x) (Burda et al. 2016):

        log p(x) ~ logsumexp_i [log p(x | z_i) + log p(z_i) - log q(z_i | x)] - log k,   z_i ~ q(z | x),

    a lower bound on log p(x) that tightens as k grows (k = 1: the ELBO). vae: a VAE or ConvVAE (eval mode);
    x (N, 784) binarised pixels; the k samples are drawn `chunk` at a time and reduced with a running logsumexp.
    """
    vae.eval()
    mu, logvar = vae.encode(x)  # (N, J)
    std = torch.exp(0.5 * logvar)
    log_w = []  # per chunk: (chunk, N)
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        eps = torch.randn((c, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)  # (c, N, J)
        z = mu + std * eps
        logits = vae.decode(z.reshape(-1, mu.shape[1])).view(c, len(x), 784)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand(c, -1, -1), reduction="none").sum(-1)
        log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
        log_w.append(torch.logsumexp((log_px_z + log_pz - log_qz).double(), dim=0))  # (N,)
    return -(torch.logsumexp(torch.stack(log_w), dim=0) - math.log(k)).cpu().numpy()


@dataclass
class GANConfig:
    latent: int = 64
    g_hidden: tuple = (256, 512)
    d_hidden: tuple = (512, 256)
    slope: float = 0.2  # of the LeakyReLUs


def _mlp(sizes, slope, out=None):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers, *([out] if out is not None else []))


class Generator(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or GANConfig()
        self.config = config
        self.net = _mlp([config.latent, *config.g_hidden, 784], config.slope, nn.Tanh())

    def forward(self, z):
        return self.net(z)  # (N, 784) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or GANConfig()
        self.net = _mlp([784, *config.d_hidden, 1], config.slope)

    def forward(self, x):
        return self.net(x.view(-1, 784))  # (N, 1) logits


@dataclass
class DCGANConfig:
    latent: int = 100
    g_channels: int = 64  # ngf: the generator's last hidden layer; the one before has twice as many
    d_channels: int = 64  # ndf: the discriminator's first layer; the next has twice as many


def dcgan_init(module):
    """pytorch/examples' dcgan weights_init: convolutions N(0, 0.02), batch-norm scales N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGenerator(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or DCGANConfig()
        self.config = config
        g = config.g_channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(config.latent, 2 * g, 7, 1, 0, bias=False),  # (N, 2g, 7, 7)
            nn.BatchNorm2d(2 * g), nn.ReLU(True),
            nn.ConvTranspose2d(2 * g, g, 4, 2, 1, bias=False),  # (N, g, 14, 14)
            nn.BatchNorm2d(g), nn.ReLU(True),
            nn.ConvTranspose2d(g, 1, 4, 2, 1, bias=False), nn.Tanh(),  # (N, 1, 28, 28)
        )  # fmt: skip
        self.apply(dcgan_init)

    def forward(self, z):
        return self.net(z.view(len(z), -1, 1, 1)).view(len(z), 784)  # (N, 784) in [-1, 1]


class DCDiscriminator(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        config = config or DCGANConfig()
        d = config.d_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # (N, d, 14, 14)
            nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False),  # (N, 2d, 7, 7)
            nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * d, 1, 7, 1, 0, bias=False), nn.Flatten(),  # (N, 1) logits
        )  # fmt: skip
        self.apply(dcgan_init)

    def forward(self, x):
        return self.net(x.view(-1, 1, 28, 28))
