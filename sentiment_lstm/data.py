"""IMDB reviews as tokens, a vocabulary and length-bucketed padded batches of ids, for every model of the project.

    parts = splits(val_size=2500, seed=0)         # {"train", "val", "test"}: Hugging Face Datasets with tokens
    data = prepare(min_count=2, max_vocab=20000)  # {"vocab", "train", "val", "test"}: Splits of id arrays
    for idx in bucketed_batches(data["train"].lengths, 32, rng):
        (ids, lengths), labels = data["train"].batch(idx)   # (B, T) int64, (B,) int64, (B,) int64

The reviews are the official 25,000 / 25,000 split (shared.data: the checksum-verified jsonl.gz files of the data
cache or the mirror). Hugging Face `datasets` reads those files (`load_dataset("json")`) and tokenises them with
`.map`; both are cached as Arrow files under <data cache>/huggingface (data/ by default, ignored by git), so only
the first run tokenises. The validation split is `val_size` reviews held out of the 25,000 training reviews by
shared.data.train_val_split(seed): every choice (vocabulary, hyperparameters, early stopping) is made on it, and
the test set is only scored.

Tokeniser: lower-case, the `<br />` line breaks of the HTML source removed, then a regex: a word is a run of
letters and digits, with inner apostrophes kept ("don't", "it's"); every other non-space character is a token of
its own ("!!" is two tokens). Vocabulary: from the training portion only (never validation or test), the
tokens seen at least `min_count` times, the most frequent first (ties alphabetically), at most `max_vocab`
entries in all, with id 0 = <pad> and id 1 = <unk> (every other token).

Batches: ids are padded on the right with 0 to the longest review of the batch, with the true lengths beside
them, so a model reads positions t < length only (masking or packing). Training batches are bucketed: the
shuffled reviews are cut into pools of `pool` batches, each pool is sorted by length and cut into batches, and
the batches are shuffled, so that a batch holds reviews of similar length (little padding) yet differs from epoch
to epoch. Reviews longer than `max_len` tokens are truncated: keep="last" keeps the last max_len tokens (the
end of a review usually states the verdict; Keras's IMDB example truncates so), "first" the first ones, "both"
the first max_len // 4 and the last max_len - max_len // 4 (Sun et al. 2019's head + tail).
"""

import collections
import dataclasses
import functools
import itertools
import re

import numpy as np

from shared import data as shared_data
from shared.cli import UserError

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
VAL_SIZE = 2500  # reviews held out of the 25,000 training reviews
KEEP = ("last", "first", "both")

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(
    r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_"
)  # a word (inner apostrophes kept), or one other character


def tokenize(text):
    """A review -> its tokens: lower-cased, <br /> removed, punctuation split off.
    tokenize("Great film!<br /><br />Don't miss it...") -> ['great', 'film', '!', "don't", 'miss', 'it', '.', '.', '.']
    """
    return _TOKEN.findall(_BREAK.sub(" ", text.lower()))


def _tokenize_batch(batch, indices):
    return {"tokens": [tokenize(t) for t in batch["text"]], "index": indices}


# ---- the reviews


def imdb_files():
    """{"train": path, "test": path}: the jsonl.gz files exactly as shared.data.load_imdb finds them
    (shared.data.imdb_folder: the data cache, then $REPRO_DATA_MIRROR, then a download), their sha256 checked."""
    folder = shared_data.imdb_folder()  # resolves the folder and verifies both files (once per process)
    return {split: str(folder / f"{split}.jsonl.gz") for split in ("train", "test")}


def tokenized_imdb():
    """Hugging Face DatasetDict {"train", "test"} (25,000 reviews each) with columns text, label (1 = positive),
    tokens and index (the review's position in its file, as in shared.data.load_imdb)."""
    files = imdb_files()
    return _tokenized(files["train"], files["test"], str(shared_data.cache_dir() / "huggingface"))


@functools.cache
def _tokenized(train_file, test_file, cache):
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    ds = datasets.load_dataset("json", data_files={"train": train_file, "test": test_file}, cache_dir=cache)
    return ds.map(_tokenize_batch, batched=True, with_indices=True, batch_size=1000)


def splits(val_size=VAL_SIZE, seed=0, train_subset=0, eval_subset=0):
    """{"train", "val", "test"}: Datasets of the training reviews less `val_size` held out by seed, the held-out
    ones, and the 25,000 test reviews. train_subset / eval_subset (0 = all): seeded subsets of the training
    portion / of validation and test, for quick looks and tests."""
    if train_subset < 0 or eval_subset < 0:
        raise UserError("--train_subset and --eval_subset must be >= 0")
    ds = tokenized_imdb()
    train_idx, val_idx = shared_data.train_val_split(len(ds["train"]), val_size, seed=seed)
    parts = {"train": ds["train"].select(train_idx), "val": ds["train"].select(val_idx), "test": ds["test"]}
    rng = np.random.default_rng([seed, 2])
    for name, part in parts.items():
        subset = train_subset if name == "train" else eval_subset
        if subset and subset < len(part):
            parts[name] = part.select(np.sort(rng.permutation(len(part))[:subset]))
    return parts


