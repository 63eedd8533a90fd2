"""The benchmark times steps on the real tiny Shakespeare text and ends with its ratio line; without the dataset it
stops with the loader's one-line error instead of timing made-up text."""

import re

import pytest

from char_rnn import bench, data
from shared.cli import UserError


def test_bench_runs_on_real_text_and_ends_with_the_ratio(capsys):
    bench.main(["--hidden=16", "--batch=4", "--seq=8", "--iters=1", "--warmup=1", "--threads=1"])
    out = capsys.readouterr().out
    assert "vocab=65" in out
    assert re.fullmatch(r"numpy/torch step time ratio: \d+\.\d\d", out.strip().splitlines()[-1])


def test_a_missing_dataset_is_the_loaders_error(monkeypatch):
    def missing():
        raise UserError("tiny Shakespeare not found in data/ or $REPRO_DATA_MIRROR")

    data.encoded_text.cache_clear()
    monkeypatch.setattr("shared.data.load_shakespeare", missing)
    with pytest.raises(UserError, match="not found"):
        bench.main(["--hidden=16", "--iters=1", "--warmup=1"])
    data.encoded_text.cache_clear()
