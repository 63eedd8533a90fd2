"""The derivations of REPORT.md (section "Attention's backward, derived"), each checked in float64.

Every formula is written out here as the report writes it and compared with a second route to the same
number (the explicit Jacobian, torch autograd, finite differences) and with the NumPy code's own backward. The
last test checks that each line of code the report quotes still stands, word for word, in the function it
names.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nanogpt import scratch
from shared.gradient_check import numerical_gradient
from shared.nn import softmax_cross_entropy
from shared.quotes import missing_quotes, quoted_code

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"
T, D, DV = 6, 4, 3


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def masked_softmax(S, mask):
    """Row-wise softmax of S with -inf where mask is False (the report's P)."""
    S = np.where(mask, S, -np.inf)
    P = np.exp(S - S.max(axis=-1, keepdims=True))
    return P / P.sum(axis=-1, keepdims=True)


def softmax_backward_by_jacobian(P, dP):
    """dS row by row as J^T dp, J = diag(p) - p p^T built explicitly for every row."""
    dS = np.empty_like(P)
    for index in np.ndindex(P.shape[:-1]):
        p = P[index]
        jacobian = np.diag(p) - np.outer(p, p)
        dS[index] = jacobian.T @ dP[index]
    return dS


def close(a, b, rtol=1e-10):
    """Elementwise equal up to rtol of the largest entry (entries near 0 have no relative precision)."""
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(np.abs(a).max(), np.abs(b).max(), 1e-300))


# ---- attention


def test_softmax_jacobian_is_diag_p_minus_p_p_transpose():
    s = randn(T, seed=1)
    p = masked_softmax(s, np.ones(T, dtype=bool))
    by_autograd = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), torch.from_numpy(s))
    close(np.diag(p) - np.outer(p, p), by_autograd.numpy(), rtol=1e-14)


def test_softmax_backward_formula_is_the_jacobian_product_and_needs_no_mask():
    mask = scratch.causal_mask(T)
    P, dP = masked_softmax(randn(3, T, T, seed=2), mask), randn(3, T, T, seed=3)
    # report: dS = P * (dP - rowsum(dP * P) 1^T)
    formula = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
    close(formula, softmax_backward_by_jacobian(P, dP), rtol=1e-14)
    # masked weights are exactly 0, so dS is exactly 0 there, whatever dP holds at those places
    assert np.all(P[:, ~mask] == 0) and np.all(formula[:, ~mask] == 0)
    dP_elsewhere = np.where(mask, dP, 1e6 * randn(3, T, T, seed=4))
    np.testing.assert_array_equal(
        P * (dP_elsewhere - (dP_elsewhere * P).sum(axis=-1, keepdims=True)), formula
    )


def attention_by_autograd(Q, K, V, keep, dout):
    """(dQ, dK, dV) of sum(out * dout) by torch autograd through the report's forward equations."""
    q, k, v = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
    S = q @ k.transpose(-1, -2) / math.sqrt(Q.shape[-1])
    S = S.masked_fill(~torch.from_numpy(scratch.causal_mask(T)), float("-inf"))
    A = torch.softmax(S, dim=-1) * (1.0 if keep is None else torch.from_numpy(keep))
    ((A @ v) * torch.from_numpy(dout)).sum().backward()
    return q.grad.numpy(), k.grad.numpy(), v.grad.numpy()


@pytest.mark.parametrize("dropout", [False, True])
def test_attention_backward_is_the_report_chain(dropout):
    Q, K, V = randn(2, 3, T, D, seed=5), randn(2, 3, T, D, seed=6), randn(2, 3, T, DV, seed=7)
    dout = randn(2, 3, T, DV, seed=8)
    keep = (np.random.default_rng(9).random((2, 3, T, T)) >= 0.3) / 0.7 if dropout else None
    out, P = scratch.scaled_dot_product_attention(Q, K, V, scratch.causal_mask(T), True, keep)
    # the report's steps: A = P (* keep); dV = A^T dO, dP = dO V^T (* keep); dS by the Jacobian;
    # dQ = dS K / sqrt(d), dK = dS^T Q / sqrt(d)
    A = P if keep is None else P * keep
    dV = A.swapaxes(-1, -2) @ dout
    dP = dout @ V.swapaxes(-1, -2) * (1.0 if keep is None else keep)
    dS = softmax_backward_by_jacobian(P, dP)
    dQ, dK = dS @ K / math.sqrt(D), dS.swapaxes(-1, -2) @ Q / math.sqrt(D)
    by_code = scratch.scaled_dot_product_attention_backward(dout, Q, K, V, P, keep)
    by_autograd = attention_by_autograd(Q, K, V, keep, dout)
    for formula, code, autograd in zip((dQ, dK, dV), by_code, by_autograd):
        close(formula, code)
        close(formula, autograd)


