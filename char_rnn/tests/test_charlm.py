"""CharLM: whole-model gradient check, truncated BPTT against torch, state carrying, sampling, checkpoints and a
few real training steps on tiny Shakespeare."""

import numpy as np
import pytest
import torch

from char_rnn.scratch import CharLM, clip_grad_norm, gradient_norms_through_time
from char_rnn.twin import TorchCharLM, cell_grads_from_torch, copy_numpy_to_torch
from shared import optim
from shared.gradient_check import numerical_gradient

V, HID = 7, 5
CONFIGS = [  # (cell, num_layers, embed_dim)
    ("lstm", 1, None),
    ("lstm", 2, 3),
    ("rnn", 1, 3),
    ("rnn", 2, None),
]


def tiny(cell, layers, embed, seed=0, dropout=0.0):
    return CharLM(
        V, HID, cell, layers, embed, dropout=dropout, rng=np.random.default_rng(seed), dtype=np.float64
    )


def batch(rng, b=2, t=6):
    return rng.integers(0, V, size=(b, t)), rng.integers(0, V, size=(b, t))


def model_in_mid_text(cell, layers, embed):
    """A tiny float64 model whose carried state is nonzero (a first chunk has been read), plus a chunk x, y."""
    model = tiny(cell, layers, embed)
    rng = np.random.default_rng(1)
    for c in model.cells:  # random biases: every term of the gradient is exercised
        c.params["b"] += rng.standard_normal(c.params["b"].shape) * 0.5
    model.forward(rng.integers(0, V, size=(2, 4)))
    x, y = batch(rng)
    return model, model.state, x, y


def check_all_params(model, loss, analytic):
    """Finite differences (float64, eps = 1e-5) of every parameter of the model against `analytic`.

    The error of each array is max|analytic - numeric| / max(|analytic| + |numeric|): relative to the array's
    largest gradient element. CS231n's elementwise version (every element relative to itself) is what the
    single-layer tests assert < 1e-6; through a whole 2-layer model some gradient elements are ~1e-6 of the
    largest, and there the round-off of the finite differences (~1e-16 * loss / eps ~ 1e-11) alone exceeds 1e-6
    of the element. A wrong backward term gives errors of order 1e-2..1 on either measure."""
    errors = {}
    for k, layer in enumerate(model.layers):
        for name, p in layer.params.items():
            a, n = analytic[(k, name)], numerical_gradient(loss, p, 1e-5)
            errors[f"{k}.{name}"] = float(np.max(np.abs(a - n)) / max(np.max(np.abs(a) + np.abs(n)), 1e-12))
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("cell,layers,embed", CONFIGS)
def test_whole_model_gradient_check(cell, layers, embed):
    """Every parameter of the whole model (embedding, all recurrent layers, head) against finite differences of
    sum(logits * dout) for a random dout, from a nonzero carried state."""
    model, carried, x, _ = model_in_mid_text(cell, layers, embed)
    dout = np.random.default_rng(2).standard_normal((x.shape[0], x.shape[1], V))

    def loss():
        model.state = carried
        return float(np.sum(model.forward(x) * dout))

    loss()
    model.backward(dout)
    analytic = {(k, n): layer.grads[n].copy() for k, layer in enumerate(model.layers) for n in layer.params}
    check_all_params(model, loss, analytic)


@pytest.mark.parametrize("cell,layers,embed", CONFIGS)
def test_loss_and_backward_gradient_check(cell, layers, embed):
    """The training path: mean cross-entropy of the chunk -> every parameter, from a nonzero carried state."""
    model, carried, x, y = model_in_mid_text(cell, layers, embed)

    def loss():
        model.state = carried
        return model.loss(x, y)

    model.state = carried
    model.loss_and_backward(x, y)
    analytic = {(k, n): layer.grads[n].copy() for k, layer in enumerate(model.layers) for n in layer.params}
    check_all_params(model, loss, analytic)


