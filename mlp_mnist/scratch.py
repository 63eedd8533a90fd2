"""A small neural-network library in NumPy: layers with hand-derived backward passes, losses, and `Network`.

Curriculum 5.1 (CE1.1) and 5.2 (CE2.1). `Layer`, `Linear`, `ReLU`, `Tanh` and `softmax_cross_entropy`
live in shared.nn (other projects use them too) and are re-exported here; this module adds Sigmoid, Dropout,
BatchNorm, the MSE loss, the `Network` container and the `build_mlp` builder.

Conventions (shared.nn): a layer keeps trainable arrays in `params` and, after `backward`, their gradients in
`grads`; non-trainable state that belongs in a checkpoint (batch-norm running statistics) in `buffers`.
`forward(x, training=True)` caches what `backward(grad)` needs and `backward` returns d loss / d x.
Batch first: x is (N, D). Training runs in float32: every array a layer creates has the input's dtype and every
scalar is a Python float, which NumPy 2 never lets upcast an array.
"""

import numpy as np

from shared.nn import (
    Layer,
    Linear,
    ReLU,
    Tanh,
    copy_weights,
    init_weight,
    log_softmax,
    softmax_cross_entropy,
)

__all__ = [
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Dropout",
    "BatchNorm",
    "softmax_cross_entropy",
    "log_softmax",
    "mse_loss",
    "Network",
    "build_mlp",
    "init_weight",
    "ACTIVATIONS",
]


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), elementwise, any shape. Computed as (1 + tanh(x/2)) / 2: no overflow."""

    def forward(self, x, training=True):
        y = np.multiply(x, 0.5)
        np.tanh(y, out=y)
        y += 1.0
        y *= 0.5
        self.y = y
        return y

    def backward(self, grad):
        # dy/dx = y (1 - y)  =>  dx = grad * y * (1 - y)
        return grad * self.y * (1.0 - self.y)


class Dropout(Layer):
    """Inverted dropout: in training, y = x * mask with mask = keep / (1 - p), keep ~ Bernoulli(1 - p), so the
    expected activation is unchanged and inference is the identity. x: any shape; y: same shape.

    Draws from its own generator (`seed` or `rng`), so a run is reproducible and a deep copy of the layer
    draws the same mask (which gradient checking relies on).
    """

    def __init__(self, p=0.5, seed=0, rng=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(seed) if rng is None else rng
        self.mask = None

    def forward(self, x, training=True):
        if not training or self.p == 0.0:
            self.mask = None
            return x
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        if self.p == 1.0:
            self.mask = np.zeros(x.shape, dtype=dtype)
        else:
            self.mask = (self.rng.random(x.shape, dtype=dtype) >= self.p).astype(dtype)
            self.mask *= 1.0 / (1.0 - self.p)
        return x * self.mask

    def backward(self, grad):
        # y = x * mask  =>  dx = grad * mask (identity at inference)
        return grad if self.mask is None else grad * self.mask


class BatchNorm(Layer):
    """Batch normalisation over the batch axis (Ioffe & Szegedy 2015). x: (N, D) -> y: (N, D).

    Training: xhat = (x - mean_B) / sqrt(var_B + eps) with the batch's mean and biased variance, y = gamma xhat +
    beta; the running statistics move like torch's: r = (1 - momentum) r + momentum * batch statistic, with the
    unbiased variance (N / (N - 1)) var_B for running_var. Inference uses the running statistics.
    params: gamma (D,), beta (D,); buffers: running_mean (D,), running_var (D,).
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.momentum, self.eps = float(momentum), float(eps)
        self.params["gamma"] = np.ones(num_features, dtype=dtype)
        self.params["beta"] = np.zeros(num_features, dtype=dtype)
        self.buffers = {
            "running_mean": np.zeros(num_features, dtype=dtype),
            "running_var": np.ones(num_features, dtype=dtype),
        }

    def forward(self, x, training=True):
        gamma, beta = self.params["gamma"], self.params["beta"]
        self.training = training
        if training:
            n = x.shape[0]
            if n < 2:
                raise ValueError("BatchNorm in training mode needs more than one sample per batch")
            mean = x.mean(axis=0)
            xc = x - mean
            var = np.einsum("nd,nd->d", xc, xc) / n  # biased variance, no (N, D) temporary
            self.inv_std = 1.0 / np.sqrt(var + self.eps)
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1.0 - m
            rm += m * mean
            rv *= 1.0 - m
            rv += (m * n / (n - 1)) * var
        else:
            xc = x - self.buffers["running_mean"]
            self.inv_std = 1.0 / np.sqrt(self.buffers["running_var"] + self.eps)
        xc *= self.inv_std  # xc is now xhat (in place: one (N, D) array fewer)
        self.xhat = xc
        return xc * gamma + beta

    def backward(self, grad):
        # y = gamma xhat + beta  =>  dgamma = sum_n grad * xhat, dbeta = sum_n grad, dxhat = grad * gamma.
        xhat = self.xhat
        self.grads["gamma"] = np.einsum("nd,nd->d", grad, xhat)
        self.grads["beta"] = grad.sum(axis=0)
        dxhat = grad * self.params["gamma"]
        if not self.training:  # the statistics are constants: xhat = (x - r_mean) * inv_std
            dxhat *= self.inv_std
            return dxhat
        # Through mean_B and var_B too (xhat = (x - mu) / sigma, mu and sigma depend on every x):
        #   dx = inv_std / N * (N dxhat - sum_n dxhat - xhat * sum_n (dxhat * xhat))
        n = grad.shape[0]
        sum_dxhat = dxhat.sum(axis=0)
        sum_dxhat_xhat = np.einsum("nd,nd->d", dxhat, xhat)
        dx = dxhat  # reuse the buffer
        dx -= sum_dxhat / n
        dx -= xhat * (sum_dxhat_xhat / n)
        dx *= self.inv_std
        return dx


