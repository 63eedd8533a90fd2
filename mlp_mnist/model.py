"""The same MLPs in PyTorch, and weight copying between the NumPy and PyTorch versions.

`build_torch_mlp` takes build_mlp's arguments and returns an nn.Sequential whose module k corresponds to layer k
of the NumPy Network (Linear, BatchNorm1d, ReLU/Sigmoid/Tanh, Dropout in the same order), so copying is index by
index. Layouts: NumPy Linear W is (in, out) for y = x W + b; torch's weight is (out, in) for y = x W^T + b.
"""

import numpy as np
import torch
from torch import nn

from mlp_mnist import scratch

TORCH_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _init_(weight, scheme, generator):
    """shared.nn.init_weight's schemes on a torch (out, in) weight: fan_in = in, fan_out = out."""
    fan_out, fan_in = weight.shape
    std = {
        "zero": 0.0,
        "small": 0.01,
        "large": 1.0,
        "xavier": (2.0 / (fan_in + fan_out)) ** 0.5,
        "he": (2.0 / fan_in) ** 0.5,
    }
    if scheme not in std:
        raise ValueError(f"unknown init scheme {scheme!r}: choose one of {', '.join(std)}")
    with torch.no_grad():
        weight.normal_(0.0, 1.0, generator=generator).mul_(std[scheme])


def build_torch_mlp(
    sizes, activation="relu", dropout=0.0, batchnorm=False, init="he", seed=0, dtype=torch.float32
):
    """nn.Sequential: for each hidden size Linear -> [BatchNorm1d] -> activation -> [Dropout]; a final Linear.
    Same arguments as scratch.build_mlp (weights drawn from torch's generator, so not the same numbers: use
    copy_numpy_to_torch for identical weights). Biases start at zero, like the NumPy version."""
    if activation not in TORCH_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(TORCH_ACTIVATIONS)}")
    if not isinstance(dtype, torch.dtype):  # a NumPy dtype, as build_mlp takes
        dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
    generator = torch.Generator().manual_seed(seed)
    modules = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        _init_(linear.weight, init, generator)
        nn.init.zeros_(linear.bias)
        modules.append(linear)
        if k == len(sizes) - 2:
            break
        if batchnorm:
            modules.append(nn.BatchNorm1d(fan_out, momentum=0.1, eps=1e-5, dtype=dtype))
        modules.append(TORCH_ACTIVATIONS[activation]())
        if dropout > 0:
            modules.append(nn.Dropout(dropout))
    return nn.Sequential(*modules)


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
