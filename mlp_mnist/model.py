"""The same MLPs in PyTorch.

`build_torch_mlp` takes scratch.build_mlp's arguments and returns an nn.Sequential whose module k corresponds to
layer k of the NumPy Network (Linear, BatchNorm1d, ReLU/Sigmoid/Tanh, Dropout in the same order), so twin.py can
copy weights index by index.
"""

import numpy as np
import torch
from torch import nn

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