@pytest.mark.parametrize("cell,layers,embed", CONFIGS)
def test_truncated_bptt_matches_torch_detach(cell, layers, embed):
    """Two consecutive chunks: NumPy's carried state == torch's `state.detach()`; loss and every gradient of the
    second chunk agree."""
    model = tiny(cell, layers, embed)
    net = copy_numpy_to_torch(model, TorchCharLM(V, HID, cell, layers, embed).double())
    rng = np.random.default_rng(2)
    state = None
    for _ in range(2):
        x, y = batch(rng)
        loss = model.loss_and_backward(x, y)
        net.zero_grad()
        if state is not None:
            state = tuple(s.detach() for s in state) if cell == "lstm" else state.detach()
        logits, state = net(torch.from_numpy(x), state)
        tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
        tloss.backward()
        assert abs(loss - tloss.item()) < 1e-12
    for k, c in enumerate(model.cells):
        tgrads = cell_grads_from_torch(net.rnn, k)
        for name in ("Wx", "Wh", "b"):
            np.testing.assert_allclose(
                c.grads[name], tgrads[name], rtol=1e-9, atol=1e-12, err_msg=f"{k}.{name}"
            )
    np.testing.assert_allclose(model.head.grads["W"], net.head.weight.grad.numpy().T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.head.grads["b"], net.head.bias.grad.numpy(), rtol=1e-9, atol=1e-12)
    if embed:
        np.testing.assert_allclose(
            model.embed.grads["W"], net.embed.weight.grad.numpy(), rtol=1e-9, atol=1e-12
        )
    h_final = state[0] if cell == "lstm" else state
    for k in range(layers):
        np.testing.assert_allclose(model.state[k][0], h_final[k].detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell,layers,embed", CONFIGS)
def test_carried_state_equals_one_long_sequence(cell, layers, embed):
    model = tiny(cell, layers, embed)
    x = np.random.default_rng(3).integers(0, V, size=(3, 12))
    model.reset_state(3)
    whole = model.forward(x, training=False).copy()
    model.reset_state(3)
    parts = [model.forward(x[:, a:b], training=False).copy() for a, b in [(0, 5), (5, 6), (6, 12)]]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-12)


def test_reset_state_and_batch_size_change():
    model = tiny("lstm", 1, None)
    x = np.random.default_rng(4).integers(0, V, size=(2, 4))
    model.reset_state(2)
    first = model.forward(x).copy()
    assert not np.array_equal(model.forward(x), first)  # the state was carried
    model.reset_state(2)
    np.testing.assert_array_equal(model.forward(x), first)
    out = model.forward(x[:1])  # a different batch size starts from zeros
    np.testing.assert_allclose(out, first[:1], rtol=1e-12, atol=1e-14)


def greedy(model, prime, length):
    """Argmax decoding written out step by step."""
    model.reset_state(1)
    logits = model.forward(np.array([prime]), training=False)[0, -1]
    out = []
    for _ in range(length):
        out.append(int(np.argmax(logits)))
        logits = model.forward(np.array([[out[-1]]]), training=False)[0, -1]
    return out


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_sampling_at_low_temperature_is_argmax(cell):
    model = tiny(cell, 2, 3)
    for layer in model.layers:  # sharper logits so that the argmax is well separated
        for p in layer.params.values():
            p *= 3.0
    prime = [1, 2, 3]
    expected = greedy(model, prime, 20)
    model.reset_state(4)
    before = [s.copy() for s in model.state[0]]
    rng = np.random.default_rng(0)
    assert model.sample(prime, 20, temperature=0).tolist() == expected
    assert model.sample(prime, 20, temperature=1e-6, rng=rng).tolist() == expected
    assert model.sample(prime, 20, temperature=1.0, top_k=1, rng=rng).tolist() == expected
    for a, b in zip(model.state[0], before):  # the training state is untouched
        np.testing.assert_array_equal(a, b)
    draws = model.sample(prime, 200, temperature=1.5, rng=rng)
    assert draws.shape == (200,) and draws.dtype == np.int64 and len(set(draws.tolist())) > 1
    top2 = model.sample(prime, 100, temperature=1.0, top_k=2, rng=rng)
    assert set(top2.tolist()) <= set(range(V))
    with pytest.raises(ValueError):
        model.sample(prime, 5, temperature=-1.0)


def test_state_dict_round_trip():
    model = tiny("lstm", 2, 3, seed=0)
    other = tiny("lstm", 2, 3, seed=1)
    x = np.random.default_rng(5).integers(0, V, size=(2, 6))
    sd = model.state_dict()
    assert set(sd) == {
        "embed.W",
        "cell0.Wx",
        "cell0.Wh",
        "cell0.b",
        "cell1.Wx",
        "cell1.Wh",
        "cell1.b",
        "head.W",
        "head.b",
    }
    refs = [p for layer in other.layers for p in layer.params.values()]
    other.load_state_dict(sd)
    assert all(a is b for a, b in zip(refs, [p for layer in other.layers for p in layer.params.values()]))
    model.reset_state(2)
    other.reset_state(2)
    np.testing.assert_array_equal(model.forward(x), other.forward(x))
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "head.b"})
    with pytest.raises(ValueError, match="shape"):
        tiny("lstm", 2, 3).load_state_dict(sd | {"head.b": np.zeros(V + 1)})


