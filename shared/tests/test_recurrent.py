"""shared.recurrent: the step and sequence functions and every layer against finite differences (float64), the
layers against torch.nn.RNN / torch.nn.LSTM on copied weights, and the fast layers against the plain ones."""

import numpy as np
import pytest
import torch

from shared import recurrent as rec
from shared.gradient_check import gradient_check, numerical_gradient, rel_error

T, B, D, H = 5, 3, 4, 6
TOL = 1e-6
PLAIN = {"rnn": rec.RNN, "lstm": rec.LSTM}
FAST = {"rnn": rec.FastRNN, "lstm": rec.FastLSTM}
LAYERS = [PLAIN["rnn"], PLAIN["lstm"], FAST["rnn"], FAST["lstm"]]


def is_lstm(layer_class):
    return issubclass(layer_class, rec.LSTM)


def weights(cell, rng):
    """Wx (D, G*H), Wh (H, G*H), b (G*H,) float64, with a random bias so that every gradient term is exercised."""
    G = 4 if cell == "lstm" else 1
    return (
        rng.standard_normal((D, G * H)) * 0.5,
        rng.standard_normal((H, G * H)) * 0.5,
        rng.standard_normal(G * H),
    )


def make(layer_class, seed=0):
    rng = np.random.default_rng(seed)
    layer = layer_class(D, H, rng=rng, dtype=np.float64)
    layer.params["b"] = rng.standard_normal(layer.params["b"].shape) * 0.5
    return layer, rng


def carried_state(layer_class, rng):
    """A nonzero incoming state, as a second chunk of truncated BPTT starts from."""
    state = {"h0": np.tanh(rng.standard_normal((B, H)))}
    if is_lstm(layer_class):
        state["c0"] = rng.standard_normal((B, H))
    return state


def assert_gradients(loss, analytic, arrays):
    """Finite differences of loss() over each named array against analytic[name], CS231n's relative error."""
    errors = {name: rel_error(analytic[name], numerical_gradient(loss, a)) for name, a in arrays.items()}
    assert max(errors.values()) < TOL, errors


# ---- the functions


def test_sigmoid_is_the_logistic_function_and_cannot_overflow():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(rec.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-14, atol=1e-15)
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(rec.sigmoid(np.array([-1e5, 1e5], dtype=np.float32)), [0.0, 1.0])


def test_rnn_step_backward():
    rng = np.random.default_rng(0)
    x, h_prev = rng.standard_normal((B, D)), rng.standard_normal((B, H))
    Wx, Wh, b = weights("rnn", rng)
    dh = rng.standard_normal((B, H))

    def loss():
        return float(np.sum(rec.rnn_step_forward(x, h_prev, Wx, Wh, b)[0] * dh))

    _, cache = rec.rnn_step_forward(x, h_prev, Wx, Wh, b)
    names = ("x", "h_prev", "Wx", "Wh", "b")
    analytic = dict(zip(names, rec.rnn_step_backward(dh, cache)))
    assert_gradients(loss, analytic, dict(zip(names, (x, h_prev, Wx, Wh, b))))


def test_lstm_step_backward():
    """A loss on both outputs of the step, h and c (the next step reads c too)."""
    rng = np.random.default_rng(0)
    x, h_prev, c_prev = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    Wx, Wh, b = weights("lstm", rng)
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss():
        h, c, _ = rec.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
        return float(np.sum(h * dh) + np.sum(c * dc))

    _, _, cache = rec.lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)
    names = ("x", "h_prev", "c_prev", "Wx", "Wh", "b")
    analytic = dict(zip(names, rec.lstm_step_backward(dh, dc, cache)))
    assert_gradients(loss, analytic, dict(zip(names, (x, h_prev, c_prev, Wx, Wh, b))))


def test_rnn_sequence_backward():
    """BPTT over T steps: a loss on every hidden state and an extra one on the final state (dh_last)."""
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
    Wx, Wh, b = weights("rnn", rng)
    dhs, dh_last = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))

    def loss():
        hs, _ = rec.rnn_forward(x, h0, Wx, Wh, b)
        return float(np.sum(hs * dhs) + np.sum(hs[-1] * dh_last))

    _, caches = rec.rnn_forward(x, h0, Wx, Wh, b)
    names = ("x", "h0", "Wx", "Wh", "b")
    analytic = dict(zip(names, rec.rnn_backward(dhs, caches, dh_last)))
    assert_gradients(loss, analytic, dict(zip(names, (x, h0, Wx, Wh, b))))


