"""NumPy optimizers and learning-rate schedules with torch.optim's exact update rules.

An optimizer takes a list of layers: objects with a `params` dict of arrays and, after `backward`, a `grads`
dict with the same keys (shared.nn.Layer). `step()` updates every array of `params` in place, so references to
them stay valid; gradients are looked up by name at every step, since `backward` may replace the arrays.
A `network` (anything with a `.layers` list) is accepted in place of the list.

    opt = Adam(net.layers, lr=1e-3)
    for epoch in range(epochs):
        opt.lr = cosine_lr(1e-3, epoch, total=epochs, warmup=2)
        for x, y in batches:
            net.forward(x); net.backward(dlogits); opt.step()

A parameter whose gradient is missing (its name absent from `grads`, or None) is skipped, as torch skips a
parameter whose .grad is None: no update, no weight decay, no buffer, and for Adam no step of its own step count.

`state_dict()` is a flat dict of numpy arrays (step count, lr and the per-parameter buffers), so it fits into an
.npz checkpoint next to the weights; `load_state_dict()` takes it back and training resumes bit for bit.
The work arrays are float32 when the parameters are: every scalar in the updates is a Python float, which NumPy 2
treats as "weak" and never uses to upcast an array.
"""

import math

import numpy as np


def _param_slots(layers):
    """[(layer, name), ...] for every trainable array, in layer order then `params` order."""
    layers = getattr(layers, "layers", layers)
    return [(layer, name) for layer in layers for name in getattr(layer, "params", {})]


class Optimizer:
    """Base class: holds the parameter slots, the learning rate, the step count and named per-slot buffers."""

    buffer_names: tuple = ()

    def __init__(self, layers, lr):
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.slots = _param_slots(layers)
        if not self.slots:
            raise ValueError("the optimizer got no parameters: pass a list of layers that have `params`")
        self.lr = float(lr)
        self.step_count = 0
        self.state = {name: [None] * len(self.slots) for name in self.buffer_names}
        self._scratch = [None] * len(self.slots)

    def _tmp(self, i, p):
        """A reusable work array shaped like parameter i (no allocation per step)."""
        t = self._scratch[i]
        if t is None or t.shape != p.shape or t.dtype != p.dtype:
            t = self._scratch[i] = np.empty_like(p)
        return t

    def _pairs(self):
        for i, (layer, name) in enumerate(self.slots):
            g = layer.grads.get(name)
            if g is None:  # layer not used in this backward pass: torch skips params with grad None
                continue
            yield i, layer.params[name], g

    def step(self):
        raise NotImplementedError

    def state_dict(self):
        """Flat {key: np.ndarray}: 'step', 'lr', and '<buffer>.<slot index>' for each buffer that exists."""
        out = {"step": np.array(self.step_count, dtype=np.int64), "lr": np.array(self.lr, dtype=np.float64)}
        for buf_name, bufs in self.state.items():
            for i, b in enumerate(bufs):
                if b is not None:
                    out[f"{buf_name}.{i}"] = b.copy()
        return out

    def load_state_dict(self, state):
        """Restore from `state_dict()` output (also as loaded back from an .npz file)."""
        self.step_count = int(state["step"])
        self.lr = float(state["lr"])
        for buf_name, bufs in self.state.items():
            for i in range(len(bufs)):
                key = f"{buf_name}.{i}"
                if key in state:
                    p = self.slots[i][0].params[self.slots[i][1]]
                    value = np.asarray(state[key])
                    if value.shape != p.shape:
                        raise ValueError(f"{key}: shape {value.shape} does not match parameter {p.shape}")
                    bufs[i] = value.astype(p.dtype, copy=True)
                else:
                    bufs[i] = None