def test_gradient_norms_through_time():
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, V, size=(2, 15)), rng.integers(0, V, size=(2, 15))
    for cell in ("rnn", "lstm"):
        model = tiny(cell, 1, None)
        model.reset_state(2)
        model.forward(x)
        carried = [s.copy() for s in model.state[0]]
        norms = gradient_norms_through_time(model, x, y)
        assert set(norms) == ({"h", "c"} if cell == "lstm" else {"h"})
        for n in norms.values():
            assert n.shape == (15,) and np.all(np.isfinite(n)) and np.all(n > 0)
        # the gradient on h_{T-1} is the direct one: head weights times dlogits
        model.reset_state(2)
        logits = model.forward(x, training=False)
        p = np.exp(logits[:, -1] - logits[:, -1].max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(2), y[:, -1]] -= 1
        direct = (p / 2) @ model.head.params["W"].T
        assert abs(norms["h"][-1] - np.linalg.norm(direct)) < 1e-10
        for a, b in zip(model.state[0], carried):  # state restored
            np.testing.assert_array_equal(a, b)


def shakespeare_or_skip():
    try:
        from shared import data
    except ImportError as e:
        pytest.skip(f"shared.data is not importable ({e})")
    local = data.cache_dir() / "tinyshakespeare" / "input.txt"
    mirror = data.mirror_dir()
    if not local.is_file() and not (mirror and (mirror / "tinyshakespeare" / "input.txt").is_file()):
        pytest.skip(
            "tiny Shakespeare is in neither data/ nor $REPRO_DATA_MIRROR (unit tests do not download)"
        )
    return data.load_shakespeare()


@pytest.mark.parametrize("cell,opt_name,lr", [("lstm", "adam", 1e-2), ("rnn", "sgd", 0.5)])
def test_training_steps_lower_the_loss_on_shakespeare(cell, opt_name, lr):
    text = shakespeare_or_skip()[:40_000]
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.int64)
    vocab, B, T = len(chars), 16, 32
    model = CharLM(vocab, 64, cell, rng=np.random.default_rng(0), dtype=np.float32)
    opt = optim.Adam(model.layers, lr) if opt_name == "adam" else optim.SGD(model.layers, lr, momentum=0.9)

    held = ids[30_000:]
    xv = np.stack([held[k * 300 : k * 300 + 200] for k in range(B)])
    yv = np.stack([held[k * 300 + 1 : k * 300 + 201] for k in range(B)])

    def val_loss():
        model.reset_state(B)
        return model.loss(xv, yv)

    start = val_loss()
    assert abs(start - np.log(vocab)) < 0.1  # near-uniform predictions at initialisation
    # B parallel streams over the first 30k characters; consecutive chunks continue each row
    n = (30_000 - 1) // B * B
    streams, targets = ids[:n].reshape(B, -1), ids[1 : n + 1].reshape(B, -1)
    model.reset_state(B)
    losses = []
    for step in range(40):
        a = (step * T) % (streams.shape[1] - T)
        losses.append(model.loss_and_backward(streams[:, a : a + T], targets[:, a : a + T]))
        assert np.isfinite(clip_grad_norm(model.layers, 5.0))
        opt.step()
    end = val_loss()
    assert np.mean(losses[-5:]) < losses[0] - 0.5, losses
    assert end < start - 0.5, (start, end)


def test_dropout_between_layers():
    """Dropout acts between stacked layers in training only; with the same mask its backward is exact."""
    model = tiny("lstm", 2, 3, dropout=0.5)
    x, y = batch(np.random.default_rng(8))
    model.reset_state(2)
    clean = model.forward(x, training=False).copy()
    model.reset_state(2)
    assert not np.allclose(model.forward(x, training=True), clean)

    def loss():
        model.rng = np.random.default_rng(0)  # the same dropout mask at every evaluation
        model.reset_state(2)
        return float(model._loss(model.forward(x, training=True), y)[0])

    loss()
    model.rng = np.random.default_rng(0)
    model.reset_state(2)
    model.loss_and_backward(x, y)
    analytic = {(k, n): layer.grads[n].copy() for k, layer in enumerate(model.layers) for n in layer.params}
    check_all_params(model, loss, analytic)
