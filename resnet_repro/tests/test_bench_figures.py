"""The benchmark times real CIFAR-10 images in every setting and ends with the NumPy/PyTorch ratio; the figures
draw Table 6 and Figure 6 from run records."""

import dataclasses
import re

from resnet_repro import bench, figures
from resnet_repro import train as T


def test_bench_times_every_setting_and_ends_with_the_ratio(loaded_once, capsys):
    bench.main(["--depth=8", "--widths=4,8,8", "--batch_size=8", "--eval_batch=8", "--steps=1", "--warmup=0",
                "--numpy_steps=1"])  # fmt: skip
    out = capsys.readouterr().out
    for setting in ("fp32 contiguous", "fp32 channels_last", "bf16 contiguous", "bf16 channels_last"):
        assert re.search(rf"training   {setting} .* images/s", out) and re.search(
            rf"evaluation {setting} ", out
        )
    assert re.fullmatch(r"numpy/torch step time ratio: \d+\.\d\d", out.strip().splitlines()[-1]), out


def test_table6_and_figure6_from_records(loaded_once, tmp_path):
    tiny = dict(widths=(4, 8, 16), batch_size=16, train_subset=256, val_size=32, test_subset=64, eval_every=1)
    tiny |= dict(iterations=2, milestones=(), progress=False, device="cpu")
    for depth, plain in ((8, False), (8, True), (14, False), (14, True)):
        cfg = dataclasses.replace(T.Config(), **tiny, depth=depth, plain=plain, group="figure6")
        T.train(cfg, tmp_path)
    records = figures.committed_records("resnet_repro", tmp_path / "results")
    for r in records:  # as if they were the paper's networks
        r["model"] = r["model"].split("-")[0].replace("8", "20").replace("14", "56")
    assert figures.figure6(records, tmp_path / "figure6.png").stat().st_size > 0
    headline = dict(records[0], group="headline", model="resnet20", run="r20-a")
    headline["metrics"] = dict(headline["metrics"], iterations=64000, test_err=0.08)
    second = dict(headline, run="r20-b", metrics=dict(headline["metrics"], test_err=0.09))
    table = figures.table6([headline, second])
    assert (
        "| ResNet-20 | 0.27M | 8.75% | 8.27% | 8.50% +- 0.71 (best 8.00%) | 2 | `r20-a`, `r20-b` |" in table
    )
    assert "| ResNet-56 | 0.85M | 6.97% | 6.61% | not trained yet | – | – |" in table
