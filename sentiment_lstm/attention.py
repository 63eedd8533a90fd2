"""Where the fine-tuned MiniLM's attention goes (curriculum AP5.2), and whether it lands on sentiment words.

    python -m sentiment_lstm.attention [--weights=sentiment_lstm/checkpoints/minilm-l6-lora-r16-len256.pt]

The classifier reads BERT's pooler, a dense layer over the last layer's [CLS] vector, so the row of [CLS] in each
layer's attention (how [CLS] mixes the positions into itself) is the path from the words to the verdict; the
mean over all query rows says which positions every token draws on. Both are averaged over the 12 heads.

"Sentiment words" are taken from a model that knows nothing of attention: the NBSVM-bi baseline's weights (its
committed file), the `lexicon_size` most positive and most negative unigrams among the words that MiniLM's
WordPiece vocabulary keeps whole. A position counts as a sentiment word when its token is one of them.

Writes to sentiment_lstm/results/:
    attention_reviews.png   [CLS]'s attention (mean over heads), layer by layer, over the tokens of a few short
                            test reviews; sentiment words marked (green positive, red negative)
    attention_heads.png     the 12 heads of the last layer for the first of those reviews
    attention.md            over `n_reviews` seeded test reviews: per layer, the share of attention that [CLS]
                            (and the mean query) gives to [CLS], [SEP], punctuation, sentiment words and the
                            rest, beside the share of positions each takes
"""

import dataclasses
import json
import string
from pathlib import Path

import numpy as np

from shared import plots
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.threads import set_threads

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"
CATEGORIES = ("[CLS]", "[SEP]", "punctuation", "sentiment words", "other words")


@dataclasses.dataclass
class Config:
    weights: str = str(PROJECT_DIR / "checkpoints" / "minilm-l6-lora-r16-len256.pt")
    nbsvm: str = str(PROJECT_DIR / "checkpoints" / "nbsvm-bi.npz")
    lexicon_size: int = 150  # per polarity
    n_reviews: int = 300  # seeded test reviews for the statistics
    n_shown: int = 4  # short test reviews in the figure
    max_shown_tokens: int = 40
    seed: int = 0
    threads: int = 0


def sentiment_lexicon(nbsvm_path, vocab, size):
    """{word: +1 | -1}: the `size` unigrams with the largest and the `size` with the smallest NBSVM weight, among
    those in `vocab` (MiniLM's WordPiece vocabulary: words it keeps whole)."""
    from sentiment_lstm.baselines import SavedNBSVM

    nbsvm = SavedNBSVM(nbsvm_path)
    names = nbsvm.vectorizer.get_feature_names_out()
    unigrams = [i for i, g in enumerate(names) if " " not in g and g.isalpha() and g in vocab]
    order = sorted(unigrams, key=lambda i: nbsvm.coef[i])
    return {names[i]: -1 for i in order[:size]} | {names[i]: +1 for i in order[-size:]}


def category(token, lexicon):
    if token in ("[CLS]", "[SEP]"):
        return token
    if all(c in string.punctuation for c in token):
        return "punctuation"
    return "sentiment words" if token in lexicon else "other words"


def shares(tokens, weights, lexicon):
    """{category: (attention share, position share)} of one review for one row of weights (T,) summing to 1."""
    cats = np.array([category(t, lexicon) for t in tokens])
    return {c: (float(weights[cats == c].sum()), float(np.mean(cats == c))) for c in CATEGORIES}


def statistics(model, tokenizer, texts, lexicon):
    """{"cls" | "mean": (layers, categories, 2) means over the reviews of (attention share, position share)}."""
    from sentiment_lstm.finetune import attention_of

    out = {"cls": [], "mean": []}
    for text in texts:
        tokens, att = attention_of(model, tokenizer, text)
        heads = att.mean(axis=1)  # (layers, T, T)
        for key, rows in (("cls", heads[:, 0]), ("mean", heads.mean(axis=1))):
            out[key].append([[shares(tokens, row, lexicon)[c] for c in CATEGORIES] for row in rows])
    return {k: np.mean(np.array(v), axis=0) for k, v in out.items()}