def test_lstm_sequence_backward():
    """BPTT over T steps: a loss on every hidden state and extra ones on the final h and c (dh_last, dc_last)."""
    rng = np.random.default_rng(1)
    x, h0, c0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    Wx, Wh, b = weights("lstm", rng)
    dhs, dh_last, dc_last = (
        rng.standard_normal((T, B, H)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )

    def loss():
        hs, cs, _ = rec.lstm_forward(x, h0, c0, Wx, Wh, b)
        return float(np.sum(hs * dhs) + np.sum(hs[-1] * dh_last) + np.sum(cs[-1] * dc_last))

    _, _, caches = rec.lstm_forward(x, h0, c0, Wx, Wh, b)
    names = ("x", "h0", "c0", "Wx", "Wh", "b")
    analytic = dict(zip(names, rec.lstm_backward(dhs, caches, dh_last, dc_last)))
    assert_gradients(loss, analytic, dict(zip(names, (x, h0, c0, Wx, Wh, b))))


# ---- the layers, plain and fast


@pytest.mark.parametrize("layer_class", LAYERS)
def test_layer_gradient_check_from_carried_state(layer_class):
    layer, rng = make(layer_class)
    errors = gradient_check(
        layer, rng.standard_normal((T, B, D)), forward_kwargs=carried_state(layer_class, rng)
    )
    assert set(errors) == {"x", "Wx", "Wh", "b"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("layer_class", LAYERS)
def test_layer_gradients_of_the_initial_and_final_states(layer_class):
    """dh0, dc0 (what truncated BPTT computes but does not propagate) and dh_last, dc_last (a loss on the final
    state, what the next chunk would send back without truncation)."""
    layer, rng = make(layer_class)
    lstm = is_lstm(layer_class)
    state = carried_state(layer_class, rng)
    x, dout = rng.standard_normal((T, B, D)), rng.standard_normal((T, B, H))
    w_last = {"dh_last": rng.standard_normal((B, H))} | (
        {"dc_last": rng.standard_normal((B, H))} if lstm else {}
    )

    def loss():
        out = layer.forward(x, **state)
        value = np.sum(out * dout) + np.sum(layer.h_last * w_last["dh_last"])
        return float(value + (np.sum(layer.c_last * w_last["dc_last"]) if lstm else 0.0))

    loss()
    dx = layer.backward(dout, **w_last)
    analytic = {"x": dx, "h0": layer.dh0} | ({"c0": layer.dc0} if lstm else {})
    analytic |= {name: g.copy() for name, g in layer.grads.items()}
    assert_gradients(loss, analytic, {"x": x} | state | layer.params)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_integer_input_is_one_hot(layer_class):
    layer, rng = make(layer_class)
    ids = rng.integers(0, D, size=(T, B))
    dout = rng.standard_normal((T, B, H))
    out_ids = layer.forward(ids).copy()
    assert layer.backward(dout) is None
    grads_ids = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_allclose(layer.forward(np.eye(D)[ids]), out_ids, rtol=1e-12, atol=1e-12)
    layer.backward(dout)
    for name in grads_ids:
        np.testing.assert_allclose(grads_ids[name], layer.grads[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_float32_stays_float32_and_forget_bias(layer_class):
    layer = layer_class(D, H, rng=np.random.default_rng(0))
    if is_lstm(layer_class):
        b = layer.params["b"]
        np.testing.assert_array_equal(b[H : 2 * H], 1.0)
        np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), 0.0)
    out = layer.forward(np.ones((T, B, D), dtype=np.float32))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def to_torch(layer):
    """A float64 torch.nn.RNN(tanh) / nn.LSTM with the layer's weights (its one bias in bias_ih, bias_hh = 0)."""
    net = torch.nn.LSTM(D, H) if isinstance(layer, rec.LSTM) else torch.nn.RNN(D, H, nonlinearity="tanh")
    net = net.double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(layer.params["Wx"].T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(layer.params["Wh"].T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(layer.params["b"]))
        net.bias_hh_l0.zero_()
    return net


@pytest.mark.parametrize("layer_class", LAYERS)
def test_matches_torch(layer_class):
    """Same weights -> same outputs, final state, and gradients of the input, the initial state and the weights."""
    layer, rng = make(layer_class)
    lstm = is_lstm(layer_class)
    state = carried_state(layer_class, rng)
    x, dout = rng.standard_normal((T, B, D)), rng.standard_normal((T, B, H))
    out = layer.forward(x, **state)
    dx = layer.backward(dout)

    net = to_torch(layer)
    tx = torch.tensor(x, requires_grad=True)
    t_state = tuple(torch.tensor(state[k][None], requires_grad=True) for k in state)  # (h0,) or (h0, c0)
    t_out, t_final = net(tx, t_state if lstm else t_state[0])
    t_out.backward(torch.tensor(dout))
    t_final = t_final if lstm else (t_final,)

    def close(a, t):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-10, atol=1e-12)

    close(out, t_out)
    close(dx, tx.grad)
    ours = [(layer.h_last, layer.dh0)] + ([(layer.c_last, layer.dc0)] if lstm else [])  # (final, dL/dinitial)
    for (final, d_initial), t_fin, t_initial in zip(ours, t_final, t_state):
        close(final, t_fin[0])
        close(d_initial, t_initial.grad[0])
    close(layer.grads["Wx"], net.weight_ih_l0.grad.T)
    close(layer.grads["Wh"], net.weight_hh_l0.grad.T)
    close(layer.grads["b"], net.bias_ih_l0.grad)
    close(layer.grads["b"], net.bias_hh_l0.grad)  # one NumPy bias stands for bias_ih + bias_hh


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("ids", [False, True])
def test_fast_layer_equals_plain_layer(cell, ids):
    """Outputs, final state and every gradient, float64, from a carried state, with and without grad_sequence."""
    plain, rng = make(PLAIN[cell])
    fast = FAST[cell](D, H, rng=np.random.default_rng(5), dtype=np.float64)
    for name, p in plain.params.items():
        fast.params[name][...] = p
    state = carried_state(PLAIN[cell], rng)
    x = rng.integers(0, D, size=(T, B)) if ids else rng.standard_normal((T, B, D))
    finals = {"dh_last": rng.standard_normal((B, H))} | (
        {"dc_last": rng.standard_normal((B, H))} if cell == "lstm" else {}
    )
    for grad_sequence in (rng.standard_normal((T, B, H)), None):
        results = []
        for layer in (plain, fast):
            out = layer.forward(x, **state).copy()
            dx = layer.backward(grad_sequence, **finals)
            named = {"out": out, "dx": dx, "dh0": layer.dh0, "h_last": layer.h_last} | layer.grads
            if cell == "lstm":
                named |= {"dc0": layer.dc0, "c_last": layer.c_last}
            results.append({k: None if v is None else np.copy(v) for k, v in named.items()})
        assert results[0].keys() == results[1].keys()
        for name, expected in results[0].items():
            if expected is None:
                assert results[1][name] is None and ids, name
            else:
                np.testing.assert_allclose(results[1][name], expected, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_fast_layers_record_the_state_gradients(cell):
    """record_state_grads: dh_seq[t] = dL/dh_t and dc_seq[t] = dL/dc_t (total, through h_t too), against finite
    differences of a perturbation added to h_t, c_t as they are formed (the step functions in a loop)."""
    rng = np.random.default_rng(3)
    layer, _ = make(FAST[cell])
    x, dout = rng.standard_normal((T, B, D)), rng.standard_normal((T, B, H))
    Wx, Wh, b = (layer.params[k] for k in ("Wx", "Wh", "b"))
    dh_perturb, dc_perturb = np.zeros((T, B, H)), np.zeros((T, B, H))

    def loss():
        h, c, total = np.zeros((B, H)), np.zeros((B, H)), 0.0
        for t in range(T):
            if cell == "rnn":
                h, _ = rec.rnn_step_forward(x[t], h, Wx, Wh, b)
            else:
                _, c, (_, _, _, _, o, _) = rec.lstm_cell_forward(x[t] @ Wx + h @ Wh + b, c)
                c = c + dc_perturb[t]
                h = o * np.tanh(c)
            h = h + dh_perturb[t]
            total += np.sum(h * dout[t])
        return float(total)

    layer.record_state_grads = True
    layer.forward(x)
    layer.backward(dout)
    assert rel_error(layer.dh_seq, numerical_gradient(loss, dh_perturb)) < TOL
    if cell == "lstm":
        assert rel_error(layer.dc_seq, numerical_gradient(loss, dc_perturb)) < TOL


@pytest.mark.parametrize("layer_class", LAYERS)
def test_list_input_and_bad_shapes(layer_class):
    layer, rng = make(layer_class)
    x = rng.standard_normal((T, B, D))
    out = layer.forward(x).copy()
    np.testing.assert_array_equal(layer.forward(list(x)), out)
    assert layer.backward(list(np.ones((T, B, H)))).shape == (T, B, D)
    with pytest.raises(ValueError, match="x must be"):
        layer.forward(np.zeros((T, B, D + 1)))
    with pytest.raises(ValueError, match="h0 must be"):
        layer.forward(x, h0=np.zeros((B + 1, H)))
    with pytest.raises(ValueError, match="ids must lie"):
        layer.forward(np.full((T, B), D))
    layer.forward(x)
    with pytest.raises(ValueError, match="grad_sequence must be"):
        layer.backward(np.zeros((T + 1, B, H)))


def test_embedding_gradient():
    rng = np.random.default_rng(0)
    emb = rec.Embedding(7, 3, rng=rng, dtype=np.float64)
    ids = np.array([[1, 2, 1], [6, 1, 0]])
    dout = rng.standard_normal((2, 3, 3))
    emb.forward(ids)
    assert emb.backward(dout) is None

    def loss():
        return float(np.sum(emb.forward(ids) * dout))

    assert rel_error(emb.grads["W"], numerical_gradient(loss, emb.params["W"])) < TOL
