"""A variational autoencoder and a generative adversarial network in NumPy, every backward by hand beside its
forward (curriculum 5.6: AP6.1, AP6.2).

The pieces, each a forward and its backward:
    bernoulli_nll(logits, x)          -log p(x | z) of a Bernoulli decoder, summed; d/dlogits = sigmoid - x
    gaussian_kl(mu, logvar)           KL(N(mu, sigma^2) || N(0, I)), summed; d/dmu = mu, d/dlogvar = (sigma^2 - 1)/2
    reparameterize(mu, logvar, eps)   z = mu + sigma * eps, and reparameterize_backward(dz, ...) -> dmu, dlogvar
    bce_with_logits(logits, target)   mean binary cross-entropy of the discriminator's logits
    LeakyReLU, Sequential             a layer and a stack of layers (Linear, ReLU, Tanh come from shared.nn)
The models:
    VAE   784 -> hidden -> (mu, logvar) in R^latent; z -> hidden -> 784 logits (pytorch/examples: 400, 20).
          forward(x, eps) -> {"loss", "recon", "kl"} summed over the batch; backward() fills every grads.
    GAN   Generator z -> 256 -> 512 -> 784 (tanh), Discriminator 784 -> 512 -> 256 -> 1 logit, LeakyReLU(0.2);
          d_step(x, z) and g_step(z): the non-saturating losses, the generator's gradient passing back through
          the discriminator.

Conventions (shared.nn): batch first, x (N, 784); a layer keeps `params` and after `backward` its `grads`.
Weights start as torch.nn.Linear's do (uniform in +-1/sqrt(fan_in), weights and biases), so the NumPy and
PyTorch models of one recipe start from the same distribution; twin.py copies one into the other exactly.
Training runs in float32; pass dtype=np.float64 for gradient checks.
"""

import numpy as np

from shared.nn import Layer, Linear, ReLU, Tanh, copy_weights

PIXELS = 28 * 28


def sigmoid(x):
    """1 / (1 + exp(-x)) = exp(-softplus(-x)): no overflow, and full relative precision in both tails."""
    return np.exp(-softplus(-x))


def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|))."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def torch_linear(in_features, out_features, rng, dtype=np.float32):
    """A shared.nn.Linear initialised as torch.nn.Linear: W and b uniform in +-1/sqrt(in_features)."""
    layer = Linear(
        in_features, out_features, init="zero", rng=np.random.default_rng(0), dtype=dtype
    )  # set below
    bound = 1.0 / np.sqrt(in_features)
    layer.params["W"] = rng.uniform(-bound, bound, (in_features, out_features)).astype(dtype)
    layer.params["b"] = rng.uniform(-bound, bound, out_features).astype(dtype)
    return layer