def statistics_markdown(stats, n_reviews, lexicon_size, run):
    lines = [
        f"Attention of `{run}` over {n_reviews} seeded test reviews (cut as in training), averaged over the 12 "
        f"heads: each cell is the share of a query's attention that lands on a kind of position, and in brackets "
        f"the share of positions of that kind. Sentiment words: NBSVM-bi's {lexicon_size} most positive and "
        f"{lexicon_size} most negative unigrams that MiniLM keeps whole. `python -m sentiment_lstm.attention` "
        "writes this table.",
        "",
    ]
    for key, title in (("cls", "From [CLS] (what the pooler reads)"), ("mean", "From the mean query")):
        lines += [
            f"{title}:",
            "",
            "| layer | " + " | ".join(CATEGORIES) + " |",
            "|---" * (len(CATEGORIES) + 1) + "|",
        ]
        for layer, row in enumerate(stats[key], 1):
            cells = [f"{a:.1%} ({p:.1%})" for a, p in row]
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def review_figure(examples, lexicon, path):
    """examples: [(title, tokens, att (layers, heads, T, T))]: [CLS]'s row, mean over heads, per layer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 1, figsize=(13, 2.1 * len(examples)))
    for ax, (title, tokens, att) in zip(np.atleast_1d(axes), examples):
        cls_rows = att.mean(axis=1)[:, 0]  # (layers, T)
        ax.imshow(cls_rows, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        for tick, token in zip(ax.get_xticklabels(), tokens):
            tick.set_color({1: "green", -1: "red"}.get(lexicon.get(token), "black"))
        ax.set_yticks(range(len(cls_rows)), [f"layer {i + 1}" for i in range(len(cls_rows))], fontsize=7)
        ax.set_title(title, fontsize=8)
    plots.save_figure(fig, path)


def heads_figure(tokens, att, lexicon, path, title):
    import matplotlib.pyplot as plt

    last = att[-1][:, 0]  # (heads, T): [CLS]'s row in each head of the last layer
    fig, ax = plt.subplots(figsize=(13, 4.2))
    ax.imshow(last, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
    for tick, token in zip(ax.get_xticklabels(), tokens):
        tick.set_color({1: "green", -1: "red"}.get(lexicon.get(token), "black"))
    ax.set_yticks(range(len(last)), [f"head {i + 1}" for i in range(len(last))], fontsize=7)
    ax.set_title(title, fontsize=8)
    plots.save_figure(fig, path)


def main(argv):
    cfg = parse_config(Config(), argv)
    set_threads(cfg.threads)
    from sentiment_lstm import data as sdata
    from sentiment_lstm.finetune import (
        MAX_POSITIONS,
        attention_of,
        encode_texts,
        load_finetuned,
        predict_proba,
    )

    if not Path(cfg.weights).is_file():
        raise UserError(
            f"{cfg.weights} not found: run make study-sentiment_lstm (the MiniLM fine-tune) first"
        )
    model, tokenizer = load_finetuned(cfg.weights)
    run = model.finetune_meta["run"]
    lexicon = sentiment_lexicon(cfg.nbsvm, tokenizer.get_vocab(), cfg.lexicon_size)
    test = sdata.splits(sdata.VAL_SIZE, 0)["test"]
    texts, labels = test["text"], np.array(test["label"])

    rng = np.random.default_rng(cfg.seed)
    sample = rng.choice(len(texts), cfg.n_reviews, replace=False)
    stats = statistics(model, tokenizer, [texts[i] for i in sample], lexicon)
    (RESULTS / "attention.md").write_text(statistics_markdown(stats, cfg.n_reviews, cfg.lexicon_size, run))
    (RESULTS / "attention_stats.json").write_text(
        json.dumps({k: np.round(v, 5).tolist() for k, v in stats.items()})
    )

    # the first short test reviews of each label, alternating: short enough to label every token
    lengths = [len(ids) for ids in encode_texts(tokenizer, texts, MAX_POSITIONS)]
    short = [i for i in range(len(texts)) if lengths[i] <= cfg.max_shown_tokens]
    pos = [i for i in short if labels[i] == 1][: cfg.n_shown // 2]
    neg = [i for i in short if labels[i] == 0][: cfg.n_shown - len(pos)]
    chosen = [i for pair in zip(pos, neg) for i in pair]
    probs = predict_proba(model, tokenizer, [texts[i] for i in chosen])
    examples = []
    for i, p in zip(chosen, probs):
        tokens, att = attention_of(model, tokenizer, texts[i])
        label = "positive" if labels[i] else "negative"
        examples.append((f"test review {i} ({label}; P(positive) = {p:.3f})", tokens, att))
    review_figure(examples, lexicon, RESULTS / "attention_reviews.png")
    title, tokens, att = examples[0]
    heads_figure(
        tokens, att, lexicon, RESULTS / "attention_heads.png", f"last layer, [CLS]'s row per head: {title}"
    )
    print((RESULTS / "attention.md").read_text())


if __name__ == "__main__":
    run_main(main)
