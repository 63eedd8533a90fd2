"""Between the NumPy ResNet (scratch.py) and the PyTorch ResNet (model.py), the only file importing both: weights
copied either way, gradients brought back as NumPy, and both implementations behind the one classifier interface
the training loop drives (NumpyResNet, TorchResNet; see shared/run.py).

The two share their state-dict names; two layouts differ:
  convolution kernel  NumPy (kh, kw, C_in, C_out) (conv_forward's GEMM)  <->  torch (C_out, C_in, kh, kw);
  linear weight       NumPy (in, out) (x @ W)                           <->  torch (out, in).
torch's batch norms also count their batches (num_batches_tracked), which nothing here reads; they are left as
they are.

Both twins start from the same weights: model.py's He initialisation under torch.manual_seed(cfg.seed), copied
into the NumPy ResNet for --impl=numpy. Both read the same batches: train.py's pipeline gives NCHW tensors
(micro-batches, B, 3, 32, 32), which NumpyResNet turns into NHWC arrays.

TorchResNet also steps on several micro-batches (gradient accumulation) and, after distribute(), in torchrun's
processes (DistributedDataParallel). Each micro-batch is normalised by its own batch statistics, so M
micro-batches in one process compute what M processes with one each compute. Batch norm's running statistics
are then the mean of the M updates made from the same start (restored before each micro-batch, averaged over
the micro-batches and, under DDP, over the processes): the running mean moves exactly as it would with the
whole batch's mean, the running variance with the mean of the parts' variances. So every process holds the
same weights and statistics after every step, and neither depends on how the micro-batches are spread.
"""

import contextlib
import functools

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from resnet_repro import model, scratch
from shared import optim
from shared.adapters import NumpyAdapter, TorchAdapter
from shared.seeding import pick_device

DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


# ---- layouts -----------------------------------------------------------------------------------------------


def to_torch_layout(name, array):
    """A NumPy array of `name` as the torch tensor of the same name."""
    if array.ndim == 4:
        array = array.transpose(3, 2, 0, 1)  # (kh, kw, C_in, C_out) -> (C_out, C_in, kh, kw)
    elif name.endswith("fc.weight"):
        array = array.T  # (in, out) -> (out, in)
    return torch.from_numpy(np.ascontiguousarray(array))


def to_numpy_layout(name, tensor):
    """A torch tensor of `name` (a weight or its gradient) in the NumPy layout."""
    array = tensor.detach().cpu().numpy()
    if array.ndim == 4:
        array = array.transpose(2, 3, 1, 0)  # (C_out, C_in, kh, kw) -> (kh, kw, C_in, C_out)
    elif name.endswith("fc.weight"):
        array = array.T
    return np.ascontiguousarray(array)


@torch.no_grad()
def numpy_to_torch(np_state, torch_module):
    """Load a NumPy state dict (scratch.ResNet's, or a block's params and buffers) into a torch module with the
    same names, in place; returns the module. KeyError for a name the module lacks."""
    target = torch_module.state_dict()
    for name, array in np_state.items():
        target[name].copy_(to_torch_layout(name, np.asarray(array)))
    return torch_module


def torch_to_numpy(torch_module, np_model):
    """Load a torch module's weights into the NumPy model with the same names (scratch.ResNet), in place."""
    state = {k: v for k, v in torch_module.state_dict().items() if not k.endswith("num_batches_tracked")}
    np_model.load_state_dict({k: to_numpy_layout(k, v) for k, v in state.items()})
    return np_model


def torch_grads_as_numpy(torch_module):
    """{name: .grad in the NumPy layout} of every parameter that has one."""
    return {n: to_numpy_layout(n, p.grad) for n, p in torch_module.named_parameters() if p.grad is not None}


def torch_block_of(np_block):
    """The model.BasicBlock of a scratch.BasicBlock: same shapes, stride, shortcut, weights and statistics."""
    kernel = np_block.params["conv1.weight"]
    block = model.BasicBlock(kernel.shape[2], kernel.shape[3], np_block.stride, np_block.shortcut)
    if kernel.dtype == np.float64:
        block = block.double()
    return numpy_to_torch(np_block.params | np_block.buffers, block)


def initial_model(cfg):
    """model.ResNet of cfg with its He initialisation under torch.manual_seed(cfg.seed): both twins' start."""
    torch.manual_seed(cfg.seed)
    return model.ResNet(cfg.depth, cfg.plain, cfg.widths)


# ---- the two implementations behind one interface ----------------------------------------------------------


class NumpyResNet(NumpyAdapter):
    """scratch.ResNet + shared.optim.SGD (torch.optim.SGD's rule), one process, one batch per step."""

    def __init__(self, cfg):
        np_dtype = DTYPES[cfg.dtype][0]
        self.net = scratch.ResNet(cfg.depth, cfg.widths, cfg.plain, rng=np.random.default_rng(cfg.seed),
                                  dtype=np_dtype)  # fmt: skip
        torch_to_numpy(initial_model(cfg), self.net)
        self.opt = optim.SGD(self.net.layers, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.dtype = np_dtype

    def num_params(self):
        return self.net.num_params()

    def _nhwc(self, x):
        return np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1), dtype=self.dtype)

    def train_step(self, x, y, lr):
        """x (1, B, 3, 32, 32), y (1, B) tensors -> {"loss_sum", "correct", "count"}; the training-mode loss
        before the update."""
        self.opt.lr = lr
        x, y = self._nhwc(x[0]), y[0].numpy()
        loss, logits = self.net.loss(x, y)
        self.opt.step()
        return {"loss_sum": loss * len(y), "correct": int((logits.argmax(1) == y).sum()), "count": len(y)}

    def logits(self, x):
        """x (N, 3, 32, 32) tensor -> logits (N, classes), inference mode."""
        return self.net.forward(self._nhwc(x), training=False)


