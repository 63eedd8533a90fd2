"""Datasets as NumPy arrays: MNIST, CIFAR-10, tiny Shakespeare, IMDB.

Where a dataset is looked for, in order:
  1. the local cache, `./data` or `$REPRO_DATA`;
  2. a read-only mirror folder named by `$REPRO_DATA_MIRROR` (the layout of the project's offline mirror:
     mnist/*.gz, cifar10/{train,test}_NN.png + labels.npz, tinyshakespeare/input.txt, imdb/*.jsonl.gz);
  3. a download from the canonical public source, converted into the cache in that same layout.
Every file is checked before use: downloads against the publisher's md5, and the content itself (decompressed
bytes or decoded arrays) against a sha256 or md5 kept here, so the cache, the mirror and a fresh download must
all hold exactly the same data. Downloads and conversions go to a temporary folder that is renamed into place,
so a failed or corrupt fetch leaves the cache as it was. Failures are one-line `DataError`s.

The CIFAR-10 test set is ordered by class (all class-0 images, then class 1, ...; within a class the official
order), whatever the source, because that is the order the offline mirror could be verified in. Take a seeded
permutation when you want a mixed slice.
"""

import functools
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from shared.cli import UserError

ROOT = Path(__file__).resolve().parent.parent
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

MNIST_FILES = {  # file: (md5 of the published .gz download, md5 of its decompressed content)
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
}
MNIST_URLS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARRAYS_SHA256 = {  # sha256 of each decoded C-contiguous uint8 array, test set in class order
    "x_train": "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a",
    "y_train": "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253",
    "x_test": "b726c0776fa6529b7083cf65b3fcea9ab2e4609ac1d7632ba4fb80851c88aa62",
    "y_test": "a054c239a40ee7f2a5745e7e4bc11a51e9cb40c98134b602c1068e6a207487c6",
}

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_TAR_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
IMDB_JSONL_SHA256 = {  # of the decompressed {"text", "label"} lines: negatives by id, then positives by id
    "train": "06ddcc0d7acb0102ac52832385dd4725d53b76b41c9beffb2f21cdac1420c8c9",
    "test": "b57f30936c08901b80b32d698af25440a443d6525ce05a54dd7da9981c04e47a",
}


class DataError(UserError):
    """A dataset is missing, corrupt or cannot be fetched."""


def cache_dir():
    return Path(os.environ.get("REPRO_DATA") or ROOT / "data")


def mirror_dir():
    value = os.environ.get("REPRO_DATA_MIRROR")
    return Path(value) if value else None


def _digest(data, algorithm):
    return hashlib.new(algorithm, data).hexdigest()


def _check(data, expected, algorithm, what):
    got = _digest(data, algorithm)
    if got != expected:
        raise DataError(
            f"{what} is corrupt ({algorithm} {got[:12]}..., expected {expected[:12]}...): "
            "delete it and run 'make data' again"
        )


def _read_gz(path):
    try:
        return gzip.open(path, "rb").read()
    except (OSError, EOFError) as e:
        raise DataError(
            f"{path} is corrupt or truncated ({e}): delete it and run 'make data' again"
        ) from None


def _candidates(subdir, names):
    """Folders holding every one of `names` under `subdir`: the cache first, then the mirror."""
    folders = [cache_dir() / subdir]
    if mirror_dir() is not None:
        folders.append(mirror_dir() / subdir)
    return [f for f in folders if all((f / n).is_file() for n in names)]


