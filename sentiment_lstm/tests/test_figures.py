"""figures.py: the length bins and their accuracies, the choice of confident mistakes, the review text as it is
quoted, and every output written from quick-look models (predictions computed once, then reused)."""

import numpy as np
import pytest

from sentiment_lstm import figures


def test_length_bins_are_half_open_with_an_open_last_bin():
    edges = (0, 100, 200, 400)
    lengths = [0, 1, 99, 100, 199, 200, 399, 400, 5000]
    np.testing.assert_array_equal(figures.length_bins(lengths, edges), [0, 0, 0, 1, 1, 2, 2, 3, 3])
    assert figures.bin_labels(edges) == ["0-99", "100-199", "200-399", "400+"]
    assert len(figures.bin_labels()) == len(figures.LENGTH_EDGES)
    with pytest.raises(ValueError):
        figures.length_bins([-1], edges)


def test_accuracy_by_bin_counts_and_leaves_empty_bins_nan():
    correct = np.array([1, 0, 1, 1, 1, 0], dtype=bool)
    bins = np.array([0, 0, 0, 2, 2, 2])
    counts, acc = figures.accuracy_by_bin(correct, bins, 4)
    np.testing.assert_array_equal(counts, [3, 0, 3, 0])
    np.testing.assert_allclose(acc[[0, 2]], [2 / 3, 2 / 3])
    assert np.isnan(acc[1]) and np.isnan(acc[3])


def test_confident_mistakes_are_the_surest_wrong_answers_of_each_kind():
    pred = {
        "label": np.array([0, 0, 0, 1, 1, 1, 1]),
        "predicted": np.array([1, 1, 0, 0, 0, 1, 0]),
        "p_positive": np.array([0.9, 0.99, 0.2, 0.3, 0.01, 0.8, 0.45]),
    }
    false_pos, false_neg = figures.confident_mistakes(pred, n=2)
    assert false_pos == [1, 0] and false_neg == [4, 3]


def test_quoted_text_is_cut_to_head_and_tail_and_escaped():
    long = "one two three four " + "x " * 100 + "five six seven eight"
    assert figures.cut(long, head=12, tail=12) == "one two [...] seven eight"
    assert figures.cut("short", 10, 10) == "short"
    assert figures._escape("Great<br /><br />*fun* [x] | <b>") == r"Great \*fun\* \[x\] \| \<b\>"


def test_every_output_from_quick_look_models(fast_models, capsys):
    written = figures.write_all(fast_models)
    results = fast_models / "results"
    assert written == ["methods.md", "val_acc_vs_epoch.png", "accuracy_by_length.png", "accuracy_by_length.md",
                       "misclassified.md"]  # fmt: skip
    for name in written:
        assert (results / name).stat().st_size > 0, name
    for run in ("fast-numpy-lstm", "fast-bilstm"):  # computed from the weights and kept beside the records
        saved = np.load(results / f"{run}.predictions.npz")
        assert len(saved["weights_sha256"].item()) == 64 and len(saved["index"]) == 200
    table = (results / "accuracy_by_length.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(figures.LENGTH_EDGES) + 1  # head, bins, all
    assert rows[-1].startswith("| all | 200 |")
    assert sum(int(r.split("|")[2].replace(",", "")) for r in rows[1:-1]) == 200
    mistakes = (results / "misclassified.md").read_text()
    assert mistakes.count("> ") >= 2 and "**1. Test review" in mistakes
    assert "fast-nbsvm-bi" in mistakes and "fast-numpy-lstm" in mistakes
    methods = (results / "methods.md").read_text().splitlines()
    assert len([line for line in methods if line.startswith("|")]) == 2 + 4  # head, rule, four runs
    assert "NumPy LSTM, 1 layer (mean pool, 16-dim embedding, 16 units, last 64 tokens)" in methods[2 + 2]
    before = {
        n: (results / n).read_bytes() for n in ("accuracy_by_length.md", "misclassified.md", "methods.md")
    }
    stamp = (results / "fast-bilstm.predictions.npz").stat().st_mtime_ns
    figures.write_all(fast_models)  # unchanged weights: the same files, the predictions reused
    assert (results / "fast-bilstm.predictions.npz").stat().st_mtime_ns == stamp
    assert before == {n: (results / n).read_bytes() for n in before}
