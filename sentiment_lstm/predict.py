"""Classify a review with a committed model: the label and its probability.

    python -m sentiment_lstm.predict --model numpy-lstm "A wonderful, moving film."
    python -m sentiment_lstm.predict --model=bilstm "Two hours I will never get back."
    python -m sentiment_lstm.predict --model nbsvm "..."        # or minilm
    python -m sentiment_lstm.predict --checkpoint=sentiment_lstm/checkpoints/<run>.npz "..."

--model names the committed weights of the headline runs (MODELS): nbsvm (baselines.py's NBSVM, bag of uni- and
bigrams), numpy-lstm (the NumPy LSTM), bilstm (the PyTorch BiLSTM), minilm (finetune.py's LoRA fine-tune of
MiniLM). --checkpoint takes any weights file those scripts wrote: an NBSVM or a NumPy LSTM .npz, a torch LSTM,
BiLSTM or MiniLM .pt. The review is tokenised as the model was trained (the LSTMs: the vocabulary saved beside
the weights, truncated as in training; NBSVM: the same tokens, its saved n-grams; MiniLM: its WordPiece
tokenizer, head + tail). NBSVM's probability is its score through a sigmoid fitted on the validation reviews
(baselines.py). An empty review, an unknown model name or a missing weights file is a one-line error.
"""

import json
import sys
from pathlib import Path

import numpy as np

from sentiment_lstm.data import encode_text, tokenize
from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
MODELS = {
    "nbsvm": "nbsvm-bi.npz",
    "numpy-lstm": "numpy-lstm-mean-e96-h128.npz",
    "bilstm": "torch-bilstm-meanmax-e96-h128x1.pt",
    "minilm": "minilm-l6-lora-r16-len256.pt",
}
MAKES = {
    "minilm": "make study-sentiment_lstm"
}  # the target that trains each model; default make sentiment_lstm
LABELS = ("negative", "positive")


def load_model(path):
    """(model, meta) from a weights file: baselines.SavedNBSVM or a scratch.LSTMClassifier for .npz; a torch
    LSTM / BiLSTM, or (MiniLM model, tokenizer) for .pt. meta["kind"] says which: nbsvm, lstm, bilstm, minilm."""
    path = Path(path)
    if path.suffix == ".npz":
        content = load_npz(path)
        if "ngrams_xz" in content:
            from sentiment_lstm.baselines import SavedNBSVM

            model = SavedNBSVM(path, content)
            return model, model.meta
        from sentiment_lstm.scratch import LSTMClassifier

        meta = json.loads(str(content.pop("meta")))
        model = LSTMClassifier(**meta["config"], rng=np.random.default_rng(0))
        model.load_state_dict(content)
        return model, meta
    if path.suffix != ".pt":
        raise UserError(f"--checkpoint={path}: expected a .npz (NBSVM, NumPy LSTM) or .pt (PyTorch) file")
    content = load_torch(path)
    meta = json.loads(content["meta"])
    if "lora" in meta:  # finetune.py's delta over the pretrained MiniLM
        from sentiment_lstm.finetune import load_finetuned

        return load_finetuned(path), meta | {"kind": "minilm"}
    from sentiment_lstm.model import BiLSTMClassifier, LSTMClassifier

    model = (BiLSTMClassifier if meta["kind"] == "bilstm" else LSTMClassifier)(**meta["config"])
    model.load_state_dict(content["model"])
    return model.eval(), meta


def probabilities(model, meta, text):
    """P(negative), P(positive) of one review."""
    kind = meta.get("kind")
    if kind == "nbsvm":
        p = float(model.predict_proba([tokenize(text)])[1][0])
        return np.array([1.0 - p, p])
    if kind == "minilm":
        from sentiment_lstm.finetune import predict_proba

        p = float(predict_proba(*model, [text])[0])
        return np.array([1.0 - p, p])
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


def parse(argv):
    """(model name, checkpoint or None, texts) of the command line; --model X and --model=X alike."""
    model_name, checkpoint, texts = "numpy-lstm", None, []
    args = iter(argv)
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag in ("--model", "--checkpoint"):
            if not eq:
                value = next(args, None)
                if value is None:
                    raise UserError(f"{flag} needs a value: {flag}=...")
            model_name, checkpoint = (value, checkpoint) if flag == "--model" else (model_name, value)
        elif arg.startswith("--"):
            raise UserError(f"unknown flag {flag}; known: --model, --checkpoint")
        else:
            texts.append(arg)
    return model_name, checkpoint, texts


def check_name(model_name):
    if model_name not in MODELS:
        raise UserError(
            f"--model={model_name}: choose one of {', '.join(MODELS)} (or give --checkpoint=path)"
        )


def weights_of(model_name):
    """The committed weights file of a --model name; a UserError naming the choices or the missing file."""
    check_name(model_name)
    path = CHECKPOINTS / MODELS[model_name]
    if not path.exists():
        raise UserError(
            f"--model={model_name}: its weights {path.relative_to(CHECKPOINTS.parent.parent)} are not there: "
            f"run '{MAKES.get(model_name, 'make sentiment_lstm')}' first"
        )
    return path


def main(argv):
    model_name, checkpoint, texts = parse(argv)
    if checkpoint is None:
        check_name(model_name)
    if len(texts) != 1:
        raise UserError('give the review as one argument, in quotes: predict --model bilstm "review text"')
    if not tokenize(texts[0]):
        raise UserError("the text is empty (no words or punctuation): give a review to classify")
    model, meta = load_model(Path(checkpoint) if checkpoint else weights_of(model_name))
    p = probabilities(model, meta, texts[0])
    label = int(p.argmax())
    print(f"{LABELS[label]} {p[label]:.4f}")
    return label, float(p[label])


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
