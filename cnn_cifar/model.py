"""The PyTorch CNNs of cnn_cifar (curriculum 5.3, CE3.2): the SimpleCNN and a LeNet-style network. Pure
torch; the bridge to the NumPy SimpleCNN (the same start from its initial weights, gradients back as NumPy)
is twin.py.

* `SimpleCNN`: the twin of the NumPy `scratch.SimpleCNN` (conv3x3-ReLU-maxpool x 3, fc 256, fc 10; 620,362
  parameters) with the same layers, shapes and config, written as one would in PyTorch: an NCHW nn.Sequential.
* `LeNetStyle`: LeNet-5's shape (LeCun et al. 1998: conv5x5 -> pool -> conv5x5 -> pool -> fc -> fc -> fc,
  with 'valid' convolutions, 32 -> 28 -> 14 -> 10 -> 5) modernised the usual way: many more channels (48/96
  instead of 6/16), batch norm after each convolution, ReLU instead of tanh, max- instead of average-pooling,
  optional dropout before the fully connected layers. About 1.1M parameters; 31 MFLOP per image forward.

Both take NCHW float input normalised with the CIFAR-10 channel statistics and return logits (N, 10).
"""

from torch import nn


class SimpleCNN(nn.Sequential):
    """For each c in `channels`: conv3x3 (padding 1) -> ReLU -> maxpool2; then flatten -> fc(hidden) -> ReLU
    -> fc(num_classes). The arguments are scratch.SimpleCNN's config; PyTorch's default initialisation
    (twin.py starts it from the NumPy model's weights instead)."""

    def __init__(
        self, channels=(32, 64, 128), hidden=256, num_classes=10, in_channels=3, image_size=32, kernel_size=3
    ):
        layers, cin, size = [], in_channels, image_size
        for cout in channels:  # (N, cin, size, size) -> (N, cout, size, size) -> (N, cout, size/2, size/2)
            layers += [
                nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            cin, size = cout, size // 2
        layers += [
            nn.Flatten(),  # (N, cin * size * size), in (c, h, w) order
            nn.Linear(cin * size * size, hidden),  # (N, hidden)
            nn.ReLU(),
            nn.Linear(hidden, num_classes),  # (N, num_classes) logits
        ]
        super().__init__(*layers)


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
        for (
            cout
        ) in channels:  # (N, cin, size, size) -> (N, cout, size', size') -> (N, cout, size'/2, size'/2)
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
        fc, width = [nn.Flatten()], cin * size * size  # (N, cin * size * size)
        for h in hidden:  # (N, width) -> (N, h)
            if dropout:
                fc.append(nn.Dropout(dropout))
            fc += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        fc.append(nn.Linear(width, num_classes))  # (N, num_classes) logits
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