# ---- LayerNorm


def test_layernorm_compact_backward_is_the_jacobian_product_and_the_code():
    C, eps = 7, 1e-5
    x, dy = 3 + 2 * randn(2, 4, C, seed=10), randn(2, 4, C, seed=11)
    gamma, beta = randn(C, seed=12), randn(C, seed=13)
    # report: r = (var + eps)^(-1/2), xhat = (x - mu) r, g = dy * gamma
    mu = x.mean(axis=-1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat, g = (x - mu) * r, dy * gamma
    # report: dx = r (g - mean(g) - xhat mean(g * xhat))
    compact = r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    # report: d xhat_i / d x_j = r (delta_ij - 1/C - xhat_i xhat_j / C), dx_j = sum_i g_i d xhat_i / d x_j
    by_jacobian = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        jacobian = r[index] * (np.eye(C) - 1 / C - np.outer(xhat[index], xhat[index]) / C)
        by_jacobian[index] = jacobian.T @ g[index]
    layer = scratch.LayerNorm(C, bias=True, dtype=np.float64, eps=eps)
    layer.params["weight"][...], layer.params["bias"][...] = gamma, beta
    layer.forward(x)
    by_code = layer.backward(dy)
    t, w, b = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    (torch.nn.functional.layer_norm(t, (C,), w, b, eps) * torch.from_numpy(dy)).sum().backward()
    for result in (by_jacobian, by_code, t.grad.numpy()):
        close(compact, result)
    np.testing.assert_allclose(compact.sum(axis=-1), 0, atol=1e-12)  # report: each row of dx sums to zero
    # report: dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy
    close((dy * xhat).reshape(-1, C).sum(axis=0), layer.grads["weight"])
    close((dy * xhat).reshape(-1, C).sum(axis=0), w.grad.numpy())
    close(dy.reshape(-1, C).sum(axis=0), layer.grads["bias"])
    close(dy.reshape(-1, C).sum(axis=0), b.grad.numpy())


# ---- the tied embedding


def test_tied_embedding_gradient_is_lookup_plus_head():
    config = scratch.GPTConfig(block_size=8, vocab_size=13, n_layer=1, n_head=2, n_embd=8)
    model = scratch.GPT(config, rng=np.random.default_rng(14), dtype=np.float64)
    rng = np.random.default_rng(15)
    idx, targets = rng.integers(0, 6, (1, 8)), rng.integers(0, 13, (1, 8))  # ids 6..12 are never read
    W = model.params["transformer.wte.weight"].copy()

    def untied_loss(W_in, W_out):
        """The loss with the lookup reading W_in and the head writing with W_out."""
        model.wte.params["weight"][...] = W_in
        model.forward(idx, training=False)
        logits = model.x_final @ W_out.T  # (1, T, V)
        return softmax_cross_entropy(logits.reshape(8, 13), targets.reshape(8))[0]

    W_in, W_out = W.copy(), W.copy()
    lookup_numeric = numerical_gradient(lambda: untied_loss(W_in, W), W_in)
    head_numeric = numerical_gradient(lambda: untied_loss(W, W_out), W_out)
    model.wte.params["weight"][...] = W
    logits = model.forward(idx)
    _, dlogits = softmax_cross_entropy(logits.reshape(8, 13), targets.reshape(8))
    model.backward(dlogits.reshape(1, 8, 13))
    dW = model.grads["transformer.wte.weight"]
    # report: head term dZ^T X_f; lookup term E^T dX_0 with dX_0 = dW_pos when the batch is one sequence
    head = dlogits.T @ model.x_final.reshape(8, -1)
    onehot = np.eye(13)[idx.reshape(-1)]  # (T, V)
    lookup = onehot.T @ model.grads["transformer.wpe.weight"]
    close(head, head_numeric, rtol=1e-8)
    close(lookup, lookup_numeric, rtol=1e-8)
    close(dW, head + lookup)
    # a token absent from the batch gets the head term only
    assert np.all(lookup_numeric[6:] == 0) and np.all(lookup[6:] == 0)
    close(dW[6:], head[6:])


# ---- the report quotes code that exists


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(REPORT.read_text())
    assert len(quotes) >= 25, "the derivation section quotes code as `file` `Function`: `code`"
    names = {name for _, name, _ in quotes}
    assert {"scaled_dot_product_attention_backward", "LayerNorm.backward", "GPT.backward"} <= names
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)