def tokenized_splits(val_size=VAL_SIZE, seed=0, train_subset=0, eval_subset=0):
    """{"train", "val", "test"}: {"tokens": a list of token lists, "labels": (N,) int64, "index": (N,) int64
    (positions in the original file)} of splits(...)."""
    out = {}
    for name, part in splits(val_size, seed, train_subset, eval_subset).items():
        columns = part[:]  # {column: list}: one read of the table (row by row is ~5x slower)
        labels, index = (np.array(columns[k], dtype=np.int64) for k in ("label", "index"))
        out[name] = {"tokens": columns["tokens"], "labels": labels, "index": index}
    return out


# ---- vocabulary and ids


def build_vocab(token_lists, min_count=1, max_vocab=0):
    """The vocabulary (a list, id -> token) of some tokenised reviews: <pad>, <unk>, then the tokens seen at
    least min_count times, most frequent first (ties alphabetically), max_vocab entries in all (0 = no cap)."""
    if min_count < 1 or max_vocab < 0 or 0 < max_vocab <= len(SPECIALS):
        raise UserError(
            f"vocabulary: need min_count >= 1 and max_vocab = 0 or > 2, got {min_count}, {max_vocab}"
        )
    counts = collections.Counter()
    for tokens in token_lists:
        counts.update(tokens)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_vocab:
        kept = kept[: max_vocab - len(SPECIALS)]
    return list(SPECIALS) + kept


def encode(tokens, lookup):
    """Tokens -> int64 ids (unknown tokens -> UNK); lookup = {token: id} of the vocabulary."""
    return np.array(list(map(lookup.get, tokens, itertools.repeat(UNK, len(tokens)))), dtype=np.int64)


def truncate(ids, max_len, keep="last"):
    """At most max_len ids (0 = all): the last, the first, or both ends (first max_len // 4, then the rest)."""
    if not max_len or len(ids) <= max_len:
        return ids
    if keep == "last":
        return ids[-max_len:]
    if keep == "first":
        return ids[:max_len]
    head = max_len // 4
    return np.concatenate([ids[:head], ids[len(ids) - (max_len - head) :]])


def encode_text(text, vocab, max_len=0, keep="last"):
    """One review typed by a user -> ids; an empty review (no tokens) is a UserError."""
    tokens = tokenize(text)
    if not tokens:
        raise UserError("the text is empty (no words or punctuation): give a review to classify")
    return truncate(encode(tokens, {w: i for i, w in enumerate(vocab)}), max_len, keep)


@dataclasses.dataclass
class Split:
    """Encoded reviews: ids (a list of int64 arrays), labels (N,) int64, index (N,) their positions in the
    original file (train or test), lengths (N,) int64."""

    ids: list
    labels: np.ndarray
    index: np.ndarray

    def __post_init__(self):
        self.lengths = np.array([len(x) for x in self.ids], dtype=np.int64)

    def __len__(self):
        return len(self.ids)

    def batch(self, idx):
        """((ids (B, T), lengths (B,)), labels (B,)) of the reviews idx, right-padded to the longest."""
        ids, lengths = pad([self.ids[i] for i in idx])
        return (ids, lengths), self.labels[idx]


def prepare(val_size=VAL_SIZE, seed=0, min_count=2, max_vocab=20000, max_len=0, keep="last", train_subset=0,
            eval_subset=0):  # fmt: skip
    """{"vocab": list of tokens, "train", "val", "test": Split} of tokenized_splits(val_size, seed, train_subset,
    eval_subset); the vocabulary comes from the training portion only (build_vocab(min_count, max_vocab)), the
    reviews are cut to max_len tokens (truncate(keep))."""
    if keep not in KEEP:
        raise UserError(f"--keep={keep}: choose one of {', '.join(KEEP)}")
    if max_len < 0:
        raise UserError(f"--max_len={max_len}: must be >= 0")
    parts = tokenized_splits(val_size, seed, train_subset, eval_subset)
    vocab = build_vocab(parts["train"]["tokens"], min_count, max_vocab)
    lookup = {w: i for i, w in enumerate(vocab)}
    out = {"vocab": vocab}
    for name, part in parts.items():
        ids = [truncate(encode(t, lookup), max_len, keep) for t in part["tokens"]]
        out[name] = Split(ids, part["labels"], part["index"])
    return out


# ---- batches


def pad(seqs):
    """Id arrays -> ids (B, T) int64 padded on the right with PAD, T = the longest; lengths (B,) int64."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if not len(seqs) or lengths.min() < 1:
        raise ValueError("pad: every sequence needs at least one id")
    ids = np.full((len(seqs), int(lengths.max())), PAD, dtype=np.int64)
    for row, s in zip(ids, seqs):
        row[: len(s)] = s
    return ids, lengths


def bucketed_batches(lengths, batch_size, rng, pool=50):
    """An epoch's batches (arrays of indices): a permutation cut into pools of `pool` batches, each pool sorted
    by length (stable) and cut into batches, the batches shuffled. Every index once."""
    order = rng.permutation(len(lengths))
    batches = []
    for a in range(0, len(order), pool * batch_size):
        chunk = order[a : a + pool * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def length_batches(lengths, batch_size):
    """Batches for evaluation: all indices sorted by length (stable), cut into batches of batch_size."""
    order = np.argsort(lengths, kind="stable")
    return [order[a : a + batch_size] for a in range(0, len(order), batch_size)]
