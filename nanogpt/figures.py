"""The attention maps, attention statistics and samples of nanogpt/REPORT.md, from the committed weights.

    python -m nanogpt.figures [--threads=N]

Writes to nanogpt/results/:
  attention_maps.png     the attention weights (T, T) of every layer x head of the NumPy GPT
                         (checkpoints/numpy-gpt-4x128.npz) on one validation window: the first 64
                         characters of the validation split that start at a speaker's name
  attention_stats.json   per head, the mean weight a query puts on the previous character, on itself, on the
  attention_stats.md     most recent space or newline, on the most recent newline and on the speaker's name,
                         and the mean distance back it looks, each beside what uniform causal attention would
                         give; over every 64-character window of the validation split that starts at a name
  samples.md             each committed model's samples at temperatures 0.5, 0.8 and 1.0 (start "ROMEO:", 300
                         new characters, seed 1337, no top-k) beside its validation loss from its run record
and, from the run records of make study-nanogpt, where they are committed:
  hour_val_loss.png      the 60-minute GPT's training and validation loss against minutes of training time
  gpt_vs_lstm.png        its validation loss beside char_rnn's LSTM recipe trained at the same time on the other
                         core (char_rnn/results/<LSTM_BESIDE>.json), on shared axes
  gpt_vs_lstm.md         the two validation losses at matching times, from the two records' histories
  gpt_vs_lstm_samples.md the two at temperature 0.8 with char_rnn's sampling settings (the LSTM's from
                         char_rnn/results/samples.json: char_rnn's committed weights of the same recipe)
  ablation.md            the rotary-vs-learned ablation: val loss by seed, mean and spread

Rerunning it changes no byte of these files: the weights are committed, the windows are chosen by a rule, the
samples draw from fixed seeds, and everything is computed on one thread whatever --threads says (BLAS and
torch sum in an order that depends on the thread count, which moves the last digits); the statistics are
stored to 3 decimals, the precision REPORT.md reads them at.
"""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
from matplotlib.colors import PowerNorm

from shared import plots
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.report import committed_records, describe_machine
from shared.text import shakespeare_splits
from shared.threads import one_thread, set_threads

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"
CHECKPOINTS = PROJECT_DIR / "checkpoints"
ATTENTION_RUN = "numpy-gpt-4x128"  # its NumPy weights file: the attention maps need no torch
HOUR_RUN = "gpt-6x160-rotary-hour"  # make study-nanogpt's 60-minute GPT
LSTM_BESIDE = "torch-lstm-2x384-beside-gpt"  # char_rnn's LSTM recipe, trained beside HOUR_RUN
LSTM_SAMPLES = "torch-lstm-2x384"  # char_rnn's committed weights of that recipe, whose samples char_rnn keeps
CHAR_RNN_RESULTS = PROJECT_DIR.parent / "char_rnn" / "results"  # read as data: no char_rnn code is imported
HOUR_TARGET, HOUR_GOAL = (
    1.50,
    1.47,
)  # issue 10: must (char_rnn's LSTM hour: 1.503) and goal (nanoGPT's A100 run)
TEMPERATURES = (0.5, 0.8, 1.0)
START, NEW_CHARS, SAMPLE_SEED = "ROMEO:", 300, 1337  # the seed is sample.py's (and nanoGPT's) default
CHUNK = 128  # windows per forward pass (the weights of 128 windows: 128 x 16 heads x 64 x 64 floats)
DIGITS = 3  # decimals of the stored statistics
SPEAKER_LINE = re.compile(
    r"(?<=\n\n)[^\n]+:\n"
)  # a speaker's name: the line after a blank line, ending in ":"
STATISTICS = {
    "previous": "weight on the previous character (offset 1), queries t >= 1",
    "current": "weight on the query's own character (offset 0), queries t >= 1",
    "word_start": "weight on the most recent space or newline at least 2 characters back, queries that "
    "have one",
    "line_start": "weight on the most recent newline at least 2 characters back, queries that have one",
    "speaker": "total weight on the speaker's name (the window's first characters, up to the ':'), queries "
    "in that speaker's speech: after the name's line, up to the next speaker's name",
    "distance": "mean distance back, sum_s P[t, s] (t - s), queries t >= 1",
}


