"""shared.run.Run on a toy adapter: a checkpoint round trip (NumPy .npz and torch .pt) puts back weights, loop state,
arrays kept in the state, history, clock and random generators; other settings are refused; ranks other than 0
write nothing; the run record carries the history and drops NaN metrics."""

import dataclasses
import json
import time

import numpy as np
import pytest

from shared.cli import UserError
from shared.run import Run


@dataclasses.dataclass
class Cfg:
    run: str = "toy"
    impl: str = "numpy"
    lr: float = 0.1
    seed: int = 0
    group: str = "test"
    threads: int = 0
    resume: bool = True
    progress: bool = False


class Toy:
    """The smallest adapter: one weight vector and an optimizer 'momentum' buffer."""

    device = "cpu"

    def __init__(self, impl):
        self.impl = impl
        self.w, self.m = np.arange(3.0), np.zeros(3)
        self.generators = [np.random.default_rng(5)]

    def _out(self, a):
        if self.impl == "numpy":
            return a.copy()
        import torch

        return torch.from_numpy(a.copy())

    def num_params(self):
        return 3

    def state_dict(self):
        return {"model": {"w": self._out(self.w)}, "optimizer": {"m": self._out(self.m)}}

    def load_state_dict(self, state):
        self.w = np.asarray(state["model"]["w"], dtype=float)
        self.m = np.asarray(state["optimizer"]["m"], dtype=float)


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_checkpoint_puts_everything_back(tmp_path, impl):
    cfg = Cfg(impl=impl)
    run, model, data_rng = Run("toy", cfg, tmp_path), Toy(impl), np.random.default_rng(1)
    state = run.resume(model, [data_rng], epoch=0)
    assert state == {"epoch": 0}
    model.w += 1.0
    model.m += 0.5
    run.add_history({"epoch": 1, "loss": 0.25}, step=10)
    state.update(epoch=1, best={"w": model._out(model.w)})
    time.sleep(0.2)  # the clock carries over: the resumed run starts 0.2 s in
    run.checkpoint(model, state)
    expected_data, expected_model = data_rng.random(), model.generators[0].random()

    again, model2, rng2 = Run("toy", cfg, tmp_path), Toy(impl), np.random.default_rng(99)
    state2 = again.resume(model2, [rng2], epoch=0)
    assert state2["epoch"] == 1 and np.allclose(np.asarray(state2["best"]["w"]), [1, 2, 3])
    np.testing.assert_array_equal(model2.w, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(model2.m, [0.5, 0.5, 0.5])
    assert again.history == {"epoch": [1], "loss": [0.25]} and again.last_step == 10
    assert rng2.random() == expected_data and model2.generators[0].random() == expected_model
    assert again.elapsed() >= 0.2


def test_other_settings_are_refused_but_how_it_runs_may_change(tmp_path):
    run = Run("toy", Cfg(), tmp_path)
    run.resume(Toy("numpy"), epoch=0)
    run.checkpoint(Toy("numpy"), {"epoch": 1})
    with pytest.raises(UserError, match="different settings.*--resume=false"):
        Run("toy", Cfg(lr=0.2), tmp_path).resume(Toy("numpy"), epoch=0)
    state = Run("toy", Cfg(threads=1, progress=True), tmp_path).resume(Toy("numpy"), epoch=0)
    assert state["epoch"] == 1
    assert Run("toy", Cfg(resume=False), tmp_path).resume(Toy("numpy"), epoch=0) == {"epoch": 0}


def test_only_rank_0_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    run = Run("toy", Cfg(), tmp_path)
    model = Toy("numpy")
    run.resume(model, epoch=0)
    run.add_history({"epoch": 1}, step=1)
    run.checkpoint(model, {"epoch": 1})
    run.save_weights({"w": model.w})
    assert run.finish(model, model_name="toy", dataset="none", metrics={"loss": 1.0}) is None
    assert not any(tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))


def test_the_record_keeps_history_and_drops_nan_metrics(tmp_path):
    run = Run("toy", Cfg(), tmp_path)
    model = Toy("numpy")
    run.resume(model, epoch=0)
    run.add_history({"epoch": 1, "val_acc": 0.5}, step=1)
    path = run.finish(
        model, model_name="toy", dataset="none", metrics={"val_acc": 0.5, "test_acc": float("nan")}
    )
    record = json.loads(path.read_text())
    assert path == tmp_path / "results" / "toy.json"
    assert record["metrics"] == {"val_acc": 0.5} and record["history"] == {"epoch": [1], "val_acc": [0.5]}
    assert record["config"]["lr"] == 0.1 and record["group"] == "test" and record["params"] == 3
    assert record["env"]["cpu_info"]["name"]


def test_the_record_names_the_commit_the_run_started_from(tmp_path, monkeypatch):
    """A commit that lands while a run trains is not the code it ran: the record keeps the one at the start."""
    import shared.run

    monkeypatch.setattr(shared.run, "git_commit", lambda: "a" * 40)
    run = Run("toy", Cfg(), tmp_path)
    model = Toy("numpy")
    run.resume(model, epoch=0)
    monkeypatch.setattr(shared.run, "git_commit", lambda: "b" * 40)
    path = run.finish(model, model_name="toy", dataset="none", metrics={"val_acc": 0.5})
    assert json.loads(path.read_text())["git_commit"] == "a" * 40


def test_a_run_over_several_sessions_names_each_machine(tmp_path, monkeypatch):
    """A run resumed on another machine keeps one entry per session (machine, threads, wall time) in its record;
    a run of one session keeps none (its env says where it ran)."""
    import shared.run

    monkeypatch.setattr(shared.run, "describe_cpu", lambda env: "first machine")
    run, model = Run("toy", Cfg(), tmp_path), Toy("numpy")
    run.resume(model, epoch=0)
    time.sleep(0.1)
    run.checkpoint(model, {"epoch": 1})

    monkeypatch.setattr(shared.run, "describe_cpu", lambda env: "second machine")
    again = Run("toy", Cfg(threads=1), tmp_path)
    again.resume(model, epoch=0)
    record = json.loads(again.finish(model, model_name="toy", dataset="none", metrics={}).read_text())
    first, second = record["sessions"]
    assert first["machine"] == "first machine" and second["machine"] == "second machine"
    assert first["wall_s"] >= 0.1 and second["threads"] == 1
    assert first["wall_s"] + second["wall_s"] == pytest.approx(record["wall_time_s"], abs=0.05)

    single = Run("toy", Cfg(resume=False), tmp_path / "single")
    single.resume(model, epoch=0)
    assert "sessions" not in json.loads(
        single.finish(model, model_name="toy", dataset="none", metrics={}).read_text()
    )
