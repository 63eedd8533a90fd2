"""Training-health check for a NumPy MLP configuration (curriculum 5.2, AP2.1 "debug poor training").

    python -m mlp_mnist.diagnose                               # the healthy preset
    python -m mlp_mnist.diagnose --preset=lr_too_high
    python -m mlp_mnist.diagnose --preset=healthy --lr=3 --init=large
    python -m mlp_mnist.diagnose --threads=1                   # NumPy's BLAS threads (0, the default: its own)

Runs, on a slice of real MNIST (shared.data; missing data is its one-line error, since the thresholds below are
calibrated on MNIST):
  init_loss          loss at initialisation vs ln(10) (a 10-way guess)
  gradient_check     every layer's backward against finite differences (shrunk float64 copy, tiny batch)
  gradient_norms     per-layer weight-gradient norms at init: zero, vanishing or exploding?
  overfit_one_batch  can the model drive a 32-sample batch to (near) zero loss?
  finite             NaN/inf in a short training run, naming the first step and layer
  training_progress  does the loss of that short run go down?
  update_ratio       ||update|| / ||W|| per layer during that run (about 1e-3 is healthy)
  dead_units         dead ReLUs / saturated sigmoid-tanh units, at init and after the run
Each prints PASS, WARN or FAIL with a suggested fix. `diagnose(cfg)` returns the findings as a list of `Finding`.

Presets of broken setups: lr_too_high, zero_init, unnormalised_deep_sigmoid, wrong_backward (a Linear whose
backward drops the bias gradient: training still "works", only the gradient check sees it), and healthy.
"""

import copy
import dataclasses
import math
import sys

import numpy as np

from mlp_mnist.scratch import Dropout, Linear, ReLU, Sigmoid, Tanh, build_mlp, softmax_cross_entropy
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.data import load_mnist
from shared.gradient_check import gradient_check
from shared.optim import SGD, Adam
from shared.threads import set_threads

LN10 = math.log(10.0)
STATUS_ORDER = {"PASS": 0, "WARN": 1, "FAIL": 2}


@dataclasses.dataclass
class DiagnoseConfig:
    sizes: list = dataclasses.field(default_factory=lambda: [784, 128, 64, 10])
    activation: str = "relu"
    init: str = "he"
    batchnorm: bool = False
    dropout: float = 0.0
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.05
    momentum: float = 0.9
    normalise: bool = True  # standardise pixels; false: raw 0..255 values
    broken: str = ""  # "" | no_bias_grad | dw_mean: replace the second Linear by a BuggyLinear with this bug
    n_data: int = 2048  # images from the start of the MNIST training set
    batch_size: int = 64
    train_steps: int = 60  # the short run behind finite / training_progress / update_ratio / dead_units
    overfit_size: int = 32
    overfit_steps: int = 200
    seed: int = 0
    threads: int = 0  # shared.threads.set_threads: 0 leaves the libraries' choice


PRESETS = {
    "healthy": {},
    "lr_too_high": {"lr": 5.0},
    "zero_init": {"init": "zero"},
    "unnormalised_deep_sigmoid": {
        "sizes": [784, 128, 128, 128, 128, 128, 128, 10],
        "activation": "sigmoid",
        "init": "xavier",
        "normalise": False,
    },
    "wrong_backward": {"broken": "no_bias_grad"},
}


@dataclasses.dataclass
class Finding:
    check: str
    status: str  # PASS | WARN | FAIL
    message: str
    fix: str = ""
    details: dict = dataclasses.field(default_factory=dict)

    def line(self):
        text = f"{self.status:4}  {self.check:18} {self.message}"
        if self.fix and self.status != "PASS":
            text += f"\n      fix: {self.fix}"
        return text


def preset_config(name, argv=()):
    """The DiagnoseConfig of preset `name` with `--field=value` overrides from argv applied."""
    if name not in PRESETS:
        raise UserError(f"--preset={name}: choose one of {', '.join(PRESETS)}")
    return parse_config(dataclasses.replace(DiagnoseConfig(), **PRESETS[name]), list(argv))


# ---- a deliberately broken layer


