"""Re-score every committed model in sentiment_lstm/checkpoints/ on the test reviews and print its test accuracy
beside the one its run record claims (`make eval-sentiment_lstm`). Exits 1 when one differs by more than
--tolerance (default 1e-4: two of the 25,000 test reviews), or when a weights file has no run record.

    python -m sentiment_lstm.evaluate [--threads=1] [--tolerance=1e-4]

What each kind of weights file is scored with, the record's own settings (its config: validation size, seed,
subsets, vocabulary, truncation) rebuilding the same test split:
  <run>.npz, an NBSVM (baselines.py)       baselines.SavedNBSVM on the tokens of data.tokenized_splits(...)
  <run>.npz, the NumPy LSTM (train.py)     the train.py model adapter (twin.build) from the record's config, on
  <run>.pt, a torch LSTM / BiLSTM          data.prepare(...)'s test split in train.py's length-sorted batches;
                                           the vocabulary rebuilt from the training portion must equal the
                                           one saved beside the weights
  <run>.pt, a MiniLM delta (finetune.py)   sentiment_lstm.finetune.load_finetuned(path) and predict_proba(model,
                                           tokenizer, texts, max_len, keep, ...) on the record's test reviews;
                                           finetune (and transformers, peft) are imported only when such a
                                           file is there
The accuracy is the share of test reviews whose predicted label (argmax of the two logits; NBSVM: score > 0)
is their label: what the training scripts counted. test_predictions() gives the predictions per review, which
figures.py bins by review length.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from sentiment_lstm import data as sdata
from shared.checkpoint import load_npz, load_torch
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.reevaluate import reevaluate
from shared.threads import set_threads


@dataclasses.dataclass
class EvalConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice, one per core
    tolerance: float = 1e-4  # largest accepted |measured - claimed| test accuracy (a fraction)


def kind_of(path, content):
    """nbsvm | lstm | bilstm | minilm: what a weights file holds (its content as load_npz / load_torch read it)."""
    if Path(path).suffix == ".npz":
        return "nbsvm" if "ngrams_xz" in content else "lstm"
    meta = json.loads(content["meta"])
    return "minilm" if "lora" in meta else meta.get("kind", "lstm")


def _split_settings(config):
    keys = ("val_size", "seed", "train_subset", "eval_subset")
    return {k: config[k] for k in keys if k in config}


def _nbsvm(path, content, record):
    from sentiment_lstm.baselines import SavedNBSVM

    model = SavedNBSVM(path, content)
    test = sdata.tokenized_splits(**_split_settings(record["config"]))["test"]
    predicted, p = model.predict_proba(test["tokens"])
    return test["index"], test["labels"], predicted, p


def _lstm(path, content, record):
    from sentiment_lstm import train
    from sentiment_lstm.twin import build

    fields = {f.name for f in dataclasses.fields(train.Config)}
    config = {k: v for k, v in record["config"].items() if k in fields}
    cfg = train.check(dataclasses.replace(train.Config(), **{**config, "device": "cpu"}))
    if Path(path).suffix == ".npz":
        meta = json.loads(str(content.pop("meta")))
        weights = content
    else:
        meta, weights = json.loads(content["meta"]), content["model"]
    keys = ("val_size", "seed", "min_count", "max_vocab", "max_len", "keep", "train_subset", "eval_subset")
    data = sdata.prepare(**{k: getattr(cfg, k) for k in keys})
    if meta["vocab"] != data["vocab"]:
        raise UserError(f"{path}: its vocabulary differs from the one the record's settings build")
    model = build(cfg, len(data["vocab"]))
    model.set_weights(weights)
    test = data["test"]
    p, predicted = np.zeros(len(test)), np.zeros(len(test), dtype=np.int64)
    for idx in sdata.length_batches(test.lengths, cfg.eval_batch):  # train.evaluate's batches
        x, _ = test.batch(idx)
        logits = np.asarray(model.logits(x), dtype=np.float64)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        p[idx], predicted[idx] = z[:, 1] / z.sum(axis=1), logits.argmax(1)
    return test.index, test.labels, predicted, p


def _minilm(path, content, record):
    from sentiment_lstm import finetune  # transformers and peft: only for a MiniLM weights file

    config = record["config"]
    model, tokenizer = finetune.load_finetuned(path)
    test = sdata.splits(**_split_settings(config))["test"]
    columns = test[:]
    texts = columns["text"]
    p = finetune.predict_proba(
        model, tokenizer, texts, config.get("max_len"), config.get("keep"),
        batch_size=config.get("eval_batch", 32), bf16=config.get("precision") == "bf16",
    )  # fmt: skip
    p = np.asarray(p, dtype=np.float64)
    p = p[:, 1] if p.ndim == 2 else p
    index, labels = (np.array(columns[k], dtype=np.int64) for k in ("index", "label"))
    return index, labels, (p > 0.5).astype(np.int64), p


SCORERS = {"nbsvm": _nbsvm, "lstm": _lstm, "bilstm": _lstm, "minilm": _minilm}


def test_predictions(path, record):
    """{"index", "label", "predicted", "p_positive"} (N,) of one weights file on its record's test reviews
    (index: positions in the test file; predicted: what the accuracy counts); None for a file of unknown kind."""
    path = Path(path)
    content = load_npz(path) if path.suffix == ".npz" else load_torch(path)
    kind = kind_of(path, content)
    if kind not in SCORERS:
        return None
    index, labels, predicted, p = SCORERS[kind](path, content, record)
    return {
        "index": np.asarray(index, dtype=np.int64),
        "label": np.asarray(labels, dtype=np.int64),
        "predicted": np.asarray(predicted, dtype=np.int64),
        "p_positive": np.asarray(p, dtype=np.float64),
    }


def test_accuracy(path, record):
    """The test accuracy of one weights file, or None (shared.reevaluate: skipped) if it cannot be rebuilt."""
    out = test_predictions(path, record)
    return None if out is None else float((out["predicted"] == out["label"]).mean())


def main(argv, folder=None):
    cfg = parse_config(EvalConfig(), argv)
    set_threads(cfg.threads)
    return reevaluate("sentiment_lstm", "test_acc", test_accuracy, cfg.tolerance, folder)


if __name__ == "__main__":
    sys.exit(run_main(main))
