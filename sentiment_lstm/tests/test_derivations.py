"""The derivations of REPORT.md (section "Derivations: the masked pooling backward"), each checked in float64.

Every formula is written out here as the report writes it and compared with a second route to the same number
(the explicit Jacobian by torch autograd, autograd through model.py's masked_pool) and with the NumPy code's own
backward. The last test checks that each line of code the report quotes still stands, word for word, in the
function it names.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment_lstm import scratch
from sentiment_lstm.model import masked_pool
from shared.quotes import missing_quotes, quoted_code

REPORT = Path(__file__).resolve().parents[1] / "REPORT.md"
T, B, H = 7, 4, 3
LENGTHS = np.array([7, 3, 1, 5])


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(np.abs(a).max(), np.abs(b).max(), 1e-300))


def mask():
    """The report's m (T, B): 1 where t < L_b."""
    return np.array([[float(t < L) for L in LENGTHS] for t in range(T)])


def pooled_by_torch(hs, kind):
    """masked_pool of model.py on the time-major hs (T, B, F), as a function torch can differentiate."""
    return masked_pool(hs.transpose(0, 1), torch.from_numpy(LENGTHS), kind)


def test_the_mask():
    np.testing.assert_array_equal(scratch.mask_of(LENGTHS, T), mask())


def test_mean_pool_jacobian_is_diagonal_in_row_and_unit_with_entries_m_over_L():
    hs = torch.from_numpy(randn(T, B, H, seed=1))
    jacobian = torch.autograd.functional.jacobian(
        lambda h: pooled_by_torch(h, "mean"), hs
    ).numpy()  # (B,H,T,B,H)
    # report: d p_{b',j'} / d h_{t,b,j} = delta_{bb'} delta_{jj'} m_{t,b} / L_b
    formula = np.zeros((B, H, T, B, H))  # [b', j', t, b, j]
    for b in range(B):
        for j in range(H):
            formula[b, j, :, b, j] = mask()[:, b] / LENGTHS[b]
    close(jacobian, formula)
    layer = scratch.MaskedPool("mean")
    close(layer.forward(hs.numpy(), LENGTHS), np.einsum("tbh,tb->bh", hs.numpy(), mask()) / LENGTHS[:, None])


def test_mean_pool_backward_is_the_formula_the_code_and_autograd():
    hs, dp = randn(T, B, H, seed=2), randn(B, H, seed=3)
    formula = mask()[:, :, None] / LENGTHS[None, :, None] * dp[None]  # report: dh_{t,b} = m_{t,b} / L_b dp_b
    layer = scratch.MaskedPool("mean")
    layer.forward(hs, LENGTHS)
    t = torch.tensor(hs, requires_grad=True)
    (pooled_by_torch(t, "mean") * torch.from_numpy(dp)).sum().backward()
    close(formula, layer.backward(dp))
    close(formula, t.grad.numpy())
    close(formula.sum(axis=0), dp)  # report: summed over the steps the gradient is dp_b
    assert np.all(formula[mask() == 0] == 0)


def test_last_pool_backward_is_the_formula_the_code_and_autograd():
    hs, dp = randn(T, B, H, seed=4), randn(B, H, seed=5)
    last = np.array([[float(t == L - 1) for L in LENGTHS] for t in range(T)])  # report: [t = L_b - 1]
    formula = last[:, :, None] * dp[None]
    layer = scratch.MaskedPool("last")
    np.testing.assert_array_equal(layer.forward(hs, LENGTHS), hs[LENGTHS - 1, np.arange(B)])
    t = torch.tensor(hs, requires_grad=True)
    (pooled_by_torch(t, "last") * torch.from_numpy(dp)).sum().backward()
    np.testing.assert_array_equal(formula, layer.backward(dp))
    np.testing.assert_array_equal(formula, t.grad.numpy())


