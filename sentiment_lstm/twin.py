"""Between the two implementations, the NumPy LSTMClassifier (scratch.py) and the torch models (model.py); the
only file that imports both. The models behind the one classifier interface the training loop drives
(NumpyClassifier, TorchClassifier; see shared/run.py), the NumPy model's initial weights for its torch twin, and
weights and gradients copied either way.

The classifier interface with lengths: a batch is x = (ids, lengths), ids (B, T) int64 right-padded with 0 and
lengths (B,) int64, so train_step(x, y, lr) -> {"loss", "correct", "grad_norm"} and logits(x) -> (B, 2) take
the pair where the other projects take one array.

Weight layout: NumPy computes x @ W with W (in, out), torch stores weight (out, in), so every matrix is
transposed; the LSTM's fused gates are in torch's order (i, f, g, o) in both. The NumPy LSTM has one bias: it
goes into bias_ih, and bias_hh is zero (torch -> NumPy: bias_ih + bias_hh).
"""

import functools
import math

import numpy as np
import torch

from sentiment_lstm.model import BiLSTMClassifier, LSTMClassifier
from sentiment_lstm.scratch import LSTMClassifier as ScratchClassifier
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device


def scratch_model(cfg, vocab_size, dtype=np.float32):
    """The seeded NumPy LSTMClassifier of cfg: the NumPy run and its torch twin both start from its weights."""
    return ScratchClassifier(
        vocab_size,
        cfg.embed,
        cfg.hidden,
        cfg.pool,
        cfg.dropout,
        rng=np.random.default_rng(cfg.seed),
        dtype=dtype,
    )


class NumpyClassifier(NumpyAdapter):
    """scratch.LSTMClassifier + shared.optim.Adam + clip_grad_norm."""

    def __init__(self, cfg, vocab_size):
        self.net = scratch_model(cfg, vocab_size)
        self.opt = optim.Adam(self.net.layers, cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip or math.inf  # 0 = off: the norm is still measured
        self.generators = [self.net.rng]  # the dropout masks

    def num_params(self):
        return self.net.num_params()

    def train_step(self, x, y, lr):
        """One Adam step on x = (ids (B, T), lengths (B,)), labels y (B,); the loss before the update."""
        self.opt.lr = lr
        loss, logits = self.net.loss_and_backward(*x, y)
        norm = optim.clip_grad_norm(self.net.layers, self.clip)
        self.opt.step()
        return {"loss": float(loss), "correct": int((logits.argmax(1) == y).sum()), "grad_norm": norm}

    def logits(self, x):
        return self.net.forward(*x, training=False)


class TorchClassifier(TorchAdapter):
    """model.LSTMClassifier (cfg.model "lstm": started from the NumPy model's initial weights of the same seed)
    or model.BiLSTMClassifier ("bilstm"), + torch.optim.Adam + clip_grad_norm_."""

    def __init__(self, cfg, vocab_size):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)  # the BiLSTM's initial weights, and the dropout masks
        if cfg.model == "lstm":
            net = from_scratch(scratch_model(cfg, vocab_size))
        else:
            net = BiLSTMClassifier(
                vocab_size, cfg.embed, cfg.hidden, cfg.layers, cfg.pool, cfg.dropout, packed=cfg.packed
            )
        self.net = net.to(self.device)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip or math.inf
        # bf16 autocast runs the LSTM's matrix products in bfloat16; weights, Adam's moments and evaluation fp32
        self.autocast = functools.partial(
            torch.autocast, self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )

    def num_params(self):
        return self.net.num_params()

    def _inputs(self, x):
        ids, lengths = x
        return torch.from_numpy(np.asarray(ids)).to(self.device), torch.from_numpy(np.asarray(lengths))

    def train_step(self, x, y, lr):
        self.set_lr(lr)
        self.net.train()
        y = torch.from_numpy(np.asarray(y)).to(self.device)
        with self.autocast():
            logits = self.net(*self._inputs(x)).float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        correct = int((logits.argmax(1) == y).sum())
        return {"loss": loss.item(), "correct": correct, "grad_norm": float(norm)}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad():
            return self.net(*self._inputs(x)).float().cpu().numpy()


def build(cfg, vocab_size):
    return NumpyClassifier(cfg, vocab_size) if cfg.impl == "numpy" else TorchClassifier(cfg, vocab_size)


# ---- weights and gradients between the two

_MATRICES = {  # NumPy key: (torch key, transposed)
    "embed.W": ("embed.weight", False),
    "lstm.Wx": ("lstm.weight_ih_l0", True),
    "lstm.Wh": ("lstm.weight_hh_l0", True),
    "lstm.b": ("lstm.bias_ih_l0", False),
    "head.W": ("head.weight", True),
    "head.b": ("head.bias", False),
}


def copy_numpy_to_torch(np_model, torch_model):
    """Make a model.LSTMClassifier compute what a scratch.LSTMClassifier computes (dtype follows torch_model);
    returns torch_model."""
    weights = np_model.state_dict()
    with torch.no_grad():
        params = dict(torch_model.named_parameters())
        for key, (name, transposed) in _MATRICES.items():
            w = weights[key].T if transposed else weights[key]
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(w)))
        params["lstm.bias_hh_l0"].zero_()
    return torch_model


def from_scratch(np_model):
    """A model.LSTMClassifier with exactly the weights of a scratch.LSTMClassifier (float32)."""
    return copy_numpy_to_torch(np_model, LSTMClassifier(**np_model.config))


def to_scratch(torch_model, dtype=np.float32):
    """A scratch.LSTMClassifier with the weights of a model.LSTMClassifier (bias_ih + bias_hh as its bias)."""
    np_model = ScratchClassifier(**torch_model.config, rng=np.random.default_rng(0), dtype=dtype)
    sd = {k: v.detach().cpu().double().numpy() for k, v in torch_model.state_dict().items()}
    weights = {key: sd[name].T if t else sd[name] for key, (name, t) in _MATRICES.items()}
    weights["lstm.b"] = sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"]
    np_model.load_state_dict({k: v.astype(dtype) for k, v in weights.items()})
    return np_model


def torch_grads_as_numpy(torch_model):
    """The .grad of a model.LSTMClassifier in the NumPy model's layout, keyed like its state_dict()."""
    params = dict(torch_model.named_parameters())
    out = {}
    for key, (name, transposed) in _MATRICES.items():
        g = params[name].grad.detach().cpu().numpy()
        out[key] = np.ascontiguousarray(g.T if transposed else g)
    return out
