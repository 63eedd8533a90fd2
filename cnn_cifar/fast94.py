"""A fast CNN trained from scratch to >= 94% CIFAR-10 test accuracy on a CPU (curriculum 5.3, AP3.1).

    python -m cnn_cifar.fast94 --config=cnn_cifar/configs/fast94.py   # headline: ~19-20 min on 2 idle cores
    python -m cnn_cifar.fast94 --config=cnn_cifar/configs/fast94_quick.py   # a quick look (~1 min)
    python -m cnn_cifar.fast94 --epochs=8 --run=fast94-8ep            # the GPU reference's length (~16 min)

The recipe is our implementation of the public speed-run line Page (2018, "How to train your ResNet") ->
hlb-CIFAR10 (tysam-code, 2023) -> airbench94 (Jordan 2024, arXiv 2404.00498) -> airbench94 with Muon
(Jordan 2024: the same network in 8 instead of 9.9 epochs, 94.01% mean on a GPU):

* Network (cnn_cifar/model.py's FastNet, 1.97M parameters): a frozen 2x2 patch-whitening convolution (filters = eigenvectors of the
  covariance of 2x2 training patches / sqrt(eigenvalue), each with both signs) + GELU, then three blocks
  conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU of widths 64/256/256, a 3x3 max-pool and a
  bias-free linear head whose output is divided by the width. BatchNorm keeps its scale fixed at 1 and
  uses fast running statistics (momentum 0.6); every 3x3 conv starts as an identity map on its first
  channels.
* Optimisation: convolution filters with Muon (Nesterov momentum, then the update is orthogonalised by a
  Newton-Schulz iteration and each filter bank is renormalised), the BN shifts, the whitening bias and the
  head with Nesterov SGD. Batch 2000, label smoothing 0.2, summed loss, all learning rates decaying
  linearly to 0; the whitening bias trains only during the first 3 epochs.
* Data: random translation by up to 2 pixels (reflect padding) and the "alternating" flip (each image is
  flipped in every other epoch, starting from a random half), built on whole batches of uint8 tensors
  (cnn_cifar/augment.py's EpochSampler).
* Evaluation: test-time augmentation over 6 views (identity and mirror, and both shifted one pixel up-left
  and down-right), on the whole test set, once at the end (--eval_every=N also evaluates along the way).
* CPU speed: bfloat16 autocast (parameters, optimizer and BatchNorm statistics stay fp32), channels_last
  tensors, the whole dataset in one tensor (no per-image DataLoader), --threads torch threads.
  Measured here (AMD EPYC, 2 cores): about 2.3 ms per training image (113 s per epoch) and 0.8 ms per TTA
  view; fp32 is 1.4x and NCHW 1.5x slower per step, torch.compile slower still (and 70 s to compile).

shared.run.Run does the plumbing around the loop: each epoch ends with an atomic checkpoint in
cnn_cifar/checkpoints/resume/<run>.pt, and rerunning the same command resumes exactly from it (--resume=false
starts over). The wall clock counts everything from loading the data to the final test-set evaluation, and a
resumed session adds its time from the checkpoint on. A finished run writes cnn_cifar/results/<run>.json
(group "fast94"), TensorBoard scalars under runs/cnn_cifar/<run>, and with --save_weights its weights (fp32,
7.9 MB) to cnn_cifar/checkpoints/<run>.pt (load_weights() reads them).
"""

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from cnn_cifar.augment import EpochSampler, normalize_nchw, to_nchw
from cnn_cifar.model import FastNet, FrozenScaleBN, count_params
from shared.checkpoint import load_torch
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.run import Run


@dataclasses.dataclass
class Config:
    run: str = "fast94"  # name of the run record, checkpoint and TensorBoard folder
    epochs: float = 10.0  # passes over the training set (fractions allowed)
    batch_size: int = 2000
    widths: tuple = (64, 256, 256)  # channels of the three conv blocks
    lr: float = 0.24  # Muon step size for the conv filters (an update has singular values near 1)
    muon_momentum: float = 0.6
    bias_lr: float = 0.053  # SGD for the BatchNorm shifts and the whitening bias
    head_lr: float = 0.67  # SGD for the linear head
    momentum: float = 0.85  # Nesterov momentum of that SGD
    weight_decay: float = 2e-6  # per example in the batch, on the SGD parameters
    label_smoothing: float = 0.2
    bn_momentum: float = 0.6  # weight of the old running statistics
    whiten_bias_epochs: float = 3.0  # the whitening bias trains for this long, then is frozen
    translate: int = 2  # random shifts of up to this many pixels (reflect padding); 0 = none
    flip: str = "alternate"  # alternate | random | none
    tta: int = 2  # test-time augmentation: 0 none, 1 mirror, 2 mirror + one-pixel shifts (6 views)
    eval_every: int = 0  # also evaluate (with --tta) every this many epochs, for time_to_94_s; 0 = at the end
    precision: str = "bf16"  # bf16 (autocast) | fp32
    channels_last: bool = True
    compile: bool = False  # torch.compile the network (slower overall on a 2-core CPU, see REPORT)
    threads: int = 0  # torch (and BLAS) threads; 0 = the libraries' default (one per core)
    train_subset: int = 0  # train on a seeded random subset of this many images (0 = all 50,000)
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | auto
    group: str = "fast94"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in cnn_cifar/checkpoints/<run>.pt
    resume: bool = True
    progress: bool = True


