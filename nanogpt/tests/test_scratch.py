"""The NumPy GPT's pieces (nanogpt/scratch.py): every hand-written backward against centred finite differences
(float64, CS231n's relative error < 1e-6), the pieces against their torch counterparts on identical weights,
causal masking, the sinusoidal table, greedy and top-1 generation. (The whole GPT against the torch GPT is
tests/test_parity.py.)"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nanogpt import scratch
from shared.gradient_check import gradient_check, numerical_gradient, rel_error
from shared.nn import softmax_cross_entropy

TOL = 1e-6
B, T, C, NH = 2, 5, 8, 2


def normal(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def richardson_gradient(f, x, h=1e-3):
    """Centred differences extrapolated (Richardson), (4 D(h) - D(2h)) / 3 with D(h) shared.gradient_check's
    numerical_gradient: the truncation error falls from O(h^2) to O(h^4), so a step 100x the usual 1e-5 (100x
    less rounding noise) is as exact. Attention's weights and the whole GPT's mean loss have gradient elements
    near 1e-5 .. 1e-6, where the plain differences' noise (~1e-11 .. 1e-10) is a relative error above 1e-6."""
    return (4 * numerical_gradient(f, x, h) - numerical_gradient(f, x, 2 * h)) / 3


def key_bias_checked(name, analytic, numeric, C, rotary=False):
    """(analytic, numeric) without the key third of an attention bias c_attn.bias (3C,), after checking that
    both are 0 there: adding b_k adds q . b_k to every score of a query, which softmax ignores, so dL/db_k = 0
    exactly, and a relative error of numerical noise against 0 would say nothing. (Not so under rotary
    positions: there b_k is turned by each key's position, so the scores of one query change unequally.)"""
    if rotary or not name.endswith("c_attn.bias"):
        return analytic, numeric
    key = slice(C, 2 * C)
    assert np.abs(analytic[key]).max() < 1e-14 and np.abs(numeric[key]).max() < 1e-10, name
    return np.delete(analytic, key), np.delete(numeric, key)


def randomize(layer, seed=1, scale=0.5):
    """Random values in every parameter (in place): LayerNorm's ones and zero biases would leave terms of the
    gradient untested."""
    rng = np.random.default_rng(seed)
    for p in layer.params.values():
        p[...] = rng.standard_normal(p.shape) * scale + (1.0 if p.ndim == 1 else 0.0)
    return layer


# ---- scaled dot-product attention


def attention_inputs(batch=(B,), seed=0):
    return [
        normal(*batch, T, d, seed=seed + i) for i, d in enumerate((4, 4, 3))
    ]  # Q, K (.., T, 4), V (.., T, 3)


def random_mask(seed=0):
    """(T, T) bool with at least one allowed key per query."""
    mask = np.random.default_rng(seed).random((T, T)) < 0.5
    mask[np.arange(T), np.arange(T)] = True
    return mask


@pytest.mark.parametrize("mask", ["none", "causal", "random", "dropout"])
@pytest.mark.parametrize("batch", [(B,), (B, NH)], ids=["3d", "heads"])
def test_attention_gradient_check(mask, batch):
    Q, K, V = attention_inputs(batch)
    keep = None
    if mask == "dropout":
        keep = (np.random.default_rng(5).random((*batch, T, T)) >= 0.3) / 0.7
    m = {"none": None, "causal": scratch.causal_mask(T), "random": random_mask(), "dropout": None}[mask]
    out, P = scratch.scaled_dot_product_attention(Q, K, V, m, return_weights=True, keep=keep)
    dout = normal(*out.shape, seed=9)
    analytic = scratch.scaled_dot_product_attention_backward(dout, Q, K, V, P, keep)

    def f():
        return float(np.sum(scratch.scaled_dot_product_attention(Q, K, V, m, keep=keep) * dout))

    for name, x, dx in zip("QKV", (Q, K, V), analytic):
        assert rel_error(dx, numerical_gradient(f, x)) < TOL, name


