"""Generate text from a trained GPT: NumPy weights (.npz, run by scratch.GPT) or PyTorch weights (.pt, run by
model.GPT), as written by `python -m nanogpt.train --save_weights` (weights, vocabulary and model settings).

    python -m nanogpt.sample --checkpoint=nanogpt/checkpoints/torch-gpt-4x128.pt --start="ROMEO:" \\
        [--num_samples=10] [--max_new_tokens=500] [--temperature=0.8] [--top_k=200] [--seed=1337] [--threads=1]

Prints num_samples continuations of the start text, each as start + max_new_tokens characters, separated by a
line of dashes (nanoGPT's sample.py and defaults). --start=FILE:prompt.txt reads the start from a file; \\n in
--start is a newline. A start longer than block_size is fine: the model reads its last block_size characters.
temperature 0 is greedy (argmax); top_k > 0 samples among the k most likely characters only (0 = all of them).
One numpy Generator of --seed draws every sample, so the same seed gives the same text, and NumPy and PyTorch
weights that are equal give the same text too.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.threads import set_threads

SEPARATOR = "---------------"


@dataclasses.dataclass
class SampleConfig:
    checkpoint: str = ""  # nanogpt/checkpoints/<run>.npz | .pt
    start: str = "\n"  # the text to continue, or FILE:path
    num_samples: int = 10
    max_new_tokens: int = 500
    temperature: float = 0.8
    top_k: int = 200  # 0 = all characters
    seed: int = 1337
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice


def read_weights(path):
    """(weights, meta) from a GPT weights file: the model's state dict, and meta's "vocab", "config" (GPTConfig
    fields), "impl", "run", "model", "params", "val_loss_full"."""
    path = Path(path)
    if path.suffix not in (".npz", ".pt"):
        raise UserError(f"--checkpoint={path}: expected a .npz (NumPy) or .pt (PyTorch) weights file")
    if not path.is_file():
        raise UserError(f"--checkpoint={path}: no such file (train with --save_weights, or check the path)")
    content = load_npz(path) if path.suffix == ".npz" else load_torch(path)
    meta = json.loads(str(content.pop("meta"))) if isinstance(content, dict) and "meta" in content else {}
    if not str(meta.get("model", "")).startswith("gpt-") or "vocab" not in meta or "config" not in meta:
        raise UserError(
            f"{path} is not a nanogpt weights file (a resume checkpoint, or another project's weights?): "
            "use nanogpt/checkpoints/<run>.npz|.pt written with --save_weights"
        )
    return (content if path.suffix == ".npz" else content["model"]), meta


def load_model(path):
    """(model, meta) from a weights file: a scratch.GPT for .npz, a model.GPT (eval mode) for .pt."""
    weights, meta = read_weights(path)
    try:
        if Path(path).suffix == ".npz":
            from nanogpt import scratch

            model = scratch.GPT(scratch.GPTConfig(**meta["config"]), rng=np.random.default_rng(0))
        else:
            from nanogpt import model as torch_gpt

            model = torch_gpt.GPT(torch_gpt.GPTConfig(**meta["config"])).eval()
        model.load_state_dict(weights)
    except (ValueError, RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{path}: the weights do not fit the model settings stored with them ({first})"
        ) from None
    return model, meta


def start_text(start):
    """The --start text: FILE:path is the file's text; otherwise the flag's text with \\n as a newline."""
    if start.startswith("FILE:"):
        path = Path(start[len("FILE:") :])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--start=FILE:{path}: cannot read it ({e})") from None
    else:
        text = start.replace("\\n", "\n")
    if not text:
        raise UserError("--start is empty: give at least one character, e.g. --start='ROMEO:'")
    return text


def encode(text, vocab):
    """Characters -> int64 ids (1, len); a character outside the vocabulary is a UserError naming it."""
    lookup = {c: i for i, c in enumerate(vocab)}
    missing = sorted({c for c in text if c not in lookup})
    if missing:
        raise UserError(
            f"--start: {''.join(missing)!r} not in the model's {len(vocab)}-character vocabulary "
            f"(letters, space, newline and {''.join(c for c in vocab if not c.isalpha() and c.strip())!r})"
        )
    return np.array([[lookup[c] for c in text]], dtype=np.int64)


def generate(model, vocab, start, max_new_tokens, temperature=0.8, top_k=0, rng=None):
    """start + max_new_tokens sampled characters, as a string; model is a scratch.GPT or a model.GPT."""
    if temperature < 0:
        raise UserError(f"--temperature={temperature}: must be >= 0 (0 = greedy)")
    if max_new_tokens < 0 or top_k < 0:
        raise UserError("--max_new_tokens and --top_k must be >= 0")
    import torch

    idx = encode(start, vocab)  # (1, T)
    if isinstance(model, torch.nn.Module):  # model.GPT reads and returns tensors
        ids = model.generate(torch.from_numpy(idx), max_new_tokens, temperature, top_k or None, rng).numpy()
    else:
        ids = model.generate(idx, max_new_tokens, temperature, top_k or None, rng)
    return "".join(vocab[i] for i in ids[0])  # (1, T + max_new_tokens)


def main(argv):
    cfg = parse_config(SampleConfig(), argv)
    set_threads(cfg.threads)
    if not cfg.checkpoint:
        raise UserError("--checkpoint is required: nanogpt/checkpoints/<run>.npz | .pt")
    if cfg.num_samples < 1:
        raise UserError(f"--num_samples={cfg.num_samples}: must be >= 1")
    start = start_text(cfg.start)
    model, meta = load_model(cfg.checkpoint)
    rng = np.random.default_rng(cfg.seed)
    for _ in range(cfg.num_samples):
        print(generate(model, meta["vocab"], start, cfg.max_new_tokens, cfg.temperature, cfg.top_k, rng))
        print(SEPARATOR)


if __name__ == "__main__":
    run_main(main)
