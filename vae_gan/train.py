"""Train a VAE or a GAN on MNIST, from scratch in NumPy or in PyTorch, with one loop.

    python -m vae_gan.train --config=vae_gan/configs/vae.py --impl=numpy     # pytorch/examples' VAE, NumPy
    python -m vae_gan.train --config=vae_gan/configs/vae.py --impl=torch     # ... and PyTorch
    python -m vae_gan.train --config=vae_gan/configs/gan.py --impl=numpy     # the MLP GAN (NumPy; torch twin)
    python -m vae_gan.train --config=vae_gan/configs/dcgan.py                # DCGAN (PyTorch)
    python -m vae_gan.train --config=vae_gan/configs/fast.py                 # a quick look

Data: the 60,000 MNIST training images, shuffled every epoch by one seeded generator (both implementations see
the same batches), pixels in [0, 1] for the VAEs (continuous, as pytorch/examples; --binarize=true draws each
pixel as Bernoulli(intensity) every time an image is used, and binarises the test set once, seeded) and in
[-1, 1] for the GANs. The 10,000 test images are the VAEs' evaluation after every epoch, as in pytorch/examples:
there is no model selection here (fixed recipes, the last epoch's weights), so no validation split.

Measures: a VAE's loss is the negative ELBO in nats per image (summed binary cross-entropy + KL, one sample of z;
on test the eps are seeded, the same in every epoch and implementation). A GAN's epoch records the mean losses
and D(x), D(G(z)) over its steps and, with --track_classes, the class histogram of 2,000 samples by the project's
MNIST classifier (vae_gan/classifier.py), whose drift from uniform is mode collapse; at the end, with
--fid_samples > 0, the FID of that many samples against the test set on the classifier's features (quality.py).

Each epoch ends with an atomic checkpoint (shared.run): rerunning the same command resumes exactly (--resume=false
starts over); a NaN loss stops the run with one line and leaves that checkpoint as it was. A finished run writes
vae_gan/results/<run>.json (metrics.test_loss for a VAE, metrics.fid for a GAN), TensorBoard scalars under
runs/vae_gan/<run>, and with --save_weights its final weights to vae_gan/checkpoints/<run>.npz|.pt.
"""

import dataclasses

import numpy as np

from shared.cli import UserError, check_finite, run_main
from shared.config import check_choices, parse_config
from shared.data import load_mnist
from shared.run import Run
from vae_gan.twin import build

VAES, GANS = ("vae", "convvae"), ("gan", "dcgan")
TORCH_ONLY = ("convvae", "dcgan")
TEST_SEED, SAMPLE_SEED, EPS_SEED, HISTOGRAM_SAMPLES = 3, 4, 6, 2000  # keys of separate random streams
NOTES = {
    "vae": "test_loss: the negative ELBO in nats per test image (summed BCE + KL, one seeded sample of z per "
    "image), of the last epoch's weights; on continuous pixels a training objective, not a bound on a likelihood; "
    "test_nll (binarised runs): the importance-weighted estimate of -log p(x) with nll_k samples per image "
    "(of nll_images test images); fid: as the GANs', of the decoded means of fid_samples seeded z ~ N(0, I)",
    "gan": "fid: Frechet distance between fid_samples samples (seeded z) and the 10,000 test images on the "
    "features of the project's MNIST classifier (not Inception's: comparable within this project only)",
}


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<model name>"
    impl: str = "numpy"  # numpy | torch
    model: str = "vae"  # vae | gan (NumPy or PyTorch) | convvae | dcgan (PyTorch only)
    latent: int = 20  # z's dimension
    hidden: int = 400  # VAEs: the hidden layer's width
    channels: int = 32  # convvae: the first convolution's channels; dcgan: ngf = ndf
    g_hidden: tuple = (256, 512)  # gan: the generator's hidden widths ...
    d_hidden: tuple = (512, 256)  # ... and the discriminator's
    slope: float = 0.2  # gan: the LeakyReLUs' negative slope
    lr: float = 1e-3  # Adam, constant (GANs: the generator's; the discriminator's is lr * d_lr_scale)
    beta1: float = 0.5  # GANs: Adam's beta1 (DCGAN's 0.5); the VAEs use Adam's defaults (0.9, 0.999)
    d_lr_scale: float = 1.0  # GANs: the discriminator's learning rate / the generator's
    real_label: float = (
        1.0  # GANs: the discriminator's target for real images (0.9: one-sided label smoothing)
    )
    g_loss: str = (
        "nonsaturating"  # GANs: nonsaturating (-log D(G(z))) | minimax (log(1 - D(G(z))), saturates)
    )
    binarize: bool = False  # VAEs: dynamically binarised training images, a binarised test set
    nll_k: int = (
        0  # VAEs (binarised): importance samples for the final test NLL (Burda et al.: 5000; 0 = none)
    )
    nll_images: int = (
        0  # VAEs: the NLL of the first this many test images (0 = all; a conv decoder is costly)
    )
    epochs: int = 10
    batch_size: int = 128
    train_subset: int = 0  # for quick looks and tests (0 = all): a seeded subset of the training images ...
    eval_subset: int = 0  # ... and the first test images
    track_classes: bool = (
        True  # GANs: the class histogram of samples after every epoch (needs the classifier)
    )
    fid_samples: int = 10000  # samples for the final FID against the test set (0 = none)
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    device: str = "auto"  # torch only: auto | cpu | cuda | mps
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in vae_gan/checkpoints/<run>.npz|.pt
    resume: bool = True
    progress: bool = True


