"""Quick-look models for the tests of evaluate.py, figures.py and predict.py, trained once per session."""

import pytest

from sentiment_lstm.tests.test_data import imdb_or_skip

SUBSETS = dict(train_subset=400, eval_subset=200)  # the same 200 test reviews for every model below


@pytest.fixture(scope="session")
def fast_models(tmp_path_factory):
    """A folder with checkpoints/ and results/ as sentiment_lstm/ has them after `make sentiment_lstm FAST=1`,
    on real IMDB slices: a NumPy LSTM (.npz) and a BiLSTM (.pt) with their records, and the TF-IDF + LR and
    NBSVM baselines with their predictions files (NBSVM also with its weights)."""
    imdb_or_skip()
    from sentiment_lstm import baselines
    from sentiment_lstm import train as tr

    out = tmp_path_factory.mktemp("fast")
    common = dict(embed=16, hidden=16, max_len=64, epochs=2, patience=0, batch_size=16, lr=3e-2, min_lr=1e-3,
                  warmup_steps=5, threads=1, progress=False, save_weights=True, group="fast", **SUBSETS)  # fmt: skip
    tr.train(tr.Config(run="fast-numpy-lstm", **common), out)
    tr.train(tr.Config(run="fast-bilstm", impl="torch", model="bilstm", pool="meanmax", **common), out)
    argv = ["--models=tfidf-lr-bi,nbsvm-bi", "--lr_c=10", "--run_prefix=fast-", "--group=fast", "--threads=1"]
    argv += ["--progress=false"] + [f"--{k}={v}" for k, v in SUBSETS.items()]
    baselines.main(argv, out)
    return out