class BuggyLinear(Linear):
    """Linear with a backward bug. no_bias_grad: the bias gradient is dropped (left at zero); dw_mean: dW is
    averaged over the batch a second time (the loss gradient already carries the 1/N)."""

    def __init__(self, *args, bug="no_bias_grad", **kwargs):
        super().__init__(*args, **kwargs)
        if bug not in ("no_bias_grad", "dw_mean"):
            raise UserError(f"--broken={bug}: choose no_bias_grad or dw_mean")
        self.bug = bug

    def backward(self, grad):
        dx = super().backward(grad)
        if self.bug == "no_bias_grad":
            self.grads["b"] = np.zeros_like(self.params["b"])
        else:
            self.grads["W"] = self.grads["W"] / grad.shape[0]
        return dx


def build_network(cfg):
    net = build_mlp(
        cfg.sizes, cfg.activation, dropout=cfg.dropout, batchnorm=cfg.batchnorm, init=cfg.init, seed=cfg.seed
    )
    if cfg.broken:
        linears = [i for i, layer in enumerate(net.layers) if isinstance(layer, Linear)]
        k = linears[1] if len(linears) > 1 else linears[0]
        old = net.layers[k]
        buggy = BuggyLinear(*old.params["W"].shape, bug=cfg.broken, rng=np.random.default_rng(0))
        buggy.params = old.params
        net.layers[k] = buggy
    return net