class TorchResNet(TorchAdapter):
    """model.ResNet + torch.optim.SGD, on cfg.device; bf16 autocast and channels_last on request."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        self.dtype = DTYPES[cfg.dtype][1]
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.net = initial_model(cfg).to(self.device, self.dtype).to(memory_format=self.memory_format)
        self.train_net = self.net  # the DistributedDataParallel wrapper after distribute()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)  # fmt: skip
        # bf16 autocast runs the convolutions and the linear layer in bfloat16; the weights, SGD's momentum,
        # batch norm's statistics and the loss stay float32
        self.autocast = functools.partial(torch.autocast, self.device.type, dtype=torch.bfloat16)
        self.bf16, self.eval_bf16 = cfg.bf16, cfg.eval_bf16

    def num_params(self):
        return self.net.num_params()

    def distribute(self):
        """Train through DistributedDataParallel in the process group torchrun's processes joined: backward
        averages the gradients over the processes; the running statistics are averaged after each step
        (broadcast_buffers=False: not rank 0's copied over). self.net stays the plain ResNet."""
        self.train_net = torch.nn.parallel.DistributedDataParallel(self.net, broadcast_buffers=False)

    def _input(self, x):
        return x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)

    def running_statistics(self):
        """Batch norm's running means and variances, and its batch counts (which nothing reads)."""
        buffers = dict(self.net.named_buffers())
        means = [b for n, b in buffers.items() if n.endswith(("running_mean", "running_var"))]
        return means, [b for n, b in buffers.items() if n.endswith("num_batches_tracked")]

    def train_step(self, x, y, lr):
        """One SGD step on this process's micro-batches x (M, b, 3, 32, 32), y (M, b): the gradient of the mean
        loss over all of them (and, under DDP, over every process's). Returns the sums over the whole global
        batch {"loss_sum", "correct", "count"} of the training-mode losses before the update."""
        self.set_lr(lr)
        self.net.train()
        parts, distributed = len(x), self.train_net is not self.net
        shared = parts > 1 or distributed  # batch norm's statistics: the mean of the parts' updates
        if shared:
            statistics, counts = self.running_statistics()
            start = [s.clone() for s in statistics + counts]
            mean = [torch.zeros_like(s) for s in statistics]
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss_sum, correct, count
        self.opt.zero_grad(set_to_none=True)
        for i in range(parts):
            if shared:
                for s, s0 in zip(statistics + counts, start):
                    s.copy_(s0)  # every micro-batch moves the statistics from the same start
            xi, yi = self._input(x[i]), y[i].to(self.device)
            last = i == parts - 1
            # under DDP the gradients are all-reduced (averaged) in the last micro-batch's backward only
            with self.train_net.no_sync() if distributed and not last else contextlib.nullcontext():
                with self.autocast(enabled=self.bf16):
                    logits = self.train_net(xi)  # (b, classes)
                loss = F.cross_entropy(logits.to(self.dtype), yi)  # the micro-batch's mean; bf16 cast up
                (loss / parts).backward()
            sums[0] += loss.detach() * len(yi)
            sums[1] += (logits.argmax(1) == yi).sum()
            sums[2] += len(yi)
            if shared:
                for m, s in zip(mean, statistics):
                    m += s / parts
        if shared:
            flat = torch.cat([m.flatten() for m in mean])
            if distributed:  # a sum over the processes (gloo has no average), then / processes
                dist.all_reduce(flat)
                flat /= dist.get_world_size()
            for s, part in zip(statistics, flat.split([s.numel() for s in statistics])):
                s.copy_(part.view_as(s))
        if distributed:
            dist.all_reduce(sums)
        self.opt.step()
        loss_sum, correct, count = sums.tolist()
        return {"loss_sum": loss_sum, "correct": int(correct), "count": int(count)}

    def logits(self, x):
        """x (N, 3, 32, 32) tensor -> logits (N, classes) as a NumPy array, evaluation mode; float32 unless
        cfg.eval_bf16 (training under --bf16 does not change it)."""
        self.net.eval()
        with torch.no_grad(), self.autocast(enabled=self.eval_bf16):
            return self.net(self._input(x)).to(self.dtype).cpu().numpy()

    def weight_spread(self):
        """Under DDP: the largest |difference| between any process's weights and statistics and rank 0's."""
        mine = torch.cat([v.detach().double().flatten() for v in self.net.state_dict().values()])
        first = mine.clone()
        dist.broadcast(first, src=0)
        spread = (mine - first).abs().max()
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        return spread.item()


def build(cfg):
    """The adapter for a checked cfg (cfg.impl "numpy" | "torch")."""
    return NumpyResNet(cfg) if cfg.impl == "numpy" else TorchResNet(cfg)