def max_formula(hs, dq):
    """The report's dh_{t,b,j} = [t = t*_{b,j}] dq_{b,j}, t* the argmax over the real steps."""
    out = np.zeros_like(hs)
    for b, L in enumerate(LENGTHS):
        peak = hs[:L, b].argmax(axis=0)  # (F,)
        out[peak, b, np.arange(hs.shape[2])] = dq[b]
    return out


def test_max_pool_backward_goes_to_each_features_peak_and_never_to_the_padding():
    hs, dq = randn(T, B, 2 * H, seed=6), randn(B, 2 * H, seed=7)
    hs[mask() == 0] = 1e6  # padding far above every real value: it must still be ignored
    t = torch.tensor(hs, requires_grad=True)
    q = pooled_by_torch(t, "max")
    close(q.detach().numpy(), np.stack([hs[:L, b].max(axis=0) for b, L in enumerate(LENGTHS)]))
    (q * torch.from_numpy(dq)).sum().backward()
    formula = max_formula(hs, dq)
    np.testing.assert_array_equal(formula, t.grad.numpy())
    assert np.all(formula[mask() == 0] == 0)
    for b, L in enumerate(LENGTHS):  # report: at most min(L_b, F) steps of a review get any gradient
        assert np.count_nonzero(np.abs(formula[:, b]).sum(axis=1)) <= min(L, 2 * H)


def test_max_pool_splits_the_gradient_evenly_at_a_tie():
    hs = torch.zeros(T, B, 1, dtype=torch.float64, requires_grad=True)  # every real step ties
    pooled_by_torch(hs, "max").sum().backward()
    close(hs.grad.numpy()[:, :, 0], mask() / LENGTHS)


def test_meanmax_gradient_is_the_sum_of_the_two_routes():
    hs, dpq = randn(T, B, 2 * H, seed=8), randn(B, 4 * H, seed=9)
    dp, dq = dpq[:, : 2 * H], dpq[:, 2 * H :]
    t = torch.tensor(hs, requires_grad=True)
    (pooled_by_torch(t, "meanmax") * torch.from_numpy(dpq)).sum().backward()
    formula = mask()[:, :, None] / LENGTHS[None, :, None] * dp[None] + max_formula(hs, dq)
    close(formula, t.grad.numpy())


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_padding_gets_exactly_zero_gradient_through_the_lstm(pool):
    """report: at every padded step the cell's backward gets (0, 0), so dx and the weight-gradient terms of the
    padding are exactly 0, and a review's gradients equal those of the review run alone (T = L_b)."""
    model = scratch.LSTMClassifier(11, 5, H, pool=pool, rng=np.random.default_rng(10), dtype=np.float64)
    ids = np.random.default_rng(11).integers(1, 11, (B, T))
    ids[mask().T == 0] = 0
    dlogits = randn(B, 2, seed=12)
    model.forward(ids, LENGTHS, training=False)
    model.backward(dlogits)
    dx = model.lstm.backward(model.pool.backward(model.head.backward(dlogits)))  # (T, B, E)
    assert np.all(dx[mask() == 0] == 0)
    grads = {k: v.copy() for k, v in model.lstm.grads.items()}
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, L in enumerate(LENGTHS):  # each review alone, no padding: the gradients add up to the batch's
        model.forward(ids[b : b + 1, :L], LENGTHS[b : b + 1], training=False)
        dx_alone = model.lstm.backward(model.pool.backward(model.head.backward(dlogits[b : b + 1])))
        close(dx_alone[:, 0], dx[:L, b])
        for k in total:
            total[k] += model.lstm.grads[k]
    for k in grads:
        close(grads[k], total[k])


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(REPORT.read_text())
    assert len(quotes) >= 20, "the derivation section quotes code as `file` `Function`: `code`"
    names = {name for _, name, _ in quotes}
    assert {
        "MaskedPool.forward",
        "MaskedPool.backward",
        "mask_of",
        "FastLSTM.backward",
        "masked_pool",
    } <= names
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)
