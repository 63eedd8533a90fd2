"""The NumPy pieces of the residual block: option A's shortcut (shape, zero padding, its adjoint), batch norm and
the basic block checked against finite differences in float64, and equal to the PyTorch block and ResNet on
copied weights, forward and backward, in training and in evaluation mode."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_repro import model, scratch, twin
from shared.gradient_check import gradient_check
from shared.nn import Layer, softmax_cross_entropy

BLOCKS = [  # (stride, C_in, C_out, shortcut): identity, downsampling (option A), plain
    (1, 4, 4, True),
    (2, 4, 8, True),
    (2, 4, 8, False),
]


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def perturbed_block(stride, cin, cout, shortcut, seed=0):
    """A float64 scratch.BasicBlock whose batch norms and running statistics are not at their initial 1 and 0,
    so that every term of the backward pass is exercised."""
    rng = np.random.default_rng(seed)
    block = scratch.BasicBlock(cin, cout, stride, shortcut, rng=rng, dtype=np.float64)
    for name, p in block.params.items():
        if name.startswith("bn"):
            p += 0.3 * rng.standard_normal(p.shape)
    for name, b in block.buffers.items():
        b[:] = rng.uniform(0.5, 1.5, b.shape) if name.endswith("var") else 0.1 * rng.standard_normal(b.shape)
    return block


class BatchNormLayer(Layer):
    """batchnorm_forward / batchnorm_backward as a Layer, for shared.gradient_check."""

    def __init__(self, channels, training, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.params = {
            "gamma": 1 + 0.3 * rng.standard_normal(channels),
            "beta": rng.standard_normal(channels),
        }
        self.running = {
            "running_mean": rng.standard_normal(channels),
            "running_var": rng.uniform(0.5, 2, channels),
        }
        self.training = training

    def forward(self, x, training=True):
        out, self.cache = scratch.batchnorm_forward(
            x, self.params["gamma"], self.params["beta"], self.running, self.training
        )
        return out

    def backward(self, grad):
        dx, self.grads["gamma"], self.grads["beta"] = scratch.batchnorm_backward(grad, self.cache)
        return dx


class ShortcutLayer(Layer):
    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x, training=True):
        out, self.cache = scratch.shortcut_forward(x, self.out_channels, self.stride)
        return out

    def backward(self, grad):
        return scratch.shortcut_backward(grad, self.cache)


def test_option_a_subsamples_and_pads_zero_channels():
    x = randn(2, 32, 32, 16)
    out, _ = scratch.shortcut_forward(x, 32, stride=2)
    assert out.shape == (2, 16, 16, 32)
    assert np.array_equal(out[..., :16], x[:, ::2, ::2, :])  # the identity on every second row and column
    assert not out[..., 16:].any()  # the 16 new channels are zeros
    same, _ = scratch.shortcut_forward(x, 16, stride=1)
    assert same is x  # where the block keeps its shape the shortcut is x itself
    # PyTorch's ShortcutA (NCHW) is the same map
    torch_out = model.ShortcutA(16, 32, 2)(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    assert np.array_equal(torch_out.numpy().transpose(0, 2, 3, 1), out)
    assert sum(p.numel() for p in model.ShortcutA(16, 32, 2).parameters()) == 0


def test_option_a_backward_is_its_adjoint():
    """<S x, g> = <x, S^T g> for every x and g: shortcut_backward is the transpose of the subsample-and-pad."""
    x, g = randn(3, 8, 8, 4, seed=1), randn(3, 4, 4, 8, seed=2)
    out, cache = scratch.shortcut_forward(x, 8, stride=2)
    dx = scratch.shortcut_backward(g, cache)
    assert dx.shape == x.shape
    assert np.isclose(np.sum(out * g), np.sum(x * dx), rtol=1e-12)
    assert not dx[:, 1::2].any() and not dx[:, :, 1::2].any()  # pixels the shortcut skips get nothing from it
    assert np.array_equal(dx[:, ::2, ::2], g[..., :4])  # the zero channels pass nothing back
    errors = gradient_check(ShortcutLayer(8, 2), x)
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward_matches_finite_differences(training):
    errors = gradient_check(BatchNormLayer(3, training), randn(4, 3, 3, 3, seed=11) * 2 + 1)
    assert max(errors.values()) < 1e-6, errors


def test_batchnorm_normalises_each_channel_and_moves_the_running_statistics_as_torch():
    x = randn(4, 5, 5, 3) * 3 + 2
    layer = BatchNormLayer(3, training=True)
    start = {k: v.copy() for k, v in layer.running.items()}
    out = layer.forward(x)
    xhat = (out - layer.params["beta"]) / layer.params["gamma"]
    np.testing.assert_allclose(xhat.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(xhat.var(axis=(0, 1, 2)), 1, rtol=1e-4)  # var / (var + eps)
    bn = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(start["running_mean"]))
        bn.running_var.copy_(torch.from_numpy(start["running_var"]))
    bn(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(layer.running["running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.running["running_var"], bn.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("stride,cin,cout,shortcut", BLOCKS)
def test_basic_block_backward_matches_finite_differences(stride, cin, cout, shortcut):
    block = perturbed_block(stride, cin, cout, shortcut)
    errors = gradient_check(block, randn(3, 6, 6, cin, seed=3))
    assert set(errors) == {"x", *block.params}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("stride,cin,cout,shortcut", BLOCKS)
def test_basic_block_equals_the_torch_block_on_copied_weights(stride, cin, cout, shortcut, training):
    block = perturbed_block(stride, cin, cout, shortcut, seed=4)
    torch_block = twin.torch_block_of(block).train(training)
    x, dout = randn(4, 8, 8, cin, seed=5), randn(4, 8 // stride, 8 // stride, cout, seed=6)
    # the functions themselves: the Layer keeps no cache in evaluation mode (nothing trains then)
    out, cache = scratch.basic_block_forward(x, block.params, stride, shortcut, block.buffers, training)
    dx, grads = scratch.basic_block_backward(dout, cache)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out_t = torch_block(xt)
    out_t.backward(torch.from_numpy(dout.transpose(0, 3, 1, 2)))
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, out_t.detach().numpy().transpose(0, 2, 3, 1), **close)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **close)
    torch_grads = twin.torch_grads_as_numpy(torch_block)
    assert torch_grads.keys() == grads.keys() == block.params.keys()
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, torch_grads[name], **close, err_msg=name)
    for name, buffer in block.buffers.items():  # the running statistics moved alike (or not at all)
        np.testing.assert_allclose(buffer, torch_block.state_dict()[name].numpy(), **close, err_msg=name)


def test_the_identity_path_carries_the_gradient_unchanged():
    """With F switched off (conv2's kernel 0, so F(x) = beta2 whatever x is), dL/dx of a residual block is
    dL/dz exactly, and of the plain block with the same weights it is 0: the shortcut's share of the gradient
    needs nothing of F."""
    x, dout = randn(2, 6, 6, 4, seed=7), randn(2, 6, 6, 4, seed=8)
    for shortcut in (True, False):
        block = perturbed_block(1, 4, 4, shortcut, seed=9)
        block.params["conv2.weight"][:] = 0
        out = block.forward(x)
        dx = block.backward(dout)
        dz = dout * (out > 0)
        np.testing.assert_array_equal(dx, dz if shortcut else np.zeros_like(x))


def test_numpy_resnet_equals_the_torch_resnet_on_copied_weights():
    """ResNet-8 (narrow) in float64: the weights copied both ways, then logits, loss and every gradient."""
    rng = np.random.default_rng(10)
    net = scratch.ResNet(8, widths=(4, 8, 16), rng=rng, dtype=np.float64)
    for name, p in net._arrays("params").items():
        if ".bn" in name or name.startswith("bn"):  # batch norm away from its initial 1 and 0
            p += 0.2 * rng.standard_normal(p.shape)
    torch_net = twin.numpy_to_torch(net.state_dict(), model.ResNet(8, widths=(4, 8, 16)).double())
    back = twin.torch_to_numpy(torch_net, scratch.ResNet(8, widths=(4, 8, 16), dtype=np.float64))
    for name, value in net.state_dict().items():  # the layouts convert there and back exactly
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)
    x, y = rng.standard_normal((6, 32, 32, 3)), rng.integers(0, 10, 6)
    loss, logits = net.loss(x, y)
    logits_t = torch_net(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(y))
    loss_t.backward()
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert np.isclose(loss, loss_t.item(), rtol=1e-12)
    grads, torch_grads = net.grads(), twin.torch_grads_as_numpy(torch_net)
    assert grads.keys() == torch_grads.keys() and len(grads) == 3 + 3 * 6 + 2  # stem, 3 blocks, head
    for name in grads:
        np.testing.assert_allclose(grads[name], torch_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert net.num_params() == torch_net.num_params()
    assert softmax_cross_entropy(net.forward(x, training=False), y)[0] > 0  # evaluation mode runs too
