"""Seeding of every random generator, deterministic mode, and the device choice cuda -> mps -> cpu."""

import os
import random

import numpy as np

from shared.cli import UserError


def seed_everything(seed, deterministic=False):
    """Seed python, numpy's global generator and torch; return a fresh numpy Generator for the caller."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def pick_device(name="auto"):
    """'auto' picks cuda, then mps, then cpu; an explicit name must be available."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise UserError(f"--device={name}: choose auto, cpu, cuda or mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device={name}: no CUDA device is visible here; use --device=cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device=mps: MPS is not available here; use --device=cpu or auto")
    return torch.device(name)