def mse_loss(pred, target):
    """Mean squared error over every element (torch's MSELoss(reduction="mean")).

    pred: (N, C) float; target: (N, C) float, or (N,) integer labels, one-hot encoded to (N, C).
    Returns (loss: float, dpred: (N, C) of pred's dtype); d loss / d pred = 2 (pred - target) / (N C).
    """
    target = np.asarray(target)
    if target.ndim == 1 and pred.ndim == 2 and np.issubdtype(target.dtype, np.integer):
        onehot = np.zeros_like(pred)
        onehot[np.arange(pred.shape[0]), target] = 1.0
        target = onehot
    diff = pred - np.asarray(target, dtype=pred.dtype)
    loss = float(np.dot(diff.ravel(), diff.ravel()) / diff.size)
    diff *= 2.0 / diff.size
    return loss, diff


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class Network:
    """A sequence of layers, trained with a loss whose gradient flows back through every layer.

    forward(x: (N, in)) -> (N, out); backward(d loss / d out) -> d loss / d x; train_step(x, y, lr) -> loss
    does one plain SGD step with `loss_fn` (softmax cross-entropy unless given). For other optimizers pass
    `network.layers` to shared.optim (SGD, Adam). Inputs are cast to the parameters' dtype (float32 by default),
    so uint8 or float64 batches never upcast the whole network.
    """

    def __init__(self, layers, loss_fn=softmax_cross_entropy):
        self.layers = list(layers)
        self.loss_fn = loss_fn

    @property
    def dtype(self):
        for layer in self.layers:
            for p in layer.params.values():
                return p.dtype
        return np.dtype(np.float32)

    def forward(self, x, training=True):
        x = np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    __call__ = forward

    def backward(self, loss_grad, input_grad=True):
        """loss_grad: d loss / d output (N, out) -> d loss / d x (N, in); fills every layer's `grads`.

        input_grad=False skips d loss / d x when the first layer is a Linear (its dx = dy W^T is a quarter of
        the backward pass of a 784-800-800-10 MLP and nobody needs it: torch's autograd skips it too) and
        returns None.
        """
        # Chain rule: d loss / d input of layer k = backward_k(d loss / d output of layer k), last layer first.
        grad = loss_grad
        for layer in reversed(self.layers[1:]):
            grad = layer.backward(grad)
        first = self.layers[0]
        if input_grad:
            return first.backward(grad)
        if type(first) is Linear:  # not a subclass: diagnose's BuggyLinear overrides backward(grad) alone
            first.backward(grad, need_dx=False)
        else:
            first.backward(grad)
        return None

    def loss_and_grads(self, x, y, training=True):
        """Forward, loss, backward (without the input's gradient): fills every layer's `grads`.
        Returns (loss: float, logits: (N, out))."""
        logits = self.forward(x, training=training)
        loss, dlogits = self.loss_fn(logits, y)
        self.backward(dlogits, input_grad=False)
        return loss, logits

    def train_step(self, x, y, lr):
        """One SGD step (p -= lr * dp) on the batch x: (N, in), y: (N,) int. Returns the batch loss (float)."""
        loss, _ = self.loss_and_grads(x, y)
        for layer in self.layers:
            for name, p in layer.params.items():
                p -= lr * layer.grads[name]
        return loss

    def predict(self, x, batch_size=1000):
        """Logits in inference mode, batch by batch. x: (N, in) -> (N, out)."""
        return np.concatenate(
            [self.forward(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
        )

    def evaluate(self, x, y, batch_size=1000):
        """(mean loss, accuracy) in inference mode."""
        logits = self.predict(x, batch_size)
        loss, _ = self.loss_fn(logits, y)
        return loss, float((logits.argmax(axis=1) == y).mean())

    @property
    def params(self):
        """Flat {"layers.<i>.<name>": array} of every trainable array (the arrays themselves, not copies), so a
        whole Network passes for one Layer in shared.gradient_check (build it with dtype=np.float64 for that)."""
        return dict(self.named_parameters())

    @property
    def grads(self):
        """Flat {"layers.<i>.<name>": gradient} after backward, keyed like `params`."""
        return {f"layers.{i}.{k}": g for i, layer in enumerate(self.layers) for k, g in layer.grads.items()}

    def named_parameters(self):
        """[("layers.<i>.<name>", array), ...] of every trainable array."""
        return [
            (f"layers.{i}.{k}", p) for i, layer in enumerate(self.layers) for k, p in layer.params.items()
        ]

    def num_parameters(self):
        return sum(p.size for _, p in self.named_parameters())

    def _named_arrays(self):
        """{"layers.<i>.<name>": array} of every param and buffer (batch norm's running statistics), the arrays
        themselves."""
        return {
            f"layers.{i}.{k}": v
            for i, layer in enumerate(self.layers)
            for k, v in {**layer.params, **getattr(layer, "buffers", {})}.items()
        }

    def state_dict(self):
        """Flat {"layers.<i>.<name>": array} of every param and buffer (copies), ready for np.savez."""
        return {key: v.copy() for key, v in self._named_arrays().items()}

    def load_state_dict(self, state):
        """Copy arrays from `state_dict()` output into the existing arrays (optimizers keep their references).
        Every key must be present with the right shape; extra keys are an error too."""
        copy_weights(self._named_arrays(), state)

    def __repr__(self):
        inner = ", ".join(_describe(layer) for layer in self.layers)
        return f"Network([{inner}])"


def _describe(layer):
    if isinstance(layer, Linear):
        return f"Linear({layer.params['W'].shape[0]}, {layer.params['W'].shape[1]})"
    if isinstance(layer, BatchNorm):
        return f"BatchNorm({layer.params['gamma'].shape[0]})"
    if isinstance(layer, Dropout):
        return f"Dropout({layer.p})"
    return type(layer).__name__


def build_mlp(sizes, activation="relu", dropout=0.0, batchnorm=False, init="he", seed=0, dtype=np.float32):
    """An MLP: for each hidden size, Linear -> [BatchNorm] -> activation -> [Dropout]; then a final Linear.

    sizes: [in, hidden..., out], e.g. [784, 800, 800, 10]. activation: relu | sigmoid | tanh.
    init: zero | small | large | xavier | he (shared.nn.init_weight); biases start at zero. Weights are drawn
    from default_rng(seed) layer by layer; dropout layer k draws from default_rng([seed, k]).
    model.build_torch_mlp builds the same layer sequence in PyTorch (same indices).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if len(sizes) < 2:
        raise ValueError("sizes needs at least [in, out]")
    rng = np.random.default_rng(seed)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype))
        if k == len(sizes) - 2:
            break
        if batchnorm:
            layers.append(BatchNorm(fan_out, dtype=dtype))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout, seed=[seed, k]))
    return Network(layers)
