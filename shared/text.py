"""Tiny Shakespeare as character ids, in nanoGPT's convention: the vocabulary is sorted(set(text)) (65 characters),
the first 90% of the text trains and the last 10% validates. Used by the character-level language models
(char_rnn, nanogpt).

    vocab, ids = shakespeare_ids()              # "\\n !$&',-.3:;?ABC...xyz", int64 (1115394,)
    split = shakespeare_splits()                # {"vocab": str, "train": ids[:90%], "val": ids[90%:]}
"""

import functools

import numpy as np


@functools.cache
def shakespeare_ids():
    """(vocabulary string sorted(set(text)), int64 ids of the whole text, read-only)."""
    from shared import data  # looked up at call time, so a test may replace data.load_shakespeare

    text = data.load_shakespeare()
    chars = sorted(set(text))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    table[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = table[codes]
    ids.flags.writeable = False
    return "".join(chars), ids


def shakespeare_splits():
    """{"vocab": str, "train": ids[:n_train], "val": ids[n_train:]} with n_train = int(0.9 n), nanoGPT's split
    (111,540 validation characters). The arrays are read-only views of shakespeare_ids()."""
    vocab, ids = shakespeare_ids()
    n_train = int(0.9 * len(ids))
    return {"vocab": vocab, "train": ids[:n_train], "val": ids[n_train:]}
