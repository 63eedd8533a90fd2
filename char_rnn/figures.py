"""The figures and samples of char_rnn/REPORT.md, drawn from the run records and the committed weights.

    python -m char_rnn.figures

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
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from shared import plots  # noqa: E402
from shared.cli import UserError, run_main  # noqa: E402
from shared.runrecord import load_run_records  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"
TEMPERATURES = (0.5, 0.8, 1.0, 1.3)
PRIME, SAMPLE_LENGTH, SAMPLE_SEED = "ROMEO:", 400, 0
GRAD_STEPS, GRAD_STREAMS = 200, 16  # the gradient-through-time window and batch
TIME_LABEL = "training time (min of wall clock, evaluations excluded)"
TORCH_TARGET = 1.55  # the PyTorch LSTM's val loss target (nats/char)


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
    from char_rnn.train import prepare_data

    val = prepare_data()["val"]
    starts = np.linspace(0, len(val) - GRAD_STEPS - 2, GRAD_STREAMS).astype(int)
    x = np.stack([val[s : s + GRAD_STEPS] for s in starts])
    y = np.stack([val[s + 1 : s + 1 + GRAD_STEPS] for s in starts])
    return x, y


def _as_scratch(path):
    """(float64 scratch.CharLM, meta) from a weights file of either implementation (float64: the vanilla RNN's
    gradient falls below float32's smallest number within ~90 steps)."""
    from char_rnn.model import to_scratch
    from char_rnn.sample import load_model
    from char_rnn.scratch import CharLM

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
        meta_cell = None
        try:
            model, meta = _as_scratch(path)
            meta_cell = meta["config"]["cell"]
        except UserError:
            continue
        if meta_cell not in chosen:
            chosen[meta_cell] = (model, f"{path.stem} ({model.num_params():,} params)")
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
                data[name] = back.tolist()
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
    if argv:
        raise UserError(f"unexpected argument {argv[0]!r}: python -m char_rnn.figures takes none")
    import torch

    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    loss_curves(load_run_records("char_rnn"))
    gradient_figures()
    samples()
    print(f"figures and samples written to {RESULTS.relative_to(PROJECT_DIR.parent)}/")


if __name__ == "__main__":
    run_main(main)
