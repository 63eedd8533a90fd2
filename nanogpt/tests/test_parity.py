"""The NumPy GPT (scratch.py) against the torch GPT (model.py) on identical weights: the same logits, loss and
every gradient in float64; the same text drawn from the same rng; and through twin.py's adapters, the same
parameters after AdamW steps with weight decay and clipping."""

import dataclasses

import numpy as np
import pytest
import torch

from nanogpt import model as torch_gpt
from nanogpt import scratch, twin

V = 11


def fields(**overrides):
    return dict(block_size=8, vocab_size=V, n_layer=2, n_head=2, n_embd=16) | overrides


def twins(dtype=np.float64, **overrides):
    """A NumPy GPT of seed 0 and a torch GPT (in the same dtype) with its weights."""
    np_model = scratch.GPT(
        scratch.GPTConfig(**fields(**overrides)), rng=np.random.default_rng(0), dtype=dtype
    )
    net = torch_gpt.GPT(torch_gpt.GPTConfig(**fields(**overrides)))
    net = net.double() if dtype == np.float64 else net
    return np_model, twin.numpy_to_torch(np_model, net)


def windows(B=3, T=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))


variants = pytest.mark.parametrize(
    "overrides",
    [{}, {"pos": "sinusoidal"}, {"bias": True}, {"pos": "rotary"}],
    ids=["learned", "sinusoidal", "bias", "rotary"],
)


@variants
def test_logits_loss_and_every_gradient_match_in_float64(overrides):
    np_model, net = twins(**overrides)
    x, y = windows()
    np_logits = np_model.forward(x, training=True)
    np_loss = np_model.loss_and_backward(x, y)
    logits, loss = net(torch.from_numpy(x), torch.from_numpy(y))
    loss.backward()
    np.testing.assert_allclose(np_logits, logits.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np_loss, loss.item(), rtol=1e-10)
    grads = dict(net.named_parameters())
    assert sorted(np_model.grads) == sorted(grads) == sorted(np_model.params)
    for name, p in grads.items():
        np.testing.assert_allclose(np_model.grads[name], p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@variants
def test_shorter_windows_match_too(overrides):
    np_model, net = twins(**overrides)
    x, _ = windows(B=2, T=5)
    logits, _ = net(torch.from_numpy(x))
    np.testing.assert_allclose(
        np_model.forward(x, training=False), logits.detach().numpy(), rtol=1e-8, atol=1e-10
    )


def test_weights_copy_both_ways():
    np_model, net = twins(dtype=np.float32, bias=True)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    back = twin.torch_to_numpy(net, scratch.GPT(scratch.GPTConfig(**fields(bias=True)), dtype=np.float32))
    for name, w in net.state_dict().items():
        np.testing.assert_array_equal(back.params[name], w.numpy())
        assert back.params[name].dtype == np.float32
    assert back.num_params() == net.num_params() == sum(w.size for w in np_model.params.values())


def test_the_same_rng_draws_the_same_text():
    np_model, net = twins()
    prompt, _ = windows(B=2, T=3)
    for temperature, top_k in [(1.0, None), (0.8, 4), (0.0, None)]:
        np_out = np_model.generate(prompt, 12, temperature, top_k, np.random.default_rng(5))
        torch_out = net.generate(torch.from_numpy(prompt), 12, temperature, top_k, np.random.default_rng(5))
        np.testing.assert_array_equal(np.asarray(np_out), torch_out.numpy())


@dataclasses.dataclass
class Config:
    """The fields of train.py's Config that the adapters read."""

    impl: str = "numpy"
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 16
    block_size: int = 8
    dropout: float = 0.0
    attn_dropout: float | None = None
    bias: bool = False
    pos: str = "learned"
    learning_rate: float = 1e-2
    weight_decay: float = 0.5  # large, so that decaying the wrong group would show
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 0.1  # small, so that every step clips
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    fused: bool = False


@pytest.mark.parametrize(
    "overrides",
    [{}, {"pos": "sinusoidal", "bias": True}, {"pos": "rotary"}, {"fused": True}],
    ids=["learned", "sinusoidal-bias", "rotary", "fused-adamw"],
)
def test_adamw_steps_with_clipping_give_the_same_parameters(overrides):
    cfg = Config(**overrides)
    numpy_side = twin.build(dataclasses.replace(cfg, fused=False), vocab_size=V)
    torch_side = twin.build(dataclasses.replace(cfg, impl="torch"), vocab_size=V)
    assert isinstance(numpy_side, twin.NumpyGPT) and isinstance(torch_side, twin.TorchGPT)
    start = numpy_side.weights()
    for name, w in torch_side.weights().items():  # the same start: the NumPy GPT of the seed
        np.testing.assert_array_equal(w.numpy(), start[name])
    for step, lr in enumerate([1e-2, 5e-3, 1e-2]):  # several steps: the optimizers' moments carry over
        x, y = windows(seed=step)
        a, b = numpy_side.train_step(x, y, lr), torch_side.train_step(x, y, lr)
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
        np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-4)
        assert a["grad_norm"] > cfg.grad_clip  # the step clipped
    after = torch_side.weights()
    for name, w in numpy_side.weights().items():
        np.testing.assert_allclose(w, after[name].numpy(), rtol=0, atol=2e-5, err_msg=name)
        assert not np.array_equal(w, start[name]), name  # every parameter moved
    np.testing.assert_allclose(numpy_side.logits(x), torch_side.logits(x), rtol=0, atol=1e-4)


def test_numpy_adapter_state_round_trip():
    cfg = Config()
    side = twin.build(cfg, vocab_size=V)
    side.train_step(*windows(), 1e-2)
    state = side.state_dict()
    assert set(state) == {"model", "opt_decay", "opt_no_decay"}
    other = twin.build(cfg, vocab_size=V)
    other.load_state_dict(state)
    x, y = windows(seed=1)
    a, b = side.train_step(x, y, 1e-2), other.train_step(x, y, 1e-2)
    assert a == b
    for name, w in side.weights().items():
        np.testing.assert_array_equal(w, other.weights()[name])


def test_bf16_autocast_trains_near_fp32():
    cfg = Config(impl="torch")
    fp32, bf16 = (
        twin.build(cfg, vocab_size=V),
        twin.build(dataclasses.replace(cfg, precision="bf16"), vocab_size=V),
    )
    x, y = windows()
    a, b = fp32.train_step(x, y, 1e-2), bf16.train_step(x, y, 1e-2)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-2)
    assert all(p.dtype == torch.float32 for p in bf16.net.parameters())  # the weights stay fp32
