"""SimpleCNN in NumPy (curriculum 5.3, CE3.1): Conv-ReLU-MaxPool blocks and two linear layers, NHWC.

The convolution and max-pool layers (im2col + one GEMM; window max with the gradient routed to the argmax) live
in shared.conv, which other projects use too; their names are re-exported here. This module adds the model and
its analytic FLOP counts.
"""

import numpy as np

from shared.conv import (
    Conv2D,
    Flatten,
    MaxPool2D,
    col2im,
    conv2d,
    conv2d_backward,
    conv_flops,
    conv_output_size,
    im2col,
    maxpool2d,
    maxpool2d_backward,
)
from shared.nn import Linear, ReLU, copy_weights, softmax_cross_entropy

__all__ = [
    "im2col",
    "col2im",
    "conv_output_size",
    "conv2d",
    "conv2d_backward",
    "maxpool2d",
    "maxpool2d_backward",
    "Conv2D",
    "MaxPool2D",
    "Flatten",
    "SimpleCNN",
    "conv_flops",
    "model_forward_flops",
    "model_step_flops",
]


class SimpleCNN:
    """Conv-Pool-FC network for 32x32 RGB images (NHWC float input).

    For each c in `channels`: Conv2D(3x3, padding 1) -> ReLU -> MaxPool2D(2). Then Flatten -> Linear(hidden) ->
    ReLU -> Linear(num_classes). Defaults (32, 64, 128) channels and 256 hidden: 620,362 parameters.

    Initialisation: `init` (He by default) for every conv and the hidden linear; `head_init` ("small":
    N(0, 0.01^2)) for the classifier, so the initial logits are near 0 and the loss starts at ln(10). Without
    batch norm, He-initialised ReLU/max-pool stacks grow the activation scale (max-pooling picks the largest of
    four), and a He-initialised head starts at a loss near 4.4 and destabilises the first momentum steps.

    The first conv skips dL/dinput. `layers` is the list an optimizer (shared.optim) takes; params are updated in
    place. `state_dict()` keys are "<layer index>.<param>", e.g. "0.W".
    """

    def __init__(
        self,
        channels=(32, 64, 128),
        hidden=256,
        num_classes=10,
        in_channels=3,
        image_size=32,
        kernel_size=3,
        init="he",
        head_init="small",
        rng=None,
        dtype=np.float32,
    ):
        rng = np.random.default_rng(0) if rng is None else rng
        self.config = dict(
            channels=tuple(channels),
            hidden=hidden,
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            kernel_size=kernel_size,
        )
        layers, cin, size = [], in_channels, image_size
        for k, cout in enumerate(channels):
            conv = Conv2D(
                cin, cout, kernel_size, 1, kernel_size // 2, init=init, rng=rng, dtype=dtype, input_grad=k > 0
            )
            layers += [conv, ReLU(), MaxPool2D(2)]
            cin, size = cout, size // 2
        layers += [Flatten(), Linear(size * size * cin, hidden, init=init, rng=rng, dtype=dtype), ReLU()]
        layers += [Linear(hidden, num_classes, init=head_init, rng=rng, dtype=dtype)]
        self.layers = layers
        self.dtype = dtype

    def forward(self, x, training=True):
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    __call__ = forward

    def backward(self, dlogits):
        grad = dlogits
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:
                break
        return grad

    def loss(self, x, y, training=True):
        """Forward + softmax cross-entropy + backward. Returns (loss, logits); grads are left in the layers."""
        logits = self.forward(x, training=training)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.backward(dlogits)
        return loss, logits

    def predict(self, x, batch_size=500):
        """Class indices for x (N, H, W, C), in batches, inference mode."""
        return np.concatenate(
            [
                self.forward(x[i : i + batch_size], training=False).argmax(axis=1)
                for i in range(0, len(x), batch_size)
            ]
        )

    def param_layers(self):
        return [layer for layer in self.layers if layer.params]

    def num_params(self):
        return int(sum(v.size for layer in self.layers for v in layer.params.values()))

    def state_dict(self):
        return {f"{i}.{k}": v.copy() for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def load_state_dict(self, state):
        copy_weights(
            {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}, state
        )

    def flops_per_step(self, batch_size):
        """Analytic FLOPs of one training step (forward + backward) for the convs and linears: forward
        2*N*Ho*Wo*kh*kw*Cin*Cout per conv and 2*N*in*out per linear; backward = 2 x forward (dW and dx), except
        the first conv whose dx is skipped (1 x forward)."""
        return model_step_flops(self.config, batch_size)


def model_forward_flops(config, batch_size):
    """List of (name, forward FLOPs, backward multiplier) for SimpleCNN's GEMM layers."""
    rows, cin, size, k = [], config["in_channels"], config["image_size"], config["kernel_size"]
    for i, cout in enumerate(config["channels"]):
        rows.append(
            (
                f"conv{i + 1}",
                conv_flops(batch_size, size, size, cin, cout, k, k, 1, k // 2),
                1 if i == 0 else 2,
            )
        )
        cin, size = cout, size // 2
    flat = size * size * cin
    rows.append(("fc1", 2 * batch_size * flat * config["hidden"], 2))
    rows.append(("fc2", 2 * batch_size * config["hidden"] * config["num_classes"], 2))
    return rows


def model_step_flops(config, batch_size):
    return sum(f * (1 + m) for _, f, m in model_forward_flops(config, batch_size))
