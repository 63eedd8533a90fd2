"""model.py: the parameter counts of Table 6, the shapes through the stages, option A in the network, the plain
counterparts, He initialisation, a depth that is not 6n + 2; and model.py imports torch alone."""

import ast
from pathlib import Path

import pytest
import torch

from resnet_repro.model import BasicBlock, ResNet, ShortcutA, blocks_per_stage

TABLE6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}  # millions of parameters


@pytest.mark.parametrize("depth", TABLE6)
def test_parameter_counts_equal_table6(depth):
    resnet, plain = ResNet(depth), ResNet(depth, plain=True)
    digits = 1 if depth == 110 else 2
    assert round(resnet.num_params() / 1e6, digits) == TABLE6[depth]
    assert plain.num_params() == resnet.num_params()  # option A has no parameters
    assert resnet.name == f"resnet{depth}" and plain.name == f"plain{depth}"
    convs = [m for m in resnet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions and the linear layer
    assert all(m.bias is None for m in convs)


def test_resnet20_counts_every_parameter():
    # conv1 3*16*9, 6 convs 16*16*9, 32*16*9 + 5 * 32*32*9, 64*32*9 + 5 * 64*64*9, 19 batch norms, fc 64*10 + 10
    convs = 432 + 6 * 2304 + 4608 + 5 * 9216 + 18432 + 5 * 36864
    batch_norms = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
    assert ResNet(20).num_params() == convs + batch_norms + 650 == 269_722


def test_the_stages_halve_the_map_and_double_the_filters():
    net = ResNet(20).eval()
    x = torch.randn(2, 3, 32, 32)
    h = torch.relu(net.bn1(net.conv1(x)))
    shapes = []
    for stage in net.stages:
        h = stage(h)
        shapes.append(tuple(h.shape))
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert net(x).shape == (2, 10)
    first = net.stages[1][0]
    assert isinstance(first.shortcut, ShortcutA) and first.shortcut.stride == 2 and first.shortcut.extra == 16
    assert all(b.shortcut is None for s in ResNet(20, plain=True).stages for b in s)


def test_a_downsampling_block_adds_the_zero_padded_subsampled_input():
    block = BasicBlock(4, 8, stride=2).eval()
    with torch.no_grad():
        block.bn2.weight.zero_()  # F(x) = bn2's shift = 0: the block is relu(S(x))
        x = torch.randn(2, 4, 6, 6)
        out = block(x)
    assert torch.equal(out[:, :4], torch.relu(x[:, :, ::2, ::2])) and not out[:, 4:].any()


def test_he_initialisation_fan_out():
    torch.manual_seed(0)
    net = ResNet(56)
    kernel = net.stages[2][3].conv1.weight  # (64, 64, 3, 3)
    assert kernel.std().item() == pytest.approx((2 / (9 * 64)) ** 0.5, rel=0.03)
    assert torch.equal(net.stages[0][0].bn1.weight, torch.ones(16)) and not net.fc.bias.any()


@pytest.mark.parametrize("depth", [18, 21, 2, 0, 20.0])
def test_a_depth_that_is_not_6n_plus_2_is_refused(depth):
    with pytest.raises(ValueError, match="is not 6n \\+ 2"):
        blocks_per_stage(depth)


def test_model_imports_torch_alone():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "model.py").read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules and all(m == "torch" or m.startswith("torch.") for m in modules), modules
