"""The figures and samples of char_rnn/REPORT.md, drawn from the run records and the committed weights.

    python -m char_rnn.figures [--threads=N]

Writes to char_rnn/results/:
  val_loss_vs_time.png, val_loss_vs_step.png   every headline (and fast) run: validation loss against minutes of
                                               training time and against steps
  rnn_vs_lstm_val_loss.png                     the equal-parameter, equal-time pair (group rnn_vs_lstm)
  gradient_through_time_init.png               ||dL/dh_t|| (and the LSTM's ||dL/dc_t||) of a loss on the last
  gradient_through_time_trained.png            step, against the distance back in time, for freshly initialised
  gradient_norms.json                          and for trained RNN / LSTM models (vanishing gradients)
  samples.json, samples.md                     samples of every committed model at temperatures 0.5, 0.8, 1.0, 1.3
                                               (prime "ROMEO:", seed 0) beside its validation loss
Draws only what there is data for, so it works after `make char_rnn FAST=1` as well.

Rerunning it on an unchanged checkout changes no committed file: the gradient norms and the samples are computed
from fixed seeds on one thread, whatever --threads says (BLAS and torch sum in an order that depends on the
thread count, which moves the last digits), and gradient_norms.json stores the norms to 4 significant digits, the
precision REPORT.md reads them at, so a machine whose BLAS rounds differently writes the same file too.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from shared import plots
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.runrecord import load_run_records
from shared.threads import one_thread, set_threads

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"
TEMPERATURES = (0.5, 0.8, 1.0, 1.3)
PRIME, SAMPLE_LENGTH, SAMPLE_SEED = "ROMEO:", 400, 0
GRAD_STEPS, GRAD_STREAMS = 200, 16  # the gradient-through-time window and batch
TIME_LABEL = "training time (min of wall clock, evaluations excluded)"
TORCH_TARGET = 1.55  # the PyTorch LSTM's val loss target (nats/char)
DIGITS = 4  # significant digits of the stored gradient norms


@dataclasses.dataclass
class FiguresConfig:
    threads: int = 0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice (committed numbers: 1)


def significant(values, digits=DIGITS):
    """Floats rounded to `digits` significant digits (as they are printed in the JSON file)."""
    return [float(f"{v:.{digits - 1}e}") for v in values]


def _label(r):
    return f"{r['run']} ({r['metrics']['val_loss']:.3f})"


def curves(records, xkey, scale=1.0):
    return {
        _label(r): (np.asarray(r["history"][xkey]) * scale, r["history"]["val_loss"])
        for r in records
        if xkey in r["history"] and "val_loss" in r["history"]
    }


def loss_curves(records):
    runs = [r for r in records if r.get("group") == "headline"]
    runs = runs or [r for r in records if r.get("group") == "fast"]  # make char_rnn FAST=1
    if runs:
        plots.line_plot(
            curves(runs, "train_time_s", 1 / 60),
            RESULTS / "val_loss_vs_time.png",
            TIME_LABEL,
            "validation loss (nats/char)",
            "Tiny Shakespeare: validation loss vs training time",
            hline=(TORCH_TARGET, f"PyTorch LSTM target {TORCH_TARGET}"),
        )
        plots.line_plot(
            curves(runs, "step"),
            RESULTS / "val_loss_vs_step.png",
            "step",
            "validation loss (nats/char)",
            "Tiny Shakespeare: validation loss vs steps",
        )
    pair = [r for r in records if r.get("group") == "rnn_vs_lstm"]
    if pair:
        params = ", ".join(f"{r['model']}: {r['params']:,}" for r in pair)
        plots.line_plot(
            curves(pair, "train_time_s", 1 / 60),
            RESULTS / "rnn_vs_lstm_val_loss.png",
            TIME_LABEL,
            "validation loss (nats/char)",
            f"RNN vs LSTM, equal parameters ({params})",
        )


# ---- gradients through time


def _window():
    """x, y (GRAD_STREAMS, GRAD_STEPS): windows spread over the validation text."""
    from char_rnn.data import prepare_data

    val = prepare_data()["val"]
    starts = np.linspace(0, len(val) - GRAD_STEPS - 2, GRAD_STREAMS).astype(int)
    x = np.stack([val[s : s + GRAD_STEPS] for s in starts])
    y = np.stack([val[s + 1 : s + 1 + GRAD_STEPS] for s in starts])
    return x, y


def _as_scratch(path):
    """(float64 scratch.CharLM, meta) from a weights file of either implementation (float64: the vanilla RNN's
    gradient falls below float32's smallest number within ~90 steps)."""
    from char_rnn.sample import load_model
    from char_rnn.scratch import CharLM
    from char_rnn.twin import to_scratch

    model, meta = load_model(path)
    if path.suffix == ".pt":
        return to_scratch(model, dtype=np.float64), meta
    wide = CharLM(**model.config, rng=np.random.default_rng(0), dtype=np.float64)
    wide.load_state_dict(model.state_dict())
    return wide, meta


def _trained_pair():
    """{cell: (scratch model, label)} for one trained RNN and one trained LSTM: the rnn_vs_lstm pair's weights if
    committed, else any committed model of each cell (NumPy weights first)."""
    folder = PROJECT_DIR / "checkpoints"
    paths = sorted(folder.glob("pair-*.npz")) + sorted(folder.glob("*.npz")) + sorted(folder.glob("*.pt"))
    chosen = {}
    for path in paths:
        try:
            model, meta = _as_scratch(path)
        except UserError:  # not a char_rnn weights file
            continue
        if meta["config"]["cell"] not in chosen:
            chosen[meta["config"]["cell"]] = (model, f"{path.stem} ({model.num_params():,} params)")
    return chosen


def _fresh_pair():
    from char_rnn.scratch import CharLM

    rng = lambda: np.random.default_rng(0)  # noqa: E731
    lstm = CharLM(65, 256, "lstm", rng=rng(), dtype=np.float64)
    rnn = CharLM(65, 526, "rnn", rng=rng(), dtype=np.float64)
    return {
        "rnn": (rnn, f"rnn-1x526 ({rnn.num_params():,} params)"),
        "lstm": (lstm, f"lstm-1x256 ({lstm.num_params():,} params)"),
    }


def gradient_figures():
    from char_rnn.scratch import gradient_norms_through_time

    x, y = _window()
    distance = np.arange(GRAD_STEPS)
    out = {}
    for when, pair in (("init", _fresh_pair()), ("trained", _trained_pair())):
        if not pair:
            continue
        series, data = {}, {}
        for cell in ("rnn", "lstm"):
            if cell not in pair:
                continue
            model, label = pair[cell]
            norms = gradient_norms_through_time(model, x, y)
            for key, values in norms.items():
                back = values[::-1].astype(np.float64)  # index = steps back from the last one
                name = f"{label}: ||dL/d{key}_t||"
                series[name] = (distance, np.where(back > 0, back, np.nan))
                data[name] = significant(back)
        out[when] = data
        title = "freshly initialised" if when == "init" else "trained"
        plots.line_plot(
            series,
            RESULTS / f"gradient_through_time_{when}.png",
            "steps back in time from the loss (t = T - 1 - step)",
            "gradient norm",
            f"Gradient of the last step's loss through time, {title}",
            logy=True,
        )
    (RESULTS / "gradient_norms.json").write_text(
        json.dumps({"window": GRAD_STEPS, "streams": GRAD_STREAMS, "norms": out}, indent=1) + "\n"
    )


# ---- samples


def samples():
    """Samples of every committed model with a run record, at each temperature: samples.json and samples.md."""
    from char_rnn.sample import generate, load_model

    records = {r["run"]: r for r in load_run_records("char_rnn")}
    paths = sorted(p for p in (PROJECT_DIR / "checkpoints").glob("*") if p.suffix in (".npz", ".pt"))
    rows = []
    for path in paths:
        if path.stem not in records:
            continue
        model, meta = load_model(path)
        rec = records[path.stem]
        texts = {
            str(t): generate(model, meta["vocab"], PRIME, SAMPLE_LENGTH, t, 0, SAMPLE_SEED)
            for t in TEMPERATURES
        }
        rows.append(
            {
                "run": rec["run"],
                "impl": rec["impl"],
                "model": rec["model"],
                "params": rec["params"],
                "val_loss": rec["metrics"]["val_loss"],
                "samples": texts,
            }
        )
    if not rows:
        return
    rows.sort(key=lambda r: r["val_loss"])
    settings = {"prime": PRIME, "length": SAMPLE_LENGTH, "seed": SAMPLE_SEED, "top_k": None}
    (RESULTS / "samples.json").write_text(json.dumps({"settings": settings, "models": rows}, indent=1) + "\n")
    lines = [
        "# Samples",
        "",
        f"Prime `{PRIME}`, {SAMPLE_LENGTH} characters, seed {SAMPLE_SEED}, no top-k; "
        "`python -m char_rnn.sample --checkpoint=char_rnn/checkpoints/<run>.<npz|pt> "
        f"--temperature=T --prime='{PRIME}' --length={SAMPLE_LENGTH} --seed={SAMPLE_SEED}` reproduces each one.",
        "",
    ]
    for r in rows:
        impl = "NumPy" if r["impl"] == "numpy" else "PyTorch"
        lines += [f"## `{r['run']}`: {impl} {r['model']}, val loss {r['val_loss']:.4f} nats/char", ""]
        for t, text in r["samples"].items():
            lines += [f"Temperature {t}:", "", "```", text, "```", ""]
    (RESULTS / "samples.md").write_text("\n".join(lines))


def main(argv):
    cfg = parse_config(FiguresConfig(), argv)
    set_threads(cfg.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    loss_curves(load_run_records("char_rnn"))
    with one_thread():
        gradient_figures()
        samples()
    print(f"figures and samples written to {RESULTS.relative_to(PROJECT_DIR.parent)}/")


if __name__ == "__main__":
    run_main(main)
