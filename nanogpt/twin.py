"""Between the two implementations, the NumPy GPT (scratch.py) and the torch GPT (model.py); the only file that
imports both. Weights copied either way; both behind the one sequence-model interface the training loop drives
(NumpyGPT, TorchGPT; see shared/run.py), both from the same initial weights, those of the NumPy GPT of cfg.seed.

The two keep the same parameter names, shapes and layouts (torch's (out, in); NumPy computes x @ W.T), so a copy
is a plain dict copy. A GPT carries no state from one chunk to the next: every window is read from scratch.

Training is nanoGPT's: AdamW with betas (beta1, beta2), weight decay on the matrices only (the decay group:
Linear weights and the embeddings; LayerNorm weights and biases are not decayed), the gradients clipped to a
global norm of grad_clip first (0 = off; the norm is still measured). TorchGPT also steps on several
micro-batches (gradient accumulation) and, after distribute(), in torchrun's processes (DistributedDataParallel).
"""

import contextlib
import dataclasses
import functools
import math

import numpy as np
import torch

from nanogpt import model as torch_gpt
from nanogpt import scratch
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device

VOCAB_SIZE = torch_gpt.GPTConfig.vocab_size  # tiny Shakespeare's 65 characters


def gpt_fields(cfg, vocab_size=VOCAB_SIZE):
    """The GPTConfig fields of a training Config (the two GPTConfig dataclasses have the same fields)."""
    names = [f.name for f in dataclasses.fields(torch_gpt.GPTConfig) if f.name != "vocab_size"]
    return {name: getattr(cfg, name) for name in names} | {"vocab_size": vocab_size}


def scratch_model(cfg, vocab_size=VOCAB_SIZE, dtype=np.float32):
    """The seeded NumPy GPT of cfg: both implementations start from its weights."""
    config = scratch.GPTConfig(**gpt_fields(cfg, vocab_size))
    return scratch.GPT(config, rng=np.random.default_rng(cfg.seed), dtype=dtype)


def numpy_to_torch(np_model, torch_model):
    """Give torch_model exactly the weights of np_model (dtype follows torch_model); returns torch_model."""
    weights = {name: torch.from_numpy(np.asarray(w)) for name, w in np_model.state_dict().items()}
    torch_model.load_state_dict(weights)  # strict: the same names and shapes, or an error
    return torch_model


def torch_to_numpy(torch_model, np_model):
    """Give np_model exactly the weights of torch_model (dtype follows np_model); returns np_model."""
    dtypes = {name: w.dtype for name, w in np_model.state_dict().items()}
    weights = {
        name: w.detach().cpu().double().numpy().astype(dtypes.get(name, np.float64))
        for name, w in torch_model.state_dict().items()
    }
    np_model.load_state_dict(weights)
    return np_model


def torch_twin(cfg, vocab_size=VOCAB_SIZE):
    """The torch GPT of cfg (float32) with the initial weights of scratch_model(cfg)."""
    net = torch_gpt.GPT(torch_gpt.GPTConfig(**gpt_fields(cfg, vocab_size)))
    return numpy_to_torch(scratch_model(cfg, vocab_size), net)


class NumpyGPT(NumpyAdapter):
    """scratch.GPT + two shared.optim.Adam(decoupled=True), one per parameter group, + clip_grad_norm."""

    def __init__(self, cfg, vocab_size=VOCAB_SIZE):
        self.net = scratch_model(cfg, vocab_size)
        self.groups = self.net.param_groups()  # (decay, no_decay)
        decay, no_decay = self.groups
        betas = (cfg.beta1, cfg.beta2)
        self.opt_decay = optim.Adam(
            [decay], cfg.learning_rate, betas, weight_decay=cfg.weight_decay, decoupled=True
        )
        self.opt_no_decay = optim.Adam([no_decay], cfg.learning_rate, betas, weight_decay=0.0, decoupled=True)
        self.clip = cfg.grad_clip or math.inf
        self.generators = [self.net.rng]  # the dropout masks

    def num_params(self):
        return self.net.num_params()

    def train_step(self, x, y, lr):
        """One AdamW step on the windows x, y (B, T); grad_norm is the global norm before clipping."""
        self.opt_decay.lr = self.opt_no_decay.lr = lr
        loss = self.net.loss_and_backward(x, y)
        norm = optim.clip_grad_norm(self.groups, self.clip)
        self.opt_decay.step()
        self.opt_no_decay.step()
        return {"loss": float(loss), "grad_norm": norm}

    def logits(self, x):
        return self.net.forward(x, training=False)  # (B, T, V)

    def state_dict(self):
        return {
            "model": self.net.state_dict(),
            "opt_decay": self.opt_decay.state_dict(),
            "opt_no_decay": self.opt_no_decay.state_dict(),
        }

    def load_state_dict(self, state):
        self.net.load_state_dict(state["model"])
        self.opt_decay.load_state_dict(state["opt_decay"])
        self.opt_no_decay.load_state_dict(state["opt_no_decay"])


