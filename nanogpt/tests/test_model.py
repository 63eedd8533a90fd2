"""model.GPT on its own: shapes, the block_size limit, causality, the state_dict names of the contract, the
initialisation, the optimizer's two groups, and generation (argmax at temperature 0, top_k)."""

import math

import numpy as np
import pytest
import torch

from nanogpt.model import GPT, GPTConfig, sinusoidal_positions


def tiny(**overrides):
    return GPTConfig(**(dict(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16) | overrides))


def ids(B, T, V=11, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, V, size=(B, T)))


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary"])
@pytest.mark.parametrize("bias", [False, True])
def test_shapes_and_loss(pos, bias):
    torch.manual_seed(0)
    model = GPT(tiny(pos=pos, bias=bias))
    x, y = ids(3, 8), ids(3, 8, seed=1)
    logits, loss = model(x, y)
    assert logits.shape == (3, 8, 11) and loss.shape == ()
    # at initialisation the logits are near zero: the loss is near log V
    assert abs(loss.item() - math.log(11)) < 0.1
    logits, loss = model(x[:, :5])  # shorter windows are fine
    assert logits.shape == (3, 5, 11) and loss is None


def test_a_sequence_longer_than_block_size_is_refused():
    model = GPT(tiny())
    with pytest.raises(ValueError, match="sequence of length 9 exceeds block_size 8"):
        model(ids(1, 9))


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary"])
def test_changing_a_future_token_leaves_earlier_logits_unchanged(pos):
    torch.manual_seed(0)
    model = GPT(tiny(pos=pos)).eval()
    x = ids(2, 8)
    changed = x.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    before, _ = model(x)
    after, _ = model(changed)
    torch.testing.assert_close(after[:, :5], before[:, :5], rtol=0, atol=0)
    assert not torch.allclose(after[:, 5:], before[:, 5:])


def contract_names(n_layer, bias, pos):
    names = ["transformer.wte.weight"] + (["transformer.wpe.weight"] if pos == "learned" else [])
    for i in range(n_layer):
        h = f"transformer.h.{i}"
        for part in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names += [f"{h}.{part}.weight"] + ([f"{h}.{part}.bias"] if bias else [])
    return names + ["transformer.ln_f.weight"] + (["transformer.ln_f.bias"] if bias else [])


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary"])
@pytest.mark.parametrize("bias", [False, True])
def test_state_dict_has_exactly_the_contract_names_and_shapes(pos, bias):
    model = GPT(tiny(pos=pos, bias=bias))
    state = model.state_dict()
    assert sorted(state) == sorted(contract_names(2, bias, pos))  # no lm_head, no position buffer
    V, C, block = 11, 16, 8
    assert state["transformer.wte.weight"].shape == (V, C)
    if pos == "learned":
        assert state["transformer.wpe.weight"].shape == (block, C)
    assert state["transformer.h.1.attn.c_attn.weight"].shape == (3 * C, C)
    assert state["transformer.h.1.attn.c_proj.weight"].shape == (C, C)
    assert state["transformer.h.1.mlp.c_fc.weight"].shape == (4 * C, C)
    assert state["transformer.h.1.mlp.c_proj.weight"].shape == (C, 4 * C)
    assert model.num_params() == sum(v.numel() for v in state.values())  # the tied head is counted once


def test_the_head_is_the_token_embedding():
    torch.manual_seed(0)
    model = GPT(tiny())
    _, loss = model(ids(2, 8), ids(2, 8, seed=1))
    loss.backward()
    grad = model.transformer.wte.weight.grad
    # the head touches every row of wte; the embedding only the rows of tokens in x: both reach the one tensor
    assert grad is not None and (grad.abs().sum(dim=1) > 0).all()


