"""Classify a review with a trained LSTM: the label and its probability.

    python -m sentiment_lstm.predict --model=numpy-lstm "A wonderful, moving film."
    python -m sentiment_lstm.predict --model=bilstm "Two hours I will never get back."
    python -m sentiment_lstm.predict --checkpoint=sentiment_lstm/checkpoints/<run>.npz "..."

--model names the committed weights of the headline runs (MODELS); --checkpoint takes any file that
sentiment_lstm.train --save_weights wrote (.npz: the NumPy model, .pt: a torch one). The review is tokenised,
encoded with the vocabulary saved beside the weights and truncated as in training. An empty review, an unknown
model name or a missing file is a one-line error.
"""

import json
import sys
from pathlib import Path

import numpy as np

from sentiment_lstm.data import encode_text, tokenize
from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
MODELS = {"numpy-lstm": "numpy-lstm-mean-e96-h128.npz", "bilstm": "torch-bilstm-meanmax-e96-h128x1.pt"}
LABELS = ("negative", "positive")


def load_model(path):
    """(model, meta) from a --save_weights file: a scratch.LSTMClassifier for .npz, a torch model for .pt."""
    path = Path(path)
    if path.suffix == ".npz":
        from sentiment_lstm.scratch import LSTMClassifier

        content = load_npz(path)
        meta = json.loads(str(content.pop("meta")))
        model = LSTMClassifier(**meta["config"], rng=np.random.default_rng(0))
        model.load_state_dict(content)
        return model, meta
    if path.suffix != ".pt":
        raise UserError(f"--checkpoint={path}: expected a .npz (NumPy) or .pt (PyTorch) file")
    from sentiment_lstm.model import BiLSTMClassifier, LSTMClassifier

    content = load_torch(path)
    meta = json.loads(content["meta"])
    model = (BiLSTMClassifier if meta["kind"] == "bilstm" else LSTMClassifier)(**meta["config"])
    model.load_state_dict(content["model"])
    return model.eval(), meta


def probabilities(model, meta, text):
    """P(negative), P(positive) of one review."""
    ids = encode_text(text, meta["vocab"], meta["max_len"], meta["keep"])[None, :]  # (1, T)
    lengths = np.array([ids.shape[1]])
    if hasattr(model, "layers"):  # the NumPy model
        logits = model.forward(ids, lengths, training=False)[0].astype(np.float64)
    else:
        import torch

        with torch.no_grad():
            logits = model(torch.from_numpy(ids), torch.from_numpy(lengths))[0].double().numpy()
    p = np.exp(logits - logits.max())
    return p / p.sum()


def main(argv):
    model_name, checkpoint, texts = "numpy-lstm", None, []
    for arg in argv:
        if arg.startswith("--model="):
            model_name = arg.split("=", 1)[1]
        elif arg.startswith("--checkpoint="):
            checkpoint = arg.split("=", 1)[1]
        elif arg.startswith("--"):
            raise UserError(f"unknown flag {arg.split('=')[0]}; known: --model, --checkpoint")
        else:
            texts.append(arg)
    if checkpoint is None and model_name not in MODELS:
        raise UserError(
            f"--model={model_name}: choose one of {', '.join(MODELS)} (or give --checkpoint=path)"
        )
    if len(texts) != 1:
        raise UserError('give the review as one argument, in quotes: predict --model=bilstm "review text"')
    if not tokenize(texts[0]):
        raise UserError("the text is empty (no words or punctuation): give a review to classify")
    model, meta = load_model(checkpoint or CHECKPOINTS / MODELS[model_name])
    p = probabilities(model, meta, texts[0])
    label = int(p.argmax())
    print(f"{LABELS[label]} {p[label]:.4f}")
    return label, float(p[label])


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
