"""The derivations of REPORT.md (section "Derivations: backpropagation through time"), checked in float64 against
the code they name.

Each formula is written out here as the report writes it and compared with the NumPy function that implements it
and with an independent chain rule (torch autograd, or finite differences). The last tests check that every line
of code the report quotes still stands in the function it names, and recompute the numbers the report quotes from
the committed weights, the committed gradient norms and the gradient plots' validation windows.
"""

import json
from pathlib import Path

import numpy as np
import torch

from char_rnn.scratch import CharLM, gradient_norms_through_time
from char_rnn.tests.test_charlm import shakespeare_or_skip
from shared.quotes import missing_quotes, quoted_code
from shared.recurrent import (
    FastRNN,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    lstm_step_forward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
)

PROJECT = Path(__file__).resolve().parents[1]
REPORT = PROJECT / "REPORT.md"
B, D, H = 3, 4, 5


def randn(*shape, seed, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def rnn_weights(seed):
    """Wx (D, H), Wh (H, H), b (H,): large enough that the tanh is far from linear."""
    return randn(D, H, seed=seed, scale=0.8), randn(H, H, seed=seed + 1, scale=0.6), randn(H, seed=seed + 2)


# ---- the RNN step, BPTT and the product of Jacobians


def test_rnn_step_backward_is_the_reports_formulas():
    Wx, Wh, b = rnn_weights(seed=0)
    x, h_prev, dh = randn(B, D, seed=3), randn(B, H, seed=4, scale=0.5), randn(B, H, seed=5)
    h, cache = rnn_step_forward(x, h_prev, Wx, Wh, b)
    # report: da = dh (1 - h^2); dx = da Wx^T, dh_{t-1} = da Wh^T, dWx = x^T da, dWh = h_{t-1}^T da, db = 1^T da
    da = dh * (1.0 - h * h)
    formulas = {
        "x": da @ Wx.T,
        "h_prev": da @ Wh.T,
        "Wx": x.T @ da,
        "Wh": h_prev.T @ da,
        "b": np.ones(B) @ da,
    }
    by_code = dict(zip(formulas, rnn_step_backward(dh, cache)))
    leaves = {name: leaf(v) for name, v in dict(x=x, h_prev=h_prev, Wx=Wx, Wh=Wh, b=b).items()}
    a = leaves["x"] @ leaves["Wx"] + leaves["h_prev"] @ leaves["Wh"] + leaves["b"]
    (torch.tanh(a) * torch.from_numpy(dh)).sum().backward()
    for name, formula in formulas.items():
        np.testing.assert_allclose(formula, by_code[name], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(formula, leaves[name].grad.numpy(), rtol=1e-12, atol=1e-15)


def test_bptt_adds_the_heads_gradient_and_what_flows_back_from_the_next_step():
    T = 6
    Wx, Wh, b = rnn_weights(seed=10)
    x, h0, head = randn(T, B, D, seed=13), randn(B, H, seed=14, scale=0.5), randn(T, B, H, seed=15)
    hs, _ = rnn_forward(x, h0, Wx, Wh, b)
    h_before = np.concatenate([h0[None], hs[:-1]])  # h_{t-1} (T, B, H)
    # report: dh_t = dl_t/dh_t + da_{t+1} Wh^T with da_{T+1} = 0; dWx, dWh, db: sums over t of the step's shares
    da_next, dWx, dWh, db = np.zeros((B, H)), 0.0, 0.0, 0.0
    for t in reversed(range(T)):
        da = (head[t] + da_next @ Wh.T) * (1.0 - hs[t] ** 2)
        dWx, dWh, db = dWx + x[t].T @ da, dWh + h_before[t].T @ da, db + da.sum(axis=0)
        da_next = da
    # dh0: what truncated BPTT computes for the carried-in state and sends no further
    formulas = {"Wx": dWx, "Wh": dWh, "b": db, "h0": da_next @ Wh.T}

    leaves = {name: leaf(v) for name, v in dict(Wx=Wx, Wh=Wh, b=b, h0=h0).items()}
    h, loss = leaves["h0"], 0.0
    for t in range(T):
        h = torch.tanh(torch.from_numpy(x[t]) @ leaves["Wx"] + h @ leaves["Wh"] + leaves["b"])
        loss = loss + (h * torch.from_numpy(head[t])).sum()
    loss.backward()

    layer = FastRNN(D, H, dtype=np.float64)  # the layer CharLM trains with
    layer.params.update(Wx=Wx, Wh=Wh, b=b)
    layer.forward(x, h0)
    layer.backward(head)
    by_code = layer.grads | {"h0": layer.dh0}
    for name, formula in formulas.items():
        np.testing.assert_allclose(formula, leaves[name].grad.numpy(), rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(formula, by_code[name], rtol=1e-11, atol=1e-14)


def test_rnn_jacobian_through_time_is_the_product_of_gains_and_wh_transposed():
    T, k = 9, 6
    Wx, Wh, b = rnn_weights(seed=20)
    x, h0, dh_last = randn(T, 1, D, seed=23), randn(1, H, seed=24, scale=0.5), randn(H, seed=25)
    hs, _ = rnn_forward(x, h0, Wx, Wh, b)
    h, t = hs[:, 0], T - 1  # one stream (T, H)
    # report: dh_t/dh_{t-k} = D_t Wh^T D_{t-1} Wh^T ... D_{t-k+1} Wh^T, D_s = diag(1 - h_s^2)
    product = np.eye(H)
    for s in range(t, t - k, -1):
        product = product @ np.diag(1.0 - h[s] ** 2) @ Wh.T

    def steps(h_start):  # h_{t-k} -> h_t in torch
        for s in range(t - k + 1, t + 1):
            h_start = torch.tanh(torch.from_numpy(x[s, 0] @ Wx + b) + h_start @ torch.from_numpy(Wh))
        return h_start

    jacobian = torch.autograd.functional.jacobian(
        steps, torch.from_numpy(h[t - k])
    )  # [j, i] = dh_t[j]/dh_{t-k}[i]
    np.testing.assert_allclose(product, jacobian.numpy(), rtol=1e-11, atol=1e-14)

    # what the code's BPTT computes, and the gradient plot records, for a loss on the last step only
    layer = FastRNN(D, H, dtype=np.float64)
    layer.params.update(Wx=Wx, Wh=Wh, b=b)
    layer.record_state_grads = True
    layer.forward(x, h0)
    grad = np.zeros((T, 1, H))
    grad[t, 0] = dh_last
    layer.backward(grad)
    np.testing.assert_allclose(layer.dh_seq[t - k, 0], dh_last @ product, rtol=1e-11, atol=1e-14)

    # report: ||dh_t/dh_{t-k}||_2 <= (gamma ||Wh||_2)^k, gamma = the largest gain 1 - h^2 on the way
    gamma = np.max(1.0 - h[t - k + 1 : t + 1] ** 2)
    assert np.linalg.norm(product, 2) <= (gamma * np.linalg.norm(Wh, 2)) ** k


# ---- the LSTM and its cell path


def test_lstm_cell_forward_and_backward_are_the_reports_formulas():
    a, c_prev, dh, dc = (
        randn(B, 4 * H, seed=30),
        randn(B, H, seed=31),
        randn(B, H, seed=32),
        randn(B, H, seed=33),
    )
    h, c, cache = lstm_cell_forward(a, c_prev)
    # report: [a^i, a^f, a^g, a^o] in torch's order; c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
    i, f, g, o = (
        logistic(a[:, :H]),
        logistic(a[:, H : 2 * H]),
        np.tanh(a[:, 2 * H : 3 * H]),
        logistic(a[:, 3 * H :]),
    )
    np.testing.assert_allclose(c, f * c_prev + i * g, rtol=1e-13)
    np.testing.assert_allclose(h, o * np.tanh(c), rtol=1e-13)
    # report: delta = dc + dh o (1 - tanh^2 c_t); do = dh tanh c_t, di = delta g, dg = delta i, df = delta c_{t-1},
    # dc_{t-1} = delta f; da = [di i (1 - i), df f (1 - f), dg (1 - g^2), do o (1 - o)]
    delta = dc + dh * o * (1.0 - np.tanh(c) ** 2)
    do, di, dg, df = dh * np.tanh(c), delta * g, delta * i, delta * c_prev
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1)
    dc_prev = delta * f
    code_da, code_dc_prev = lstm_cell_backward(dh, dc, cache)

    a_leaf, c_prev_leaf = leaf(a), leaf(c_prev)
    pre_i, pre_f, pre_g, pre_o = a_leaf.split(H, dim=1)
    c_t = torch.sigmoid(pre_f) * c_prev_leaf + torch.sigmoid(pre_i) * torch.tanh(pre_g)
    h_t = torch.sigmoid(pre_o) * torch.tanh(c_t)
    ((h_t * torch.from_numpy(dh)).sum() + (c_t * torch.from_numpy(dc)).sum()).backward()  # dc: from step t+1
    for formula, by_code, by_autograd in (
        (da, code_da, a_leaf.grad),
        (dc_prev, code_dc_prev, c_prev_leaf.grad),
    ):
        np.testing.assert_allclose(formula, by_code, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(formula, by_autograd.numpy(), rtol=1e-12, atol=1e-15)


def finite_difference_jacobian(f, c, eps=1e-6):
    """Central differences of f: (B, H) -> (B, H), both flattened: (B*H, B*H), [row, col] = df[row] / dc[col]."""
    columns = []
    for n in range(c.size):
        e = np.zeros(c.size)
        e[n] = eps
        columns.append((f(c + e.reshape(c.shape)) - f(c - e.reshape(c.shape))).ravel() / (2 * eps))
    return np.stack(columns, axis=1)


def test_lstm_cell_path_is_the_product_of_the_forget_gates():
    T, k = 8, 5
    Wx, Wh, b = randn(D, 4 * H, seed=40), randn(H, 4 * H, seed=41, scale=0.5), randn(4 * H, seed=42)
    x, h0, c0 = randn(T, B, D, seed=43), randn(B, H, seed=44, scale=0.5), randn(B, H, seed=45)
    hs, cs, _ = lstm_forward(x, h0, c0, Wx, Wh, b)
    h_before = np.concatenate([h0[None], hs[:-1]])  # h_{s-1} (T, B, H)
    a = x @ Wx + h_before @ Wh + b  # the gates' pre-activations (T, B, 4H)
    t = T - 1
    # report: dc_t/dc_{t-k} along the cell path = diag(f_t f_{t-1} ... f_{t-k+1})
    forget_product = np.prod(logistic(a[t - k + 1 : t + 1, :, H : 2 * H]), axis=0)  # (B, H)

    def c_t(c, cut):
        """c_{t-k} -> c_t through lstm_step_forward; cut: every h_{s-1} held at its recorded value (so the
        gates are held), else h_{t-k} = o_{t-k} tanh(c_{t-k}) and the steps' own h."""
        h = logistic(a[t - k, :, 3 * H :]) * np.tanh(c)
        for s in range(t - k + 1, t + 1):
            h, c, _ = lstm_step_forward(x[s], h_before[s] if cut else h, c, Wx, Wh, b)
        return c

    cell_path = finite_difference_jacobian(lambda c: c_t(c, cut=True), cs[t - k])
    np.testing.assert_allclose(cell_path, np.diag(forget_product.ravel()), rtol=1e-8, atol=1e-10)
    # the whole Jacobian also has the paths through h, so it is not diagonal: the cell path is one term of it
    whole = finite_difference_jacobian(lambda c: c_t(c, cut=False), cs[t - k])
    assert np.abs(whole - np.diag(np.diag(whole))).max() > 1e-3

    # the code's backward along the cell path: lstm_cell_backward with dh = 0 returns dc f, k times
    dc = randn(B, H, seed=46)
    back = dc
    for s in range(t, t - k, -1):
        _, _, cache = lstm_cell_forward(a[s], cs[s - 1])
        _, back = lstm_cell_backward(np.zeros((B, H)), back, cache)
    np.testing.assert_allclose(back, dc * forget_product, rtol=1e-13)


# ---- the report quotes code that stands, and numbers that the committed files give


def derivation_section():
    text = REPORT.read_text()
    start = text.index("Derivations: backpropagation through time")
    return text[start : text.index("\n## ", start)]


def test_the_report_quotes_code_that_stands_in_the_function_it_names():
    quotes = quoted_code(derivation_section())
    assert len(quotes) >= 25, "the derivation section quotes code as `file` `function`: `code`"
    missing = missing_quotes(quotes)
    assert not missing, "REPORT.md quotes code that is not (or no longer) there:\n" + "\n".join(missing)


def shown(value, digits=2):
    """value as the report prints it: `digits` significant digits."""
    return float(f"{value:.{digits}g}")


def per_step(curve, start, stop):
    """The geometric-mean factor per step of a plotted norm between two distances back."""
    return (curve[stop] / curve[start]) ** (1.0 / (stop - start))


def committed(run):
    """A committed NumPy model, as a float64 CharLM."""
    with np.load(PROJECT / "checkpoints" / f"{run}.npz", allow_pickle=False) as weights:
        meta = json.loads(str(weights["meta"]))
        model = CharLM(**meta["config"], rng=np.random.default_rng(0), dtype=np.float64)
        model.load_state_dict({key: weights[key] for key in weights.files if key != "meta"})
    return model


def fresh(cell, hidden):
    """The freshly initialised model of the gradient plot (char_rnn/figures.py's)."""
    return CharLM(65, hidden, cell, rng=np.random.default_rng(0), dtype=np.float64)


def test_the_numbers_the_derivation_quotes():
    shakespeare_or_skip()
    from char_rnn.data import prepare_data

    # char_rnn/figures.py's gradient-plot windows: 16 streams of 200 characters spread over the validation text
    val = prepare_data()["val"]
    starts = np.linspace(0, len(val) - 202, 16).astype(int)
    x, y = np.stack([val[s : s + 200] for s in starts]), np.stack([val[s + 1 : s + 201] for s in starts])
    plotted = json.loads((PROJECT / "results" / "gradient_norms.json").read_text())["norms"]

    def curve(when, cell, state):  # index: steps back from the last one
        (values,) = [v for name, v in plotted[when].items() if f"{cell}-1x" in name and f"d{state}_t" in name]
        return np.array(values)

    # the RNN: ||Wh||_2, rho(Wh), the gains 1 - h^2 over the windows, the plotted slope
    for model, when, norm_2, radius, mean_gain, below_01 in (
        (fresh("rnn", 526), "init", 1.16, 0.58, 0.999, 0.0),
        (committed("pair-rnn-1x526"), "trained", 7.0, 4.2, 0.37, 0.37),
    ):
        Wh = model.cells[0].params["Wh"]
        assert shown(np.linalg.norm(Wh, 2), 3 if when == "init" else 2) == norm_2
        assert shown(np.abs(np.linalg.eigvals(Wh)).max()) == radius
        model.reset_state(len(x))
        model.forward(x, training=False)
        gain = 1.0 - model.cells[0].Hs ** 2
        assert shown(gain.mean(), 3 if when == "init" else 2) == mean_gain
        assert shown((gain < 0.1).mean()) == below_01
    rnn_init, rnn_trained = curve("init", "rnn", "h"), curve("trained", "rnn", "h")
    assert (shown(rnn_init[0], 4), shown(rnn_init[199]), shown(per_step(rnn_init, 0, 199))) == (
        0.1448,
        7.4e-49,
        0.58,
    )
    assert (shown(rnn_trained[0], 3), shown(rnn_trained[199])) == (0.505, 5.3e-10)
    assert (shown(per_step(rnn_trained, 0, 199)), shown(per_step(rnn_trained, 100, 199))) == (0.90, 0.89)

    # the LSTM: the forget gates over the windows, and the cell path alone, dc_{T-1} f_{T-1} ... f_{T-k}
    assert (shown(1 / (1 + np.exp(-1.0)), 3), shown(0.731**50), shown(0.5**50, 1)) == (0.731, 1.6e-7, 9e-16)
    cell_path_norms = {}
    for model, when in ((fresh("lstm", 256), "init"), (committed("pair-lstm-1x256"), "trained")):
        cell = model.cells[0]
        gradient_norms_through_time(model, x, y)  # leaves the forward's caches and dc_seq on the layer
        forget = np.stack([cache[2] for cache in cell.caches])  # f_s (T, B, H): lstm_cell_forward's cache
        back = np.cumprod(forget[::-1], axis=0)  # [k - 1] = f_{T-1} ... f_{T-k}
        cell_path_norms[when] = np.linalg.norm(cell.dc_seq[-1] * back, axis=(1, 2))  # [k - 1]: k steps back
        if when == "init":
            assert (shown(forget.min()), shown(forget.max()), shown(forget.mean(), 3)) == (0.71, 0.75, 0.731)
        else:
            assert (shown(np.median(forget)), shown((forget > 0.9).mean())) == (0.94, 0.70)
            assert shown((back[99] > 0.1).mean()) == 0.16
    lstm_init, lstm_trained = curve("init", "lstm", "c"), curve("trained", "lstm", "c")
    assert (shown(lstm_init[0]), shown(cell_path_norms["init"][49]), shown(lstm_init[50])) == (
        0.072,
        1.2e-8,
        2.8e-5,
    )
    assert shown(per_step(lstm_init, 0, 199)) == 0.86
    assert (shown(cell_path_norms["trained"][198]), shown(lstm_trained[199])) == (6.6e-5, 1.2e-4)
    assert shown(per_step(lstm_trained, 100, 199), 3) == 0.987