@dataclasses.dataclass
class FiguresConfig:
    threads: int = (
        0  # NumPy (BLAS) and torch threads; 0 = the libraries' choice (the files are computed on 1)
    )


def committed_weights(run, suffix):
    path = CHECKPOINTS / f"{run}{suffix}"
    if not path.is_file():
        raise UserError(
            f"{path.relative_to(PROJECT_DIR.parent)} is missing: it is committed; restore it from git"
        )
    return path


# ---- attention


def speaker_windows(val_ids, vocab, T):
    """(ids (B, T), name lengths (B,)): every T-character window of the validation split that starts at a
    speaker's name, in text order."""
    text = "".join(vocab[i] for i in val_ids)
    matches = [m for m in SPEAKER_LINE.finditer(text) if m.start() + T <= len(text)]
    ids = np.stack([val_ids[m.start() : m.start() + T] for m in matches])
    return ids, np.array([len(m.group()) - 2 for m in matches])  # the name without ":\n"


def most_recent(flags, gap):
    """(B, T, T) bool: for each query t the one key s <= t - gap with flags[s] set, the latest (or none)."""
    B, T = flags.shape
    latest = np.maximum.accumulate(np.where(flags, np.arange(T), -1), axis=1)  # (B, T): latest s <= t, or -1
    key = np.full((B, T), -1)
    key[:, gap:] = latest[:, :-gap]  # latest s <= t - gap
    return key[:, :, None] == np.arange(T)  # -1 matches no key


def targets(ids, name_lengths, vocab):
    """{statistic: (B, T, T) bool}: for window b and query t, the keys s whose weights the statistic adds up;
    a query with no key is left out of that statistic's mean."""
    B, T = ids.shape
    later = np.arange(T)[:, None] >= 1  # queries t >= 1 (the first character can only look at itself)
    space, newline = vocab.index(" "), vocab.index("\n")
    speaker = np.zeros((B, T, T), dtype=bool)
    for b, n in enumerate(name_lengths):
        text = "".join(vocab[i] for i in ids[b])
        blank = text.find("\n\n", n)
        speech_end = T if blank < 0 else blank + 2  # the speech's queries end where the next name begins
        speaker[b, n + 2 : speech_end, :n] = True  # queries after "NAME:\n", keys on the name
    return {
        "previous": np.broadcast_to(np.eye(T, k=-1, dtype=bool), (B, T, T)),
        "current": np.broadcast_to(np.eye(T, dtype=bool) & later, (B, T, T)),
        "word_start": most_recent((ids == space) | (ids == newline), gap=2),
        "line_start": most_recent(ids == newline, gap=2),
        "speaker": speaker,
    }


def attention_weights(model, ids):
    """(B, n_layer, n_head, T, T) float64: every head's weights P on windows ids (B, T), as forward caches
    them."""
    model.forward(ids, training=False)
    return np.stack([block.attn.P for block in model.h], axis=1).astype(np.float64)


def head_statistics(weights_of, ids, name_lengths, vocab):
    """{statistic: (n_layer, n_head) mean}, the means taken over every window and query the statistic covers.
    weights_of(ids) gives the (B, n_layer, n_head, T, T) weights of a chunk of windows."""
    select = targets(ids, name_lengths, vocab)
    T = ids.shape[1]
    back = np.maximum(np.arange(T)[:, None] - np.arange(T), 0)  # (T, T): t - s, the distance back
    sums = {}
    for start in range(0, len(ids), CHUNK):
        chunk = slice(start, start + CHUNK)
        P = weights_of(ids[chunk])  # (b, L, nh, T, T)
        parts = {
            name: np.einsum("blhts,bts->lh", P, sel[chunk].astype(np.float64)) for name, sel in select.items()
        }
        parts["distance"] = np.einsum("blhts,ts->lh", P, back)
        sums = {name: sums.get(name, 0.0) + part for name, part in parts.items()}
    queries = {name: sel.any(axis=-1).sum() for name, sel in select.items()}  # queries with a key
    queries["distance"] = len(ids) * (T - 1)
    return {name: sums[name] / queries[name] for name in STATISTICS}