def _download(url, dest, timeout=60):
    """Fetch url into the file dest (a temporary path); a DataError on any network failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"download of {url} failed ({reason})") from None


def _fetch_into_cache(subdir, build):
    """Run build(tmp_folder) to fill a fresh folder, then move its files into cache/subdir atomically."""
    target = cache_dir() / subdir
    created = not cache_dir().exists()
    cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=f".{subdir}-download-"))
    try:
        build(tmp)
        target.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, target / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(cache_dir().iterdir()):
            cache_dir().rmdir()  # a failed first fetch leaves no trace
    return target


def _not_found(name, download_error):
    where = "data/" if "REPRO_DATA" not in os.environ else f"{cache_dir()}/"
    raise DataError(
        f"{name} not found in {where} or $REPRO_DATA_MIRROR, and {download_error}: "
        "run 'make data' online or set REPRO_DATA_MIRROR to a mirror folder"
    )


def _resolve(name, subdir, names, download):
    folders = _candidates(subdir, names)
    if folders:
        return folders[0]
    try:
        return _fetch_into_cache(subdir, download)
    except DataError as e:
        _not_found(name, str(e).replace("download of", "the download of", 1))


# ---- MNIST -----------------------------------------------------------------------------------------------


def _download_mnist(tmp):
    for name, (gz_md5, _) in MNIST_FILES.items():
        errors = []
        for base in MNIST_URLS:
            try:
                _download(base + name, tmp / name)
                _check((tmp / name).read_bytes(), gz_md5, "md5", f"downloaded {name}")
                break
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError(errors[-1])


def _parse_idx(raw, what):
    """IDX format: magic (2 zero bytes, dtype code 0x08 = uint8, ndim), ndim big-endian int32 sizes, data."""
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if raw[:3] != b"\x00\x00\x08" or data.size != int(np.prod(shape)):
        raise DataError(f"{what} is not a valid IDX file: delete it and run 'make data' again")
    return data.reshape(shape)


@functools.cache
def _mnist_cached(folder):
    arrays = []
    for name, (_, content_md5) in MNIST_FILES.items():
        raw = _read_gz(folder / name)
        _check(raw, content_md5, "md5", str(folder / name))
        arrays.append(_parse_idx(raw, folder / name))
    x_train, y_train, x_test, y_test = arrays
    return _readonly(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))


def load_mnist():
    """(x_train (60000, 28, 28) uint8, y_train (60000,) int64), (x_test (10000, 28, 28), y_test (10000,))."""
    folder = _resolve("MNIST", "mnist", list(MNIST_FILES), _download_mnist)
    x_train, y_train, x_test, y_test = _mnist_cached(folder)
    return (x_train, y_train), (x_test, y_test)


# ---- CIFAR-10 --------------------------------------------------------------------------------------------

CIFAR10_FILES = (
    [f"train_{i:02d}.png" for i in range(50)] + [f"test_{i:02d}.png" for i in range(10)] + ["labels.npz"]
)


def _write_png_strips(folder, prefix, images):
    from PIL import Image

    for i in range(0, len(images), 1000):
        Image.fromarray(images[i : i + 1000].reshape(-1, 32, 3)).save(
            folder / f"{prefix}_{i // 1000:02d}.png"
        )


def _download_cifar10(tmp):
    import pickle

    tar_path = tmp / "cifar-10-python.tar.gz"
    _download(CIFAR10_URL, tar_path)
    _check(tar_path.read_bytes(), CIFAR10_TAR_MD5, "md5", "downloaded cifar-10-python.tar.gz")
    batches = {}
    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            base = Path(member.name).name
            if base.startswith("data_batch_") or base == "test_batch":
                # the publisher's pickles, verified by md5 above, hold only arrays and lists
                batches[base] = pickle.load(tar.extractfile(member), encoding="bytes")
    tar_path.unlink()

    def stack(names):
        x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x), np.concatenate([batches[n][b"labels"] for n in names]).astype(
            np.uint8
        )

    x_train, y_train = stack([f"data_batch_{i}" for i in range(1, 6)])
    x_test, y_test = stack(["test_batch"])
    order = np.argsort(y_test, kind="stable")  # class order, official order within a class (see module doc)
    x_test, y_test = x_test[order], y_test[order]
    _write_png_strips(tmp, "train", x_train)
    _write_png_strips(tmp, "test", x_test)
    np.savez(tmp / "labels.npz", train=y_train, test=y_test)
    _verify_cifar10(x_train, y_train, x_test, y_test, "the converted download")


def _verify_cifar10(x_train, y_train, x_test, y_test, where):
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for name, array in arrays.items():
        _check(
            np.ascontiguousarray(array).tobytes(),
            CIFAR10_ARRAYS_SHA256[name],
            "sha256",
            f"CIFAR-10 {name} in {where}",
        )


@functools.cache
def _cifar10_cached(folder):
    from PIL import Image

    def strips(prefix, count):
        out = []
        for i in range(count):
            path = folder / f"{prefix}_{i:02d}.png"
            try:
                out.append(np.asarray(Image.open(path).convert("RGB")).reshape(-1, 32, 32, 3))
            except (OSError, ValueError) as e:
                raise DataError(
                    f"{path} is corrupt or truncated ({e}): delete it and run 'make data' again"
                ) from None
        return np.concatenate(out)

    try:
        with np.load(folder / "labels.npz") as labels:
            y_train, y_test = labels["train"], labels["test"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(
            f"{folder / 'labels.npz'} is corrupt ({e}): delete it and run 'make data' again"
        ) from None
    x_train, x_test = strips("train", 50), strips("test", 10)
    _verify_cifar10(x_train, y_train, x_test, y_test, str(folder))
    return _readonly(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))


def load_cifar10():
    """(x_train (50000, 32, 32, 3) uint8 RGB NHWC, y_train (50000,) int64), (x_test (10000, ...), y_test).

    The test set is in class order (see the module docstring): sample it with a permutation for a mixed slice.
    """
    folder = _resolve("CIFAR-10", "cifar10", CIFAR10_FILES, _download_cifar10)
    x_train, y_train, x_test, y_test = _cifar10_cached(folder)
    return (x_train, y_train), (x_test, y_test)


# ---- tiny Shakespeare ------------------------------------------------------------------------------------


def _download_shakespeare(tmp):
    _download(SHAKESPEARE_URL, tmp / "input.txt")
    _check((tmp / "input.txt").read_bytes(), SHAKESPEARE_SHA256, "sha256", "downloaded input.txt")


@functools.cache
def _shakespeare_cached(folder):
    raw = (folder / "input.txt").read_bytes()
    _check(raw, SHAKESPEARE_SHA256, "sha256", str(folder / "input.txt"))
    return raw.decode("utf-8")


def load_shakespeare():
    """The 1,115,394-character tiny Shakespeare text (65 distinct characters). No official split: nanoGPT's
    convention is the first 90% for training, the last 10% for validation."""
    return _shakespeare_cached(
        _resolve("tiny Shakespeare", "tinyshakespeare", ["input.txt"], _download_shakespeare)
    )


# ---- IMDB ------------------------------------------------------------------------------------------------


def _imdb_jsonl(tar, split):
    rows = {0: {}, 1: {}}
    for member in tar:
        parts = Path(member.name).parts
        if len(parts) == 4 and parts[1] == split and parts[2] in ("neg", "pos") and parts[3].endswith(".txt"):
            review_id = int(parts[3].split("_")[0])
            rows[int(parts[2] == "pos")][review_id] = tar.extractfile(member).read().decode("utf-8")
    lines = [
        json.dumps({"text": rows[label][i], "label": label}, ensure_ascii=False) + "\n"
        for label in (0, 1)
        for i in sorted(rows[label])
    ]
    return "".join(lines).encode("utf-8")


def _download_imdb(tmp):
    tar_path = tmp / "aclImdb_v1.tar.gz"
    _download(IMDB_URL, tar_path, timeout=300)
    _check(tar_path.read_bytes(), IMDB_TAR_MD5, "md5", "downloaded aclImdb_v1.tar.gz")
    for split in ("train", "test"):
        with tarfile.open(tar_path) as tar:
            content = _imdb_jsonl(tar, split)
        _check(content, IMDB_JSONL_SHA256[split], "sha256", f"converted IMDB {split}")
        with gzip.GzipFile(tmp / f"{split}.jsonl.gz", "wb", compresslevel=9, mtime=0) as f:
            f.write(content)
    tar_path.unlink()


@functools.cache
def _imdb_cached(folder):
    out = []
    for split in ("train", "test"):
        raw = _read_gz(folder / f"{split}.jsonl.gz")
        _check(raw, IMDB_JSONL_SHA256[split], "sha256", str(folder / f"{split}.jsonl.gz"))
        rows = [json.loads(line) for line in raw.decode("utf-8").split("\n") if line]
        out.append((tuple(r["text"] for r in rows), np.array([r["label"] for r in rows], dtype=np.int64)))
    return out


IMDB_FILES = ("train.jsonl.gz", "test.jsonl.gz")


def imdb_folder():
    """The folder holding IMDB's train.jsonl.gz and test.jsonl.gz ({"text", "label"} lines, as load_imdb reads
    them): the cache, then $REPRO_DATA_MIRROR, then a download; both files' sha256 checked (once per process)."""
    folder = _resolve("IMDB", "imdb", list(IMDB_FILES), _download_imdb)
    _imdb_cached(folder)  # verifies the content
    return folder


