"""The benchmark times real CIFAR-10 images and ends with its ratio line; without the dataset it stops with the
loader's one-line error instead of timing made-up images."""

import re

import pytest

from cnn_cifar import bench
from shared.cli import UserError


def test_bench_runs_on_real_images_and_ends_with_the_ratio(capsys):
    bench.main(
        ["--batch_size=8", "--channels=(4,8,8)", "--hidden=16", "--steps=1", "--warmup=1", "--peak_size=64"]
    )
    out = capsys.readouterr().out
    assert "CIFAR-10 training images" in out
    assert re.fullmatch(r"numpy/torch step time ratio: \d+\.\d\d", out.strip().splitlines()[-1])


def test_a_missing_dataset_is_the_loaders_error(monkeypatch):
    def missing():
        raise UserError("CIFAR-10 not found in data/ or $REPRO_DATA_MIRROR")

    monkeypatch.setattr("shared.data.load_cifar10", missing)
    with pytest.raises(UserError, match="CIFAR-10 not found"):
        bench.main(["--steps=1", "--warmup=1"])