def uniform_weights(ids, n_layer, n_head):
    """Uniform causal attention, 1 / (t + 1) on every key s <= t, shaped like attention_weights."""
    T = ids.shape[1]
    U = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    return np.broadcast_to(U, (len(ids), n_layer, n_head, T, T))


def shown(c):
    """A character as an axis label: the newline and the space made visible."""
    return {"\n": "\u21b5", " ": "\u00b7"}.get(c, c)


def attention_figure(weights, text, path, title):
    """weights (n_layer, n_head, T, T) of one window: one heat map per head, the window's characters on both
    axes (queries down, keys across), the future (key after query) blank. Square-root colour scale: the
    weights of a row sum to 1 over up to 64 keys, so most are small."""
    L, nh, T, _ = weights.shape
    labels = [shown(c) for c in text]
    future = ~np.tril(np.ones((T, T), dtype=bool))
    fig, axes = plots.plt.subplots(
        L, nh, figsize=(4.6 * nh, 4.6 * L + 0.4), layout="constrained", squeeze=False
    )
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    for (layer, head), ax in np.ndenumerate(axes):
        image = ax.imshow(np.ma.masked_array(weights[layer, head], future), cmap="viridis", norm=norm)
        ax.set_xticks(range(T), labels, fontsize=5)
        ax.set_yticks(range(T), labels, fontsize=5)
        ax.tick_params(length=0, pad=1)
        ax.set_title(f"layer {layer}, head {head}", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.5, label="attention weight (query row, key column)")
    fig.suptitle(title, fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plots.plt.close(fig)


def rounded(array):
    return [[round(float(v), DIGITS) for v in row] for row in array]


def attention():
    """attention_maps.png, attention_stats.json and attention_stats.md from the NumPy weights."""
    from nanogpt.sample import load_model

    path = committed_weights(ATTENTION_RUN, ".npz")
    model, meta = load_model(path)
    data = shakespeare_splits()
    vocab, T = data["vocab"], model.config.block_size
    if meta["vocab"] != vocab:
        raise UserError(f"{path}: its vocabulary differs from tiny Shakespeare's sorted(set(text))")
    ids, name_lengths = speaker_windows(data["val"], vocab, T)
    L, nh = model.config.n_layer, model.config.n_head
    stats = head_statistics(lambda x: attention_weights(model, x), ids, name_lengths, vocab)
    uniform = head_statistics(lambda x: uniform_weights(x, L, nh), ids, name_lengths, vocab)
    example = "".join(vocab[i] for i in ids[0])
    attention_figure(
        attention_weights(model, ids[:1])[0],
        example,
        RESULTS / "attention_maps.png",
        f"{ATTENTION_RUN}: attention weights of every head on the first {T} validation characters that start "
        f"at a speaker's name ({shown(chr(10))} newline, {shown(' ')} space)",
    )
    heads = {
        f"{layer}.{head}": {name: round(float(stats[name][layer, head]), DIGITS) for name in STATISTICS}
        for layer in range(L)
        for head in range(nh)
    }
    record = {
        "weights": str(path.relative_to(PROJECT_DIR.parent)),
        "windows": len(ids),
        "window_length": T,
        "windows_are": f"every {T}-character window of the validation split that starts at a speaker's name",
        "example_window": example,
        "heads_are": "layer.head, from 0 (layer l is transformer.h.l)",
        "statistics": STATISTICS,
        "uniform": {name: round(float(uniform[name][0, 0]), DIGITS) for name in STATISTICS},
        "heads": heads,
    }
    (RESULTS / "attention_stats.json").write_text(json.dumps(record, indent=1) + "\n")
    columns = list(STATISTICS)
    lines = [
        f"Mean over the {len(ids)} windows of {T} validation characters that start at a speaker's name "
        "(`results/attention_stats.json` says how each is taken); head `l.h` is head h of "
        "`transformer.h.l`.",
        "",
        "| head | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    lines += [
        f"| {head} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |" for head, row in heads.items()
    ]
    lines.append("| uniform | " + " | ".join(f"{record['uniform'][c]:.3f}" for c in columns) + " |")
    (RESULTS / "attention_stats.md").write_text("\n".join(lines) + "\n")


# ---- samples


def samples():
    """samples.md: every committed weights file with a committed run record, at each temperature, beside its
    val loss. A sample equal, character for character, to one already written (a twin's) is named, not
    repeated."""
    from nanogpt.sample import generate, load_model

    records = {r["run"]: r for r in committed_records("nanogpt")}  # no quick looks (FAST=1)
    paths = sorted(p for p in CHECKPOINTS.glob("*") if p.suffix in (".npz", ".pt") and p.stem in records)
    lines = [
        f"Start `{START}`, {NEW_CHARS} new characters, seed {SAMPLE_SEED}, no top-k (every character may be "
        f"drawn); `python -m nanogpt.sample --checkpoint=nanogpt/checkpoints/<run>.npz|.pt --start={START} "
        f"--num_samples=1 --max_new_tokens={NEW_CHARS} --temperature=T --top_k=0 --seed={SAMPLE_SEED} "
        "--threads=1` prints each one.",
        "",
    ]
    written = {}  # (temperature, text) -> the run whose sample it is
    for path in paths:
        model, meta = load_model(path)
        record = records[path.stem]
        impl = "NumPy" if record["impl"] == "numpy" else "PyTorch"
        metrics = record["metrics"]
        lines += [
            f"### `{record['run']}`: {impl} {record['model']}, val loss {metrics['val_loss']:.3f} "
            f"(whole split {metrics['val_loss_full']:.3f}) nats/char",
            "",
        ]
        for temperature in TEMPERATURES:
            rng = np.random.default_rng(SAMPLE_SEED)
            text = generate(model, meta["vocab"], START, NEW_CHARS, temperature, 0, rng)
            if (temperature, text) in written:
                same = written[temperature, text]
                lines += [f"Temperature {temperature}: the same {len(text)} characters as `{same}`'s.", ""]
                continue
            written[temperature, text] = record["run"]
            lines += [f"Temperature {temperature}:", "", "```", text, "```", ""]
    (RESULTS / "samples.md").write_text("\n".join(lines))


# ---- make study-nanogpt: the hour, GPT vs LSTM, the rotary ablation


def minutes(history):
    return [t / 60 for t in history["train_time_s"]]


def study():
    """The study's figures and tables, each from the records it needs (skipped, with a line, when absent)."""
    records = {r["run"]: r for r in committed_records("nanogpt")}
    hour = records.get(HOUR_RUN)
    lstm_path = CHAR_RNN_RESULTS / f"{LSTM_BESIDE}.json"
    if hour is None:
        print(f"no committed record of {HOUR_RUN}: the hour's figures wait for make study-nanogpt")
    else:
        h = hour["history"]
        plots.line_plot(
            {
                "train (20 batches)": (minutes(h), h["train_loss"]),
                "validation (20 batches)": (minutes(h), h["val_loss"]),
            },
            RESULTS / "hour_val_loss.png",
            "minutes of training time",
            "loss (nats/char)",
            f"{HOUR_RUN}: {hour['params']:,} parameters, {describe_machine(hour)}",
            hline=(HOUR_TARGET, f"target {HOUR_TARGET:.2f}"),
        )
    if hour is not None and lstm_path.exists():
        lstm = json.loads(lstm_path.read_text())
        g, h = hour["history"], lstm["history"]
        plots.line_plot(
            {
                f"GPT 6x160 rotary ({hour['params']:,} parameters)": (minutes(g), g["val_loss"]),
                f"LSTM 2x384, char_rnn's recipe ({lstm['params']:,})": (minutes(h), h["val_loss"]),
            },
            RESULTS / "gpt_vs_lstm.png",
            "minutes of training time (the two side by side, one core each)",
            "validation loss (nats/char)",
            f"GPT vs LSTM on tiny Shakespeare, {describe_machine(hour)}",
            hline=(HOUR_TARGET, f"{HOUR_TARGET:.2f}"),
        )
        gpt_vs_lstm_table(hour, lstm)
        gpt_vs_lstm_samples(hour, lstm)
    ablation = [r for r in records.values() if r.get("group") == "ablation"]
    if ablation:
        ablation_table(ablation)


def gpt_vs_lstm_table(hour, lstm, every=2):
    """gpt_vs_lstm.md: the GPT's validation loss at every `every`-th of its evaluations (and its last), beside the
    LSTM's evaluation nearest in training time."""
    g, h = hour["history"], lstm["history"]
    lstm_minutes = np.array(minutes(h))
    picks = sorted(set(range(2, len(g["iter"]), every)) | {len(g["iter"]) - 1})
    lines = [
        "| GPT: minutes of training | GPT val loss | LSTM: nearest evaluation (minutes) | LSTM val loss |",
        "|---|---|---|---|",
    ]
    for i in picks:
        t = minutes(g)[i]
        j = int(np.argmin(abs(lstm_minutes - t)))
        lines.append(f"| {t:.1f} | {g['val_loss'][i]:.3f} | {lstm_minutes[j]:.1f} | {h['val_loss'][j]:.3f} |")
    (RESULTS / "gpt_vs_lstm.md").write_text("\n".join(lines) + "\n")


def gpt_vs_lstm_samples(hour, lstm):
    """gpt_vs_lstm_samples.md: the hour's GPT and char_rnn's LSTM at temperature 0.8, char_rnn's settings."""
    from nanogpt.sample import generate, load_model

    kept = json.loads((CHAR_RNN_RESULTS / "samples.json").read_text())
    settings = kept["settings"]
    lstm_kept = next(m for m in kept["models"] if m["run"] == LSTM_SAMPLES)
    temperature = "0.8"
    model, meta = load_model(committed_weights(HOUR_RUN, ".pt"))
    rng = np.random.default_rng(settings["seed"])
    gpt_text = generate(
        model, meta["vocab"], settings["prime"], settings["length"], float(temperature), 0, rng
    )
    lines = [
        f"Temperature {temperature}, start `{settings['prime']}`, {settings['length']} new characters, seed "
        f"{settings['seed']}, no top-k: char_rnn's sampling settings. The GPT's: `python -m nanogpt.sample "
        f"--checkpoint=nanogpt/checkpoints/{HOUR_RUN}.pt --start={settings['prime']} --num_samples=1 "
        f"--max_new_tokens={settings['length']} --temperature={temperature} --top_k=0 --seed={settings['seed']} "
        f"--threads=1`. The LSTM's comes from char_rnn/results/samples.json: `{LSTM_SAMPLES}`, char_rnn's "
        f"committed weights of the same recipe as `{LSTM_BESIDE}` (that run kept no weights).",
        "",
        f"**GPT** `{HOUR_RUN}`, val loss {hour['metrics']['val_loss']:.3f} nats/char:",
        "",
        "```",
        gpt_text,
        "```",
        "",
        f"**LSTM** `{LSTM_SAMPLES}`, val loss {lstm_kept['val_loss']:.3f} nats/char (`{LSTM_BESIDE}`: "
        f"{lstm['metrics']['val_loss']:.3f}):",
        "",
        "```",
        lstm_kept["samples"][temperature],
        "```",
    ]
    (RESULTS / "gpt_vs_lstm_samples.md").write_text("\n".join(lines) + "\n")


def ablation_table(records):
    """ablation.md: val loss of each position scheme by seed, with the mean and sample standard deviation."""
    by_pos = {}
    for r in sorted(records, key=lambda r: r["config"]["seed"]):
        by_pos.setdefault(r["config"]["pos"], []).append(r)
    seeds = sorted({r["config"]["seed"] for r in records})
    lines = [
        "| positions | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for pos, rows in sorted(by_pos.items()):
        losses = {r["config"]["seed"]: r["metrics"]["val_loss"] for r in rows}
        values = np.array(list(losses.values()))
        sd = values.std(ddof=1) if len(values) > 1 else float("nan")
        cells = [f"{losses[s]:.4f}" if s in losses else "" for s in seeds]
        lines.append(f"| {pos} | " + " | ".join(cells) + f" | {values.mean():.4f} | {sd:.4f} |")
    (RESULTS / "ablation.md").write_text("\n".join(lines) + "\n")


def main(argv):
    cfg = parse_config(FiguresConfig(), argv)
    set_threads(cfg.threads)
    with one_thread():
        attention()
        samples()
        study()
    print(f"attention maps, statistics and samples written to {RESULTS.relative_to(PROJECT_DIR.parent)}/")


if __name__ == "__main__":
    run_main(main)
