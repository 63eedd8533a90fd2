"""Tiny Shakespeare as character ids (shared/text.py: nanoGPT's split, first 90% train, last 10% validate;
vocabulary sorted(set(text)), 65 characters), laid out as the parallel streams the training and the evaluation
read, and the streamed validation loss both implementations are scored by."""

import numpy as np

from shared.nn import log_softmax
from shared.text import shakespeare_ids, shakespeare_splits

encoded_text = shakespeare_ids  # (vocabulary, ids of the whole text): shared with nanogpt, in shared/text.py


def prepare_data(cfg=None):
    """{"vocab": str, "train": ids[:90%], "val": ids[90%:]} (nanoGPT's split: n_train = int(0.9 n)); with
    cfg.train_chars only that prefix of the training split."""
    data = shakespeare_splits()
    if cfg is not None and cfg.train_chars:
        data["train"] = data["train"][: cfg.train_chars]
    return data


def train_layout(ids, batch, offset=0):
    """x, y (batch, S): ids[offset:] cut into `batch` contiguous stripes; y is x shifted by one character.
    Row b is the stream ids[offset + b S : offset + (b + 1) S] (the tail that does not fill a row is dropped)."""
    S = (len(ids) - 1 - offset) // batch
    x = ids[offset : offset + batch * S].reshape(batch, S)
    y = ids[offset + 1 : offset + 1 + batch * S].reshape(batch, S)
    return x, y


def eval_layout(ids, batch):
    """Every one of the n = len(ids) - 1 predictions of a text, as `batch` contiguous streams of length
    S = ceil(n / batch): x, y (batch, S) with target -1 (ignored) on the padding after the last prediction."""
    n = len(ids) - 1
    S = -(-n // batch)
    x = np.zeros(batch * S, dtype=np.int64)
    y = np.full(batch * S, -1, dtype=np.int64)
    x[:n], y[:n] = ids[:-1], ids[1:]
    return x.reshape(batch, S), y.reshape(batch, S)


def masked_nll_sum(logits, y):
    """Sum of -log softmax(logits)[y] over the entries with y >= 0, in float64. logits (B, T, V), y (B, T)."""
    mask = y >= 0
    log_p = log_softmax(logits[mask].astype(np.float64))  # (n, V)
    return -float(np.sum(log_p[np.arange(len(log_p)), y[mask]]))


def stream_loss(model, ids, batch, seq):
    """Mean next-character cross-entropy (nats/char) over all of `ids`, read as `batch` streams in chunks of
    `seq` with carried state (see eval_layout). The model's carried training state is left as it was."""
    x, y = eval_layout(ids, batch)
    saved = model.carried
    model.reset_state(batch)
    total = 0.0
    try:
        for a in range(0, x.shape[1], seq):
            total += masked_nll_sum(model.logits(x[:, a : a + seq]), y[:, a : a + seq])
    finally:
        model.carried = saved
    return total / int((y >= 0).sum())
