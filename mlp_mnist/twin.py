"""The bridge between the NumPy MLP (scratch.py) and the PyTorch one (model.py), the only file importing both:
the two implementations behind the one classifier interface the training loop drives (NumpyMLP, TorchMLP; see
shared/run.py), and for the parity tests and the benchmark weights copied either way and gradients read back in
the NumPy naming.

Layouts: NumPy Linear W is (in, out) for y = x W + b; torch's weight is (out, in) for y = x W^T + b.
"""

import numpy as np
import torch
from torch import nn

from mlp_mnist import scratch
from mlp_mnist.model import build_torch_mlp
from mlp_mnist.scratch import build_mlp, mse_loss, softmax_cross_entropy
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device


class NumpyMLP(NumpyAdapter):
    """The from-scratch network and shared.optim, as a classifier adapter (see shared.run)."""

    def __init__(self, cfg):
        self.net = build_mlp(
            [784, *cfg.hidden, 10],
            activation=cfg.activation,
            dropout=cfg.dropout,
            batchnorm=cfg.batchnorm,
            init=cfg.init,
            seed=cfg.seed,
        )
        self.net.loss_fn = mse_loss if cfg.loss == "mse" else softmax_cross_entropy
        kind = {
            "sgd": ("sgd", 0.0, False),
            "momentum": ("sgd", cfg.momentum, False),
            "nesterov": ("sgd", cfg.momentum, True),
        }.get(cfg.optimizer)
        if kind:
            self.opt = optim.SGD(
                self.net.layers, cfg.lr, momentum=kind[1], nesterov=kind[2], weight_decay=cfg.weight_decay
            )
        else:
            self.opt = optim.Adam(
                self.net.layers, cfg.lr, weight_decay=cfg.weight_decay, decoupled=cfg.optimizer == "adamw"
            )
        self.generators = [layer.rng for layer in self.net.layers if hasattr(layer, "rng")]

    def num_params(self):
        return self.net.num_parameters()

    def train_step(self, x, y, lr):
        self.opt.lr = lr
        loss, logits = self.net.loss_and_grads(x, y)
        self.opt.step()
        return {"loss": loss, "correct": int((logits.argmax(axis=1) == y).sum())}

    def logits(self, x):
        return self.net.forward(x, training=False)


class TorchMLP(TorchAdapter):
    """The torch.nn / torch.optim twin, as a classifier adapter."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.net = build_torch_mlp(
            [784, *cfg.hidden, 10],
            activation=cfg.activation,
            dropout=cfg.dropout,
            batchnorm=cfg.batchnorm,
            init=cfg.init,
            seed=cfg.seed,
        ).to(self.device)
        self.mse = cfg.loss == "mse"
        params = self.net.parameters()
        if cfg.optimizer in ("sgd", "momentum", "nesterov"):
            momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
            self.opt = torch.optim.SGD(
                params,
                lr=cfg.lr,
                momentum=momentum,
                nesterov=cfg.optimizer == "nesterov",
                weight_decay=cfg.weight_decay,
            )
        else:
            cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
            self.opt = cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def train_step(self, x, y, lr):
        F = torch.nn.functional
        self.set_lr(lr)
        self.net.train()
        x, y = torch.from_numpy(x).to(self.device), torch.tensor(y).to(self.device)
        logits = self.net(x)
        loss = (
            F.mse_loss(logits, F.one_hot(y, 10).to(logits.dtype)) if self.mse else F.cross_entropy(logits, y)
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "correct": int((logits.argmax(1) == y).sum())}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad():
            return self.net(torch.from_numpy(x).to(self.device)).float().cpu().numpy()


def build(cfg):
    return NumpyMLP(cfg) if cfg.impl == "numpy" else TorchMLP(cfg)


# ---- weights and gradients between the two


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
