"""The CIFAR-10 ResNets of He et al. 2016 (Deep Residual Learning for Image Recognition, section 4.2), in PyTorch.

A network of depth 6n + 2: a 3x3 convolution with 16 filters, then three stages of n basic blocks on 32x32,
16x16 and 8x8 maps with 16, 32 and 64 filters (each block two 3x3 convolutions, so 6n layers), then global
average pooling and a 10-way linear layer. The first block of stages 2 and 3 halves the map with stride 2.
Every convolution is followed by batch norm (no convolution has a bias: batch norm's shift takes its place).

    block:  out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

The shortcut is option A, the identity with no parameters: where a block changes shape, x is subsampled (every
second row and column, matching the stride-2 convolution, whose 3x3 windows are centred on those pixels) and
the new channels are zeros appended after the old ones. So ResNet-n and its plain counterpart (the same layers,
no shortcut) have the same parameters: 0.27M, 0.46M, 0.66M, 0.85M and 1.7M for depths 20, 32, 44, 56, 110
(Table 6).

Initialisation as the paper's reference [13] (He et al. 2015) and fb.resnet.torch: convolution weights
N(0, 2 / (9 C_out)) (kaiming_normal_, fan_out), batch norm scale 1 and shift 0; the linear layer keeps PyTorch's
default uniform weights, with a zero bias.

Input: NCHW float images (B, 3, 32, 32), the per-pixel mean subtracted; output: logits (B, 10). Pure torch:
twin.py is the bridge to the NumPy blocks of scratch.py, train.py the paper's recipe.
"""

import torch.nn.functional as F
from torch import nn

PAPER_DEPTHS = (20, 32, 44, 56, 110)  # Table 6 (and 1202, which overfits)
WIDTHS = (16, 32, 64)  # filters of the three stages


def model_name(depth, plain=False, widths=WIDTHS):
    """'resnet20', 'plain56'; widths other than the paper's are named too: 'resnet8-8-16-32'."""
    name = f"{'plain' if plain else 'resnet'}{depth}"
    return name if tuple(widths) == WIDTHS else name + "-" + "-".join(map(str, widths))


def blocks_per_stage(depth):
    """n of a network with 6n + 2 layers; ValueError for any other depth."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth {depth} is not 6n + 2 for some n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)")
    return (depth - 2) // 6


class ShortcutA(nn.Module):
    """Option A: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride), the identity on the first C_in channels
    (subsampled by `stride`), zeros in the C_out - C_in channels after them. No parameters."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, H / s, W / s)
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, C_out, H / s, W / s): zero channels appended
        return x


class BasicBlock(nn.Module):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus the shortcut (None: a plain block), then ReLU.
    (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = ShortcutA(in_channels, out_channels, stride) if shortcut else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / s, W / s)
        out = self.bn2(self.conv2(out))  # (B, C_out, H / s, W / s)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # the residual: the block learns out - x
        return F.relu(out)


class ResNet(nn.Module):
    """ResNet-`depth` (plain=False) or its plain counterpart (plain=True) for 32x32 images.

    State dict keys: conv1.weight, bn1.*, stages.{s}.{b}.conv1.weight, stages.{s}.{b}.bn1.*, ..., fc.weight,
    fc.bias (scratch.ResNet has the same names)."""

    def __init__(self, depth=20, plain=False, widths=WIDTHS, num_classes=10, in_channels=3):
        super().__init__()
        n = blocks_per_stage(depth)
        self.depth, self.plain, self.widths = depth, plain, tuple(widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for s, cout in enumerate(widths):
            first_stride = 1 if s == 0 else 2  # stages 2 and 3 start by halving the map
            blocks = [BasicBlock(cin if b == 0 else cout, cout, first_stride if b == 0 else 1, not plain)
                      for b in range(n)]  # fmt: skip
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        """He initialisation (fan_out) of the convolutions; batch norm 1 and 0; the linear layer's default
        weights and a zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.fc.reset_parameters()
        nn.init.zeros_(self.fc.bias)

    @property
    def name(self):
        return model_name(self.depth, self.plain, self.widths)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 16, 32, 32)
        for stage in self.stages:
            x = stage(x)  # (B, 16, 32, 32) -> (B, 32, 16, 16) -> (B, 64, 8, 8)
        x = x.mean(dim=(2, 3))  # (B, 64): global average pooling
        return self.fc(x)  # (B, 10)