def check(cfg):
    check_choices(
        cfg,
        {"impl": ("numpy", "torch"), "model": VAES + GANS, "g_loss": ("nonsaturating", "minimax")},
    )
    if cfg.impl == "numpy" and cfg.model in TORCH_ONLY:
        raise UserError(f"--model={cfg.model} exists only in PyTorch: use --impl=torch")
    for name in ("latent", "hidden", "channels", "epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    if cfg.lr <= 0 or cfg.d_lr_scale <= 0 or not 0 <= cfg.beta1 < 1 or not 0 < cfg.real_label <= 1:
        raise UserError("need --lr > 0, --d_lr_scale > 0, 0 <= --beta1 < 1 and 0 < --real_label <= 1")
    if min(cfg.train_subset, cfg.eval_subset, cfg.fid_samples, cfg.nll_k, cfg.nll_images) < 0:
        raise UserError("--train_subset, --eval_subset, --fid_samples, --nll_k and --nll_images must be >= 0")
    if cfg.nll_k and not (cfg.binarize and cfg.model in VAES):
        raise UserError(
            "--nll_k: the NLL is of binarised images under a VAE: add --binarize=true (VAEs only)"
        )
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg)}")
    return cfg


def model_name(cfg):
    """'vae-400-z20', 'convvae-c32-z32', 'gan-mlp-z64', 'dcgan-c64-z100' (+ '-bin' for binarised VAEs)."""
    name = {
        "vae": f"vae-{cfg.hidden}-z{cfg.latent}",
        "convvae": f"convvae-c{cfg.channels}-z{cfg.latent}",
        "gan": f"gan-mlp-z{cfg.latent}",
        "dcgan": f"dcgan-c{cfg.channels}-z{cfg.latent}",
    }[cfg.model]
    return name + ("-bin" if cfg.binarize and cfg.model in VAES else "")


def prepare_data(cfg):
    """Flattened float32 images (N, 784): train (subset seeded) and test, in [0, 1] (VAEs, the test set
    binarised once if --binarize) or [-1, 1] (GANs)."""
    (x_train, _), (x_test, _) = load_mnist()
    pick = np.random.default_rng([cfg.seed, 5])
    if cfg.train_subset:
        x_train = x_train[np.sort(pick.permutation(len(x_train))[: cfg.train_subset])]
    if cfg.eval_subset:
        x_test = x_test[: cfg.eval_subset]
    x_train, x_test = (x.reshape(len(x), -1).astype(np.float32) / 255.0 for x in (x_train, x_test))
    if cfg.model in GANS:
        return 2.0 * x_train - 1.0, 2.0 * x_test - 1.0
    if cfg.binarize:
        x_test = binarize(x_test, np.random.default_rng([cfg.seed, TEST_SEED]))
    return x_train, x_test


def binarize(x, rng):
    """Each pixel 1 with probability its intensity, else 0 (x in [0, 1])."""
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def vae_test_loss(model, x, latent, seed, batch_size=1000):
    """(loss, recon, kl) per image in nats on x (N, 784), eps seeded (the same draws for every call)."""
    eps = np.random.default_rng([seed, EPS_SEED]).standard_normal((len(x), latent), dtype=np.float32)
    totals = np.zeros(3)
    for i in range(0, len(x), batch_size):
        totals += model.loss_terms(x[i : i + batch_size], eps[i : i + batch_size])
    return tuple(totals / len(x))


def test_nll(model, x, k, seed, batch_size=100):
    """The mean importance-weighted -log p(x) in nats of binarised images x (N, 784), k samples each, seeded."""
    import torch

    from vae_gan.model import importance_weighted_nll

    net, generator = model.as_torch(), torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    if device.type != "cpu":
        generator = torch.Generator(device).manual_seed(seed)
    x = torch.from_numpy(x)
    return float(np.mean(np.concatenate([
        importance_weighted_nll(net, x[i : i + batch_size].to(device), k, generator=generator)
        for i in range(0, len(x), batch_size)
    ])))  # fmt: skip


def samples(model, n, latent, seed, batch_size=1000):
    """n samples (N, 28, 28) in [0, 1] from seeded z ~ N(0, I): a GAN's G(z), a VAE's decoded mean
    sigmoid(decoder(z)) (the Bernoulli means, as a VAE's samples are shown and scored)."""
    z = np.random.default_rng([seed, SAMPLE_SEED]).standard_normal((n, latent), dtype=np.float32)
    return np.concatenate([model.sample(z[i : i + batch_size]) for i in range(0, n, batch_size)]).reshape(
        -1, 28, 28
    )