@pytest.mark.parametrize("mask", ["none", "causal", "random"])
def test_attention_matches_torch_outputs_and_autograd(mask):
    Q, K, V = attention_inputs((B, NH))
    m = {"none": None, "causal": scratch.causal_mask(T), "random": random_mask()}[mask]
    out, P = scratch.scaled_dot_product_attention(Q, K, V, m, return_weights=True)
    dout = normal(*out.shape, seed=9)
    dQ, dK, dV = scratch.scaled_dot_product_attention_backward(dout, Q, K, V, P)

    q, k, v = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
    if mask == "causal":
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=None if m is None else torch.from_numpy(m))
    ref.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name, ours, t in zip("QKV", (dQ, dK, dV), (q, k, v)):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_masked_weights_are_exactly_zero():
    _, P = scratch.scaled_dot_product_attention(
        *attention_inputs(), scratch.causal_mask(T), return_weights=True
    )
    assert np.all(P[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=1e-12)


# ---- layers: finite differences


def mha(bias=True, dropout=0.0, causal=True, seed=0, dtype=np.float64, rotary=False):
    rng = np.random.default_rng(seed)
    return scratch.MultiHeadAttention(C, NH, bias, dropout, causal, rng, dtype, 0.1, rotary)


@pytest.mark.parametrize(
    "make",
    [
        lambda: scratch.LayerNorm(C, bias=True, dtype=np.float64),
        lambda: scratch.LayerNorm(C, bias=False, dtype=np.float64),
        lambda: scratch.MLP(C, True, 0.2, np.random.default_rng(0), np.float64),
    ],
    ids=["layernorm", "layernorm-nobias", "mlp-dropout"],
)
def test_layer_gradient_check(make):
    layer = randomize(make())
    errors = gradient_check(
        layer, normal(B, T, C, seed=3)
    )  # each evaluation a deep copy: the same dropout draws
    assert set(errors) == {"x"} | set(layer.params)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize(
    "make",
    [
        lambda: mha(),
        lambda: mha(bias=False, causal=False),
        lambda: mha(dropout=0.2),
        lambda: mha(rotary=True),
        lambda: scratch.TransformerBlock(C, NH, True, 0.0, np.random.default_rng(0), np.float64),
        lambda: scratch.TransformerBlock(C, NH, False, 0.2, np.random.default_rng(0), np.float64),
    ],
    ids=["mha", "mha-nobias-noncausal", "mha-dropout", "mha-rotary", "block", "block-nobias-dropout"],
)
def test_attention_layer_gradient_check(make):
    """gradient_check's test, with extrapolated differences (attention's smallest weight gradients sit near the
    plain differences' noise) and the key bias's zero checked apart."""
    layer = randomize(make())
    x, dout = normal(B, T, C, seed=3), normal(B, T, C, seed=4)
    analytic = copy.deepcopy(
        layer
    )  # each evaluation a deep copy, as in gradient_check: the same dropout draws
    analytic.forward(x)
    dx = analytic.backward(dout)

    def f():
        return float(np.sum(copy.deepcopy(layer).forward(x) * dout))

    errors = {"x": rel_error(dx, richardson_gradient(f, x))}
    for name, p in layer.params.items():
        numeric = richardson_gradient(f, p)
        rotary = getattr(layer, "rotary", False)
        errors[name] = rel_error(*key_bias_checked(name, analytic.grads[name], numeric, C, rotary))
    assert max(errors.values()) < TOL, errors


def test_gelu_gradient_check_on_both_sides_of_the_erf_branches():
    # |x / sqrt 2| on both sides of 1, the switch in scratch.erf; not below -3.5, where GELU's slope is so small
    # (~1e-5 at -5) that the finite differences' rounding noise would dominate the relative error
    x = np.random.default_rng(3).uniform(-3.5, 3.5, (B, T, C))
    assert np.any(np.abs(x) < math.sqrt(2)) and np.any(np.abs(x) > math.sqrt(2))
    errors = gradient_check(scratch.GELU(), x)
    assert errors["x"] < TOL, errors


def test_erf_matches_math_erf():
    x = np.linspace(-12, 12, 24001)
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(scratch.erf(x), expected, rtol=0, atol=4e-16)
    np.testing.assert_allclose(scratch.erf(x.astype(np.float32)), expected, rtol=0, atol=3e-7)
    assert scratch.erf(x.astype(np.float32)).dtype == np.float32


# ---- the whole GPT: finite differences for every parameter

TINY = dict(block_size=6, vocab_size=11, n_layer=2, n_head=2, n_embd=8)


def tiny_gpt(seed=0, **overrides):
    model = scratch.GPT(scratch.GPTConfig(**TINY | overrides), np.random.default_rng(seed), np.float64)
    return randomize(
        model, seed=seed + 1, scale=0.3
    )  # weights large enough that every gradient is far from 0


def token_windows(batch=3, length=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, TINY["vocab_size"], (batch, length)), rng.integers(
        0, TINY["vocab_size"], (batch, length)
    )


@pytest.mark.parametrize(
    "overrides",
    [{}, {"pos": "sinusoidal", "bias": True}, {"dropout": 0.2, "bias": True}, {"pos": "rotary"}],
    ids=["learned", "sinusoidal-bias", "dropout-bias", "rotary"],
)
def test_gpt_loss_gradient_check_for_every_parameter(overrides):
    model = tiny_gpt(**overrides)
    idx, targets = token_windows(length=5)  # shorter than block_size: the unread wpe rows get 0
    rng_state = model.rng.bit_generator.state

    def loss():
        model.rng.bit_generator.state = rng_state  # the same dropout masks in every evaluation
        logits = model.forward(idx, training=True)
        return softmax_cross_entropy(logits.reshape(-1, TINY["vocab_size"]), targets.reshape(-1))[0]

    model.rng.bit_generator.state = rng_state
    value = model.loss_and_backward(idx, targets)
    assert value == pytest.approx(loss(), rel=1e-14)
    assert sorted(model.grads) == sorted(model.params)
    errors = {}
    for name, p in model.params.items():
        analytic, numeric = key_bias_checked(
            name, model.grads[name], richardson_gradient(loss, p), TINY["n_embd"]
        )
        errors[name] = rel_error(analytic, numeric)
    assert max(errors.values()) < TOL, {k: v for k, v in errors.items() if v >= TOL}


# ---- parity with torch's layers on identical weights


def test_multi_head_attention_matches_torch():
    ours = randomize(mha(causal=True))
    ref = torch.nn.MultiheadAttention(C, NH, bias=True, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(ours.params["c_attn.weight"]))  # concat(W_q, W_k, W_v)
        ref.in_proj_bias.copy_(torch.from_numpy(ours.params["c_attn.bias"]))
        ref.out_proj.weight.copy_(torch.from_numpy(ours.params["c_proj.weight"]))
        ref.out_proj.bias.copy_(torch.from_numpy(ours.params["c_proj.bias"]))
    x = normal(B, T, C, seed=3)
    out = ours.forward(x)
    dout = normal(*out.shape, seed=4)
    dx = ours.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    # nn.MultiheadAttention's bool mask is the opposite of F.scaled_dot_product_attention's: True = masked out
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    ref_out, _ = ref(xt, xt, xt, attn_mask=future, need_weights=False)
    ref_out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, ref_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    pairs = {"c_attn.weight": ref.in_proj_weight, "c_attn.bias": ref.in_proj_bias,
             "c_proj.weight": ref.out_proj.weight, "c_proj.bias": ref.out_proj.bias}  # fmt: skip
    for name, p in pairs.items():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_layernorm_matches_torch():
    ours = randomize(scratch.LayerNorm(C, bias=True, dtype=np.float64))
    ref = torch.nn.LayerNorm(C, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ours.params["weight"]))
        ref.bias.copy_(torch.from_numpy(ours.params["bias"]))
    x = normal(B, T, C, seed=3, scale=2.0) + 1.0
    dout = normal(B, T, C, seed=4)
    out, dx = ours.forward(x), ours.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    ref_out = ref(xt)
    ref_out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, ref_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.grads["weight"], ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.grads["bias"], ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_matches_torch(dtype):
    x = normal(4, 1000, seed=3, scale=4.0).astype(dtype)
    dout = normal(4, 1000, seed=4).astype(dtype)
    gelu = scratch.GELU()
    out, dx = gelu.forward(x), gelu.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.GELU()(xt)
    ref.backward(torch.from_numpy(dout))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_allclose(out, ref.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)


