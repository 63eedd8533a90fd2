"""The figures and tables of sentiment_lstm/REPORT.md, from the committed weights, the baselines' per-review
predictions and the run records.

    python -m sentiment_lstm.figures [--threads=N]

Writes to sentiment_lstm/results/:
  methods.md              every method in one table, from the run records: test and validation accuracy,
                          training time, wall time, parameters
  <run>.predictions.npz   each committed model's prediction for every test review (evaluate.test_predictions),
                          with the sha256 of the weights file it came from: a rerun reuses it while the weights
                          are unchanged. The baselines write their own (baselines.py, no sha256: used as they are)
  accuracy_by_length.png  test accuracy against review length, for every model with predictions: the length is
  accuracy_by_length.md   the review's token count (data.tokenize, the whole review, before any truncation),
                          binned by LENGTH_EDGES; the table also counts the reviews of each bin
  misclassified.md        the best model's (highest test accuracy) most confident mistakes, N_MISTAKES false
                          positives and as many false negatives, the text cut to its head and tail, with every
                          other model's P(positive) of the same review
  val_acc_vs_epoch.png    validation accuracy after each epoch of the trained (not fitted) models
The models are those of the committed run records; where none has predictions (after `make sentiment_lstm
FAST=1`), the quick looks'. Rerunning on an unchanged checkout changes no committed file: the predictions are
computed on one thread, whatever --threads says.
"""

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np

from shared import plots
from shared.checkpoint import load_npz, save_npz
from shared.cli import run_main
from shared.config import parse_config
from shared.report import is_quick_look
from shared.runrecord import load_run_records
from shared.threads import one_thread, set_threads

PROJECT_DIR = Path(__file__).resolve().parent
LENGTH_EDGES = (0, 100, 200, 300, 400, 600, 1000)  # token counts; the last bin is 1000 and more
N_MISTAKES = 3  # of each kind
HEAD, TAIL = 300, 300  # characters of a long review shown: the first HEAD and the last TAIL


@dataclasses.dataclass
class FiguresConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice (predictions: always 1)


# ---- review lengths


def length_bins(lengths, edges=LENGTH_EDGES):
    """Bin index of each length: i where edges[i] <= length < edges[i + 1], the last bin open-ended."""
    lengths = np.asarray(lengths)
    if lengths.size and lengths.min() < edges[0]:
        raise ValueError(f"lengths below the first edge {edges[0]}")
    return np.searchsorted(np.asarray(edges), lengths, side="right") - 1


def bin_labels(edges=LENGTH_EDGES):
    """'0-99', '100-199', ..., '1000+'."""
    return [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])] + [f"{edges[-1]}+"]