class SGD(Optimizer):
    """torch.optim.SGD. With g = grad + weight_decay * p: the momentum buffer is buf = g on the first step and
    buf = momentum * buf + (1 - dampening) * g afterwards; the step direction is g + momentum * buf (Nesterov)
    or buf (plain momentum) or g (momentum 0); p -= lr * direction."""

    buffer_names = ("momentum_buffer",)

    def __init__(self, layers, lr, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(layers, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and zero dampening")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay, self.dampening = float(weight_decay), float(dampening)

    def step(self):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        bufs = self.state["momentum_buffer"]
        for i, p, g in self._pairs():
            if wd != 0:
                g = g + wd * p  # a new array: the layer's gradient stays as backward left it
            if mu != 0:
                buf = bufs[i]
                if buf is None:
                    buf = bufs[i] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    buf *= mu
                    if self.dampening:
                        buf += (1.0 - self.dampening) * g
                    else:
                        buf += g
                if self.nesterov:
                    tmp = self._tmp(i, p)
                    np.multiply(buf, mu, out=tmp)
                    tmp += g
                    g = tmp
                else:
                    g = buf
            tmp = self._tmp(i, p)
            np.multiply(g, lr, out=tmp)
            p -= tmp
        self.step_count += 1


class Adam(Optimizer):
    """torch.optim.Adam (decoupled=False, weight decay as L2: g = grad + wd * p) or torch.optim.AdamW
    (decoupled=True: p *= 1 - lr * wd before the update). With t = the parameter's own step count after increment
    (the steps on which it had a gradient, as in torch):
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
        p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, layers, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(layers, lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay, self.decoupled = float(eps), float(weight_decay), bool(decoupled)
        # torch's state[p]["step"]: each parameter's own count, advanced only on steps where it has a gradient,
        # so a parameter whose first gradient arrives late starts its bias correction at t = 1 too
        self.param_steps = [0] * len(self.slots)

    def step(self):
        self.step_count += 1
        lr, b1, b2, wd = self.lr, self.beta1, self.beta2, self.weight_decay
        ms, vs = self.state["exp_avg"], self.state["exp_avg_sq"]
        for i, p, g in self._pairs():
            self.param_steps[i] += 1
            t = self.param_steps[i]
            step_size = lr / (1.0 - b1**t)
            bc2_sqrt = math.sqrt(1.0 - b2**t)
            if wd != 0:
                if self.decoupled:
                    p *= 1.0 - lr * wd
                else:
                    g = g + wd * p
            if ms[i] is None:
                ms[i], vs[i] = np.zeros_like(p), np.zeros_like(p)
            m, v, tmp = ms[i], vs[i], self._tmp(i, p)
            # m += (1 - b1) (g - m)   (torch's lerp)
            np.subtract(g, m, out=tmp)
            tmp *= 1.0 - b1
            m += tmp
            # v = b2 v + (1 - b2) g^2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v *= b2
            v += tmp
            if step_size == 0:  # lr = 0: the moments still move, the parameters do not
                continue
            # p -= step_size * m / (sqrt(v) / c + eps), c = sqrt(bc2), computed with one pass fewer as
            # p -= m / ((sqrt(v) + eps c) / (step_size c))   (equal up to float rounding)
            np.sqrt(v, out=tmp)
            tmp += self.eps * bc2_sqrt
            tmp *= 1.0 / (step_size * bc2_sqrt)
            np.divide(m, tmp, out=tmp)
            p -= tmp

    def state_dict(self):
        """The base state plus 'step.<slot index>', each parameter's own step count (for those stepped)."""
        out = super().state_dict()
        out |= {f"step.{i}": np.array(t, dtype=np.int64) for i, t in enumerate(self.param_steps) if t}
        return out

    def load_state_dict(self, state):
        """Also takes a state dict saved before the per-parameter counts, which has only 'step': that count was
        then every parameter's, applied to those with moments (the others had never had a gradient)."""
        super().load_state_dict(state)
        shared_count = int(state["step"])
        self.param_steps = [
            int(state[f"step.{i}"]) if f"step.{i}" in state else shared_count if m is not None else 0
            for i, m in enumerate(self.state["exp_avg"])
        ]


def clip_grad_norm(layers, max_norm):
    """Scale every gradient in place so that their joint L2 norm is at most max_norm (torch's
    clip_grad_norm_: coefficient max_norm / (norm + 1e-6), capped at 1). Returns the norm before clipping."""
    grads = [layer.grads[name] for layer, name in _param_slots(layers) if name in layer.grads]
    total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total


# ---- learning-rate schedules: plain functions of the epoch (or step) t = 0, 1, 2, ...


def step_lr(base_lr, t, step_size, gamma=0.1):
    """lr = base_lr * gamma^(t // step_size)  (torch.optim.lr_scheduler.StepLR)."""
    return base_lr * gamma ** (t // step_size)


def exponential_lr(base_lr, t, gamma):
    """lr = base_lr * gamma^t  (torch.optim.lr_scheduler.ExponentialLR)."""
    return base_lr * gamma**t


def cosine_lr(base_lr, t, total, warmup=0, min_lr=0.0):
    """Linear warm-up for `warmup` steps, lr = base_lr * (t + 1) / warmup (reaches base_lr at t = warmup - 1),
    then cosine annealing from base_lr at t = warmup to min_lr at t = total (and min_lr afterwards):
        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - warmup) / (total - warmup))) / 2.
    With warmup = 0 this is torch's CosineAnnealingLR(T_max=total, eta_min=min_lr); with warmup it equals
    SequentialLR([LinearLR(1/warmup, 1, warmup - 1), CosineAnnealingLR(total - warmup, min_lr)], [warmup]).
    """
    if t < warmup:
        return base_lr * (t + 1) / warmup
    if t >= total:
        return min_lr
    progress = (t - warmup) / max(1, total - warmup)
    return min_lr + (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0
