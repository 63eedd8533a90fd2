"""Between the two implementations, the NumPy CharLM (scratch.py) and the torch CharRNN (model.py); the only file
that imports both. Both behind the one sequence-model interface the training loop drives (NumpyLM, TorchLM; see
shared/run.py), both from the same initial weights; weights copied either way; the torch twin the speed benchmark
and the equivalence tests use.

Weight layout: NumPy computes x @ W with W (in, out); torch stores weight (out, in), so every matrix is transposed.
NumPy keeps one bias per recurrent layer; it goes into torch's bias_ih and bias_hh is set to zero (torch -> NumPy:
bias_ih + bias_hh).
"""

import functools
import math

import numpy as np
import torch

from char_rnn.model import CharRNN, detach
from char_rnn.scratch import CharLM
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device


def scratch_model(cfg, vocab_size):
    """The seeded NumPy CharLM of cfg: both implementations start from its weights."""
    return CharLM(
        vocab_size, cfg.hidden, cfg.cell, cfg.layers, cfg.embed or None, dropout=cfg.dropout,
        rng=np.random.default_rng(cfg.seed), dtype=np.float32,
    )  # fmt: skip


class NumpyLM(NumpyAdapter):
    """scratch.CharLM + shared.optim.Adam + clip_grad_norm."""

    def __init__(self, cfg, vocab_size):
        self.net = scratch_model(cfg, vocab_size)
        self.opt = optim.Adam(self.net.layers, cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip or math.inf  # 0 = off: the norm is still measured
        self.generators = [self.net.rng]  # the dropout masks

    def num_params(self):
        return self.net.num_params()

    def reset_state(self, batch):
        self.net.reset_state(batch)

    @property
    def carried(self):
        """The recurrent state: one tuple (h,) or (h, c) of (B, H) arrays per layer."""
        return self.net.state

    @carried.setter
    def carried(self, state):
        self.net.state = state

    def train_step(self, x, y, lr):
        """One step on chunk x, y (B, T) from the carried state; grad_norm is the norm before clipping."""
        self.opt.lr = lr
        loss = self.net.loss_and_backward(x, y)
        norm = optim.clip_grad_norm(self.net.layers, self.clip)
        self.opt.step()
        return {"loss": float(loss), "grad_norm": norm}

    def logits(self, x):
        return self.net.forward(x, training=False)

    def state_dict(self):
        carried = {f"{k}/{j}": s for k, layer in enumerate(self.net.state) for j, s in enumerate(layer)}
        return super().state_dict() | {"carried": carried}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        per_layer = 2 if self.net.cell == "lstm" else 1
        self.net.state = [
            tuple(np.array(state["carried"][f"{k}/{j}"]) for j in range(per_layer))
            for k in range(len(self.net.cells))
        ]


class TorchLM(TorchAdapter):
    """model.CharRNN + torch.optim.Adam + clip_grad_norm_, started from the initial weights of the NumPy model of
    the same seed (twin.from_scratch)."""

    def __init__(self, cfg, vocab_size):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)  # the dropout masks
        self.net = from_scratch(scratch_model(cfg, vocab_size)).to(self.device)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip or math.inf
        self.carried = None  # the recurrent state: h or (h, c), each (layers, B, H)
        # bf16 autocast runs the LSTM's matrix products in bfloat16 (about 1.75x faster per step on this AVX-512
        # CPU); the weights, Adam's moments and the carried state stay fp32.
        self.autocast = functools.partial(
            torch.autocast, self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )

    def num_params(self):
        return self.net.num_params()

    def reset_state(self, batch):
        self.carried = self.net.init_state(batch, self.device)

    def _tensor(self, a):
        return torch.from_numpy(np.array(a, dtype=np.int64)).to(self.device)  # a writable copy

    def train_step(self, x, y, lr):
        self.set_lr(lr)
        self.net.train()
        with self.autocast():
            loss, state = self.net.loss(self._tensor(x), self._tensor(y), detach(self.carried))
        self.carried = detach(state)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        return {"loss": loss.item(), "grad_norm": float(norm)}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad():
            logits, self.carried = self.net(self._tensor(x), self.carried)
        return logits.cpu().numpy()

    def state_dict(self):
        carried = self.carried if isinstance(self.carried, tuple) else (self.carried,)
        carried = {name: s.detach().cpu() for name, s in zip("hc", carried)}
        return super().state_dict() | {"carried": carried}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        carried = [s.to(self.device) for s in state["carried"].values()]
        self.carried = tuple(carried) if self.net.cell == "lstm" else carried[0]