def check(cfg):
    if cfg.flip not in ("alternate", "random", "none"):
        raise UserError(f"--flip={cfg.flip}: choose one of alternate, random, none")
    if cfg.precision not in ("bf16", "fp32"):
        raise UserError(f"--precision={cfg.precision}: choose bf16 or fp32")
    if cfg.tta not in (0, 1, 2):
        raise UserError(f"--tta={cfg.tta}: choose 0 (none), 1 (mirror) or 2 (mirror and shifts)")
    if not (cfg.epochs > 0 and cfg.batch_size >= 1 and cfg.lr > 0 and cfg.train_subset >= 0):
        raise UserError("need --epochs > 0, --batch_size >= 1, --lr > 0 and --train_subset >= 0")
    if not 0 <= cfg.translate <= 8 or cfg.eval_every < 0 or cfg.threads < 0:
        raise UserError("need 0 <= --translate <= 8, --eval_every >= 0 and --threads >= 0")
    widths = tuple(cfg.widths) if isinstance(cfg.widths, (list, tuple)) else ()
    if len(widths) != 3 or not all(isinstance(w, int) and w > 0 for w in widths):
        raise UserError(f"--widths={cfg.widths}: expected three positive integers, e.g. --widths=64,256,256")
    if cfg.train_subset and cfg.train_subset < 10:
        raise UserError("--train_subset must be 0 (all images) or at least 10")
    return dataclasses.replace(cfg, widths=widths)


# ---- Muon --------------------------------------------------------------------------------------------------


def orthogonalize(g, steps=3, eps=1e-7):
    """Push the singular values of matrix g towards 1 while keeping its singular vectors.

    A quintic Newton-Schulz iteration X <- aX + b(XX^T)X + c(XX^T)^2 X on g / |g|_F (so every singular value
    starts in (0, 1]); the coefficients make the map steep near 0, and 3 steps leave the singular values
    roughly in [0.5, 1.5], which trains as well as exact orthogonalisation (Jordan et al. 2024, Muon).
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float() / (g.norm() + eps)
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-schulz, for conv filters (out, in, kh, kw) seen as out x (in*kh*kw).

    Each step: Nesterov momentum on the gradient, the filter bank is rescaled to Frobenius norm sqrt(out)
    (so the step size is relative), then it moves by -lr times the orthogonalised momentum.
    """

    def __init__(self, params, lr, momentum=0.6, nesterov=True):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buf = state["momentum_buffer"].mul_(mu).add_(p.grad)
                direction = p.grad.add(buf, alpha=mu) if group["nesterov"] else buf
                p.mul_(math.sqrt(p.shape[0]) / p.norm())
                update = orthogonalize(direction.reshape(p.shape[0], -1)).reshape(p.shape)
                p.add_(update.to(p.dtype), alpha=-group["lr"])


def make_optimizers(model, cfg):
    """Muon for the conv filters; Nesterov SGD for the whitening bias, the BN shifts and the head.

    The SGD weight decay is stated per example (x batch size) and divided by each group's learning rate, so
    that the decay per step does not depend on it (it still follows the schedule).
    """
    filters = [p for p in model.parameters() if p.ndim == 4 and p.requires_grad]
    norm_biases = [m.bias for m in model.modules() if isinstance(m, FrozenScaleBN)]
    wd = cfg.weight_decay * cfg.batch_size
    groups = [
        dict(params=[model.whiten.bias], lr=cfg.bias_lr, weight_decay=wd / cfg.bias_lr),
        dict(params=norm_biases, lr=cfg.bias_lr, weight_decay=wd / cfg.bias_lr),
        dict(params=[model.head.weight], lr=cfg.head_lr, weight_decay=wd / cfg.head_lr),
    ]
    sgd = torch.optim.SGD(groups, lr=cfg.bias_lr, momentum=cfg.momentum, nesterov=True)
    muon = Muon(filters, lr=cfg.lr, momentum=cfg.muon_momentum)
    for opt in (sgd, muon):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return sgd, muon