# ---- the model's behaviour


def test_changing_a_future_token_leaves_earlier_logits_unchanged():
    model = tiny_gpt()
    idx, _ = token_windows()
    before = model.forward(idx, training=False)
    changed = idx.copy()
    changed[:, 3] = (changed[:, 3] + 1) % TINY["vocab_size"]
    after = model.forward(changed, training=False)
    np.testing.assert_allclose(after[:, :3], before[:, :3], rtol=0, atol=1e-13)
    assert not np.allclose(after[:, 3:], before[:, 3:])  # the change is seen from its own place on


@pytest.mark.parametrize("C_pos", [8, 7])
def test_sinusoidal_positions_follow_the_formula(C_pos):
    pe = scratch.sinusoidal_positions(10, C_pos)
    assert pe.shape == (10, C_pos)
    for t in range(10):
        for j in range(C_pos):
            i = j // 2  # dims 2i and 2i + 1 share the frequency 1 / 10000^(2i / C)
            angle = t / 10000 ** (2 * i / C_pos)
            assert pe[t, j] == pytest.approx(math.sin(angle) if j % 2 == 0 else math.cos(angle), abs=1e-12)


def test_rotary_turns_pairs_and_scores_depend_on_the_offset_only():
    hs, T = 6, 9
    cos, sin = scratch.rotary_angles(T, hs)
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal(hs), rng.standard_normal(hs)
    for t, i in [(0, 0), (3, 1), (8, 2)]:  # pair i = channels (i, i + hs/2), angle t / 10000^(2i / hs)
        angle = t / 10000 ** (2 * i / hs)
        turned = scratch.rotate(np.tile(q, (T, 1)), cos, sin)[t]
        assert turned[i] == pytest.approx(q[i] * math.cos(angle) - q[i + 3] * math.sin(angle), abs=1e-12)
        assert turned[i + 3] == pytest.approx(q[i] * math.sin(angle) + q[i + 3] * math.cos(angle), abs=1e-12)
    Q, K = scratch.rotate(np.tile(q, (T, 1)), cos, sin), scratch.rotate(np.tile(k, (T, 1)), cos, sin)
    scores = Q @ K.T  # (T, T): the score of query t and key s
    for offset in range(-3, 4):
        along = np.diagonal(scores, offset)
        np.testing.assert_allclose(along, along[0], rtol=0, atol=1e-12)
    x = rng.standard_normal((2, T, hs))
    np.testing.assert_allclose(scratch.rotate(scratch.rotate(x, cos, sin), cos, -sin), x, atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(scratch.rotate(x, cos, sin), axis=-1), np.linalg.norm(x, axis=-1)
    )