class LeakyReLU(Layer):
    """y = x for x > 0, slope * x otherwise; any shape."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x, training=True):
        self.positive = x > 0
        return np.where(self.positive, x, self.slope * x)

    def backward(self, grad):
        # dy/dx = 1 for x > 0, slope otherwise
        return np.where(self.positive, grad, self.slope * grad)


class Sequential:
    """Layers applied in order; backward runs them in reverse. The first layer's input is data: no dx for it
    unless need_dx."""

    def __init__(self, layers):
        self.layers = list(layers)

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad, need_dx=False):
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        first = self.layers[0]
        return first.backward(grad, need_dx=need_dx) if isinstance(first, Linear) else first.backward(grad)


def _mlp(sizes, rng, dtype, hidden_activation, out_activation=None):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch_linear(n_in, n_out, rng, dtype))
        if i < len(sizes) - 2:
            layers.append(hidden_activation())
    return Sequential(layers + ([out_activation()] if out_activation else []))


def _state_dict(named_layers):
    """{"<layer name>.<param>": array} of named Linear layers (the names twin.py maps to torch's)."""
    return {f"{name}.{k}": v for name, layer in named_layers.items() for k, v in layer.params.items()}


def _load(named_layers, state):
    params = {f"{name}.{k}": layer.params[k] for name, layer in named_layers.items() for k in layer.params}
    copy_weights(params, state)


# ---- the VAE's loss terms ------------------------------------------------------------------------------------


def bernoulli_nll(logits, x):
    """Reconstruction term -log p(x | z) of a Bernoulli decoder, summed over the batch and the pixels.

    logits: (N, D) decoder outputs l; x: (N, D) targets in [0, 1] (continuous MNIST, as pytorch/examples, or
    binarised). Returns (nll: float, dlogits (N, D)).
    -log p(x | l) = -[x log s(l) + (1 - x) log(1 - s(l))] = softplus(l) - x l,  so  d/dl = s(l) - x.
    """
    nll = float(np.sum(softplus(logits) - x * logits))
    return nll, sigmoid(logits) - x


def gaussian_kl(mu, logvar):
    """KL(q(z|x) || p(z)) of q = N(mu, diag(exp(logvar))) from p = N(0, I), summed over the batch and the latent
    dimensions. mu, logvar: (N, J). Returns (kl: float, dmu (N, J), dlogvar (N, J)).
    Per dimension KL = (mu^2 + sigma^2 - 1 - log sigma^2) / 2, so d/dmu = mu and d/dlogvar = (sigma^2 - 1) / 2.
    """
    var = np.exp(logvar)
    kl = float(0.5 * np.sum(mu * mu + var - 1.0 - logvar))
    return kl, mu, 0.5 * (var - 1.0)


def reparameterize(mu, logvar, eps):
    """z = mu + sigma * eps with sigma = exp(logvar / 2) and eps ~ N(0, I) drawn by the caller: the sample is a
    deterministic, differentiable function of (mu, logvar) once eps is fixed. All (N, J). Returns (z, sigma)."""
    sigma = np.exp(0.5 * logvar)
    return mu + sigma * eps, sigma


def reparameterize_backward(dz, sigma, eps):
    """dz (N, J) -> (dmu, dlogvar): dz/dmu = 1 and dz/dlogvar = eps * sigma / 2."""
    return dz, dz * eps * sigma * 0.5


class VAE:
    """Encoder x -> ReLU(x W1 + b1) -> (mu, logvar), decoder z -> ReLU(z W3 + b3) -> logits (pytorch/examples'
    fc1, fc21, fc22, fc3, fc4). The loss is the negative ELBO summed over the batch: recon + kl. `pixels` (784
    for MNIST) is smaller in gradient checks, where a loss of ~10^3 nats would drown finite differences in
    rounding."""

    def __init__(self, hidden=400, latent=20, seed=0, dtype=np.float32, pixels=PIXELS):
        rng = np.random.default_rng(seed)
        self.latent = latent
        self.fc1 = torch_linear(pixels, hidden, rng, dtype)
        self.relu1 = ReLU()
        self.fc21, self.fc22 = (
            torch_linear(hidden, latent, rng, dtype),
            torch_linear(hidden, latent, rng, dtype),
        )
        self.decoder = Sequential(
            [torch_linear(latent, hidden, rng, dtype), ReLU(), torch_linear(hidden, pixels, rng, dtype)]
        )
        self.named = {"fc1": self.fc1, "fc21": self.fc21, "fc22": self.fc22}
        self.named |= {"fc3": self.decoder.layers[0], "fc4": self.decoder.layers[2]}
        self.layers = list(self.named.values())  # what the optimizer updates

    def encode(self, x):
        """x (N, 784) -> mu (N, J), logvar (N, J)."""
        h = self.relu1.forward(self.fc1.forward(x))
        return self.fc21.forward(h), self.fc22.forward(h)

    def decode(self, z):
        """z (N, J) -> logits (N, 784) of the pixels' Bernoulli means."""
        return self.decoder.forward(z)

    def forward(self, x, eps):
        """x (N, 784) in [0, 1], eps (N, J) standard normal -> {"loss", "recon", "kl"} (floats, summed over the
        batch), "logits" (N, 784), "mu", "logvar" (N, J). eps = 0 decodes the mean z = mu."""
        mu, logvar = self.encode(x)
        z, sigma = reparameterize(mu, logvar, eps)
        logits = self.decode(z)
        recon, self.dlogits = bernoulli_nll(logits, x)
        kl, self.dmu_kl, self.dlogvar_kl = gaussian_kl(mu, logvar)
        self.sigma, self.eps = sigma, eps
        return {"loss": recon + kl, "recon": recon, "kl": kl, "logits": logits, "mu": mu, "logvar": logvar}

    def backward(self):
        """Gradients of the last forward's loss into every layer's grads. The sample z = mu + sigma * eps
        carries the reconstruction's gradient to mu and logvar; the KL term adds its own."""
        dz = self.decoder.backward(self.dlogits, need_dx=True)
        dmu, dlogvar = reparameterize_backward(dz, self.sigma, self.eps)
        dmu, dlogvar = dmu + self.dmu_kl, dlogvar + self.dlogvar_kl
        dh = self.fc21.backward(dmu) + self.fc22.backward(dlogvar)  # h feeds both heads: the gradients add
        self.fc1.backward(self.relu1.backward(dh), need_dx=False)

    def num_parameters(self):
        return sum(p.size for layer in self.layers for p in layer.params.values())

    def state_dict(self):
        return _state_dict(self.named)

    def load_state_dict(self, state):
        _load(self.named, state)


# ---- the GAN ----------------------------------------------------------------------------------------------------


def bce_with_logits(logits, target):
    """Mean binary cross-entropy of logits l (N, 1) against a target probability t (a float: 1 for real, 0 for
    fake, 0.9 with one-sided label smoothing). Returns (loss: float, dlogits (N, 1)).
    loss = mean(softplus(l) - t l),  so  d/dl = (s(l) - t) / N."""
    n = logits.shape[0]
    return float(np.mean(softplus(logits) - target * logits)), (sigmoid(logits) - target) / n


class GAN:
    """Generator G: z (N, latent) -> tanh images (N, 784) in [-1, 1]; discriminator D: images -> logits (N, 1),
    D(x) = sigmoid(logit) the probability that x is real. The non-saturating game of Goodfellow et al. 2014:
    D minimises -log D(x) - log(1 - D(G(z))); G minimises -log D(G(z)) (not log(1 - D(G(z))), whose gradient
    vanishes while D wins easily). `pixels`: 784 for MNIST, fewer in gradient checks."""

    def __init__(
        self,
        latent=64,
        g_hidden=(256, 512),
        d_hidden=(512, 256),
        slope=0.2,
        seed=0,
        dtype=np.float32,
        pixels=PIXELS,
    ):
        rng = np.random.default_rng(seed)
        self.latent = latent
        leaky = lambda: LeakyReLU(slope)  # noqa: E731
        self.G = _mlp([latent, *g_hidden, pixels], rng, dtype, leaky, Tanh)
        self.D = _mlp([pixels, *d_hidden, 1], rng, dtype, leaky)
        linears = lambda net: [layer for layer in net.layers if isinstance(layer, Linear)]  # noqa: E731
        self.g_named = {f"G.{i}": layer for i, layer in enumerate(linears(self.G))}
        self.d_named = {f"D.{i}": layer for i, layer in enumerate(linears(self.D))}

    def generate(self, z):
        """z (N, latent) -> images (N, 784) in [-1, 1]."""
        return self.G.forward(z)

    def d_step(self, x_real, z, real_target=1.0):
        """The discriminator's loss on a real batch and G(z), and its gradients in D's grads (G untouched).
        x_real (N, 784) in [-1, 1], z (M, latent). Returns {"d_loss", "d_real": mean D(x), "d_fake": mean D(G(z))}.
        One pass of D over both halves: D is applied per example, so this equals two passes."""
        fake = self.G.forward(z)
        logits = self.D.forward(np.concatenate([x_real, fake]))
        n = len(x_real)
        loss_real, dreal = bce_with_logits(logits[:n], real_target)
        loss_fake, dfake = bce_with_logits(logits[n:], 0.0)
        self.D.backward(np.concatenate([dreal, dfake]))
        d_real, d_fake = float(sigmoid(logits[:n]).mean()), float(sigmoid(logits[n:]).mean())
        return {"d_loss": loss_real + loss_fake, "d_real": d_real, "d_fake": d_fake}

    def g_step(self, z, minimax=False):
        """The generator's non-saturating loss -log D(G(z)) (or, minimax=True, the saturating log(1 - D(G(z))) of
        the original minimax game) and its gradients in G's grads: back through D (whose grads this also
        overwrites; only G's optimizer steps after it). Returns {"g_loss", "d_fake_g"}."""
        logits = self.D.forward(self.G.forward(z))
        if minimax:  # log(1 - D) = -softplus(d): minus the BCE against 0, gradient -sigmoid(d) / n
            loss, dlogits = bce_with_logits(logits, 0.0)
            loss, dlogits = -loss, -dlogits
        else:
            loss, dlogits = bce_with_logits(logits, 1.0)
        dfake = self.D.backward(dlogits, need_dx=True)  # d loss / d G(z), (N, 784)
        self.G.backward(dfake)
        return {"g_loss": loss, "d_fake_g": float(sigmoid(logits).mean())}

    def g_layers(self):
        return list(self.g_named.values())

    def d_layers(self):
        return list(self.d_named.values())

    def num_parameters(self):
        return sum(p.size for layer in self.g_layers() + self.d_layers() for p in layer.params.values())

    def state_dict(self):
        return _state_dict(self.g_named | self.d_named)

    def load_state_dict(self, state):
        _load(self.g_named | self.d_named, state)