def set_learning_rates(sgd, muon, step, total_steps, whiten_steps):
    """Linear decay to 0 over the run; the whitening bias decays to 0 over its own (shorter) span."""
    whiten_group, *rest = sgd.param_groups
    whiten_group["lr"] = whiten_group["initial_lr"] * max(0.0, 1 - step / max(1, whiten_steps))
    for group in rest + muon.param_groups:
        group["lr"] = group["initial_lr"] * (1 - step / total_steps)


# ---- evaluation with test-time augmentation ----------------------------------------------------------------


def autocast(device, precision):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def predict(model, images_u8, tta=2, batch_size=2000, precision="bf16", channels_last=True):
    """Logits (N, 10) float32 for uint8 images (N, 3, 32, 32), averaged over the TTA views:
    tta=0 the image; 1: the image and its mirror; 2: those (weight 1/4 each) and the image shifted one pixel
    up-left and down-right (reflect padding), each also mirrored (weight 1/8 each)."""
    device = next(model.parameters()).device
    layout = torch.channels_last if channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()

    def mirror_avg(v):
        logits = model(v.contiguous(memory_format=layout)).float()
        if tta == 0:
            return logits
        return 0.5 * (logits + model(v.flip(-1).contiguous(memory_format=layout)).float())

    out = []
    for i in range(0, len(images_u8), batch_size):
        x = normalize_nchw(images_u8[i : i + batch_size], channels_last).to(device)
        with autocast(device, precision):
            logits = mirror_avg(x)
            if tta == 2:
                padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
                shifted = [padded[:, :, :-2, :-2], padded[:, :, 2:, 2:]]
                logits = 0.5 * logits + 0.25 * sum(mirror_avg(v) for v in shifted)
        out.append(logits.cpu())
    model.train(was_training)
    return torch.cat(out)


def evaluate(model, images_u8, labels, **kwargs):
    """(accuracy, mean cross-entropy) on uint8 images (N, 3, 32, 32) and int64 labels."""
    logits = predict(model, images_u8, **kwargs)
    labels = torch.as_tensor(labels)
    return (logits.argmax(1) == labels).float().mean().item(), F.cross_entropy(logits, labels).item()


# ---- training ----------------------------------------------------------------------------------------------


def build_model(cfg, device="cpu"):
    model = FastNet(cfg.widths, cfg.bn_momentum).to(device)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def model_name(cfg):
    return f"airbench-style-muon-{'-'.join(map(str, cfg.widths))}"


def load_data(cfg):
    """uint8 (N, 3, 32, 32) train/test tensors and int64 labels; train is a seeded subset if asked."""
    from shared.data import load_cifar10

    (x_train, y_train), (x_test, y_test) = load_cifar10()
    if cfg.train_subset:
        keep = np.random.default_rng(cfg.seed).permutation(len(x_train))[: cfg.train_subset]
        x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
    labels = lambda y: torch.from_numpy(np.array(y, dtype=np.int64))  # noqa: E731
    return to_nchw(x_train), labels(y_train), to_nchw(x_test), labels(y_test)


def train_step(model, sgd, muon, x, y, cfg, device, whiten_bias_grad):
    with autocast(device, cfg.precision):
        logits = model(x, whiten_bias_grad=whiten_bias_grad)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing, reduction="sum")
    loss.backward()
    sgd.step()
    muon.step()
    model.zero_grad(set_to_none=True)
    return loss.item() / len(y), (logits.argmax(1) == y).sum().item()


class Training:
    """What a fast94 run trains, as shared.run's adapter: the network, its two optimizers (Nesterov SGD and
    Muon) and the batch sampler. The sampler draws from its own torch.Generator, saved with the rest (there
    are no NumPy Generators; Run saves the global random states)."""

    def __init__(self, model, sgd, muon, sampler, device):
        self.model, self.sgd, self.muon, self.sampler, self.device = model, sgd, muon, sampler, device

    def num_params(self):
        return count_params(self.model)

    def weights(self):
        """The parameters and buffers (fp32) on the CPU, as load_weights reads them."""
        return {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}

    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "sgd": self.sgd.state_dict(),
            "muon": self.muon.state_dict(),
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.sgd.load_state_dict(state["sgd"])
        self.muon.load_state_dict(state["muon"])
        self.sampler.load_state_dict(state["sampler"])


