"""Re-evaluate the committed weights in vae_gan/checkpoints/ and print each figure beside the one its run record
claims (`make eval-vae_gan`): a VAE's test loss (nats per image, the seeded eps of training), a GAN's FID (the
seeded samples of training, on the committed classifier's features), the classifier's test accuracy. Exits 1
when a figure does not reproduce.

    python -m vae_gan.evaluate [--threads=N] [--tolerance=1e-3]
"""

import dataclasses
import sys

from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.config import parse_config
from shared.data import load_mnist
from shared.reevaluate import reevaluate
from shared.threads import set_threads
from vae_gan import train as T
from vae_gan.twin import build


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-3  # largest accepted |measured - claimed| (nats per image, FID, accuracy)


def claimed_metric(record):
    if record["model"].startswith("mnist-cnn"):
        return "test_acc"
    return "test_loss" if record["model"].startswith(("vae", "convvae")) else "fid"


def measure(weights_path, record):
    """The figure one committed weights file scores, with the model rebuilt from its run record's config."""
    if record["model"].startswith("mnist-cnn"):
        import torch

        from vae_gan import classifier

        _, (x_test, y_test) = load_mnist()
        return classifier.evaluate(
            classifier.load_classifier(weights_path), torch.tensor(x_test), torch.tensor(y_test)
        )[1]
    fields = {f.name for f in dataclasses.fields(T.Config)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    cfg = T.check(dataclasses.replace(T.Config(), **{**config, "device": "cpu"}))
    model = build(cfg)
    model.set_weights(load_npz(weights_path) if weights_path.suffix == ".npz" else load_torch(weights_path))
    _, x_test = T.prepare_data(cfg)
    if (
        cfg.model in T.VAES
    ):  # the one-sample test loss; a binarised run's test_nll (k = 5,000) is not re-run here
        return T.vae_test_loss(model, x_test, cfg.latent, cfg.seed)[0]
    if not cfg.fid_samples:
        return None
    from vae_gan import quality
    from vae_gan.classifier import load_classifier

    samples = T.samples(model, cfg.fid_samples, cfg.latent, cfg.seed)
    return quality.fid(samples, (x_test.reshape(-1, 28, 28) + 1.0) / 2.0, load_classifier())


def main(argv):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    sys.exit(reevaluate("vae_gan", claimed_metric, measure, cfg.tolerance))


if __name__ == "__main__":
    run_main(main)
