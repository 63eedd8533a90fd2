"""The derivation of REPORT.md (section 7, the backward pass of the residual block), each formula written out here
as the report writes it, as plain NumPy (explicit Jacobians and loops, not through scratch.py) or as PyTorch
autograd, and compared with scratch.py in float64. The last test checks that every line of code the report
quotes still stands, word for word, in the function it names."""

from pathlib import Path

import numpy as np
import torch

from resnet_repro import scratch, twin
from shared.quotes import missing_quotes, quoted_code

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_step5_batchnorm_backward_is_the_jacobian_written_out():
    """dx_m = sum_k dxhat_k (delta_km - 1/M - xhat_k xhat_m / M) / sigma_eps, per channel; the result sums to 0
    and its product with xhat is eps / sigma_eps^3 sum_k dxhat_k xhat_k, 0 but for the eps."""
    x, dy = randn(3, 2, 2, 2, seed=1) * 2 + 1, randn(3, 2, 2, 2, seed=2)
    gamma, beta, eps = np.array([1.5, -0.7]), np.array([0.2, 0.1]), 1e-5
    _, cache = scratch.batchnorm_forward(x, gamma, beta, eps=eps)
    dx, dgamma, dbeta = scratch.batchnorm_backward(dy, cache)
    flat, dflat = x.reshape(-1, 2), dy.reshape(-1, 2)
    M = len(flat)
    for c in range(2):
        values = flat[:, c]
        sigma = np.sqrt(values.var() + eps)
        xhat = (values - values.mean()) / sigma
        jacobian = (np.eye(M) - 1 / M - np.outer(xhat, xhat) / M) / sigma  # [k, m] = d xhat_k / d x_m
        dxhat = gamma[c] * dflat[:, c]
        expected = dxhat @ jacobian  # sum over k
        np.testing.assert_allclose(dx.reshape(-1, 2)[:, c], expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dgamma[c], np.sum(dflat[:, c] * xhat), rtol=1e-12)
        np.testing.assert_allclose(dbeta[c], np.sum(dflat[:, c]), rtol=1e-12)
        assert abs(expected.sum()) < 1e-12  # orthogonal to 1; to xhat up to the eps:
        np.testing.assert_allclose(expected @ xhat, (dxhat @ xhat) * eps / sigma**3, rtol=1e-6)


def test_step3_the_shortcuts_adjoint_written_as_loops():
    """(S^T g)[n, u, v, c] = g[n, u / s, v / s, c] where s divides u and v, for c < C_in; 0 elsewhere."""
    x_shape, s = (2, 6, 6, 3), 2
    g = randn(2, 3, 3, 5, seed=3)
    expected = np.zeros(x_shape)
    for n in range(2):
        for u in range(6):
            for v in range(6):
                for c in range(3):
                    if u % s == 0 and v % s == 0:
                        expected[n, u, v, c] = g[n, u // s, v // s, c]
    _, cache = scratch.shortcut_forward(np.zeros(x_shape), 5, s)
    np.testing.assert_array_equal(scratch.shortcut_backward(g, cache), expected)


def test_step6_dx_is_the_residual_branchs_vector_jacobian_product_plus_the_shortcuts():
    """dx = J_F(x)^T dz + S^T dz, J_F^T dz by torch autograd of F alone (no shortcut, no final ReLU)."""
    rng = np.random.default_rng(4)
    block = scratch.BasicBlock(3, 6, stride=2, shortcut=True, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((2, 4, 4, 6))
    out = block.forward(x)
    dx = block.backward(dout)
    dz = dout * (out > 0)
    torch_block = twin.torch_block_of(block)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    residual = torch_block.bn2(torch_block.conv2(torch.relu(torch_block.bn1(torch_block.conv1(xt)))))  # F(x)
    (vjp,) = torch.autograd.grad(residual, xt, torch.from_numpy(dz.transpose(0, 3, 1, 2)))
    shortcut_part = np.zeros_like(x)
    shortcut_part[:, ::2, ::2, :] = dz[..., :3]
    np.testing.assert_allclose(dx, vjp.numpy().transpose(0, 2, 3, 1) + shortcut_part, rtol=1e-10, atol=1e-12)


def test_a_stack_passes_the_top_gradient_masked_by_the_relus_alone():
    """With every F switched off (conv2 = 0), dx_0 = D_0 D_1 D_2 dx_3 for three residual blocks, 0 for plain ones."""
    x, dtop = randn(2, 5, 5, 4, seed=5), randn(2, 5, 5, 4, seed=6)
    for shortcut in (True, False):
        rng = np.random.default_rng(7)
        blocks = [scratch.BasicBlock(4, 4, 1, shortcut, rng=rng, dtype=np.float64) for _ in range(3)]
        h, masks = x, []
        for block in blocks:
            block.params["conv2.weight"][:] = 0
            block.params["bn2.bias"][:] = rng.standard_normal(4)  # F(x) = beta_2: a constant
            h = block.forward(h)
            masks.append(h > 0)  # [z_l > 0], where y_l = relu(z_l) > 0
        grad = dtop
        for block in reversed(blocks):
            grad = block.backward(grad)
        expected = dtop * masks[0] * masks[1] * masks[2] if shortcut else np.zeros_like(x)
        np.testing.assert_array_equal(grad, expected)


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(REPORT.read_text())
    assert len(quotes) >= 25, "the derivation quotes code as `file` `function`: `code`"
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)