def train(cfg, out_dir=None):
    """Train per cfg; returns (model, run record path). out_dir (for tests) replaces cnn_cifar/ in outputs."""
    from shared.seeding import pick_device

    cfg = check(cfg)
    run = Run("cnn_cifar", cfg, out_dir)  # sets the threads and starts the clock, before the data loads
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    x_train, y_train, x_test, y_test = load_data(cfg)
    sampler = EpochSampler(
        x_train, y_train, cfg.batch_size, cfg.translate, cfg.flip, cfg.seed, cfg.channels_last
    )
    model = build_model(cfg, device)
    sgd, muon = make_optimizers(model, cfg)
    training = Training(model, sgd, muon, sampler, device)
    forward = torch.compile(model) if cfg.compile else model

    spe = sampler.steps_per_epoch
    total_steps = max(1, round(cfg.epochs * spe))
    whiten_steps = round(cfg.whiten_bias_epochs * spe)
    n_epochs = math.ceil(total_steps / spe)

    state = run.resume(training, epoch=0, step=0, time_to_94_s=None)
    if state["step"] == 0:  # a new run; a resumed one has its whitening filters from the checkpoint
        model.init_whitening(normalize_nchw(x_train[:5000], cfg.channels_last).to(device))
    step = state["step"]
    eval_kwargs = dict(tta=cfg.tta, precision=cfg.precision, channels_last=cfg.channels_last)
    model.train()
    for epoch in range(state["epoch"], n_epochs):
        total, correct, seen = 0.0, 0, 0
        bar = run.bar(
            sampler.epoch(epoch),
            total=min(spe, total_steps - step),
            desc=f"{cfg.run} epoch {epoch + 1}/{n_epochs}",
        )
        for x, y in bar:
            if step >= total_steps:
                break
            set_learning_rates(sgd, muon, step, total_steps, whiten_steps)
            x, y = x.to(device), y.to(device)
            loss, hits = train_step(forward, sgd, muon, x, y, cfg, device, step < whiten_steps)
            check_finite(loss, "training loss", step)
            total, correct, seen = total + loss * len(y), correct + hits, seen + len(y)
            lr_filters = muon.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr_filters:.3f}")
            run.log({"train/loss": loss, "train/lr_filters": lr_filters}, step)
            step += 1
        row = {"epoch": epoch + 1, "train_loss": total / seen, "train_acc": correct / seen}
        if cfg.eval_every and (epoch + 1) % cfg.eval_every == 0 and epoch + 1 < n_epochs:
            row["test_acc"], row["test_loss"] = evaluate(model, x_test, y_test, **eval_kwargs)
            if row["test_acc"] >= 0.94 and state["time_to_94_s"] is None:
                state["time_to_94_s"] = run.elapsed()
        row["time_s"] = run.elapsed()
        run.add_history(row, step, prefix="epoch/")
        shown = f"  test acc {row['test_acc']:.4f}" if "test_acc" in row else ""
        run.say(
            f"{cfg.run} epoch {epoch + 1:2d}/{n_epochs}: train loss {row['train_loss']:.4f}  "
            f"train acc {row['train_acc']:.4f}{shown}  ({row['time_s']:.0f} s)"
        )
        state.update(epoch=epoch + 1, step=step)
        run.checkpoint(training, state)

    test_acc, test_loss = evaluate(model, x_test, y_test, **eval_kwargs)
    if test_acc >= 0.94 and state["time_to_94_s"] is None:
        state["time_to_94_s"] = run.elapsed()
    run.log({"final/test_acc": test_acc}, step)
    metrics = {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "tta": cfg.tta,
        "train_acc_last_epoch": run.history["train_acc"][-1],
        "epochs_run": len(run.history["epoch"]),
        "steps": step,
        "time_to_94_s": state["time_to_94_s"],
    }
    if cfg.save_weights:
        run.save_weights({"model": training.weights(), "widths": list(cfg.widths)})
    notes = f"wall clock includes data loading and the final test evaluation (TTA level {cfg.tta})"
    path = run.finish(training, model_name=model_name(cfg), dataset="cifar10", metrics=metrics, notes=notes)
    run.say(f"{cfg.run}: test accuracy {test_acc:.4f} (TTA {cfg.tta}) in {run.elapsed():.0f} s -> {path}")
    return model, path


def load_weights(path, device="cpu"):
    """Rebuild a FastNet from a --save_weights file; returns the model in eval mode."""
    saved = load_torch(path, map_location=device)
    model = FastNet(tuple(saved["widths"])).to(device).to(memory_format=torch.channels_last)
    model.load_state_dict(saved["model"])
    return model.eval()


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
