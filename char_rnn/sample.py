"""Generate text from a trained character-level model: NumPy weights (.npz) or PyTorch weights (.pt), as written
by `python -m char_rnn.train --save_weights` (weights, vocabulary and model settings in one file).

    python -m char_rnn.sample --checkpoint=char_rnn/checkpoints/torch-lstm-2x384.pt --temperature=0.8 \\
        --prime="ROMEO:" --length=500 [--top_k=40] [--seed=0]

Prints the prime followed by `length` generated characters. temperature 0 is greedy (argmax) decoding; top_k > 0
samples among the k most likely characters only. The same seed gives the same text. The prime may use \\n for a
newline.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread: sampling is a chain of tiny products

import dataclasses  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from shared.checkpoint import load_npz, load_torch  # noqa: E402
from shared.cli import UserError, run_main  # noqa: E402
from shared.config import parse_config  # noqa: E402


@dataclasses.dataclass
class SampleConfig:
    checkpoint: str = ""  # char_rnn/checkpoints/<run>.npz | .pt
    temperature: float = 0.8
    prime: str = "ROMEO:"
    length: int = 500
    top_k: int = 0  # 0 = all characters
    seed: int = 0


def load_model(path):
    """(model, meta) from a weights file: a scratch.CharLM for .npz, a model.CharRNN (eval mode) for .pt. meta
    holds "vocab", "config" (the model settings), "impl", "run", "model", "val_loss", "eval_batch"."""
    path = Path(path)
    if path.suffix not in (".npz", ".pt"):
        raise UserError(f"--checkpoint={path}: expected a .npz (NumPy) or .pt (PyTorch) weights file")
    if not path.is_file():
        raise UserError(f"--checkpoint={path}: no such file (train with --save_weights, or check the path)")
    state = load_npz(path) if path.suffix == ".npz" else load_torch(path)
    if "meta" not in state or "vocab" not in str(state["meta"]):
        raise UserError(
            f"{path} is not a char_rnn weights file (a resume checkpoint? those lack the vocabulary): "
            "use char_rnn/checkpoints/<run>.npz|.pt written with --save_weights"
        )
    meta = json.loads(str(state["meta"]))
    c = meta["config"]
    try:
        if path.suffix == ".npz":
            from char_rnn.scratch import CharLM

            model = CharLM(**c, rng=np.random.default_rng(0), dtype=np.float32)
            model.load_state_dict({k: v for k, v in state.items() if k != "meta"})
        else:
            from char_rnn.model import CharRNN

            model = CharRNN(**c)
            model.load_state_dict(state["model"])
            model.eval()
    except (ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{path}: the weights do not fit the model settings stored with them ({first})"
        ) from None
    return model, meta


def generate(model, vocab, prime, length, temperature=0.8, top_k=0, seed=0):
    """prime + `length` sampled characters, as a string."""
    from char_rnn.train import encode

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
    if not cfg.checkpoint:
        raise UserError("--checkpoint is required: char_rnn/checkpoints/<run>.npz | .pt")
    model, meta = load_model(cfg.checkpoint)
    prime = cfg.prime.replace("\\n", "\n")
    print(generate(model, meta["vocab"], prime, cfg.length, cfg.temperature, cfg.top_k, cfg.seed))


if __name__ == "__main__":
    run_main(main)
