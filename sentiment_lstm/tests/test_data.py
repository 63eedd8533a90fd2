"""The tokeniser, the vocabulary (from the training portion only; unknown words -> 1), truncation, padding and
length buckets, and the splits of the real IMDB files read through Hugging Face datasets."""

import numpy as np
import pytest

from sentiment_lstm import data


def imdb_or_skip():
    from shared import data as shared_data

    names = ("train.jsonl.gz", "test.jsonl.gz")
    folders = [shared_data.cache_dir() / "imdb"]
    if shared_data.mirror_dir() is not None:
        folders.append(shared_data.mirror_dir() / "imdb")
    if not any(all((f / n).is_file() for n in names) for f in folders):
        pytest.skip("IMDB is in neither data/ nor $REPRO_DATA_MIRROR (unit tests do not download)")


@pytest.mark.parametrize(
    "text,tokens",
    [
        (
            "Great film!<br /><br />Don't miss it...",
            ["great", "film", "!", "don't", "miss", "it", ".", ".", "."],
        ),
        ("A 10/10 MOVIE<br/>(really)", ["a", "10", "/", "10", "movie", "(", "really", ")"]),
        (
            "Amélie's charm -- and Café_Society",
            ["amélie's", "charm", "-", "-", "and", "café", "_", "society"],
        ),
        ("  <BR>  ", []),
    ],
)
def test_tokenizer(text, tokens):
    assert data.tokenize(text) == tokens


def test_vocabulary_order_specials_and_caps():
    docs = [["b", "a", "b", "c"], ["c", "b", "d"]]
    assert data.build_vocab(docs) == ["<pad>", "<unk>", "b", "c", "a", "d"]  # by count, ties alphabetically
    assert data.build_vocab(docs, min_count=2) == ["<pad>", "<unk>", "b", "c"]
    assert data.build_vocab(docs, max_vocab=3) == ["<pad>", "<unk>", "b"]
    lookup = {w: i for i, w in enumerate(data.build_vocab(docs))}
    np.testing.assert_array_equal(data.encode(["d", "zebra", "b"], lookup), [5, data.UNK, 2])
    assert data.PAD == 0 and data.UNK == 1


def test_truncation_keeps_the_stated_end():
    ids = np.arange(10)
    np.testing.assert_array_equal(data.truncate(ids, 4, "last"), [6, 7, 8, 9])
    np.testing.assert_array_equal(data.truncate(ids, 4, "first"), [0, 1, 2, 3])
    np.testing.assert_array_equal(data.truncate(ids, 8, "both"), [0, 1, 4, 5, 6, 7, 8, 9])  # head 8 // 4 = 2
    assert data.truncate(ids, 0) is ids and data.truncate(ids, 10) is ids


def test_padding_and_length_buckets():
    ids, lengths = data.pad([np.array([5, 6, 7]), np.array([8])])
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(lengths, [3, 1])
    with pytest.raises(ValueError):
        data.pad([np.array([], dtype=np.int64)])
    lengths = np.random.default_rng(0).integers(1, 1000, size=1000)
    rng = np.random.default_rng(1)
    epoch = data.bucketed_batches(lengths, 10, rng, pool=20)
    assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))  # every review once
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in epoch])
    assert spread < 60  # similar lengths in a batch (a random batch of 10 spreads ~800)
    again = data.bucketed_batches(lengths, 10, rng, pool=20)
    assert not all(np.array_equal(a, b) for a, b in zip(epoch, again))  # new batches every epoch
    ordered = data.length_batches(lengths, 64)
    assert np.all(np.diff(lengths[np.concatenate(ordered)]) >= 0)


def test_real_splits_and_the_datasets_cache():
    imdb_or_skip()
    from shared import data as shared_data

    parts = data.splits()
    assert [len(parts[k]) for k in ("train", "val", "test")] == [22500, 2500, 25000]
    train, val = set(parts["train"]["index"]), set(parts["val"]["index"])
    assert not train & val and train | val == set(range(25000))
    cache = str(shared_data.cache_dir() / "huggingface")
    assert all(
        f["filename"].startswith(cache) for f in parts["test"].cache_files
    )  # the mapped tokens are cached
    row = parts["test"][0]
    assert row["tokens"] == data.tokenize(row["text"]) and row["label"] in (0, 1)


def test_vocabulary_comes_from_the_training_portion_only():
    imdb_or_skip()
    prepared = data.prepare(train_subset=300, eval_subset=300, min_count=1, max_vocab=0, max_len=50)
    parts = data.tokenized_splits(train_subset=300, eval_subset=300)
    vocab = prepared["vocab"]
    assert vocab == data.build_vocab(parts["train"]["tokens"])
    seen = set(t for doc in parts["train"]["tokens"] for t in doc)
    unseen = [t for t in parts["val"]["tokens"][0] if t not in seen]  # words of a validation review only
    assert unseen and not set(unseen) & set(vocab)
    lookup = {w: i for i, w in enumerate(vocab)}
    expected = data.truncate(data.encode(parts["val"]["tokens"][0], lookup), 50)
    np.testing.assert_array_equal(prepared["val"].ids[0], expected)
    (ids, lengths), labels = prepared["val"].batch(np.arange(4))
    assert (
        ids.shape == (4, lengths.max())
        and lengths.max() <= 50
        and labels.tolist() == parts["val"]["labels"][:4].tolist()
    )