def make_optimizer(cfg, net):
    if cfg.optimizer == "sgd":
        return SGD(net.layers, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return Adam(net.layers, lr=cfg.lr)
    raise UserError(f"--optimizer={cfg.optimizer}: choose sgd or adam")


def load_slice(cfg):
    """(x (n, 784) float32, y (n,) int64, description); missing MNIST is the data loader's UserError."""
    (x, y), _ = load_mnist()
    x, y = x[: cfg.n_data], y[: cfg.n_data]
    source = f"the first {len(x)} MNIST training images"
    x = x.reshape(len(x), -1).astype(np.float32)
    if cfg.normalise:
        x /= 255.0
        x -= 0.1307
        x /= 0.3081
    return x, np.asarray(y, dtype=np.int64), source


def _layer_name(k, layer):
    return f"layer {k} ({type(layer).__name__})"


def _linear_indices(net):
    return [k for k, layer in enumerate(net.layers) if isinstance(layer, Linear)]


def _worst(statuses):
    return max(statuses, key=STATUS_ORDER.__getitem__) if statuses else "PASS"


# ---- the checks


def check_init_loss(net, x, y):
    logits = net.forward(x, training=False)
    loss, _ = softmax_cross_entropy(logits, y)
    details = {"loss": loss, "expected": LN10}
    if not math.isfinite(loss):
        return Finding("init_loss", "FAIL", f"loss at init is {loss}", "inputs or init overflow", details)
    gap = abs(loss - LN10)
    status = "PASS" if gap < 0.75 else "WARN" if gap < 2.0 else "FAIL"
    return Finding(
        "init_loss",
        status,
        f"loss at init {loss:.3f} vs ln(10) = {LN10:.3f}",
        "the initial logits are too large or biased: normalise the inputs and scale the last layer's init down "
        "(xavier/he, or a factor of 0.1)",
        details,
    )


def _shrink(layer, size=5):
    """A float64 copy of `layer` with every param/buffer sliced to at most `size` along each axis, and a fitting
    input width, so that finite differences over every element stay cheap."""
    small = copy.deepcopy(layer)
    for store in (small.params, getattr(small, "buffers", {})):
        for k, v in store.items():
            store[k] = np.array(v[tuple(slice(0, size) for _ in v.shape)], dtype=np.float64)
    if "W" in small.params:
        width = small.params["W"].shape[0]
    elif "gamma" in small.params:
        width = small.params["gamma"].shape[0]
    else:
        width = size
    return small, width


def check_gradients(net, seed=0, tol=1e-6):
    rng = np.random.default_rng(seed)
    errors, bad = {}, []
    for k, layer in enumerate(net.layers):
        small, width = _shrink(layer)
        x = rng.standard_normal((4, width))
        errs = gradient_check(small, x, forward_kwargs={"training": True}, seed=seed)
        errors[k] = errs
        bad += [(k, name, err) for name, err in errs.items() if not err < tol]
    worst = max((e for errs in errors.values() for e in errs.values()), default=0.0)
    if bad:
        k, name, err = bad[0]
        where = ", ".join(
            f"{_layer_name(k, net.layers[k])} d{name} rel. error {err:.2g}" for k, name, err in bad
        )
        return Finding(
            "gradient_check",
            "FAIL",
            f"backward disagrees with finite differences: {where}",
            f"re-derive the backward pass of {type(net.layers[k]).__name__} (every param gets a gradient; "
            "dW = x^T dy, db = sum_n dy, dx = dy W^T)",
            {"errors": errors},
        )
    return Finding(
        "gradient_check", "PASS", f"every layer's backward matches (max rel. error {worst:.1e})", "", {}
    )


def _grad_norms(net, x, y):
    net.loss_and_grads(x, y)
    return {k: float(np.linalg.norm(net.layers[k].grads["W"])) for k in _linear_indices(net)}


def check_grad_norms(net, x, y):
    norms = _grad_norms(copy.deepcopy(net), x, y)
    text = ", ".join(f"L{k} {v:.2e}" for k, v in norms.items())
    details = {"norms": norms}
    values = list(norms.values())
    if not all(math.isfinite(v) for v in values):
        return Finding(
            "gradient_norms", "FAIL", f"non-finite weight gradients: {text}", "see 'finite'", details
        )
    zero = [k for k, v in norms.items() if v == 0.0]
    if zero:
        return Finding(
            "gradient_norms",
            "FAIL",
            f"no gradient reaches {', '.join(_layer_name(k, net.layers[k]) for k in zero)}: {text}",
            "all-zero weights (or dead units) pass no gradient back: break the symmetry with random init (he for "
            "ReLU, xavier for tanh/sigmoid)",
            details,
        )
    ratio = max(values) / min(values)
    details["ratio"] = ratio
    status = "PASS" if ratio < 100 else "WARN" if ratio < 1e4 else "FAIL"
    first, last = values[0], values[-1]
    trend = "vanishing towards the input" if first < last else "exploding towards the input"
    return Finding(
        "gradient_norms",
        status,
        f"weight-gradient norms {text} (max/min {ratio:.1e}{'' if status == 'PASS' else ', ' + trend})",
        "gradients vanish or explode through the depth: normalise the inputs, use ReLU with he init (or "
        "BatchNorm), or fewer layers",
        details,
    )


def check_overfit(cfg, x, y):
    net = build_network(cfg)
    opt = make_optimizer(cfg, net)
    losses = []
    for _ in range(cfg.overfit_steps):
        loss, _ = net.loss_and_grads(x, y)
        losses.append(loss)
        if not math.isfinite(loss):
            break
        opt.step()
    final = net.evaluate(x, y)[0] if math.isfinite(losses[-1]) else losses[-1]
    details = {"final_loss": final, "start_loss": losses[0], "steps": len(losses)}
    msg = f"{len(x)} samples, {cfg.overfit_steps} steps: loss {losses[0]:.3f} -> {final:.3g}"
    fix = (
        "a model that cannot memorise a few examples is broken or mis-set: check the learning rate (try 10x "
        "lower/higher), the init and the backward pass"
    )
    if not math.isfinite(final):
        return Finding("overfit_one_batch", "FAIL", msg + " (diverged)", fix, details)
    status = "PASS" if final < 0.05 else "WARN" if final < 0.5 else "FAIL"
    return Finding("overfit_one_batch", status, msg, fix, details)


def _dead_fractions(net, x):
    """{layer k: fraction} of dead ReLU units (zero on every sample) or saturated sigmoid/tanh outputs, on a
    copy of the network in training mode (BatchNorm uses the batch's statistics) with dropout left out."""
    out = {}
    h = np.asarray(x, dtype=net.dtype)
    for k, layer in enumerate(copy.deepcopy(net.layers)):
        if isinstance(layer, Dropout):
            continue
        h = layer.forward(h, training=True)
        if isinstance(layer, ReLU):
            out[k] = float(np.mean(np.all(h <= 0, axis=0)))
        elif isinstance(layer, Sigmoid):
            out[k] = float(np.mean((h < 0.01) | (h > 0.99)))
        elif isinstance(layer, Tanh):
            out[k] = float(np.mean(np.abs(h) > 0.99))
    return out


def short_run(cfg, net, x, y):
    """Train for cfg.train_steps steps, checking every forward output, gradient and parameter for NaN/inf.
    Returns (losses, update ratios {k: [..]}, first non-finite place or None)."""
    opt = make_optimizer(cfg, net)
    rng = np.random.default_rng(cfg.seed)
    linears = _linear_indices(net)
    ratios = {k: [] for k in linears}
    losses = []
    for step in range(cfg.train_steps):
        idx = rng.choice(len(x), size=cfg.batch_size, replace=False)
        h = np.asarray(x[idx], dtype=net.dtype)
        for k, layer in enumerate(net.layers):
            h = layer.forward(h, training=True)
            if not np.all(np.isfinite(h)):
                return losses, ratios, f"step {step}: {_layer_name(k, layer)} forward output"
        loss, grad = softmax_cross_entropy(h, y[idx])
        if not math.isfinite(loss):
            return losses, ratios, f"step {step}: the loss"
        losses.append(loss)
        for k in reversed(range(len(net.layers))):
            grad = net.layers[k].backward(grad)
            for name, g in net.layers[k].grads.items():
                if not np.all(np.isfinite(g)):
                    return losses, ratios, f"step {step}: {_layer_name(k, net.layers[k])} gradient d{name}"
        before = {k: net.layers[k].params["W"].copy() for k in linears}
        opt.step()
        for k in linears:
            w = net.layers[k].params["W"]
            if not np.all(np.isfinite(w)):
                return (
                    losses,
                    ratios,
                    f"step {step}: {_layer_name(k, net.layers[k])} weights after the update",
                )
            w_norm = float(np.linalg.norm(before[k]))
            d_norm = float(np.linalg.norm(w - before[k]))
            ratios[k].append(d_norm / w_norm if w_norm > 0 else (0.0 if d_norm == 0 else math.inf))
    return losses, ratios, None


def check_finite(where, cfg):
    if where is None:
        return Finding("finite", "PASS", f"no NaN/inf in {cfg.train_steps} training steps", "", {})
    return Finding(
        "finite",
        "FAIL",
        f"first NaN/inf at {where}",
        "the run diverged: lower the learning rate (10x), normalise the inputs, or clip gradients "
        "(shared.optim.clip_grad_norm)",
        {"where": where},
    )


def check_progress(losses, where, cfg):
    if where is not None or len(losses) < 10:
        return Finding(
            "training_progress",
            "FAIL",
            f"the run stopped after {len(losses)} steps (non-finite values)",
            "lower the learning rate",
            {"losses": losses},
        )
    start, end = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
    rel = (start - end) / start
    status = "PASS" if rel > 0.1 else "WARN" if rel > 0.0 else "FAIL"
    return Finding(
        "training_progress",
        status,
        f"loss over {len(losses)} steps: {start:.3f} -> {end:.3f} ({100 * rel:+.0f}% lower)",
        "the loss barely moves: raise the learning rate, fix the init (zero weights cannot learn) or normalise "
        "the inputs",
        {"start": start, "end": end},
    )


def check_update_ratios(ratios, net):
    medians = {k: float(np.median(v)) for k, v in ratios.items() if v}
    if not medians:
        return Finding(
            "update_ratio", "FAIL", "no update was made (the run stopped at once)", "see 'finite'", {}
        )
    text = ", ".join(f"L{k} {v:.1e}" for k, v in medians.items())
    statuses = {}
    for k, r in medians.items():
        if not math.isfinite(r) or r == 0.0:
            statuses[k] = "FAIL"
        elif 1e-4 <= r <= 3e-2:
            statuses[k] = "PASS"
        elif 1e-5 <= r <= 1e-1:
            statuses[k] = "WARN"
        else:
            statuses[k] = "FAIL"
    status = _worst(list(statuses.values()))
    big = any(math.isfinite(r) and r > 3e-2 for r in medians.values()) or any(
        math.isinf(r) for r in medians.values()
    )
    if any(r == 0.0 for r in medians.values()):
        fix = "some weights never change: they get no gradient (zero init or dead units); use random init"
    elif big:
        fix = "updates are too large relative to the weights: lower the learning rate"
    else:
        fix = "updates are tiny relative to the weights: raise the learning rate or fix vanishing gradients"
    return Finding(
        "update_ratio",
        status,
        f"median ||dW||/||W|| per step: {text} (about 1e-3 is typical; 1e-4..3e-2 passes)",
        fix,
        {"medians": medians, "per_layer_status": statuses},
    )


def check_dead_units(before, after, net):
    statuses, parts = [], []
    for k in before:
        worst = max(before[k], after.get(k, before[k]))
        statuses.append("PASS" if worst < 0.1 else "WARN" if worst < 0.5 else "FAIL")
        parts.append(f"L{k} {100 * before[k]:.0f}%->" + (f"{100 * after[k]:.0f}%" if k in after else "n/a"))
    if not before:
        return Finding("dead_units", "PASS", "no activation layers", "", {})
    kinds = {type(net.layers[k]).__name__ for k in before}
    what = "dead ReLUs" if kinds == {"ReLU"} else "dead/saturated units"
    status = _worst(statuses)
    fix = (
        "units that never activate (ReLU) or sit on a flat part of sigmoid/tanh pass no gradient: normalise the "
        "inputs, use he init for ReLU / xavier for tanh, lower the learning rate, or add BatchNorm"
    )
    return Finding(
        "dead_units",
        status,
        f"{what} at init -> after the run: {', '.join(parts)}",
        fix,
        {"init": before, "after": after},
    )


def diagnose(cfg, log=None):
    """Run every check on configuration `cfg` (DiagnoseConfig); returns a list of Finding, one per check."""
    x, y, source = load_slice(cfg)
    if log:
        log(f"data: {source}")
        log(
            f"config: MLP {'-'.join(map(str, cfg.sizes))} {cfg.activation}, init {cfg.init}, {cfg.optimizer} lr "
            f"{cfg.lr}, inputs {'standardised' if cfg.normalise else 'raw 0..255'}"
            + (f", BUG {cfg.broken}" if cfg.broken else "")
        )
    net = build_network(cfg)
    probe = x[:256], y[:256]
    findings = [
        check_init_loss(net, *probe),
        check_gradients(net, seed=cfg.seed),
        check_grad_norms(net, *probe),
    ]
    with np.errstate(over="ignore", invalid="ignore"):
        findings.append(check_overfit(cfg, x[: cfg.overfit_size], y[: cfg.overfit_size]))
    dead_before = _dead_fractions(net, probe[0])
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by the 'finite' check
        losses, ratios, where = short_run(cfg, net, x, y)
    dead_after = _dead_fractions(net, probe[0]) if where is None else {}
    findings += [
        check_finite(where, cfg),
        check_progress(losses, where, cfg),
        check_update_ratios(ratios, net),
        check_dead_units(dead_before, dead_after, net),
    ]
    return findings


def main(argv):
    """--preset=NAME picks the starting configuration, other --field=value flags override it; --strict makes
    the exit status 1 when any check FAILs (default 0: a diagnosis that finds problems is a successful run)."""
    argv = list(argv)
    preset, strict, rest = "healthy", False, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
        elif arg == "--preset" and i + 1 < len(argv):
            preset, i = argv[i + 1], i + 1
        elif arg in ("--strict", "--strict=true"):
            strict = True
        else:
            rest.append(arg)
        i += 1
    cfg = preset_config(preset, rest)
    set_threads(cfg.threads)
    print(f"preset: {preset}")
    findings = diagnose(cfg, log=print)
    for f in findings:
        print(f.line())
    counts = {s: sum(f.status == s for f in findings) for s in STATUS_ORDER}
    print(f"summary: {counts['PASS']} PASS, {counts['WARN']} WARN, {counts['FAIL']} FAIL")
    return 1 if strict and counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
