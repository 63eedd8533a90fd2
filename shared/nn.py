"""NumPy building blocks that several projects share: the `Layer` interface, `Linear`, `ReLU`, `Tanh` and
softmax cross-entropy. Each backward sits beside its forward.

Conventions: a layer keeps its trainable arrays in `params` and, after `backward`, their gradients in `grads`
(same keys, same shapes). `forward(x, training=True)` caches what `backward(grad)` needs; `backward` returns
the gradient with respect to the input. Batches come first: x is (N, ...).
"""

import numpy as np


def copy_weights(params, state):
    """Copy each state[name] into params[name] in place, so that an optimizer holding the arrays keeps working.

    params, state: {name: array}, e.g. a model's parameters and a state dict read from a checkpoint. The names
    must be the same set and each shape must agree (ValueError naming what differs); the dtype is cast safely."""
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
    for name, p in params.items():
        value = np.asarray(state[name])
        if value.shape != p.shape:
            raise ValueError(f"{name}: shape {value.shape} does not match the model's {p.shape}")
        np.copyto(p, value, casting="same_kind")


class Layer:
    params: dict
    grads: dict

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def __call__(self, x, training=True):
        return self.forward(x, training=training)


def init_weight(shape, scheme, rng, fan_in=None, fan_out=None):
    """Weights of `shape` for the schemes compared in mlp_mnist's initialisation study.

    zero: all zeros; small: N(0, 0.01^2); large: N(0, 1); xavier: N(0, 2/(fan_in+fan_out)) (Glorot & Bengio 2010);
    he: N(0, 2/fan_in) (He et al. 2015). fan_in/fan_out default to shape[0]/shape[-1] (x @ W layout).
    """
    fan_in = shape[0] if fan_in is None else fan_in
    fan_out = shape[-1] if fan_out is None else fan_out
    std = {
        "zero": 0.0,
        "small": 0.01,
        "large": 1.0,
        "xavier": np.sqrt(2.0 / (fan_in + fan_out)),
        "he": np.sqrt(2.0 / fan_in),
    }
    if scheme not in std:
        raise ValueError(f"unknown init scheme {scheme!r}: choose one of {', '.join(std)}")
    return rng.standard_normal(shape) * std[scheme]


class Linear(Layer):
    """y = x W + b.  x: (N, in_features), W: (in_features, out_features), b: (out_features,), y: (N, out_features)."""

    def __init__(self, in_features, out_features, init="he", rng=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.params["W"] = init_weight((in_features, out_features), init, rng).astype(dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x, training=True):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad, need_dx=True):
        """grad: dy (N, out_features) -> dx (N, in_features). need_dx=False skips dx (half of this backward's
        FLOPs) when nothing needs it, e.g. the input is data, and returns None."""
        # y = xW + b  =>  dW = x^T dy, db = sum_n dy, dx = dy W^T
        self.grads["W"] = self.x.T @ grad  # (in, out)
        self.grads["b"] = grad.sum(axis=0)  # (out,)
        return grad @ self.params["W"].T if need_dx else None


class ReLU(Layer):
    """y = max(x, 0), elementwise; any shape."""

    def forward(self, x, training=True):
        self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad):
        return grad * self.mask


class Tanh(Layer):
    """y = tanh(x), elementwise, any shape."""

    def forward(self, x, training=True):
        self.y = np.tanh(x)
        return self.y

    def backward(self, grad):
        # dy/dx = 1 - y^2  =>  dx = grad * (1 - y^2)
        return grad * (1.0 - self.y * self.y)


def log_softmax(logits):
    """logits: (N, C) -> log-probabilities (N, C), stable by subtracting the row maximum."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, y):
    """Mean negative log-likelihood of integer labels.

    logits: (N, C) float, y: (N,) int in [0, C). Returns (loss: float, dlogits: (N, C)).
    d loss / d logits = (softmax(logits) - onehot(y)) / N.
    """
    n = logits.shape[0]
    logp = log_softmax(logits)
    loss = -logp[np.arange(n), y].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1
    return float(loss), dlogits / n
