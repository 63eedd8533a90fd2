"""The bridge between the NumPy MLP (scratch.py) and the PyTorch one (model.py), for the parity tests and the
benchmark: weights copied either way, gradients read back in the NumPy naming. The only file importing both.

Layouts: NumPy Linear W is (in, out) for y = x W + b; torch's weight is (out, in) for y = x W^T + b.
"""

import numpy as np
import torch
from torch import nn

from mlp_mnist import scratch


def _check_pair(layer, module, k):
    ok = (
        (isinstance(layer, scratch.Linear) and isinstance(module, nn.Linear))
        or (isinstance(layer, scratch.BatchNorm) and isinstance(module, nn.BatchNorm1d))
        or (not layer.params and not any(True for _ in module.parameters()))
    )
    if not ok:
        raise TypeError(
            f"layer {k}: cannot pair NumPy {type(layer).__name__} with torch {type(module).__name__}"
        )


def copy_numpy_to_torch(network, module):
    """Copy every weight, bias, gamma/beta and running statistic of a NumPy Network into an nn.Sequential of the
    same structure (in place, keeping the torch dtype)."""
    if len(network.layers) != len(module):
        raise ValueError(f"{len(network.layers)} NumPy layers vs {len(module)} torch modules")
    with torch.no_grad():
        for k, (layer, mod) in enumerate(zip(network.layers, module)):
            _check_pair(layer, mod, k)
            if isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
                mod.bias.copy_(torch.from_numpy(layer.params["b"]))
            elif isinstance(mod, nn.BatchNorm1d):
                mod.weight.copy_(torch.from_numpy(layer.params["gamma"]))
                mod.bias.copy_(torch.from_numpy(layer.params["beta"]))
                mod.running_mean.copy_(torch.from_numpy(layer.buffers["running_mean"]))
                mod.running_var.copy_(torch.from_numpy(layer.buffers["running_var"]))
    return module


def copy_torch_to_numpy(module, network):
    """The reverse of copy_numpy_to_torch: torch values into the NumPy arrays in place (keeping NumPy dtypes)."""
    if len(network.layers) != len(module):
        raise ValueError(f"{len(network.layers)} NumPy layers vs {len(module)} torch modules")
    for k, (layer, mod) in enumerate(zip(network.layers, module)):
        _check_pair(layer, mod, k)
        if isinstance(mod, nn.Linear):
            np.copyto(layer.params["W"], mod.weight.detach().cpu().numpy().T, casting="same_kind")
            np.copyto(layer.params["b"], mod.bias.detach().cpu().numpy(), casting="same_kind")
        elif isinstance(mod, nn.BatchNorm1d):
            np.copyto(layer.params["gamma"], mod.weight.detach().cpu().numpy(), casting="same_kind")
            np.copyto(layer.params["beta"], mod.bias.detach().cpu().numpy(), casting="same_kind")
            np.copyto(layer.buffers["running_mean"], mod.running_mean.cpu().numpy(), casting="same_kind")
            np.copyto(layer.buffers["running_var"], mod.running_var.cpu().numpy(), casting="same_kind")
    return network


def torch_grads_as_numpy(module):
    """The gradients after loss.backward() in the NumPy Network's naming: {"layers.<k>.W": (in, out), ...}."""
    out = {}
    for k, mod in enumerate(module):
        if isinstance(mod, nn.Linear):
            out[f"layers.{k}.W"] = mod.weight.grad.detach().cpu().numpy().T
            out[f"layers.{k}.b"] = mod.bias.grad.detach().cpu().numpy()
        elif isinstance(mod, nn.BatchNorm1d):
            out[f"layers.{k}.gamma"] = mod.weight.grad.detach().cpu().numpy()
            out[f"layers.{k}.beta"] = mod.bias.grad.detach().cpu().numpy()
    return out
