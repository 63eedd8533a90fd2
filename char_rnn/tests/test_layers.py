"""The RNN and LSTM layers CharLM trains with (shared.recurrent's FastRNN / FastLSTM; the plain layers and the
step functions are tested in shared/tests/test_recurrent.py): BPTT against finite differences (float64) and
against torch.nn.RNN / torch.nn.LSTM through char_rnn.twin's weight copying."""

import numpy as np
import pytest
import torch

from char_rnn.twin import cell_grads_from_torch, copy_cell_to_torch
from shared.gradient_check import gradient_check, numerical_gradient, rel_error
from shared.recurrent import Embedding, FastLSTM, FastRNN

T, B, D, H = 5, 3, 4, 6
TOL = 1e-6
CELLS = {"rnn": FastRNN, "lstm": FastLSTM}


def make(cell, seed=0):
    rng = np.random.default_rng(seed)
    layer = CELLS[cell](D, H, rng=rng, dtype=np.float64)
    # random (not zero) bias so that every term of the gradient is exercised
    layer.params["b"] = rng.standard_normal(layer.params["b"].shape) * 0.5
    return layer, rng


def initial_state(cell, rng):
    """The state a second chunk starts from: the final state of a first chunk (truncated BPTT)."""
    first, _ = make(cell, seed=1)
    first.forward(rng.standard_normal((T, B, D)))
    return {"h0": first.h_last.copy()} | ({"c0": first.c_last.copy()} if cell == "lstm" else {})


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_check_from_zero_state(cell):
    layer, rng = make(cell)
    errors = gradient_check(layer, rng.standard_normal((T, B, D)))
    assert set(errors) == {"x", "Wx", "Wh", "b"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_check_from_carried_state(cell):
    layer, rng = make(cell)
    state = initial_state(cell, rng)
    x = rng.standard_normal((T, B, D))
    errors = gradient_check(layer, x, forward_kwargs=state)
    assert max(errors.values()) < TOL, errors

    # gradient with respect to the incoming state (computed, though truncated BPTT does not propagate it)
    dout = np.random.default_rng(7).standard_normal((T, B, H))
    layer.forward(x, **state)
    layer.backward(dout)
    for name in state:

        def loss():
            return float(np.sum(layer.forward(x, **state) * dout))

        numeric = numerical_gradient(loss, state[name])
        analytic = layer.dh0 if name == "h0" else layer.dc0
        assert rel_error(analytic, numeric) < TOL, name


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_check_final_state_gradients(cell):
    """dh_last / dc_last: a loss on the final state (what the next chunk would send back without truncation)."""
    layer, rng = make(cell)
    x = rng.standard_normal((T, B, D))
    wh, wc = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss():
        layer.forward(x)
        value = np.sum(layer.h_last * wh)
        return float(value + (np.sum(layer.c_last * wc) if cell == "lstm" else 0.0))

    loss()
    dx = layer.backward(None, wh, wc) if cell == "lstm" else layer.backward(None, wh)
    analytic = {"x": dx} | {k: v.copy() for k, v in layer.grads.items()}
    assert rel_error(analytic["x"], numerical_gradient(loss, x)) < TOL
    for name, p in layer.params.items():
        assert rel_error(analytic[name], numerical_gradient(loss, p)) < TOL, name


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_list_input_and_shapes(cell):
    layer, rng = make(cell)
    x = rng.standard_normal((T, B, D))
    out = layer.forward(x).copy()
    assert out.shape == (T, B, H)
    np.testing.assert_array_equal(layer.forward(list(x)), out)
    np.testing.assert_array_equal(layer.h_last, out[-1])
    dx = layer.backward(list(np.ones((T, B, H))))
    assert dx.shape == (T, B, D)
    for name, p in layer.params.items():
        assert layer.grads[name].shape == p.shape


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_integer_input_is_one_hot(cell):
    layer, rng = make(cell)
    ids = rng.integers(0, D, size=(T, B))
    onehot = np.eye(D)[ids]
    dout = rng.standard_normal((T, B, H))
    out_ids = layer.forward(ids).copy()
    assert layer.backward(dout) is None
    grads_ids = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_allclose(layer.forward(onehot), out_ids, rtol=1e-12, atol=1e-12)
    layer.backward(dout)
    for name in grads_ids:
        np.testing.assert_allclose(grads_ids[name], layer.grads[name], rtol=1e-10, atol=1e-12)


def test_lstm_forget_bias_and_float32():
    layer = FastLSTM(D, H, rng=np.random.default_rng(0))
    b = layer.params["b"]
    np.testing.assert_array_equal(b[H : 2 * H], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), 0.0)
    out = layer.forward(np.ones((T, B, D), dtype=np.float32))
    layer.backward(np.ones_like(out))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_embedding_gradient():
    rng = np.random.default_rng(0)
    emb = Embedding(7, 3, rng=rng, dtype=np.float64)
    ids = np.array([[1, 2, 1], [6, 1, 0]])
    dout = rng.standard_normal((2, 3, 3))
    emb.forward(ids)
    assert emb.backward(dout) is None

    def loss():
        return float(np.sum(emb.forward(ids) * dout))

    assert rel_error(emb.grads["W"], numerical_gradient(loss, emb.params["W"])) < TOL


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_matches_torch(cell):
    """Same weights -> same outputs, final state, input gradient, weight gradients and initial-state gradients."""
    layer, rng = make(cell)
    state = initial_state(cell, rng)
    x = rng.standard_normal((T, B, D))
    dout = rng.standard_normal((T, B, H))
    out = layer.forward(x, **state)
    dx = layer.backward(dout)

    net = torch.nn.LSTM(D, H) if cell == "lstm" else torch.nn.RNN(D, H, nonlinearity="tanh")
    net = net.double()
    copy_cell_to_torch(layer, net)
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(state["h0"][None], requires_grad=True)
    tstate = th0
    if cell == "lstm":
        tc0 = torch.tensor(state["c0"][None], requires_grad=True)
        tstate = (th0, tc0)
    tout, tfinal = net(tx, tstate)
    tout.backward(torch.tensor(dout))

    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    th_last = tfinal[0] if cell == "lstm" else tfinal
    np.testing.assert_allclose(layer.h_last, th_last[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    if cell == "lstm":
        np.testing.assert_allclose(layer.c_last, tfinal[1][0].detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.dc0, tc0.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.dh0, th0.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    tgrads = cell_grads_from_torch(net)
    np.testing.assert_allclose(tgrads["b"], net.bias_hh_l0.grad.numpy())  # one NumPy bias = bias_ih + bias_hh
    for name in ("Wx", "Wh", "b"):
        np.testing.assert_allclose(layer.grads[name], tgrads[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_bad_shapes_are_reported():
    layer, _ = make("lstm")
    with pytest.raises(ValueError, match="x must be"):
        layer.forward(np.zeros((T, B, D + 1)))
    with pytest.raises(ValueError, match="h0 must be"):
        layer.forward(np.zeros((T, B, D)), h0=np.zeros((B + 1, H)))
    with pytest.raises(ValueError, match="ids must lie"):
        layer.forward(np.full((T, B), D))