def greedy(model, idx, n):
    """Argmax decoding written out: the most likely next id, n times, reading at most block_size ids."""
    idx = np.array(idx)
    for _ in range(n):
        logits = model.forward(idx[:, -model.config.block_size :], training=False)
        idx = np.concatenate([idx, logits[:, -1].argmax(axis=-1)[:, None]], axis=1)
    return idx


def test_generate_at_temperature_zero_and_top_1_is_argmax_decoding():
    model = tiny_gpt()
    prompt, _ = token_windows(batch=2, length=3)
    expected = greedy(model, prompt, 8)  # 11 ids in all: past block_size 6, so the window slides
    assert expected.shape == (2, 11)
    np.testing.assert_array_equal(model.generate(prompt, 8, temperature=0.0), expected)
    np.testing.assert_array_equal(
        model.generate(prompt, 8, 1.0, top_k=1, rng=np.random.default_rng(0)), expected
    )
    sampled = model.generate(prompt, 8, 1.5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(sampled[:, :3], prompt)
    assert sampled.dtype == np.int64


# ---- parameters: names, init, groups, state


def test_parameter_names_shapes_and_init_follow_nanogpt():
    cfg = scratch.GPTConfig(n_layer=3, n_embd=64, n_head=4, block_size=32, bias=True)
    model = scratch.GPT(cfg, np.random.default_rng(0))
    V, Cm = cfg.vocab_size, cfg.n_embd
    expected = {"transformer.wte.weight": (V, Cm), "transformer.wpe.weight": (32, Cm),
                "transformer.ln_f.weight": (Cm,), "transformer.ln_f.bias": (Cm,)}  # fmt: skip
    for i in range(3):
        block = {"ln_1.weight": (Cm,), "ln_1.bias": (Cm,), "attn.c_attn.weight": (3 * Cm, Cm),
                 "attn.c_attn.bias": (3 * Cm,), "attn.c_proj.weight": (Cm, Cm), "attn.c_proj.bias": (Cm,),
                 "ln_2.weight": (Cm,), "ln_2.bias": (Cm,), "mlp.c_fc.weight": (4 * Cm, Cm),
                 "mlp.c_fc.bias": (4 * Cm,), "mlp.c_proj.weight": (Cm, 4 * Cm), "mlp.c_proj.bias": (Cm,)}  # fmt: skip
        expected |= {f"transformer.h.{i}.{k}": s for k, s in block.items()}
    assert {k: p.shape for k, p in model.params.items()} == expected
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.num_params() == sum(math.prod(s) for s in expected.values())
    assert np.std(model.params["transformer.h.0.attn.c_attn.weight"]) == pytest.approx(0.02, rel=0.05)
    assert np.std(model.params["transformer.h.0.mlp.c_proj.weight"]) == pytest.approx(
        0.02 / math.sqrt(6), rel=0.05
    )
    assert np.all(model.params["transformer.h.1.ln_2.weight"] == 1)
    assert np.all(model.params["transformer.h.1.mlp.c_fc.bias"] == 0)
    sinusoidal = scratch.GPT(scratch.GPTConfig(pos="sinusoidal"))
    assert "transformer.wpe.weight" not in sinusoidal.params


def test_param_groups_split_matrices_from_vectors_and_follow_backward():
    model = tiny_gpt(bias=True)
    decay, no_decay = model.param_groups()
    assert not set(decay.params) & set(no_decay.params)
    assert set(decay.params) | set(no_decay.params) == set(model.params)
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= set(decay.params)  # embeddings are decayed
    assert all(p.ndim == 2 for p in decay.params.values()) and all(
        p.ndim == 1 for p in no_decay.params.values()
    )
    assert (
        decay.params["transformer.wte.weight"] is model.params["transformer.wte.weight"]
    )  # views, not copies
    model.loss_and_backward(*token_windows())
    assert (
        decay.grads["transformer.h.0.attn.c_attn.weight"] is model.grads["transformer.h.0.attn.c_attn.weight"]
    )


def test_float32_forward_and_backward_stay_float32():
    model = scratch.GPT(
        scratch.GPTConfig(**TINY | {"dropout": 0.1, "pos": "sinusoidal"}), np.random.default_rng(0)
    )
    idx, targets = token_windows()
    assert model.forward(idx).dtype == np.float32
    model.loss_and_backward(idx, targets)
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_state_dict_round_trip_in_place_and_strict():
    model, other = tiny_gpt(seed=0), tiny_gpt(seed=5)
    arrays = dict(other.params)
    other.load_state_dict(model.state_dict())
    idx, _ = token_windows()
    np.testing.assert_array_equal(other.forward(idx), model.forward(idx))
    assert all(other.params[k] is a for k, a in arrays.items())  # copied into the arrays optimizers hold
    state = model.state_dict()
    state["transformer.wte.weight"][0, 0] += 1.0
    assert model.params["transformer.wte.weight"][0, 0] != state["transformer.wte.weight"][0, 0]  # a copy
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({k: v for k, v in state.items() if k != "transformer.ln_f.weight"})
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(state | {"transformer.ln_f.weight": np.ones(3)})


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="multiple"):
        scratch.GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="pos"):
        scratch.GPTConfig(pos="alibi")
    with pytest.raises(ValueError, match="odd"):
        scratch.GPTConfig(pos="rotary", n_embd=12, n_head=4)
    model = tiny_gpt()
    with pytest.raises(ValueError, match="block_size"):
        model.forward(np.zeros((1, 7), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        model.forward(np.zeros((1, 3)))


def test_attn_dropout_follows_dropout_unless_set():
    """nanoGPT's one rate by default; attn_dropout=0 keeps the attention weights whole while the residual
    branches still drop (the hour's recipe: torch's attention dropout takes a slow path on a CPU)."""
    assert scratch.GPTConfig(dropout=0.2).attn_dropout == 0.2
    gpt = scratch.GPT(scratch.GPTConfig(block_size=8, n_layer=1, n_embd=16, n_head=2, dropout=0.5, attn_dropout=0.0),
                      rng=np.random.default_rng(0))  # fmt: skip
    gpt.forward(np.zeros((2, 8), dtype=np.int64))  # training: masks drawn
    attn = gpt.h[0].attn
    assert attn.keep is None and attn.resid_dropout.keep is not None
    with pytest.raises(ValueError, match="attn_dropout must be in"):
        scratch.GPTConfig(attn_dropout=1.0)
