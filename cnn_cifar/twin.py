"""The bridge between the NumPy `scratch.SimpleCNN` and its PyTorch twin `model.SimpleCNN` (same layers, same
shapes), the only file importing both: the two implementations behind the one classifier interface the training
loop drives (NumpyCNN, TorchCNN; see shared/run.py), both from one start, and the weight and gradient conversions
for the equality tests and the benchmark.

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
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device


def sgd_settings(cfg):
    """What shared.optim.SGD and torch.optim.SGD both take: the one recipe of both implementations."""
    return dict(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


class NumpyCNN(NumpyAdapter):
    """scratch.SimpleCNN + shared.optim.SGD."""

    def __init__(self, cfg):
        rng, dtype = np.random.default_rng(cfg.seed), np.dtype(cfg.dtype).type
        self.net = scratch.SimpleCNN(channels=cfg.channels, hidden=cfg.hidden[0], rng=rng, dtype=dtype)
        self.opt = optim.SGD(self.net.layers, **sgd_settings(cfg))

    def num_params(self):
        return self.net.num_params()

    def train_step(self, x, y, lr):
        """One SGD step on a normalised NHWC batch; the loss is the training-mode one before the update."""
        self.opt.lr = lr
        loss, logits = self.net.loss(x, y)
        self.opt.step()
        return {"loss": loss, "correct": int((logits.argmax(axis=1) == y).sum())}

    def logits(self, x):
        return self.net.forward(x, training=False)


class TorchCNN(TorchAdapter):
    """cnn_cifar.model (SimpleCNN, started from the NumPy model's weights, or LeNetStyle) + torch.optim.SGD,
    fed the same NumPy batches. Dropout draws from torch's global generator, which the checkpoints keep."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        torch.manual_seed(cfg.seed)
        if cfg.model == "simple":
            net = simple_cnn(cfg.channels, cfg.hidden[0], seed=cfg.seed, dtype=dtype)
        else:
            net = model.LeNetStyle(cfg.channels, cfg.hidden, batchnorm=cfg.batchnorm, dropout=cfg.dropout)
        # NHWC batches are already channels_last tensors once permuted; on a CPU that layout is ~15% faster
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.net = net.to(self.device, dtype).to(memory_format=self.memory_format)
        self.opt = torch.optim.SGD(self.net.parameters(), **sgd_settings(cfg))

    def _input(self, x):
        """NHWC numpy (N, 32, 32, 3) -> NCHW tensor (N, 3, 32, 32) on the device (channels_last strides)."""
        x = torch.from_numpy(x).permute(0, 3, 1, 2).to(self.device)
        return x.contiguous(memory_format=self.memory_format)

    def train_step(self, x, y, lr):
        self.set_lr(lr)
        self.net.train()
        y = torch.from_numpy(y).to(self.device)
        logits = self.net(self._input(x))  # (N, 10)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "correct": int((logits.argmax(1) == y).sum().item())}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad():
            return self.net(self._input(x)).cpu().numpy()


def build(cfg):
    """The model adapter for a checked cfg."""
    return NumpyCNN(cfg) if cfg.impl == "numpy" else TorchCNN(cfg)


# ---- weights and gradients between the two


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
