"""Finite-difference gradient checking for NumPy layers (CS231n's relative error, float64).

A layer is anything with `forward(x)`, `backward(grad) -> dx`, a dict `params` of arrays and, after
`backward`, a dict `grads` of the same keys. The checked scalar is `sum(forward(x) * dout)` for a fixed random
`dout`, so every output element contributes. Each evaluation runs on a deep copy of the layer, so a layer that
draws random numbers (dropout) sees the same draws every time and stateful layers (batch-norm running
statistics) are not disturbed.
"""

import copy

import numpy as np


def rel_error(a, b):
    """max |a - b| / max(|a| + |b|, 1e-8), elementwise: CS231n's relative error."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))) if a.size else 0.0


def numerical_gradient(f, x, epsilon=1e-5):
    """Centred differences (f(x+e) - f(x-e)) / 2e of a scalar function f() over every element of array x,
    perturbed in place (and restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + epsilon
        f_plus = f()
        x[i] = old - epsilon
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * epsilon)
        it.iternext()
    return grad


def _to_float64(layer):
    for name, value in layer.params.items():
        layer.params[name] = np.asarray(value, dtype=np.float64)
    return layer


def gradient_check(layer, x, epsilon=1e-5, dout=None, seed=0, forward_kwargs=None):
    """Compare the backward pass of `layer` at input `x` with centred finite differences.

    x: float array of any shape the layer takes (cast to float64, as are the layer's params).
    Returns {"x": rel_error, "<param>": rel_error, ...}; a correct float64 backward gives < 1e-6.
    """
    forward_kwargs = forward_kwargs or {}
    template = _to_float64(copy.deepcopy(layer))
    x = np.array(x, dtype=np.float64)

    probe = copy.deepcopy(template)
    out = probe.forward(x, **forward_kwargs)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(np.shape(out))

    def loss():
        return float(np.sum(copy.deepcopy(template).forward(x, **forward_kwargs) * dout))

    analytic = copy.deepcopy(template)
    analytic.forward(x, **forward_kwargs)
    dx = analytic.backward(dout)

    errors = {"x": rel_error(dx, numerical_gradient(loss, x, epsilon))}
    for name, value in template.params.items():
        errors[name] = rel_error(analytic.grads[name], numerical_gradient(loss, value, epsilon))
    return errors
