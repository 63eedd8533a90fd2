"""The NumPy classifier: masked pooling and the whole model against finite differences in float64, padding that
gets exactly zero gradient and does not change a review's logits, dropout's backward, checkpoints."""

import numpy as np
import pytest

from sentiment_lstm.scratch import LSTMClassifier, MaskedPool
from shared.gradient_check import gradient_check, numerical_gradient
from shared.nn import softmax_cross_entropy

V, E, H = 13, 4, 5
LENGTHS = np.array([7, 3, 1, 5])  # T = 7: rows with 0, 4, 6 and 2 padded steps


def padded_batch(rng, lengths=LENGTHS, extra=0):
    ids = rng.integers(2, V, size=(len(lengths), lengths.max() + extra))
    ids[np.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0
    return ids


def array_error(a, n):
    """max |a - n| / max(|a| + |n|): the error relative to the array's largest gradient (char_rnn's measure for
    whole models). CS231n's elementwise error also passes 1e-6 except on elements ~1e-7 of a gradient whose
    largest is ~1e-2, where the finite differences' own round-off (~1e-16 * loss / eps ~ 1e-11) is 1e-4 of the
    element. A wrong backward term gives errors of order 1e-2..1 on either measure."""
    return float(np.max(np.abs(a - n)) / max(np.max(np.abs(a) + np.abs(n)), 1e-12))


def check_gradients(model, loss, analytic):
    for k, layer in model._named_layers():
        for name, p in layer.params.items():
            error = array_error(analytic[(k, name)], numerical_gradient(loss, p))
            assert error < 1e-8, (k, name, error)


def tiny(pool, dropout=0.0, seed=0):
    rng = np.random.default_rng(seed)
    model = LSTMClassifier(V, E, H, pool, dropout, rng=rng, dtype=np.float64)
    model.lstm.params["b"] += rng.standard_normal(4 * H) * 0.5  # every term of the gradient exercised
    return model


@pytest.mark.parametrize("kind", ["mean", "last"])
def test_masked_pooling_gradient_check(kind):
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((7, 4, 3))
    errors = gradient_check(MaskedPool(kind), hs, forward_kwargs={"lengths": LENGTHS})
    assert errors["x"] < 1e-6, errors
    pool = MaskedPool(kind)
    pooled = pool.forward(hs, LENGTHS)
    for b, L in enumerate(LENGTHS):
        expected = hs[:L, b].mean(axis=0) if kind == "mean" else hs[L - 1, b]
        np.testing.assert_allclose(pooled[b], expected, atol=1e-15)
    dhs = pool.backward(rng.standard_normal(pooled.shape))
    padding = np.arange(7)[:, None] >= LENGTHS[None, :]
    assert np.all(dhs[padding] == 0)  # exactly zero on the padding


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_whole_classifier_gradient_check_through_masking(pool):
    """Every parameter's gradient (embedding, LSTM, head) against centred differences (float64) of the mean
    cross-entropy of a padded batch (array_error < 1e-8; measured ~5e-10); the padding id's embedding row gets
    exactly zero gradient."""
    model = tiny(pool)
    rng = np.random.default_rng(1)
    ids, y = padded_batch(rng), np.array([0, 1, 1, 0])
    model.loss_and_backward(ids, LENGTHS, y)
    analytic = {(k, n): g.copy() for k, layer in model._named_layers() for n, g in layer.grads.items()}

    def loss():
        return softmax_cross_entropy(model.forward(ids, LENGTHS, training=False), y)[0]

    check_gradients(model, loss, analytic)
    assert np.all(analytic[("embed", "W")][0] == 0)  # id 0 appears only as padding


def test_padding_gets_zero_gradient_and_changes_no_logits():
    model = tiny("mean")
    rng = np.random.default_rng(2)
    ids = padded_batch(rng)
    more = np.concatenate([ids, np.zeros((4, 6), dtype=ids.dtype)], axis=1)  # the same reviews, more padding
    np.testing.assert_array_equal(model.forward(more, LENGTHS, False), model.forward(ids, LENGTHS, False))
    noisy = more.copy()
    noisy[:, ids.shape[1] :] = rng.integers(2, V, size=(4, 6))  # any token behind the lengths changes nothing
    np.testing.assert_array_equal(model.forward(noisy, LENGTHS, False), model.forward(ids, LENGTHS, False))
    model.forward(noisy, LENGTHS, training=False)
    dhs = model.pool.backward(np.ones((4, H)))
    dx = model.lstm.backward(dhs)  # dL/d(embedded inputs) (T, B, E)
    padding = np.arange(noisy.shape[1])[:, None] >= LENGTHS[None, :]
    assert np.all(dx[padding] == 0) and np.all(dx[~padding] != 0)


def test_dropout_backward():
    """With dropout on, the backward uses the forward's masks: checked with the same masks drawn every time."""
    model = tiny("mean", dropout=0.4)
    rng = np.random.default_rng(3)
    ids, y = padded_batch(rng), np.array([1, 0, 1, 0])

    def loss():
        model.rng = np.random.default_rng(9)  # the same dropout masks on every evaluation
        return softmax_cross_entropy(model.forward(ids, LENGTHS, training=True), y)[0]

    model.rng = np.random.default_rng(9)
    model.loss_and_backward(ids, LENGTHS, y)
    assert 0 < (model.mask_x == 0).mean() < 1
    analytic = {(k, n): g.copy() for k, layer in model._named_layers() for n, g in layer.grads.items()}
    check_gradients(model, loss, analytic)


def test_state_dict_round_trip_and_bad_inputs():
    a, b = tiny("last", seed=0), tiny("last", seed=1)
    b.load_state_dict(a.state_dict())
    ids = padded_batch(np.random.default_rng(4))
    np.testing.assert_array_equal(a.forward(ids, LENGTHS, False), b.forward(ids, LENGTHS, False))
    assert a.num_params() == V * E + 4 * H * (E + H + 1) + 2 * H + 2
    with pytest.raises(ValueError, match="state_dict mismatch"):
        b.load_state_dict({"embed.W": a.embed.params["W"]})
    with pytest.raises(ValueError, match="lengths must lie in"):
        a.forward(ids, np.array([8, 3, 1, 5]))
    with pytest.raises(ValueError, match="lengths must lie in"):
        a.forward(ids, np.array([0, 3, 1, 5]))
