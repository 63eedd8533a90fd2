"""The training-health check flags every broken preset with the check that should catch it, and passes the
healthy one; without MNIST it stops with the loader's one-line error; --threads goes to shared.threads."""

import pytest

from mlp_mnist import diagnose as diagnose_module
from mlp_mnist.diagnose import PRESETS, Finding, diagnose, main, preset_config
from shared.cli import UserError, run_main


@pytest.fixture(autouse=True)
def real_mnist(mnist_train):
    """The thresholds are calibrated on MNIST: make sure diagnose() reads the real data, not its fallback."""
    return mnist_train


def run(preset, **overrides):
    cfg = preset_config(preset, [f"--{k}={v}" for k, v in overrides.items()])
    findings = diagnose(cfg)
    assert all(isinstance(f, Finding) and f.status in ("PASS", "WARN", "FAIL") for f in findings)
    return {f.check: f for f in findings}


@pytest.fixture(scope="module")
def results(mnist_train):
    return {name: run(name) for name in PRESETS}


def test_every_check_runs(results):
    expected = {
        "init_loss",
        "gradient_check",
        "gradient_norms",
        "overfit_one_batch",
        "finite",
        "training_progress",
        "update_ratio",
        "dead_units",
    }
    for name, found in results.items():
        assert set(found) == expected, name


def test_healthy_passes_everything(results):
    bad = {k: (f.status, f.message) for k, f in results["healthy"].items() if f.status != "PASS"}
    assert not bad


def test_lr_too_high(results):
    r = results["lr_too_high"]
    assert r["finite"].status == "FAIL" and "step" in r["finite"].message and "layer" in r["finite"].message
    assert r["update_ratio"].status == "FAIL" and "lower the learning rate" in r["update_ratio"].fix
    assert r["overfit_one_batch"].status == "FAIL"
    assert r["gradient_check"].status == "PASS"  # the code is right, the setting is wrong


def test_zero_init(results):
    r = results["zero_init"]
    assert r["init_loss"].status == "PASS"  # uniform predictions: exactly ln(10)
    assert r["gradient_norms"].status == "FAIL" and "no gradient" in r["gradient_norms"].message
    assert r["dead_units"].status == "FAIL"
    assert r["overfit_one_batch"].status == "FAIL"
    assert r["update_ratio"].status == "FAIL"


def test_unnormalised_deep_sigmoid(results):
    r = results["unnormalised_deep_sigmoid"]
    assert r["dead_units"].status == "FAIL"  # saturated first layer
    assert r["dead_units"].details["init"][1] > 0.5
    assert r["gradient_norms"].status != "PASS" and "vanishing" in r["gradient_norms"].message
    assert r["overfit_one_batch"].status == "FAIL"
    assert r["update_ratio"].status != "PASS"


def test_wrong_backward_caught_by_gradient_check_only(results):
    r = results["wrong_backward"]
    gc = r["gradient_check"]
    assert gc.status == "FAIL" and "layer 2" in gc.message and "db" in gc.message
    assert r["overfit_one_batch"].status == "PASS"  # the bug does not show in the loss: hence gradient checks


def test_other_bug_is_caught_too():
    r = run("healthy", broken="dw_mean", train_steps=5, overfit_steps=5)
    assert r["gradient_check"].status == "FAIL" and "dW" in r["gradient_check"].message


def test_large_init_fails_init_loss():
    r = run("healthy", init="large", train_steps=5, overfit_steps=5)
    assert r["init_loss"].status == "FAIL" and r["init_loss"].details["loss"] > 5


def test_cli(capsys):
    assert main(["--preset=zero_init", "--train_steps=5", "--overfit_steps=5"]) == 0
    out = capsys.readouterr().out
    assert "FAIL  gradient_norms" in out and "fix:" in out and "summary:" in out
    assert main(["--preset", "zero_init", "--strict", "--train_steps=5", "--overfit_steps=5"]) == 1
    with pytest.raises(UserError):
        main(["--preset=nonsense"])
    with pytest.raises(UserError):
        main(["--no_such_flag=1"])


def test_without_mnist_is_one_line_error_not_random_data(monkeypatch, capsys):
    def missing():
        raise UserError("MNIST not found in data/ or $REPRO_DATA_MIRROR")

    monkeypatch.setattr(diagnose_module, "load_mnist", missing)
    with pytest.raises(SystemExit) as stop:
        run_main(main, ["--preset=healthy", "--train_steps=5", "--overfit_steps=5"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2
    assert err == "error: MNIST not found in data/ or $REPRO_DATA_MIRROR\n"
    assert "data:" not in out and "PASS" not in out and "FAIL" not in out  # no check ran, on any data


def test_threads_flag_goes_to_shared_threads(monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(diagnose_module, "set_threads", asked.append)
    main(["--preset=healthy", "--train_steps=5", "--overfit_steps=5", "--threads=1"])
    main(["--preset=healthy", "--train_steps=5", "--overfit_steps=5"])
    assert asked == [1, 0]  # 0, the default: the libraries' own choice