def test_initialisation_follows_nanogpt():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=8, n_embd=256, bias=True)
    state = GPT(config).state_dict()
    assert abs(state["transformer.wte.weight"].std().item() - 0.02) < 1e-3
    assert abs(state["transformer.h.0.attn.c_attn.weight"].std().item() - 0.02) < 1e-3
    residual = 0.02 / math.sqrt(2 * 8)
    assert abs(state["transformer.h.0.mlp.c_proj.weight"].std().item() - residual) < 2e-4
    assert abs(state["transformer.h.0.attn.c_proj.weight"].std().item() - residual) < 2e-4
    assert (state["transformer.h.0.ln_1.weight"] == 1).all() and (
        state["transformer.h.0.ln_1.bias"] == 0
    ).all()
    assert (state["transformer.h.0.mlp.c_fc.bias"] == 0).all()


def test_sinusoidal_positions():
    code = sinusoidal_positions(5, 6)
    t, i = 3, 2  # column 2i = 4, 2i + 1 = 5
    assert code.shape == (5, 6)
    assert math.isclose(code[t, 2 * i].item(), math.sin(t / 10000 ** (2 * i / 6)), rel_tol=1e-6)
    assert math.isclose(code[t, 2 * i + 1].item(), math.cos(t / 10000 ** (2 * i / 6)), rel_tol=1e-6)
    assert (code[0, 0::2] == 0).all() and (code[0, 1::2] == 1).all()


def test_configure_optimizers_decays_the_matrices_only():
    model = GPT(tiny(bias=True))
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.99))
    decay, no_decay = opt.param_groups
    assert isinstance(opt, torch.optim.AdamW)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert model.transformer.wte.weight in decay["params"]  # embeddings decay, as in nanoGPT
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["lr"] == 3e-4 and opt.defaults["betas"] == (0.9, 0.99)


def argmax_decoding(model, idx, steps):
    for _ in range(steps):
        logits, _ = model(idx[:, -model.config.block_size :])
        idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def test_generate_at_temperature_zero_is_argmax_decoding():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    prompt = ids(2, 3)
    out = model.generate(prompt, 12, temperature=0.0)  # runs past block_size 8: the context is cropped
    assert out.shape == (2, 15) and torch.equal(out[:, :3], prompt)
    assert torch.equal(out, argmax_decoding(model, prompt, 12))


def test_generate_with_top_k_draws_among_the_k_most_likely_only():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    prompt = ids(1, 4)
    logits, _ = model(prompt)
    top3 = set(logits[0, -1].topk(3).indices.tolist())
    firsts = {
        model.generate(prompt, 1, temperature=2.0, top_k=3, rng=np.random.default_rng(s))[0, -1].item()
        for s in range(60)
    }
    assert firsts <= top3 and len(firsts) > 1
    # top_k=1 is argmax whatever the temperature
    greedy = model.generate(prompt, 5, temperature=1.5, top_k=1, rng=np.random.default_rng(0))
    assert torch.equal(greedy, argmax_decoding(model, prompt, 5))
    # the same rng draws the same text
    a = model.generate(prompt, 10, rng=np.random.default_rng(7))
    b = model.generate(prompt, 10, rng=np.random.default_rng(7))
    assert torch.equal(a, b)


def test_generate_restores_training_mode_and_checks_its_arguments():
    model = GPT(tiny(dropout=0.1)).train()
    model.generate(ids(1, 2), 2, temperature=0.0)
    assert model.training
    with pytest.raises(ValueError, match="temperature"):
        model.generate(ids(1, 2), 2, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(ids(1, 2), 2, top_k=0)


def test_attn_dropout_follows_dropout_unless_set():
    """Training mode, dropout only on the attention weights: with attn_dropout=0 the output is deterministic."""
    torch.manual_seed(0)
    config = dict(block_size=8, vocab_size=65, n_layer=1, n_embd=16, n_head=2)
    assert GPTConfig(dropout=0.2, **config).attn_dropout == 0.2
    attn = GPT(GPTConfig(dropout=0.0, attn_dropout=0.5, **config)).transformer.h[0].attn.train()
    x = torch.randn(2, 8, 16)
    assert not torch.equal(attn(x), attn(x))  # the attention weights drop
    attn.attn_dropout = 0.0
    assert torch.equal(attn(x), attn(x))
    with pytest.raises(ValueError, match="attn_dropout must be in"):
        GPTConfig(attn_dropout=-0.5, **config)