class TorchGPT(TorchAdapter):
    """model.GPT + torch.optim.AdamW (model.configure_optimizers) + clip_grad_norm_, started from the initial
    weights of the NumPy GPT of the same seed."""

    def __init__(self, cfg, vocab_size=VOCAB_SIZE):
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)  # the dropout masks
        self.net = torch_twin(cfg, vocab_size).to(self.device)
        self.train_net = self.net  # what the training step runs: the GPT, or its DDP wrapper (distribute)
        betas = (cfg.beta1, cfg.beta2)
        self.opt = self.net.configure_optimizers(cfg.weight_decay, cfg.learning_rate, betas, cfg.fused)
        self.clip = cfg.grad_clip or math.inf
        # bf16 autocast runs the matrix products in bfloat16; the weights, AdamW's moments, the LayerNorms and
        # the loss stay fp32
        self.autocast = functools.partial(
            torch.autocast, self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )

    def num_params(self):
        return self.net.num_params()

    def _tensor(self, a):
        return torch.from_numpy(np.array(a, dtype=np.int64)).to(self.device)  # a writable copy

    def distribute(self):
        """Train through DistributedDataParallel in the process group torchrun's processes joined: backward
        averages the gradients over the processes. self.net stays the plain GPT, so the weights, checkpoints
        and evaluation keep their names and never synchronise."""
        self.train_net = torch.nn.parallel.DistributedDataParallel(self.net)

    def weight_spread(self):
        """Under DDP: the largest |difference| between any process's weights and rank 0's (0 while DDP keeps
        them in step)."""
        mine = torch.cat([p.detach().flatten() for p in self.net.parameters()])
        first = mine.clone()
        torch.distributed.broadcast(first, src=0)
        spread = (mine - first).abs().max()
        torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
        return spread.item()

    def train_step(self, x, y, lr):
        """One AdamW step on the windows x, y (B, T), or on the micro-batches x, y (a, B, T) with their
        gradients accumulated: the gradient of the mean loss over all a B windows. Under DDP the processes'
        gradients are averaged in the last micro-batch's backward only (no_sync before), and "loss" is their
        mean too."""
        self.set_lr(lr)
        self.net.train()
        shape = (-1, *np.shape(x)[-2:])
        x, y = self._tensor(x).reshape(shape), self._tensor(y).reshape(shape)  # (a, B, T)
        distributed = self.train_net is not self.net
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for i in range(len(x)):
            last = i == len(x) - 1
            with contextlib.nullcontext() if last or not distributed else self.train_net.no_sync():
                with self.autocast():
                    _, loss = self.train_net(x[i], y[i])
                (loss / len(x)).backward()
            total += loss.detach()
        mean_loss = total / len(x)
        if distributed:  # a sum, then / processes: gloo has no average
            torch.distributed.all_reduce(mean_loss)
            mean_loss /= torch.distributed.get_world_size()
        norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)  # the same on every process
        self.opt.step()
        return {"loss": mean_loss.item(), "grad_norm": float(norm)}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad():
            logits, _ = self.net(self._tensor(x))
        return logits.float().cpu().numpy()  # (B, T, V)


def build(cfg, vocab_size=VOCAB_SIZE):
    """The adapter for cfg.impl ("numpy" | "torch")."""
    return NumpyGPT(cfg, vocab_size) if cfg.impl == "numpy" else TorchGPT(cfg, vocab_size)