def train(cfg, out_dir=None, stop_at=None):
    """Train per cfg; returns (model adapter, run record path). out_dir (tests) replaces vae_gan/ as the home of
    checkpoints/, results/ and runs/. `stop_at` (tests of resuming): leave after the checkpoint of that epoch,
    as if interrupted, and return (model, None)."""
    cfg = check(cfg)
    is_vae = cfg.model in VAES
    run = Run("vae_gan", cfg, out_dir)
    classifier = None
    if cfg.fid_samples or (cfg.track_classes and not is_vae):
        from vae_gan import quality
        from vae_gan.classifier import load_classifier

        classifier = load_classifier()  # before training: a missing classifier is a one-line error now
    x_train, x_test = prepare_data(cfg)
    model = build(cfg)
    data_rng = np.random.default_rng([cfg.seed, 1])
    steps_per_epoch = -(-len(x_train) // cfg.batch_size)
    state = run.resume(model, [data_rng], epoch=0)
    if state["epoch"] == 0:
        run.say(
            f"{cfg.run}: {cfg.impl} {model_name(cfg)}, {model.num_params():,} params, {len(x_train):,} images"
        )

    for epoch in range(state["epoch"], cfg.epochs):
        order = data_rng.permutation(len(x_train))
        sums = {}
        for i in run.bar(range(steps_per_epoch), desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}"):
            x = x_train[order[i * cfg.batch_size : (i + 1) * cfg.batch_size]]
            if cfg.binarize and is_vae:
                x = binarize(x, data_rng)
            step = epoch * steps_per_epoch + i
            stats = model.train_step(x, cfg.lr)
            check_finite(stats["loss" if is_vae else "d_loss"], "training loss", step)
            if not is_vae:
                check_finite(stats["g_loss"], "generator loss", step)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
            if i % 50 == 0:
                run.log({f"train/{k}": v for k, v in stats.items()}, step)
        row = {"epoch": epoch + 1} | {f"train_{k}": v / len(x_train) for k, v in sums.items()}
        if is_vae:
            loss, recon, kl = vae_test_loss(model, x_test, cfg.latent, cfg.seed)
            row |= {"test_loss": loss, "test_recon": recon, "test_kl": kl}
            summary = (
                f"train loss {row['train_loss']:.2f}  test loss {loss:.2f} (recon {recon:.2f} + KL {kl:.2f})"
            )
        else:
            summary = (
                f"D loss {row['train_d_loss']:.3f}  G loss {row['train_g_loss']:.3f}  D(x) {row['train_d_real']:.3f}  "
                f"D(G(z)) {row['train_d_fake']:.3f}"
            )
            if cfg.track_classes:
                counts = quality.class_histogram(
                    samples(model, HISTOGRAM_SAMPLES, cfg.latent, cfg.seed), classifier
                )
                row |= {
                    "class_counts": [int(c) for c in counts],
                    "class_uniformity": quality.uniformity(counts),
                }
                summary += f"  classes {' '.join(str(int(c)) for c in counts)}"
        run.add_history(row | {"time_s": run.elapsed()}, (epoch + 1) * steps_per_epoch, prefix="epoch/")
        run.say(f"{cfg.run} epoch {epoch + 1:3d}: {summary}  ({run.elapsed():.0f} s)")
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)  # atomic; rerunning the command resumes here
        if stop_at is not None and state["epoch"] >= stop_at:
            run.close()
            return model, None

    metrics = {
        k: v[-1]
        for k, v in run.history.items()
        if k.startswith(("test_", "train_")) and not isinstance(v[-1], list)
    }
    metrics["epochs_run"] = len(run.history.get("epoch", []))
    if cfg.nll_k:
        scored = x_test[: cfg.nll_images or len(x_test)]
        metrics |= {"test_nll": test_nll(model, scored, cfg.nll_k, cfg.seed), "nll_k": cfg.nll_k}
        metrics["nll_images"] = len(scored)
        run.say(
            f"{cfg.run}: test NLL {metrics['test_nll']:.2f} nats (k = {cfg.nll_k:,}, {len(scored):,} images)"
        )
    if cfg.fid_samples:
        fakes = samples(model, cfg.fid_samples, cfg.latent, cfg.seed)
        real = x_test.reshape(-1, 28, 28)
        real = real if is_vae else (real + 1.0) / 2.0  # the test images in [0, 1] (binarised for --binarize)
        metrics["fid"] = quality.fid(fakes, real, classifier)
        counts = quality.class_histogram(fakes, classifier)
        metrics |= {"class_uniformity": quality.uniformity(counts), "fid_samples": cfg.fid_samples}
        run.say(f"{cfg.run}: FID {metrics['fid']:.2f} over {cfg.fid_samples:,} samples")
    if cfg.save_weights:
        run.save_weights(model.weights())
    path = run.finish(
        model,
        model_name=model_name(cfg),
        dataset="mnist",
        metrics=metrics,
        notes=NOTES["vae" if is_vae else "gan"],
    )
    headline = (
        f"test loss {metrics['test_loss']:.2f} nats/image"
        if is_vae
        else f"FID {metrics.get('fid', float('nan')):.2f}"
    )
    run.say(f"{cfg.run}: {headline} in {run.elapsed():.0f} s -> {path}")
    return model, path


def main(argv):
    train(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
