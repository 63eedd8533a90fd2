"""Bag-of-words baselines for IMDB with scikit-learn: what an LSTM is up against.

    python -m sentiment_lstm.baselines --threads=1                        # all five, one run record each
    python -m sentiment_lstm.baselines --models=nbsvm-bi,mnb-bi --threads=1

    majority      the most frequent training label (sklearn DummyClassifier)
    tfidf-lr-uni  TF-IDF of unigrams (sublinear tf, l2-normalised rows) + logistic regression (liblinear)
    tfidf-lr-bi   the same on unigrams and bigrams
    mnb-bi        multinomial naive Bayes on binarised unigram + bigram counts (Wang & Manning 2012's MNB-bi)
    nbsvm-bi      Wang & Manning's NBSVM on binarised unigrams + bigrams (below)

All of them read the tokens of sentiment_lstm/data.py (the LSTMs' tokeniser) and every n-gram of the training
reviews. Hyperparameters (logistic regression's C, naive Bayes' alpha) are chosen by accuracy on the validation
split, after fitting on the training portion; with refit=true (the default) the chosen model is then fitted
again on all 25,000 training reviews (training portion + validation), as the papers train, and scored once on
the 25,000 test reviews. NBSVM takes the paper's settings (alpha = 1, C = 1, beta = 0.25), so nothing is
chosen for it; its validation accuracy is still recorded.

NBSVM (Wang & Manning 2012, section 2.3). With f the binarised n-gram vector of a review and y in {0, 1}:
    p = alpha + sum_{y=1} f,   q = alpha + sum_{y=0} f,   r = log((p / |p|_1) / (q / |q|_1))  (log-count ratio)
a linear SVM (L2-regularised, squared hinge: LIBLINEAR's, as sklearn's LinearSVC) is trained on x = r * f, and
its weights are interpolated with naive Bayes' (every weight equal, w_bar = |w|_1 / |V|, the mean magnitude):
    w' = (1 - beta) w_bar + beta w,   b' = beta b,   score = w' . x + b'
(1 - beta) w_bar r . f is a scaled MNB score: "trust NB unless the SVM is very confident". The weights are kept
as one float32 vector r * w' (what the score reads), and the test accuracy is the one of exactly those weights.

What each model writes:
  results/<model>.json              the run record, with metrics.test_acc (a fraction of the 25,000 test reviews)
  results/<model>.predictions.npz   per test review (not majority): index (its position in the test file),
                                    label, predicted (what test_acc counted) and p_positive (float32: the
                                    classifier's probability; NBSVM's by Platt scaling, below), for the figures
  checkpoints/nbsvm-bi.npz          (save_weights, NBSVM only) the fitted NBSVM, for predict.py and evaluate.py:
                                    its n-grams ("\n"-joined) and weights, each lzma-compressed, the file
                                    checked against the 10 MB limit for committed weights as it is written;
                                    the other baselines keep no weights (predict.py serves NBSVM)
An SVM's score is not a probability; NBSVM's P(positive) is sigmoid(a * score), a fitted by logistic regression
(no intercept) on the validation reviews' scores of the NBSVM fitted before the refit (Platt 1999). It moves no
prediction: P(positive) > 1/2 exactly where the score is > 0, what `predicted` holds.
"""

import dataclasses
import json
import lzma
import time
import warnings
from types import SimpleNamespace

import numpy as np

from sentiment_lstm import data as sdata
from shared.checkpoint import load_npz, save_npz
from shared.cli import UserError, run_main
from shared.config import parse_config
from shared.run import Run

MAX_WEIGHTS_BYTES = 10 * 1024 * 1024

MODELS = ("majority", "tfidf-lr-uni", "tfidf-lr-bi", "mnb-bi", "nbsvm-bi")
FEATURES = {"tfidf-lr-uni": ("tfidf", 1), "tfidf-lr-bi": ("tfidf", 2), "mnb-bi": ("binary", 2)}
FEATURES["nbsvm-bi"] = FEATURES["mnb-bi"]


@dataclasses.dataclass
class Config:
    models: tuple = MODELS  # which baselines, e.g. --models=nbsvm-bi,mnb-bi
    val_size: int = sdata.VAL_SIZE  # validation reviews held out of the 25,000 training reviews (seeded)
    lr_c: tuple = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)  # logistic regression's C, tried on validation
    nb_alpha: tuple = (0.1, 0.3, 1.0)  # naive Bayes' additive smoothing, tried on validation
    nbsvm_alpha: float = 1.0  # Wang & Manning's settings
    nbsvm_c: float = 1.0
    nbsvm_beta: float = 0.25
    max_iter: int = (
        1000  # liblinear's iterations (its default); a run that stops there records converged=false
    )
    refit: bool = True  # fit the chosen model again on all training reviews (portion + validation)
    save_weights: bool = True  # NBSVM's weights in checkpoints/<run>.npz (predict.py, evaluate.py)
    train_subset: int = 0  # seeded subsets for tests (0 = all): training reviews ...
    eval_subset: int = 0  # ... and validation and test reviews
    seed: int = 0
    threads: int = 0  # BLAS threads (liblinear itself runs on one)
    group: str = "baselines"  # the REPORT.md table these runs belong to
    run_prefix: str = ""  # prepended to every run name (tests, quick looks)
    progress: bool = True


