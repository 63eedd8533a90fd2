"""Sample quality as seen by the MNIST classifier of classifier.py (default: its committed weights).

    fid(fake, real)                 # Fréchet distance of the sets' 128 classifier features; 0: same Gaussian
    counts = class_histogram(fake)  # (10,) how many samples the classifier puts in each class
    uniformity(counts)              # KL(histogram || uniform) in nats: 0 = every digit alike, log 10 = one

Images are float (N, 28, 28) or (N, 1, 28, 28) pixels in [0, 1], NumPy or torch. The Fréchet distance is
torchmetrics' FrechetInceptionDistance with the classifier's penultimate layer in place of Inception-v3 (so
the numbers are comparable within this project only, not with published MNIST or ImageNet FIDs); torchmetrics
accumulates the feature sums and covariances in float64 and takes the matrix square root from eigenvalues.
"""

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from vae_gan.classifier import FEATURES, load_classifier


class ClassifierFeatures(nn.Module):
    """A classifier's penultimate features, float64 (N, 128), as torchmetrics' custom feature extractor. The
    `num_features` attribute spares the module torchmetrics' probe: without it FrechetInceptionDistance calls
    the module once on a random uint8 (1, 3, 299, 299) image to learn the feature size."""

    num_features = FEATURES

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier.features(x).double()  # float64 features keep compute()'s result in float64


def as_images(images):
    """float (N, 28, 28) or (N, 1, 28, 28) in [0, 1], NumPy or torch -> float32 tensor (N, 1, 28, 28)."""
    x = images if torch.is_tensor(images) else torch.from_numpy(np.array(images))
    if not x.is_floating_point() or x.shape[-2:] != (28, 28) or x.dim() not in (3, 4):
        raise ValueError(
            f"expected float images (N, 28, 28) or (N, 1, 28, 28), got {x.dtype} {tuple(x.shape)}"
        )
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("expected pixels in [0, 1] (uint8 images: divide by 255; tanh outputs: (x + 1) / 2)")
    return x.float().reshape(-1, 1, 28, 28)


def classifier_or_default(classifier):
    """The given classifier, or the committed one, in eval mode (no dropout; BatchNorm's running averages)."""
    return (load_classifier() if classifier is None else classifier).eval()


def fid(fake, real, classifier=None, batch_size=500):
    """Fréchet distance between the Gaussians fitted to the classifier features of two image sets (each of at
    least 2 images): |mu_f - mu_r|^2 + tr(S_f + S_r - 2 (S_f S_r)^(1/2))."""
    classifier = classifier_or_default(classifier)
    device = next(classifier.parameters()).device
    metric = FrechetInceptionDistance(feature=ClassifierFeatures(classifier)).to(device)
    for images, is_real in ((fake, False), (real, True)):
        x = as_images(images)
        for i in range(0, len(x), batch_size):
            metric.update(x[i : i + batch_size].to(device), real=is_real)
    return metric.compute().item()


@torch.no_grad()
def class_histogram(images, classifier=None, batch_size=500):
    """int64 counts (10,) of the classifier's predicted digit over the images; they sum to N."""
    classifier = classifier_or_default(classifier)
    device = next(classifier.parameters()).device
    x = as_images(images)
    predicted = [classifier(x[i : i + batch_size].to(device)).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.bincount(torch.cat(predicted), minlength=10).cpu().numpy()


def uniformity(counts):
    """KL divergence of the class distribution `counts` (10,) from the uniform one, in nats:
    sum_k p_k log(10 p_k), from 0 (every class equally often) to log 10 = 2.303 (a single class). A rise from
    epoch to epoch is the sign of mode collapse."""
    p = np.asarray(counts, dtype=np.float64)
    if p.sum() <= 0:
        raise ValueError("uniformity needs at least one counted sample")
    p = p[p > 0] / p.sum()  # empty classes add 0 to the sum (p log p -> 0)
    return float(np.sum(p * np.log(p * len(counts))))
