import dataclasses

import pytest

from shared.cli import UserError, check_finite
from shared.config import parse_config


@dataclasses.dataclass
class Config:
    lr: float = 1e-3
    epochs: int = 10
    augment: bool = False
    name: str = "run"
    sizes: tuple = (800, 800)


def test_overrides_are_typed():
    cfg = parse_config(Config(), ["--lr=3e-3", "--epochs", "2", "--augment", "--sizes=(32, 32, 32)"])
    assert cfg == Config(lr=3e-3, epochs=2, augment=True, sizes=(32, 32, 32))


def test_config_file_then_flags(tmp_path):
    f = tmp_path / "fast.py"
    f.write_text("# quick look\nepochs = 1\nname = 'fast'\n")
    cfg = parse_config(Config(), [f"--config={f}", "--lr=0.1"])
    assert (cfg.epochs, cfg.name, cfg.lr) == (1, "fast", 0.1)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--lrr=1"], "unknown flag --lrr"),
        (["--epochs=two"], "expected a int"),
        (["--augment=maybe"], "true or false"),
        (["lr=1"], "--name=value"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, words):
    with pytest.raises(UserError, match=words):
        parse_config(Config(), argv)


def test_check_finite():
    assert check_finite(1.5, "loss", 3) == 1.5
    with pytest.raises(UserError, match="loss became nan at step 7"):
        check_finite(float("nan"), "loss", 7)