def load_imdb():
    """(train_texts, train_labels), (test_texts, test_labels): 25,000 reviews each, labels 1 = positive,
    0 = negative; negatives first, then positives (shuffle before batching)."""
    (train_texts, y_train), (test_texts, y_test) = _imdb_cached(imdb_folder())
    y_train.flags.writeable = y_test.flags.writeable = False
    return (list(train_texts), y_train), (list(test_texts), y_test)


# ---- helpers ---------------------------------------------------------------------------------------------


def _readonly(*arrays):
    for a in arrays:
        a.flags.writeable = False  # shared between callers in one process: copy before changing in place
    return arrays


def train_val_split(n, val_size, seed=0):
    """Deterministic split of range(n): (train_idx, val_idx), val_idx of length val_size, both sorted."""
    if not 0 < val_size < n:
        raise UserError(f"validation size {val_size} must be between 1 and {n - 1}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def hold_out(x, y, val_size, seed=0):
    """((x_train, y_train), (x_val, y_val)): `val_size` seeded examples held out of (x, y) by train_val_split;
    val_size 0 gives an empty validation set."""
    if not val_size:
        return (x, y), (x[:0], y[:0])
    train_idx, val_idx = train_val_split(len(x), val_size, seed=seed)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def fetch_all():
    """Fetch and verify every dataset (the 'make data' target); prints where each one came from."""
    for name, load, subdir in [
        ("MNIST", load_mnist, "mnist"),
        ("CIFAR-10", load_cifar10, "cifar10"),
        ("tiny Shakespeare", load_shakespeare, "tinyshakespeare"),
        ("IMDB", load_imdb, "imdb"),
    ]:
        load()
        source = (
            "cache" if (cache_dir() / subdir).is_dir() and any((cache_dir() / subdir).iterdir()) else "mirror"
        )
        print(f"{name}: verified ({source})")


def as_torch_dataset(x, y, transform=None):
    """A torch Dataset over arrays x, y; `transform(x_item)` is applied per item (e.g. torchvision transforms)."""
    import torch

    class ArrayDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            item = x[i] if transform is None else transform(x[i])
            return item, int(y[i])

    return ArrayDataset()


if __name__ == "__main__":
    from shared.cli import run_main

    run_main(lambda argv: fetch_all())
