"""shared.nn.copy_weights: the one place every NumPy model's load_state_dict copies a checkpoint's arrays."""

import numpy as np
import pytest

from shared.nn import copy_weights


def params():
    return {"W": np.zeros((3, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


def test_copies_in_place_and_casts():
    target = params()
    held = target["W"]  # what an optimizer holds
    state = {"W": np.arange(6, dtype=np.float64).reshape(3, 2), "b": np.ones(2, dtype=np.float32)}
    copy_weights(target, state)
    assert target["W"] is held and held.dtype == np.float32
    np.testing.assert_array_equal(held, state["W"].astype(np.float32))
    np.testing.assert_array_equal(target["b"], np.ones(2))


def test_reads_an_npz_file(tmp_path):
    np.savez(tmp_path / "w.npz", W=np.full((3, 2), 2.0), b=np.full(2, 3.0))
    target = params()
    with np.load(tmp_path / "w.npz") as state:
        copy_weights(target, state)
    assert target["W"].sum() == 12.0 and target["b"].sum() == 6.0


@pytest.mark.parametrize(
    "state, message",
    [
        ({"W": np.zeros((3, 2))}, r"state_dict mismatch: missing \['b'\], unexpected \[\]"),
        ({"W": np.zeros((3, 2)), "b": np.zeros(2), "c": np.zeros(1)}, r"unexpected \['c'\]"),
        ({"W": np.zeros((2, 3)), "b": np.zeros(2)}, r"W: shape \(2, 3\) does not match the model's \(3, 2\)"),
    ],
)
def test_names_what_differs(state, message):
    target = params()
    with pytest.raises(ValueError, match=message):
        copy_weights(target, state)
    assert not target["W"].any()  # nothing half-copied when the names differ
