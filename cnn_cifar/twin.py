"""The bridge between the NumPy `scratch.SimpleCNN` and its PyTorch twin `model.SimpleCNN` (same layers, same
shapes), for training both from one start, the equality tests and the benchmark. The only file importing both.

`copy_numpy_to_torch` loads the NumPy model's weights into the twin, converting layouts:
  conv kernel (kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw);
  linear W (in, out) -> weight (out, in);
  the first linear's input rows are reordered from the NumPy (h, w, c) flatten order to PyTorch's (c, h, w).
`torch_grads_as_numpy` does the reverse for the gradients.
"""

import numpy as np
import torch
from torch import nn

from cnn_cifar import model, scratch


def simple_cnn(channels=(32, 64, 128), hidden=256, seed=0, dtype=torch.float32):
    """The PyTorch SimpleCNN, initialised exactly as `scratch.SimpleCNN(rng=np.random.default_rng(seed))`
    (He-normal convs and hidden layer, N(0, 0.01^2) head, zero biases)."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    reference = scratch.SimpleCNN(
        channels=channels, hidden=hidden, rng=np.random.default_rng(seed), dtype=np_dtype
    )
    return torch_twin_of(reference)


def torch_twin_of(np_model):
    """A twin with the NumPy model's config and weights (float32 unless the NumPy model is float64)."""
    twin = model.SimpleCNN(**np_model.config)
    if np_model.dtype == np.float64:
        twin = twin.double()
    copy_numpy_to_torch(np_model, twin)
    return twin


def _flatten_shape(np_model):
    """(spatial side, channels) of the last conv stage's output, whose flatten order the two differ in."""
    config = np_model.config
    return config["image_size"] // 2 ** len(config["channels"]), config["channels"][-1]


@torch.no_grad()
def copy_numpy_to_torch(np_model, twin):
    """Copy the weights of a scratch.SimpleCNN into its torch twin (in place)."""
    np_layers = np_model.param_layers()
    t_layers = [m for m in twin if isinstance(m, (nn.Conv2d, nn.Linear))]
    if len(np_layers) != len(t_layers):
        raise ValueError(f"{len(np_layers)} NumPy layers with params vs {len(t_layers)} torch layers")
    spatial, cin = _flatten_shape(np_model)
    first_linear = True
    for src, dst in zip(np_layers, t_layers):
        W, b = src.params["W"], src.params["b"]
        if isinstance(dst, nn.Conv2d):
            weight = W.transpose(3, 2, 0, 1)  # (kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw)
        elif (
            first_linear
        ):  # rows (h, w, c) -> columns (c, h, w): (spatial^2 cin, out) -> (out, cin spatial^2)
            weight = W.reshape(spatial, spatial, cin, -1).transpose(3, 2, 0, 1).reshape(W.shape[1], -1)
            first_linear = False
        else:
            weight = W.T  # (in, out) -> (out, in)
        dst.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        dst.bias.copy_(torch.from_numpy(b))


def torch_grads_as_numpy(np_model, twin):
    """The twin's .grad tensors in the NumPy model's layouts, keyed like np_model.state_dict()."""
    np_idx = [i for i, layer in enumerate(np_model.layers) if layer.params]
    t_layers = [m for m in twin if isinstance(m, (nn.Conv2d, nn.Linear))]
    spatial, cin = _flatten_shape(np_model)
    out, first_linear = {}, True
    for i, m in zip(np_idx, t_layers):
        g = m.weight.grad.detach().cpu().numpy()
        if isinstance(m, nn.Conv2d):
            g = g.transpose(2, 3, 1, 0)  # (Cout, Cin, kh, kw) -> (kh, kw, Cin, Cout)
        elif first_linear:  # (out, cin spatial^2) in (c, h, w) order -> (spatial^2 cin, out) in (h, w, c)
            g = g.reshape(-1, cin, spatial, spatial).transpose(2, 3, 1, 0).reshape(-1, g.shape[0])
            first_linear = False
        else:
            g = g.T  # (out, in) -> (in, out)
        out[f"{i}.W"] = np.ascontiguousarray(g)
        out[f"{i}.b"] = m.bias.grad.detach().cpu().numpy().copy()
    return out
