"""Checkpoints that are written atomically and resume exactly.

NumPy runs save a flat dict of arrays to .npz, PyTorch runs a dict of tensors and plain values to .pt (read back
with `weights_only=True`). Both are written to a temporary file in the same folder and renamed over the target,
so an interrupted save leaves the previous checkpoint whole. `rng_state()` captures python, numpy and torch
generators as a JSON string, so it fits in either format.
"""

import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from shared.cli import UserError


def _atomic_write(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_npz(path, arrays):
    """Atomically write a dict of arrays (and scalars/strings) to `path` (.npz)."""
    return _atomic_write(path, lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_npz(path):
    """Read an .npz written by save_npz back into a dict of arrays (0-d arrays become scalars/strings)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: (data[k][()] if data[k].ndim == 0 else data[k]) for k in data.files}
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} not found: check the path or train first") from None
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"checkpoint {path} is unreadable or corrupt ({e}): delete it and retrain") from None


def save_torch(path, obj):
    """Atomically torch.save `obj` (tensors, dicts, numbers, strings) to `path` (.pt)."""
    import torch

    return _atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path, map_location="cpu"):
    """torch.load with weights_only=True (no arbitrary code), mapped to CPU by default."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} not found: check the path or train first") from None
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"checkpoint {path} is unreadable or corrupt ({first}): delete it and retrain"
        ) from None


def rng_state(generators=()):
    """JSON string of the python, numpy (global and the given Generators) and torch (CPU, CUDA) RNG states."""
    import torch

    np_state = np.random.get_state()
    state = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy_global": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "generators": [g.bit_generator.state for g in generators],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return json.dumps(state)


def set_rng_state(text, generators=()):
    """Restore what rng_state() captured; `generators` are set in place, in the same order."""
    import torch

    state = json.loads(str(text))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy_global"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    for g, s in zip(generators, state["generators"], strict=True):
        g.bit_generator.state = s
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def check_resumable(path, saved_settings, settings):
    """A resume checkpoint continues only the run it came from: UserError unless its settings equal the current
    ones (both as the JSON strings the training scripts store)."""
    if saved_settings != settings:
        raise UserError(
            f"{path} was made with different settings: pass --resume=false to start over, or --run=<new name>"
        )
