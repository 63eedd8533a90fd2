"""transfer: the pretrained EfficientNet-Lite0 loads offline and recognises CIFAR-10 animals with its ImageNet
head; balanced seeded subsets; a tiny end-to-end run; one-line errors for ResNet-18 offline and bad flags."""

import dataclasses
import json
import urllib.error

import numpy as np
import pytest
import torch

from cnn_cifar import transfer
from shared.cli import UserError


@pytest.fixture(scope="module")
def cifar_test():
    from shared.data import load_cifar10

    try:
        _, (x, y) = load_cifar10()
    except UserError as e:
        pytest.fail(f"CIFAR-10 could not be loaded ({e}); set REPRO_DATA_MIRROR or run make data")
    return x, y


def test_pretrained_imagenet_head_recognises_cifar_animals(cifar_test):
    """The first 12 cats, 12 dogs and 12 vehicles (3 each of airplane, automobile, ship, truck) of the test
    set, upsampled to 128 px. Zero-shot from 32x32 images is hard for single classes (about 1 cat in 3 gets a
    domestic-cat class in its top 5, measured on 40), so the checks are the robust ones, each with a wide
    margin over what was measured: dogs get dog breeds, animals put most probability on ImageNet's animal
    classes (0-397) and vehicles do not, cats put far more probability on the cat classes than dogs or
    vehicles do, and at least one cat is confidently a cat (the 2nd test cat: P = 0.87, top-1 a cat class)."""
    x, y = cifar_test
    first = lambda c, k: np.flatnonzero(y == c)[:k]  # noqa: E731
    idx = np.concatenate([first(3, 12), first(5, 12), *[first(c, 3) for c in (0, 1, 8, 9)]])
    top5, probs = transfer.imagenet_topk(x[idx], k=5, resolution=128)
    assert top5.shape == (36, 5) and probs.shape == (36, 1000)
    torch.testing.assert_close(probs.sum(1), torch.ones(36), rtol=0, atol=1e-4)
    cats, dogs, vehicles = slice(0, 12), slice(12, 24), slice(24, 36)
    in_range = lambda rows, r: ((top5[rows] >= r.start) & (top5[rows] < r.stop)).any(1)  # noqa: E731
    assert in_range(dogs, transfer.IMAGENET_DOGS).sum() >= 10  # measured 12/12
    animal_mass = probs[:, :398].sum(1)
    assert (animal_mass[:24] > 0.5).sum() >= 18  # measured 22/24
    assert (animal_mass[vehicles] < 0.5).sum() >= 9  # measured 11/12
    p_cat = probs[:, transfer.IMAGENET_CATS].sum(1)
    assert p_cat[cats].mean() > 20 * max(
        p_cat[dogs].mean(), p_cat[vehicles].mean()
    )  # measured 0.086 vs 0.0003
    confident = (p_cat[cats] > 0.5) & (top5[cats, 0] >= 281) & (top5[cats, 0] <= 285)
    assert confident.any()  # measured: 1 of 12
    assert in_range(vehicles, transfer.IMAGENET_CATS).sum() == 0


def test_balanced_subset_is_balanced_seeded_and_nested():
    labels = np.repeat([3, 5, 0], [50, 60, 70])
    a = transfer.balanced_subset(labels, 40, seed=1)
    assert len(a) == 40 and len(set(a)) == 40
    assert (labels[a] == 3).sum() == 20 and (labels[a] == 5).sum() == 20
    np.testing.assert_array_equal(a, transfer.balanced_subset(labels, 40, seed=1))  # same seed, same subset
    assert set(a) != set(transfer.balanced_subset(labels, 40, seed=2))
    big = transfer.balanced_subset(labels, 80, seed=1)
    assert set(a) <= set(big)  # nested: the small training set is part of the larger one
    assert not np.array_equal(np.sort(a), a)  # mixed order, not cats then dogs
    with pytest.raises(UserError, match="multiple of 2"):
        transfer.balanced_subset(labels, 41, seed=1)
    with pytest.raises(UserError, match="only 50"):
        transfer.balanced_subset(labels, 120, seed=1)


def test_steps_rule():
    cfg = transfer.check(transfer.Config())
    assert [transfer.steps_for(cfg, n) for n in (100, 500, 2000, 10000)] == [60, 94, 375, 400]
    assert transfer.steps_for(transfer.check(transfer.Config(steps=7)), 10000) == 7


def test_tiny_end_to_end_run_writes_a_record(cifar_test, tmp_path):
    x, y = cifar_test
    keep = np.flatnonzero((y == 3) | (y == 5))[::50]  # 40 cat/dog test images stand in for both splits
    data = ((x[keep], (y[keep] == 5).astype(np.int64)), (x[keep[:20]], (y[keep[:20]] == 5).astype(np.int64)))
    cfg = transfer.check(transfer.Config(resolution=32, batch_size=4, steps=2, progress=False))
    for mode in ("pretrained", "scratch"):
        acc, path = transfer.train_one(cfg, data, 8, mode, out_dir=tmp_path)
        record = json.loads(path.read_text())
        assert record["group"] == "transfer" and record["model"] == f"efficientnet-lite0-{mode}"
        assert record["config"]["train_size"] == 8 and record["metrics"]["test_acc"] == acc
        assert 0 <= acc <= 1 and record["metrics"]["steps"] == 2
        # the record keeps the sweep's settings for this run (what the skip compares), not Run's view of them
        sweep_only = {"sizes", "modes", "redo", "progress"}
        fields = {f.name for f in dataclasses.fields(transfer.Config)} - sweep_only
        assert set(record["config"]) == fields | {"train_size", "mode", "steps_run"}
        assert record["history"]["step"] == [0, 1] and len(record["history"]["train_loss"]) == 2
    again, _ = transfer.train_one(cfg, data, 8, "scratch", out_dir=tmp_path)  # already done: skipped
    assert again == acc


def test_resnet18_without_network_is_a_one_line_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache
    monkeypatch.setattr(torch.hub, "urlopen", no_network, raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(UserError) as info:
        transfer.main(["--backbone=resnet18", "--sizes=100"])
    message = str(info.value)
    assert "ResNet-18" in message and "name resolution" in message and "\n" not in message


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backbone=vgg16"], "--backbone=vgg16"),
        (["--sizes=101"], "--sizes"),
        (["--modes=frozen"], "--modes"),
        (["--resolution=8"], "--resolution"),
        (["--epochz=3"], "unknown flag --epochz"),
    ],
)
def test_bad_flags_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as info:
        transfer.main(argv)
    assert message in str(info.value) and "\n" not in str(info.value)
