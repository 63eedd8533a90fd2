"""vae_gan.bench on real MNIST batches: both implementations of both recipes are timed and the ratio line is
printed; a bad flag is one UserError."""

import re

import pytest

from shared.cli import UserError
from vae_gan import bench


def test_the_bench_times_both_twins_of_both_recipes(mnist, capsys):
    bench.main(["--iters=2", "--warmup=1", "--batch_size=16", "--threads=1"])
    out = capsys.readouterr().out
    assert out.count("numpy:") == 2 and out.count("torch:") == 2
    assert "652,824 params" in out and "1,083,921 params" in out  # the headline VAE and GAN
    assert re.search(r"numpy/torch step time ratio: \d+\.\d\d \(VAE\), \d+\.\d\d \(GAN\)$", out.strip())


def test_a_bad_flag_is_one_line():
    with pytest.raises(UserError, match="--iters and --batch_size must be >= 1"):
        bench.main(["--iters=0"])
