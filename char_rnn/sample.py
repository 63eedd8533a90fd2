"""Generate text from a trained character-level model: NumPy weights (.npz) or PyTorch weights (.pt), as written
by `python -m char_rnn.train --save_weights` (weights, vocabulary and model settings in one file).

    python -m char_rnn.sample --checkpoint=char_rnn/checkpoints/torch-lstm-2x384.pt --temperature=0.8 \\
        --prime="ROMEO:" --length=500 [--top_k=40] [--seed=0] [--threads=1]

Prints the prime followed by `length` generated characters. temperature 0 is greedy (argmax) decoding; top_k > 0
samples among the k most likely characters only. The same seed gives the same text. The prime may use \\n for a
newline. Sampling is a chain of tiny products: --threads=1 is usually fastest.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.threads import set_threads


@dataclasses.dataclass
class SampleConfig:
    checkpoint: str = ""  # char_rnn/checkpoints/<run>.npz | .pt
    temperature: float = 0.8
    prime: str = "ROMEO:"
    length: int = 500
    top_k: int = 0  # 0 = all characters
    seed: int = 0
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice


def read_weights(path):
    """(weights, meta) from a weights file: the model's state dict, and "vocab", "config" (the model settings),
    "impl", "run", "model", "val_loss", "eval_batch", "eval_seq"."""
    path = Path(path)
    if path.suffix not in (".npz", ".pt"):
        raise UserError(f"--checkpoint={path}: expected a .npz (NumPy) or .pt (PyTorch) weights file")
    if not path.is_file():
        raise UserError(f"--checkpoint={path}: no such file (train with --save_weights, or check the path)")
    content = load_npz(path) if path.suffix == ".npz" else load_torch(path)
    if "meta" not in content or "vocab" not in str(content["meta"]):
        raise UserError(
            f"{path} is not a char_rnn weights file (a resume checkpoint? those lack the vocabulary): "
            "use char_rnn/checkpoints/<run>.npz|.pt written with --save_weights"
        )
    meta = json.loads(str(content.pop("meta")))
    return (content if path.suffix == ".npz" else content["model"]), meta


def load_model(path):
    """(model, meta) from a weights file: a scratch.CharLM for .npz, a model.CharRNN (eval mode) for .pt."""
    weights, meta = read_weights(path)
    try:
        if Path(path).suffix == ".npz":
            from char_rnn.scratch import CharLM

            model = CharLM(**meta["config"], rng=np.random.default_rng(0), dtype=np.float32)
        else:
            from char_rnn.model import CharRNN

            model = CharRNN(**meta["config"]).eval()
        model.load_state_dict(weights)
    except (ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{path}: the weights do not fit the model settings stored with them ({first})"
        ) from None
    return model, meta


def encode(text, vocab):
    """Characters -> int64 ids; a character outside the vocabulary is a UserError naming it."""
    lookup = {c: i for i, c in enumerate(vocab)}
    missing = sorted({c for c in text if c not in lookup})
    if missing:
        raise UserError(
            f"{''.join(missing)!r} not in the model's {len(vocab)}-character vocabulary "
            f"(letters, space, newline and {''.join(c for c in vocab if not c.isalpha() and c.strip())!r})"
        )
    return np.array([lookup[c] for c in text], dtype=np.int64)


def generate(model, vocab, prime, length, temperature=0.8, top_k=0, seed=0):
    """prime + `length` sampled characters, as a string."""
    if not prime:
        raise UserError("--prime is empty: give at least one character, e.g. --prime='ROMEO:'")
    if temperature < 0:
        raise UserError(f"--temperature={temperature}: must be >= 0 (0 = greedy)")
    if length < 0 or top_k < 0:
        raise UserError("--length and --top_k must be >= 0")
    ids = model.sample(encode(prime, vocab), length, temperature, top_k or None, np.random.default_rng(seed))
    return prime + "".join(vocab[i] for i in ids)


def main(argv):
    cfg = parse_config(SampleConfig(), argv)
    set_threads(cfg.threads)
    if not cfg.checkpoint:
        raise UserError("--checkpoint is required: char_rnn/checkpoints/<run>.npz | .pt")
    model, meta = load_model(cfg.checkpoint)
    prime = cfg.prime.replace("\\n", "\n")
    print(generate(model, meta["vocab"], prime, cfg.length, cfg.temperature, cfg.top_k, cfg.seed))


if __name__ == "__main__":
    run_main(main)
