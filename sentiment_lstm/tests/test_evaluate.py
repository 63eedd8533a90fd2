"""`make eval-sentiment_lstm` on quick-look models in a temporary folder: every weights file re-scores to its
record's test accuracy, a changed claim or a file with no record is a mismatch (exit status 1); NBSVM's
weights file reads back the model that was scored; the MiniLM branch is reached by a file's content."""

import json
import shutil

import numpy as np
import pytest
import torch

from sentiment_lstm import baselines, evaluate
from sentiment_lstm.baselines import SavedNBSVM, predictions_path


@pytest.fixture
def folder(fast_models, tmp_path):
    """A copy of the quick-look folder that a test may change."""
    return shutil.copytree(fast_models, tmp_path / "copy")


def test_every_committed_model_reproduces_its_record(fast_models, capsys):
    assert evaluate.main(["--threads=1"], fast_models) == 0
    out = capsys.readouterr().out
    for name in ("fast-numpy-lstm.npz", "fast-bilstm.pt", "fast-nbsvm-bi.npz"):
        line = next(x for x in out.splitlines() if x.startswith(name))
        assert "reproduced" in line, out
    assert "3 weights files re-evaluated, 0 mismatches" in out


def test_a_changed_claim_or_a_missing_record_is_a_mismatch(folder, capsys):
    record_path = folder / "results" / "fast-bilstm.json"
    record = json.loads(record_path.read_text())
    record["metrics"]["test_acc"] += 0.01  # two of the 200 test reviews
    record_path.write_text(json.dumps(record))
    (folder / "results" / "fast-numpy-lstm.json").unlink()
    assert evaluate.main(["--threads=1"], folder) == 1
    out = capsys.readouterr().out
    assert "fast-bilstm.pt" in out and "MISMATCH" in out.split("fast-bilstm.pt")[1].splitlines()[0]
    assert "no run record fast-numpy-lstm.json" in out
    assert "2 mismatches" in out


def test_predictions_per_review_match_the_accuracy(fast_models):
    for run in ("fast-numpy-lstm", "fast-bilstm"):
        suffix = ".npz" if "numpy" in run else ".pt"
        record = json.loads((fast_models / "results" / f"{run}.json").read_text())
        out = evaluate.test_predictions(fast_models / "checkpoints" / f"{run}{suffix}", record)
        assert len(out["index"]) == 200 and set(np.unique(out["label"])) <= {0, 1}
        assert np.all((out["p_positive"] > 0.5) == (out["predicted"] == 1))
        assert float((out["predicted"] == out["label"]).mean()) == record["metrics"]["test_acc"]


def test_saved_nbsvm_is_the_scored_model(fast_models):
    """The weights file gives the predictions the run wrote, review for review, and sigmoid(a * score)."""
    path = fast_models / "checkpoints" / "fast-nbsvm-bi.npz"
    assert path.stat().st_size < baselines.MAX_WEIGHTS_BYTES
    model = SavedNBSVM(path)
    record = json.loads((fast_models / "results" / "fast-nbsvm-bi.json").read_text())
    assert model.meta["n_features"] == record["metrics"]["n_features"] == len(model.coef)
    saved = dict(np.load(predictions_path(fast_models, "fast-nbsvm-bi")))
    out = evaluate.test_predictions(path, record)
    np.testing.assert_array_equal(out["index"], saved["index"])
    np.testing.assert_array_equal(out["predicted"], saved["predicted"])
    np.testing.assert_allclose(out["p_positive"], saved["p_positive"], rtol=1e-6)
    assert model.meta["platt"] > 0 and np.all((out["p_positive"] > 0.5) == (out["predicted"] == 1))
    assert float((saved["predicted"] == saved["label"]).mean()) == record["metrics"]["test_acc"]


def test_baselines_write_predictions_but_no_weights_for_the_regressions(fast_models):
    saved = dict(np.load(predictions_path(fast_models, "fast-tfidf-lr-bi")))
    assert set(saved) == {"index", "label", "predicted", "p_positive"} and len(saved["index"]) == 200
    assert np.all((saved["p_positive"] > 0.5) == (saved["predicted"] == 1))
    assert not (fast_models / "checkpoints" / "fast-tfidf-lr-bi.npz").exists()


def test_kind_of_a_weights_file(tmp_path):
    """What evaluate.py scores a file with comes from its content: a MiniLM delta (finetune.py's meta has
    "lora") goes to the finetune branch, which imports sentiment_lstm.finetune only then."""
    path = tmp_path / "minilm-x.pt"
    torch.save(
        {"model": {}, "meta": json.dumps({"lora": {"r": 8}, "model": "minilm-l6-lora-r8-len64"})}, path
    )
    assert evaluate.kind_of(path, torch.load(path)) == "minilm"
    torch.save({"model": {}, "meta": json.dumps({"kind": "bilstm"})}, path)
    assert evaluate.kind_of(path, torch.load(path)) == "bilstm"
    assert evaluate.kind_of(tmp_path / "x.npz", {"ngrams_xz": 0}) == "nbsvm"
    assert evaluate.kind_of(tmp_path / "x.npz", {"meta": "{}"}) == "lstm"


def test_a_fine_tuned_minilm_reproduces_its_record(tmp_path, capsys):
    """The MiniLM hook end to end: a tiny LoRA fine-tune (train.py --model=minilm) saved, re-scored by
    evaluate.py."""
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from sentiment_lstm import finetune
    from sentiment_lstm import train as T
    from shared.cli import UserError

    try:
        finetune.model_dir()
    except UserError as e:
        pytest.skip(str(e))
    cfg = T.Config(impl="torch", model="minilm", keep="both", run="fast-minilm", max_len=32, train_subset=32,
                   eval_subset=32, epochs=1, batch_size=16, warmup_steps=1, lora_r=2, precision="bf16", threads=1,
                   progress=False, save_weights=True, group="fast")  # fmt: skip
    T.train(cfg, tmp_path)
    assert evaluate.main(["--threads=1"], tmp_path) == 0
    out = capsys.readouterr().out
    assert (
        "fast-minilm.pt" in out
        and "reproduced" in out
        and "1 weights files re-evaluated, 0 mismatches" in out
    )
