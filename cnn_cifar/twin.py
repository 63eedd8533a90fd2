"""A PyTorch twin of the NumPy `scratch.SimpleCNN` (same layers, same shapes), for speed and equality checks.

The twin is a plain NCHW `nn.Sequential` (what one would write in PyTorch). `copy_numpy_to_torch` loads the
NumPy model's weights into it, converting layouts:
  conv kernel (kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw);
  linear W (in, out) -> weight (out, in);
  the first linear's input rows are reordered from the NumPy (h, w, c) flatten order to PyTorch's (c, h, w).
"""

import numpy as np
import torch
from torch import nn


def torch_twin(
    channels=(32, 64, 128), hidden=256, num_classes=10, in_channels=3, image_size=32, kernel_size=3
):
    """nn.Sequential twin of scratch.SimpleCNN with the same config (NCHW input)."""
    layers, cin, size = [], in_channels, image_size
    for cout in channels:
        layers += [nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2), nn.ReLU(), nn.MaxPool2d(2)]
        cin, size = cout, size // 2
    layers += [nn.Flatten(), nn.Linear(size * size * cin, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def torch_twin_of(np_model):
    """A twin with the NumPy model's config and weights (float32 unless the NumPy model is float64)."""
    twin = torch_twin(**np_model.config)
    if np_model.dtype == np.float64:
        twin = twin.double()
    copy_numpy_to_torch(np_model, twin)
    return twin


@torch.no_grad()
def copy_numpy_to_torch(np_model, twin):
    """Copy the weights of a scratch.SimpleCNN into its torch twin (in place)."""
    np_layers = [layer for layer in np_model.layers if layer.params]
    t_layers = [m for m in twin if isinstance(m, (nn.Conv2d, nn.Linear))]
    if len(np_layers) != len(t_layers):
        raise ValueError(f"{len(np_layers)} NumPy layers with params vs {len(t_layers)} torch layers")
    first_linear = True
    spatial = np_model.config["image_size"] // 2 ** len(np_model.config["channels"])
    for src, dst in zip(np_layers, t_layers):
        W, b = src.params["W"], src.params["b"]
        if isinstance(dst, nn.Conv2d):
            weight = W.transpose(3, 2, 0, 1)
        else:
            weight = W.T
            if first_linear:
                cin = np_model.config["channels"][-1]
                weight = W.reshape(spatial, spatial, cin, -1).transpose(3, 2, 0, 1).reshape(W.shape[1], -1)
                first_linear = False
        dst.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        dst.bias.copy_(torch.from_numpy(b))


def torch_grads_as_numpy(np_model, twin):
    """The twin's .grad tensors in the NumPy model's layouts, keyed like np_model.state_dict()."""
    np_idx = [i for i, layer in enumerate(np_model.layers) if layer.params]
    t_layers = [m for m in twin if isinstance(m, (nn.Conv2d, nn.Linear))]
    spatial = np_model.config["image_size"] // 2 ** len(np_model.config["channels"])
    cin = np_model.config["channels"][-1]
    out, first_linear = {}, True
    for i, m in zip(np_idx, t_layers):
        g = m.weight.grad.detach().numpy()
        if isinstance(m, nn.Conv2d):
            g = g.transpose(2, 3, 1, 0)
        elif first_linear:
            g = g.reshape(-1, cin, spatial, spatial).transpose(2, 3, 1, 0).reshape(-1, g.shape[0])
            first_linear = False
        else:
            g = g.T
        out[f"{i}.W"] = np.ascontiguousarray(g)
        out[f"{i}.b"] = m.bias.grad.detach().numpy().copy()
    return out