def accuracy_by_bin(correct, bins, n_bins):
    """(reviews (n_bins,) int, accuracy (n_bins,) float, NaN where a bin is empty) of per-review 0/1 `correct`."""
    correct, bins = np.asarray(correct, dtype=np.float64), np.asarray(bins)
    counts = np.bincount(bins, minlength=n_bins)
    hits = np.bincount(bins, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def test_reviews():
    """{"text": list, "tokens": (25,000,) token counts, "label"} of the test file, by position."""
    from sentiment_lstm import data as sdata

    test = sdata.tokenized_imdb()["test"]
    columns = test.select_columns(["text", "tokens", "label"])[:]
    return {
        "text": columns["text"],
        "length": np.array([len(t) for t in columns["tokens"]], dtype=np.int64),
        "label": np.array(columns["label"], dtype=np.int64),
    }


# ---- predictions


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_file(folder, run):
    for suffix in (".npz", ".pt"):
        path = Path(folder) / "checkpoints" / f"{run}{suffix}"
        if path.exists():
            return path
    return None


def predictions_of(folder, record):
    """{"index", "label", "predicted", "p_positive"} of one run on its test reviews: from its predictions file
    (a baseline's own, or one this script wrote from the same weights), else computed from its committed
    weights (evaluate.test_predictions, one thread) and saved; None when the run has neither."""
    from sentiment_lstm.baselines import predictions_path

    run = record["run"]
    path, weights = predictions_path(Path(folder), run), weights_file(folder, run)
    digest = sha256(weights) if weights else None
    if path.exists():
        saved = load_npz(path)
        made_from = saved.pop("weights_sha256", None)
        if made_from is None or made_from == digest:
            return {k: np.asarray(v) for k, v in saved.items()}
    if weights is None:
        return None
    from sentiment_lstm.evaluate import test_predictions

    with one_thread():
        out = test_predictions(weights, record)
    if out is None:
        return None
    save_npz(
        path,
        {
            "index": out["index"].astype(np.int32),
            "label": out["label"].astype(np.int8),
            "predicted": out["predicted"].astype(np.int8),
            "p_positive": out["p_positive"].astype(np.float32),
            "weights_sha256": digest,
        },
    )
    return out


def all_predictions(folder, records):
    """{run: predictions} of the committed records' runs with predictions, else of the quick looks'; in order of
    test accuracy (best last)."""
    committed = [r for r in records if not is_quick_look(r)]
    for group in (committed, [r for r in records if is_quick_look(r)]):
        out = {}
        for r in sorted(group, key=lambda r: (r["metrics"].get("test_acc", 0), r["run"])):
            preds = predictions_of(folder, r)
            if preds is not None:
                out[r["run"]] = preds
                accuracy = float((preds["predicted"] == preds["label"]).mean())
                claimed = r["metrics"].get("test_acc")
                if claimed is not None and abs(accuracy - claimed) > 1e-4:
                    print(f"note: {r['run']}: its predictions score {accuracy:.4f}, its record {claimed:.4f}")
        if out:
            return out
    return {}


# ---- accuracy by review length


def length_table(predictions, lengths, edges=LENGTH_EDGES):
    """{"labels", "reviews" {run: counts}, "accuracy" {run: (n_bins,)}, "overall" {run: accuracy}} with lengths
    the token counts of the test file (by position)."""
    labels = bin_labels(edges)
    table = {"labels": labels, "reviews": {}, "accuracy": {}, "overall": {}}
    for run, p in predictions.items():
        table["overall"][run] = float((p["predicted"] == p["label"]).mean())
        bins = length_bins(lengths[p["index"]], edges)
        table["reviews"][run], table["accuracy"][run] = accuracy_by_bin(
            p["predicted"] == p["label"], bins, len(labels)
        )
    return table


def length_markdown(table, predictions):
    runs = list(predictions)
    counts = next(iter(table["reviews"].values()))
    same = all(np.array_equal(c, counts) for c in table["reviews"].values())
    head = ["review length (tokens)", "reviews" if same else "reviews (first model)"] + [
        f"`{r}`" for r in runs
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, label in enumerate(table["labels"]):
        cells = [label, f"{counts[i]:,}"]
        cells += [
            "–" if np.isnan(table["accuracy"][r][i]) else f"{100 * table['accuracy'][r][i]:.2f}%"
            for r in runs
        ]
        lines.append("| " + " | ".join(cells) + " |")
    total = [f"{100 * table['overall'][r]:.2f}%" for r in runs]
    lines.append("| all | " + f"{int(counts.sum()):,} | " + " | ".join(total) + " |")
    note = (
        "Test accuracy by review length: tokens of `data.tokenize` (words and punctuation marks), the whole "
        "review before any model's truncation; `python -m sentiment_lstm.figures` writes this table."
    )
    return note + "\n\n" + "\n".join(lines) + "\n"


def length_plot(table, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.4, 4.4))
    x = np.arange(len(table["labels"]))
    counts = next(iter(table["reviews"].values()))
    for run, acc in table["accuracy"].items():
        ax.plot(x, 100 * acc, marker="o", label=f"{run} ({100 * table['overall'][run]:.2f}%)")
    ax.set_xticks(x, [f"{lab}\n({n:,})" for lab, n in zip(table["labels"], counts)], fontsize=8)
    ax.set(xlabel="review length in tokens (reviews in the bin)", ylabel="test accuracy (%)")
    ax.set_title("IMDB test accuracy by review length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    plots.save_figure(fig, path)


# ---- the most confident mistakes


def _escape(text):
    """Review text for a markdown blockquote: <br /> as a space, markdown's special characters escaped."""
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", text)


def cut(text, head=HEAD, tail=TAIL):
    """A long review's first `head` and last `tail` characters around ' [...] '."""
    if len(text) <= head + tail + 20:
        return text
    first, last = text[:head], text[-tail:]
    first = first.rsplit(" ", 1)[0] if " " in first else first  # whole words
    last = last.split(" ", 1)[1] if " " in last else last
    return first.rstrip() + " [...] " + last.lstrip()


def confident_mistakes(pred, n=N_MISTAKES):
    """Positions (into pred's arrays) of the n most confident false positives and the n most confident false
    negatives, most confident first."""
    p, wrong = pred["p_positive"], pred["predicted"] != pred["label"]
    false_pos = np.flatnonzero(wrong & (pred["predicted"] == 1))
    false_neg = np.flatnonzero(wrong & (pred["predicted"] == 0))
    return (
        false_pos[np.argsort(-p[false_pos], kind="stable")][:n].tolist(),
        false_neg[np.argsort(p[false_neg], kind="stable")][:n].tolist(),
    )


def mistakes_markdown(predictions, reviews, records):
    best = list(predictions)[-1]
    pred = predictions[best]
    by_run = {r["run"]: r for r in records}
    others = {run: dict(zip(p["index"].tolist(), p["p_positive"].tolist())) for run, p in predictions.items()}
    false_pos, false_neg = confident_mistakes(pred)
    acc = float((pred["predicted"] == pred["label"]).mean())
    lines = [
        f"The most confident mistakes of `{best}` ({by_run[best]['model']}, test accuracy {100 * acc:.2f}%): its "
        f"{len(false_pos)} most confident false positives and {len(false_neg)} most confident false negatives "
        f"among the {len(pred['index']):,} test reviews. Text: `<br />` removed, reviews over "
        f"{HEAD + TAIL} characters cut to their first {HEAD} and last {TAIL}; beside each, every model's "
        "P(positive) of the same review.",
        "",
    ]
    number = 0
    for kind, chosen in (("false positive", false_pos), ("false negative", false_neg)):
        for i in chosen:
            number += 1
            index = int(pred["index"][i])
            truth = "positive" if pred["label"][i] else "negative"
            probs = ", ".join(
                f"`{run}` {others[run][index]:.3f}"
                for run in reversed(list(predictions))
                if index in others[run]
            )
            lines += [
                f"**{number}. Test review {index}** ({kind}: labelled {truth}, {reviews['length'][index]:,} tokens). "
                f"P(positive): {probs}.",
                "",
                "> " + _escape(cut(reviews["text"][index])),
                "",
            ]
    return "\n".join(lines)


# ---- every method in one table

METHODS = {  # record model name (prefix) -> what it is
    "majority": "the most frequent training label",
    "tfidf-lr-uni": "TF-IDF of unigrams + logistic regression",
    "tfidf-lr-bi": "TF-IDF of uni- and bigrams + logistic regression",
    "mnb-bi": "multinomial naive Bayes, binarised uni- and bigrams",
    "nbsvm-bi": "NBSVM (Wang & Manning 2012), binarised uni- and bigrams",
    "lstm": "LSTM, 1 layer",
    "bilstm": "bidirectional LSTM",
    "minilm": "MiniLM-L6 (pretrained) fine-tuned",
}


def describe(record):
    """'NumPy LSTM, 1 layer (mean pool, 96-dim embedding, 128 units)', 'scikit-learn NBSVM ...'."""
    model, config = record["model"], record.get("config", {})
    if record.get("group") == "baselines" or model in METHODS:
        return f"{METHODS.get(model, model)} (scikit-learn)"
    kind = next((k for k in ("bilstm", "lstm", "minilm") if model.startswith(k)), None)
    impl = {"numpy": "NumPy", "torch": "PyTorch"}.get(record["impl"], record["impl"])
    if kind == "minilm":
        how = f"LoRA rank {config.get('lora_r')}" if config.get("lora") else "every weight"
        return f"{METHODS[kind]}, {how}, {config.get('max_len')} positions (PyTorch)"
    if kind is None:
        return f"{impl} {model}"
    size = f"{config.get('pool')} pool, {config.get('embed')}-dim embedding, {config.get('hidden')} units"
    n, keep = config.get("max_len"), config.get("keep", "last")
    ends = {"last": f"last {n}", "first": f"first {n}", "both": f"first {n // 4} and last {n - n // 4}"}
    cut = f"{ends.get(keep, keep)} tokens" if n else "whole reviews"
    return f"{impl} {METHODS[kind]} ({size}, {cut})"


def methods_markdown(records):
    """One row per run record, best test accuracy first: what it is, test and validation accuracy, training
    time, wall time and parameters (trained ones apart where they differ)."""
    from shared.report import format_seconds

    rows = sorted(records, key=lambda r: -r["metrics"].get("test_acc", 0))
    head = ["method", "run", "test accuracy", "val accuracy", "training time", "wall time", "parameters"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        train_time = m.get("train_time_s", m.get("fit_time_s"))
        params = f"{r['params']:,}"
        if m.get("trainable_params") and m["trainable_params"] != r["params"]:
            params += f" ({m['trainable_params']:,} trained)"
        cells = [
            describe(r),
            f"`{r['run']}`",
            f"{100 * m['test_acc']:.2f}%" if "test_acc" in m else "–",
            f"{100 * m['val_acc']:.2f}%" if "val_acc" in m else "–",
            format_seconds(train_time) if train_time is not None else "–",
            format_seconds(r["wall_time_s"]),
            params,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "Training time: the training steps (train.py: evaluation excluded) or the final fit of a "
        "baseline (baselines.py: after its features are built and its setting chosen on validation); wall time: "
        "the whole run. Test accuracy: on the 25,000 test reviews (fewer only in a quick look); "
        "`python -m sentiment_lstm.figures` writes this table from the run records."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


# ---- training curves


def val_curves(records, path):
    runs = [r for r in records if "val_acc" in r.get("history", {}) and "epoch" in r["history"]]
    if not runs:
        return
    series = {
        f"{r['run']} ({100 * r['metrics']['test_acc']:.2f}% test)": (
            np.asarray(r["history"]["epoch"]),
            100 * np.asarray(r["history"]["val_acc"]),
        )
        for r in runs
    }
    plots.line_plot(
        series, path, "epoch", "validation accuracy (%)", "IMDB: validation accuracy after each epoch"
    )


def write_all(folder=PROJECT_DIR, reviews=None):
    """Every output of this module into folder/results (tests: a folder with checkpoints/ and results/);
    returns the names written."""
    folder = Path(folder)
    results = folder / "results"
    results.mkdir(parents=True, exist_ok=True)
    records = load_run_records("sentiment_lstm", results)
    written = []
    shown = [r for r in records if not is_quick_look(r)] or records
    if shown:
        (results / "methods.md").write_text(methods_markdown(shown))
        written.append("methods.md")
    committed = [r for r in records if not is_quick_look(r) and r.get("group") != "baselines"]
    trained = committed or [r for r in records if is_quick_look(r) and r.get("group") != "baselines"]
    if trained:
        val_curves(trained, results / "val_acc_vs_epoch.png")
        written.append("val_acc_vs_epoch.png")
    predictions = all_predictions(folder, records)
    if not predictions:
        return written
    reviews = reviews if reviews is not None else test_reviews()
    table = length_table(predictions, reviews["length"])
    length_plot(table, results / "accuracy_by_length.png")
    (results / "accuracy_by_length.md").write_text(length_markdown(table, predictions))
    (results / "misclassified.md").write_text(mistakes_markdown(predictions, reviews, records))
    return written + ["accuracy_by_length.png", "accuracy_by_length.md", "misclassified.md"]


def main(argv):
    cfg = parse_config(FiguresConfig(), argv)
    set_threads(cfg.threads)
    written = write_all()
    print(
        f"written to {(PROJECT_DIR / 'results').relative_to(PROJECT_DIR.parent)}/: {', '.join(written) or 'nothing'}"
    )


if __name__ == "__main__":
    run_main(main)
