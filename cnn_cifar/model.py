"""The PyTorch CNNs of cnn_cifar (curriculum 5.3, CE3.2): the SimpleCNN twin and a LeNet-style network.

* `simple_cnn(...)`: the NumPy `scratch.SimpleCNN`'s exact twin (conv3x3-ReLU-maxpool x 3, fc 256, fc 10;
  620,362 parameters), defined in `twin.py` and started from the very weights the NumPy model starts from
  (same seed), so that the NumPy and PyTorch runs differ only in who does the arithmetic.
* `LeNetStyle`: LeNet-5's shape (LeCun et al. 1998: conv5x5 -> pool -> conv5x5 -> pool -> fc -> fc -> fc, with
  'valid' convolutions, 32 -> 28 -> 14 -> 10 -> 5) modernised the usual way: many more channels (48/96 instead of
  6/16), batch norm after each convolution, ReLU instead of tanh, max- instead of average-pooling, optional
  dropout before the fully connected layers. About 1.1M parameters; 31 MFLOP per image forward.

Both take NCHW float input normalised with the CIFAR-10 channel statistics and return logits (N, 10).
"""

import numpy as np
import torch
from torch import nn

from cnn_cifar.twin import copy_numpy_to_torch, torch_grads_as_numpy, torch_twin, torch_twin_of

__all__ = [
    "simple_cnn",
    "torch_twin",
    "torch_twin_of",
    "copy_numpy_to_torch",
    "torch_grads_as_numpy",
    "LeNetStyle",
    "count_params",
    "lenet_flops",
]


def simple_cnn(channels=(32, 64, 128), hidden=256, seed=0, dtype=torch.float32):
    """The PyTorch SimpleCNN, initialised exactly as `scratch.SimpleCNN(rng=np.random.default_rng(seed))`
    (He-normal convs and hidden layer, N(0, 0.01^2) head, zero biases)."""
    from cnn_cifar.scratch import SimpleCNN

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    reference = SimpleCNN(channels=channels, hidden=hidden, rng=np.random.default_rng(seed), dtype=np_dtype)
    return torch_twin_of(reference)


class LeNetStyle(nn.Module):
    """conv(k) -> [BN] -> ReLU -> maxpool2 -> conv(k) -> [BN] -> ReLU -> maxpool2 -> flatten -> [dropout] ->
    fc -> ReLU -> [dropout] -> fc -> ReLU -> fc.

    channels: the two conv widths; hidden: the two fc widths; padding 0 ('valid', as in LeNet-5) or k // 2.
    With batch norm the convs have no bias (BN's shift replaces it). PyTorch's default initialisation.
    """

    def __init__(
        self,
        channels=(48, 96),
        hidden=(384, 192),
        kernel_size=5,
        padding=0,
        batchnorm=True,
        dropout=0.0,
        num_classes=10,
        in_channels=3,
        image_size=32,
    ):
        super().__init__()
        self.config = dict(
            channels=tuple(channels),
            hidden=tuple(hidden),
            kernel_size=kernel_size,
            padding=padding,
            batchnorm=batchnorm,
            dropout=dropout,
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
        )
        layers, cin, size = [], in_channels, image_size
        for cout in channels:
            layers.append(nn.Conv2d(cin, cout, kernel_size, padding=padding, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin, size = cout, (size + 2 * padding - kernel_size + 1) // 2
        if size < 1:
            raise ValueError(
                f"kernel {kernel_size} with padding {padding} shrinks {image_size}-pixel images to 0"
            )
        self.features = nn.Sequential(*layers)
        fc, width = [nn.Flatten()], cin * size * size
        for h in hidden:
            if dropout:
                fc.append(nn.Dropout(dropout))
            fc += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        fc.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*fc)

    def forward(self, x):
        return self.classifier(self.features(x))

    def feature_maps(self, x):
        """[(layer name, activation)] after every ReLU and pooling of the conv stages (for figures)."""
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if isinstance(layer, (nn.ReLU, nn.MaxPool2d)):
                out.append((f"{i}.{type(layer).__name__}", x))
        return out


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def lenet_flops(config, batch_size=1):
    """Forward multiply-add FLOPs (2 per MAC) of LeNetStyle's convs and linears for one batch."""
    k, p, size, cin, total = config["kernel_size"], config["padding"], config["image_size"], 3, 0
    for cout in config["channels"]:
        out = size + 2 * p - k + 1
        total += 2 * out * out * k * k * cin * cout
        cin, size = cout, out // 2
    width = cin * size * size
    for h in (*config["hidden"], config["num_classes"]):
        total += 2 * width * h
        width = h
    return total * batch_size