def check(cfg):
    models = tuple(m.strip() for m in cfg.models.split(",")) if isinstance(cfg.models, str) else cfg.models
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise UserError(f"--models={','.join(models)}: choose from {', '.join(MODELS)}")
    grids = {}
    for name in ("lr_c", "nb_alpha"):
        value = getattr(cfg, name)
        grid = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if not grid or not all(isinstance(v, (int, float)) and v > 0 for v in grid):
            raise UserError(f"--{name}={value}: expected positive numbers, e.g. --{name}=0.1,1")
        grids[name] = tuple(float(v) for v in grid)
    if cfg.nbsvm_alpha <= 0 or cfg.nbsvm_c <= 0 or not 0 <= cfg.nbsvm_beta <= 1 or cfg.max_iter < 1:
        raise UserError("need --nbsvm_alpha > 0, --nbsvm_c > 0, 0 <= --nbsvm_beta <= 1 and --max_iter >= 1")
    return dataclasses.replace(cfg, models=models, **grids)


# ---- the models


def _same(tokens):
    return tokens


def vectorizer(kind, n, vocabulary=None):
    """Features of token lists: 1..n-grams as sublinear TF-IDF ("tfidf") or as 0/1 indicators ("binary");
    vocabulary (binary only): a fixed list of n-grams, one column each, as a fitted vectorizer names them."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    common = dict(
        tokenizer=_same, preprocessor=_same, lowercase=False, token_pattern=None, ngram_range=(1, n)
    )
    if vocabulary is not None:
        return CountVectorizer(binary=True, dtype=np.float32, vocabulary=vocabulary, **common)
    if kind == "tfidf":
        return TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **common)
    return CountVectorizer(binary=True, dtype=np.float32, **common)


class NBSVM:
    """Wang & Manning's NBSVM on binarised features X (N, V) (see the module docstring), labels y in {0, 1}."""

    def __init__(self, alpha=1.0, C=1.0, beta=0.25, max_iter=1000, seed=0):
        self.alpha, self.C, self.beta, self.max_iter, self.seed = alpha, C, beta, max_iter, seed

    def fit(self, X, y):
        import scipy.sparse as sp
        from sklearn.svm import LinearSVC

        p = self.alpha + np.asarray(X[y == 1].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(X[y == 0].sum(axis=0)).ravel()
        self.r = np.log((p / p.sum()) / (q / q.sum()))  # (V,) log-count ratio
        svm = LinearSVC(C=self.C, max_iter=self.max_iter, random_state=self.seed)  # squared hinge, L2
        svm.fit(X @ sp.diags(self.r), y)
        w, b = svm.coef_.ravel(), float(svm.intercept_[0])
        w_bar = np.abs(w).sum() / len(w)  # the mean magnitude of w
        self.w, self.b = (1 - self.beta) * w_bar + self.beta * w, self.beta * b
        self.coef = (self.r * self.w).astype(np.float32)  # (V,) what the score reads, as it is saved
        return self

    def decision_function(self, X):
        return X @ self.coef.astype(np.float64) + self.b

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(np.int64)


def estimator(name, value, cfg):
    """The classifier of baseline `name` with hyperparameter `value` (C, alpha, NBSVM's triple or None)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    if name == "majority":
        return DummyClassifier(strategy="most_frequent")
    if name.startswith("tfidf-lr"):
        return LogisticRegression(C=value, solver="liblinear", max_iter=cfg.max_iter, random_state=cfg.seed)
    if name == "mnb-bi":
        return MultinomialNB(alpha=value)
    return NBSVM(*value, max_iter=cfg.max_iter, seed=cfg.seed)


def num_params(model, n_features):
    """Weights of a fitted baseline: coefficients and biases (NBSVM: r and w' besides b)."""
    if isinstance(model, NBSVM):
        return 2 * n_features + 1
    if hasattr(model, "feature_log_prob_"):  # naive Bayes: a log-probability per class and feature, priors
        return model.feature_log_prob_.size + model.class_log_prior_.size
    return model.coef_.size + model.intercept_.size if hasattr(model, "coef_") else 1


class Fitted:
    """What shared.run.Run.finish asks of a model."""

    device = "cpu"

    def __init__(self, params):
        self.params = params

    def num_params(self):
        return self.params


def p_positive(model, X):
    """P(positive) of each row of X: predict_proba where the classifier has one, NBSVM's Platt sigmoid."""
    if isinstance(model, NBSVM):
        return platt(model.decision_function(X), model.platt)
    return model.predict_proba(X)[:, 1]


def platt(scores, a):
    """sigmoid(a * score): above 1/2 exactly where the score is above 0 (a > 0)."""
    return 1.0 / (1.0 + np.exp(-a * np.asarray(scores, dtype=np.float64)))


def fit_platt(scores, labels):
    """a of a logistic regression of the labels on the scores, one feature and no intercept (so the probability
    never contradicts the score's sign); practically unregularised."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(scores, dtype=np.float64)[:, None]
    return float(LogisticRegression(C=1e6, fit_intercept=False, max_iter=1000).fit(X, labels).coef_[0, 0])


# ---- NBSVM's weights file


def save_nbsvm(run, model, ngrams, meta):
    """checkpoints/<run>.npz: the n-grams ("\n"-joined, in column order) and the float32 weights r * w', each
    lzma-compressed, the bias and the settings (meta, JSON). A file over the 10 MB limit is not kept. Returns
    (path or None, bytes)."""
    text = "\n".join(ngrams).encode("utf-8")
    content = {
        "ngrams_xz": np.frombuffer(lzma.compress(text), dtype=np.uint8),
        "coef_xz": np.frombuffer(lzma.compress(model.coef.astype("<f4").tobytes()), dtype=np.uint8),
        "bias": np.float64(model.b),
        "meta": json.dumps(meta),
    }
    path = run.save_weights(content)
    size = path.stat().st_size if path.exists() else 0
    if size > MAX_WEIGHTS_BYTES:
        path.unlink()
        run.say(f"{run.name}: the weights file is {size / 2**20:.1f} MB, over the 10 MB limit: not kept")
        return None, size
    return path, size


class SavedNBSVM:
    """A fitted NBSVM read back from its weights file (or the dict load_npz made of it): scores and
    probabilities of token lists."""

    def __init__(self, path, content=None):
        content = load_npz(path) if content is None else content
        if "ngrams_xz" not in content:
            raise UserError(f"{path} is not an NBSVM weights file (sentiment_lstm.baselines writes those)")
        self.meta = json.loads(str(content["meta"]))
        ngrams = lzma.decompress(content["ngrams_xz"].tobytes()).decode("utf-8").split("\n")
        self.coef = np.frombuffer(lzma.decompress(content["coef_xz"].tobytes()), dtype="<f4")
        self.bias = float(content["bias"])
        if len(ngrams) != len(self.coef):
            raise UserError(
                f"{path}: {len(ngrams)} n-grams but {len(self.coef)} weights: the file is corrupt"
            )
        self.vectorizer = vectorizer("binary", self.meta["ngram_max"], vocabulary=ngrams)

    def decision_function(self, token_lists):
        X = self.vectorizer.transform(token_lists)
        return X @ self.coef.astype(np.float64) + self.bias

    def predict_proba(self, token_lists):
        """(predicted (N,) int64 = score > 0, P(positive) (N,) float64)."""
        scores = self.decision_function(token_lists)
        return (scores > 0).astype(np.int64), platt(scores, self.meta["platt"])


# ---- the runs


def grid_of(name, cfg):
    if name.startswith("tfidf-lr"):
        return "C", cfg.lr_c
    if name == "mnb-bi":
        return "alpha", cfg.nb_alpha
    if name == "nbsvm-bi":
        return "alpha, C, beta", ((cfg.nbsvm_alpha, cfg.nbsvm_c, cfg.nbsvm_beta),)
    return None, (None,)


def run_baseline(name, cfg, parts, features, out_dir=None):
    """Choose, fit and score one baseline, write its run record; returns the record's path. `features` caches
    the vectorised splits between models: {(kind, n, fitted on): (X_fit, X_eval)}."""
    from sklearn.exceptions import ConvergenceWarning

    one = SimpleNamespace(run=cfg.run_prefix + name, impl="numpy", seed=cfg.seed, threads=cfg.threads)
    one.group, one.progress = cfg.group, cfg.progress
    run = Run("sentiment_lstm", one, out_dir)
    train, val, test = parts["train"], parts["val"], parts["test"]
    full = {k: train[k] + val[k] if k == "tokens" else np.concatenate([train[k], val[k]]) for k in train}
    kind, n = FEATURES.get(name, ("none", 0))

    def vectorised(fit_on, fit_part, eval_part):
        if name == "majority":  # no features: one constant column
            return np.ones((len(fit_part["labels"]), 1)), np.ones((len(eval_part["labels"]), 1)), None
        key = (kind, n, fit_on)
        if key not in features:
            vec = vectorizer(kind, n)
            features[key] = (vec.fit_transform(fit_part["tokens"]), vec.transform(eval_part["tokens"]), vec)
        return features[key]

    what, grid = grid_of(name, cfg)
    X_train, X_val, _ = vectorised("train", train, val)
    scores, val_scores = {}, {}
    for value in grid:  # the validation split chooses
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = estimator(name, value, cfg).fit(X_train, train["labels"])
        scores[value] = float((model.predict(X_val) == val["labels"]).mean())
        if isinstance(model, NBSVM):  # for Platt scaling: scores of reviews the model was not fitted on
            val_scores[value] = model.decision_function(X_val)
        setting = f"{what} = {value}" if what else "nothing to choose"
        run.say(f"{run.name}: {setting}: val acc {scores[value]:.4f} ({time.perf_counter() - t0:.1f} s fit)")
    best = max(grid, key=lambda v: scores[v])  # the first of equals
    fit_part = full if cfg.refit else train
    X_fit, X_test, vec = vectorised("full" if cfg.refit else "train-test", fit_part, test)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # liblinear stops at max_iter with a warning
        warnings.simplefilter("always", ConvergenceWarning)
        model = estimator(name, best, cfg).fit(X_fit, fit_part["labels"])
    fit_time = time.perf_counter() - t0
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if isinstance(model, NBSVM):
        model.platt = fit_platt(val_scores[best], val["labels"])
    predicted = model.predict(X_test)
    test_acc = float((predicted == test["labels"]).mean())  # the test set, once
    metrics = {"test_acc": test_acc, "val_acc": scores[best], "train_size": X_fit.shape[0]}
    metrics |= {"test_size": X_test.shape[0], "n_features": X_fit.shape[1], "fit_time_s": round(fit_time, 2)}
    metrics |= {"converged": converged}
    settings = {
        k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("models", "progress", "run_prefix")
    }
    settings |= {"model": name, "features": f"{kind} 1..{n}-grams", "chosen": {what: best} if what else {}}
    settings |= {"val_acc_by_setting": {str(v): s for v, s in scores.items()}}
    notes = (
        f"scikit-learn; {what or 'nothing'} chosen on {len(val['labels']):,} validation reviews"
        + (f", then refitted on all {X_fit.shape[0]:,} training reviews" if cfg.refit else "")
        + "; test_acc: the final model scored once on the test reviews"
    )
    if name != "majority" and run.main:
        save_predictions(run, test, predicted, p_positive(model, X_test))
    if isinstance(model, NBSVM) and cfg.save_weights:
        meta = {"kind": "nbsvm", "run": run.name, "model": name, "ngram_max": n, "n_features": X_fit.shape[1]}
        meta |= {"alpha": best[0], "C": best[1], "beta": best[2], "platt": model.platt, "test_acc": test_acc}
        weights, size = save_nbsvm(run, model, vec.get_feature_names_out().tolist(), meta)
        if weights is not None:
            run.say(f"{run.name}: weights -> {weights} ({size / 2**20:.1f} MB)")
    path = run.finish(
        Fitted(num_params(model, X_fit.shape[1])), model_name=name, dataset="imdb", metrics=metrics,
        notes=notes, config=settings,
    )  # fmt: skip
    run.say(f"{run.name}: test accuracy {test_acc:.4f} ({fit_time:.1f} s fit) -> {path}")
    return path


def predictions_path(folder, run):
    return folder / "results" / f"{run}.predictions.npz"


def save_predictions(run, test, predicted, p):
    """results/<run>.predictions.npz: index, label, predicted (int8) and p_positive (float32) of each test review
    (~250 KB for the 25,000)."""
    arrays = dict(
        index=test["index"].astype(np.int32), label=test["labels"].astype(np.int8),
        predicted=np.asarray(predicted).astype(np.int8), p_positive=np.asarray(p).astype(np.float32),
    )  # fmt: skip
    save_npz(predictions_path(run.dir, run.name), arrays)


def main(argv, out_dir=None):
    cfg = check(parse_config(Config(), argv))
    parts = sdata.tokenized_splits(cfg.val_size, cfg.seed, cfg.train_subset, cfg.eval_subset)
    features = {}
    return [run_baseline(name, cfg, parts, features, out_dir) for name in cfg.models]


if __name__ == "__main__":
    run_main(main)