def build(cfg, vocab_size):
    return NumpyLM(cfg, vocab_size) if cfg.impl == "numpy" else TorchLM(cfg, vocab_size)


# ---- weights between the two


class TorchCharLM(CharRNN):
    """model.CharRNN with both of torch's recurrent biases trainable, as plain nn.LSTM / nn.RNN have them:
    nn.Embedding (or one-hot when embed_dim is None) + nn.LSTM / nn.RNN(tanh) + nn.Linear, batch first."""

    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embed_dim=None, dropout=0.0):
        super().__init__(vocab_size, hidden_size, cell, num_layers, embed_dim, dropout, single_bias=False)


def copy_cell_to_torch(cell, rnn, layer=0):
    """Copy a scratch RNN/LSTM's (Wx, Wh, b) into layer `layer` of a torch nn.RNN / nn.LSTM."""
    p = cell.params
    with torch.no_grad():
        getattr(rnn, f"weight_ih_l{layer}").copy_(torch.from_numpy(np.ascontiguousarray(p["Wx"].T)))
        getattr(rnn, f"weight_hh_l{layer}").copy_(torch.from_numpy(np.ascontiguousarray(p["Wh"].T)))
        getattr(rnn, f"bias_ih_l{layer}").copy_(torch.from_numpy(p["b"]))
        getattr(rnn, f"bias_hh_l{layer}").zero_()


def cell_grads_from_torch(rnn, layer=0):
    """The torch layer's gradients in scratch's layout: {"Wx": (D, G*H), "Wh": (H, G*H), "b": (G*H,)}."""

    def g(name):
        return getattr(rnn, f"{name}_l{layer}").grad.detach().cpu().numpy()

    return {"Wx": g("weight_ih").T, "Wh": g("weight_hh").T, "b": g("bias_ih")}


def copy_numpy_to_torch(np_model, torch_model):
    """Make a CharRNN (or TorchCharLM) compute exactly what a scratch.CharLM computes (dtype follows
    torch_model); returns torch_model."""
    with torch.no_grad():
        if np_model.embed is not None:
            torch_model.embed.weight.copy_(torch.from_numpy(np_model.embed.params["W"]))
        for k, cell in enumerate(np_model.cells):
            copy_cell_to_torch(cell, torch_model.rnn, k)
        torch_model.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(np_model.head.params["W"].T)))
        torch_model.head.bias.copy_(torch.from_numpy(np_model.head.params["b"]))
    return torch_model


def from_scratch(np_model):
    """A CharRNN with exactly the weights of a scratch.CharLM (float32)."""
    return copy_numpy_to_torch(np_model, CharRNN(**np_model.config))


def to_scratch(model, dtype=np.float32):
    """A scratch.CharLM with the weights of a CharRNN (bias_ih + bias_hh become scratch's single bias)."""
    c = model.config
    np_model = CharLM(**c, rng=np.random.default_rng(0), dtype=dtype)
    sd = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
    weights = {}
    if np_model.embed is not None:
        weights["embed.W"] = sd["embed.weight"]
    for k in range(c["num_layers"]):
        weights[f"cell{k}.Wx"] = sd[f"rnn.weight_ih_l{k}"].T
        weights[f"cell{k}.Wh"] = sd[f"rnn.weight_hh_l{k}"].T
        weights[f"cell{k}.b"] = sd[f"rnn.bias_ih_l{k}"] + sd[f"rnn.bias_hh_l{k}"]
    weights["head.W"] = sd["head.weight"].T
    weights["head.b"] = sd["head.bias"]
    np_model.load_state_dict({k: v.astype(dtype) for k, v in weights.items()})
    return np_model
