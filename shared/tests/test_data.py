"""Loaders on the real mirror, and the errors a corrupt, truncated or missing dataset gets."""

import gzip
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import shared.data as data
from shared.data import DataError

from .conftest import ROOT


def fresh(monkeypatch, cache, mirror=None):
    monkeypatch.setenv("REPRO_DATA", str(cache))
    if mirror is None:
        monkeypatch.delenv("REPRO_DATA_MIRROR", raising=False)
    else:
        monkeypatch.setenv("REPRO_DATA_MIRROR", str(mirror))
    for loader in (data._mnist_cached, data._cifar10_cached, data._shakespeare_cached, data._imdb_cached):
        loader.cache_clear()


def test_mnist_counts(mirror, monkeypatch, tmp_path):
    fresh(monkeypatch, tmp_path / "cache", mirror)
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9] and y_test[:3].tolist() == [7, 2, 1]
    assert not (tmp_path / "cache").exists(), "reading from the mirror must not write the cache"


def test_cifar10_counts(mirror, monkeypatch, tmp_path):
    fresh(monkeypatch, tmp_path / "cache", mirror)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert abs(x_train[..., 0].mean() / 255 - 0.4914) < 1e-3


def test_shakespeare(mirror, monkeypatch, tmp_path):
    fresh(monkeypatch, tmp_path / "cache", mirror)
    text = data.load_shakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed")


def test_imdb_counts(mirror, monkeypatch, tmp_path):
    fresh(monkeypatch, tmp_path / "cache", mirror)
    (train_texts, y_train), (test_texts, y_test) = data.load_imdb()
    assert len(train_texts) == len(test_texts) == 25000
    assert np.bincount(y_train).tolist() == [12500, 12500] == np.bincount(y_test).tolist()
    assert train_texts[12500].startswith("Bromwell High is a cartoon comedy.")


def test_imdb_folder_is_the_verified_folder_load_imdb_reads(mirror, monkeypatch, tmp_path):
    fresh(monkeypatch, tmp_path / "cache", mirror)
    assert data.imdb_folder() == mirror / "imdb"
    assert {p.name for p in data.imdb_folder().iterdir()} >= set(data.IMDB_FILES)
    assert not (tmp_path / "cache").exists(), "finding the folder must not write the cache"
    cache = tmp_path / "cache2"  # a cached copy comes first, and is checked like the mirror
    shutil.copytree(mirror / "imdb", cache / "imdb")
    (cache / "imdb").chmod(0o755)
    target = cache / "imdb" / "test.jsonl.gz"
    target.chmod(0o644)
    with gzip.open(target, "wb") as f:  # valid gzip, wrong content
        f.write(b'{"text": "not the review", "label": 1}\n')
    fresh(monkeypatch, cache, mirror)
    with pytest.raises(DataError, match="test.jsonl.gz is corrupt"):
        data.imdb_folder()


def test_cache_comes_before_mirror(mirror, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(mirror / "tinyshakespeare", cache / "tinyshakespeare")
    fresh(monkeypatch, cache, tmp_path / "no-mirror-here")
    assert len(data.load_shakespeare()) == 1_115_394


def corrupt_mirror(mirror, tmp_path, damage):
    """A copy of the MNIST mirror with one file damaged by damage(path)."""
    fake = tmp_path / "mirror"
    shutil.copytree(mirror / "mnist", fake / "mnist")
    target = fake / "mnist" / "t10k-labels-idx1-ubyte.gz"
    damage(target)
    return fake


def flip_a_label(path):
    raw = bytearray(gzip.open(path).read())
    raw[100] = (raw[100] + 1) % 10
    path.write_bytes(gzip.compress(bytes(raw)))


def truncate(path):
    path.write_bytes(path.read_bytes()[:2000])


@pytest.mark.parametrize("damage, words", [(flip_a_label, r"is corrupt \(md5"), (truncate, "truncated")])
def test_corrupt_mirror_file_gets_one_clear_error(mirror, monkeypatch, tmp_path, no_network, damage, words):
    cache = tmp_path / "cache"
    fresh(monkeypatch, cache, corrupt_mirror(mirror, tmp_path, damage))
    with pytest.raises(DataError, match=words) as err:
        data.load_mnist()
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value) and "\n" not in str(err.value)
    assert not cache.exists()


def test_absent_dataset_offline_gets_one_line_and_leaves_cache(monkeypatch, tmp_path, no_network):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "keep.txt").write_text("user file")
    fresh(monkeypatch, cache)
    with pytest.raises(DataError, match=r"CIFAR-10 not found in .* and the download of .* failed") as err:
        data.load_cifar10()
    assert "make data" in str(err.value) and "REPRO_DATA_MIRROR" in str(err.value)
    assert sorted(p.name for p in cache.iterdir()) == ["keep.txt"]


def test_corrupt_download_leaves_cache_untouched(monkeypatch, tmp_path):
    def bad_download(url, dest, timeout=60):
        dest.write_bytes(b"not the real file")

    monkeypatch.setattr(data, "_download", bad_download)
    fresh(monkeypatch, tmp_path / "cache")
    with pytest.raises(DataError, match="md5"):
        data.load_mnist()
    assert not (tmp_path / "cache").exists()


def test_cli_prints_one_line_not_a_traceback(tmp_path):
    env = dict(
        os.environ,
        REPRO_DATA=str(tmp_path / "cache"),
        REPRO_DATA_MIRROR=str(tmp_path / "none"),
        PYTHONPATH=str(ROOT),
    )
    # a proxy that cannot be reached makes the download fail fast, as with no network
    env.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    proc = subprocess.run(
        [sys.executable, "-m", "shared.data"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: MNIST not found")


def test_train_val_split_is_deterministic_and_disjoint():
    a_train, a_val = data.train_val_split(1000, 100, seed=3)
    b_train, b_val = data.train_val_split(1000, 100, seed=3)
    assert (a_val == b_val).all() and len(a_val) == 100 and len(a_train) == 900
    assert not set(a_train) & set(a_val)
    assert not (data.train_val_split(1000, 100, seed=4)[1] == a_val).all()


def test_hold_out_splits_examples_with_their_labels():
    x, y = np.arange(100) * 10, np.arange(100)
    (x_train, y_train), (x_val, y_val) = data.hold_out(x, y, 20, seed=3)
    assert len(x_val) == 20 and len(x_train) == 80 and set(y_train).isdisjoint(y_val)
    assert (x_train == 10 * y_train).all() and (x_val == 10 * y_val).all()  # labels stay with their examples
    assert (y_val == data.train_val_split(100, 20, seed=3)[1]).all()
    (_, _), (x_none, _) = data.hold_out(x, y, 0)
    assert len(x_none) == 0
