"""The PNG figures of cnn_cifar/REPORT.md, drawn from run records and the runs' final weights.

    python -m cnn_cifar.figures [--threads=1]

Weights come from cnn_cifar/checkpoints/<run>.npz|.pt (committed, --save_weights) or else from the run's last
resume checkpoint (checkpoints/resume/<run>.*, which holds the final weights once a run has finished), so the
figures work after `make cnn_cifar FAST=1` too. Draws only what results/ has data for:

  curves_test_acc.png, curves_train_loss.png  accuracy (test or validation) and training loss per epoch
  filters_{numpy,torch}_simplecnn.png,        first-layer filters of the NumPy and PyTorch SimpleCNN and of the
  filters_torch_lenet.png                     LeNet-style network, one RGB tile per filter
  activations_numpy_simplecnn.png             one test image through the NumPy SimpleCNN's conv layers
  confusion_matrix.png, misclassified.png     for the most accurate model whose weights are here
  augmentation_ablation.png                   the same network trained with and without crop + flip
  transfer_test_acc.png                       transfer learning: pretrained vs scratch against training-set size

The headline runs are preferred over FAST=1 ones where both exist; each figure names the run it shows.
"""

import dataclasses
from pathlib import Path

import numpy as np

from shared import plots
from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.config import parse_config
from shared.data import CIFAR10_CLASSES
from shared.runrecord import load_run_records

PROJECT_DIR = Path(__file__).resolve().parent
RESULTS = PROJECT_DIR / "results"
SHORT_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclasses.dataclass
class FigConfig:
    threads: int = 0  # NumPy and torch threads; 0 = the libraries' default
    image: int = 0  # which test image (position in a seeded class-mixed order) the activation maps show


def train_runs(records):
    """Records written by cnn_cifar.train (NumPy/PyTorch SimpleCNN, LeNet-style)."""
    from cnn_cifar.evaluate import kind_of

    return [r for r in records if kind_of(r) == "train"]


def weights_file(run):
    """Final weights of a run: the committed file, else the finished run's resume checkpoint; None if neither."""
    for folder in (PROJECT_DIR / "checkpoints", PROJECT_DIR / "checkpoints" / "resume"):
        for suffix in (".npz", ".pt"):
            if (folder / f"{run}{suffix}").exists():
                return folder / f"{run}{suffix}"
    return None


def load_weights(run):
    """The model weights dict of a run (NumPy arrays or torch tensors), or None."""
    path = weights_file(run)
    if path is None:
        return None
    state = load_npz(path) if path.suffix == ".npz" else load_torch(path)
    if path.parent.name == "resume":  # a resume checkpoint also holds the optimizer state
        if path.suffix == ".npz":
            return {k[len("model/") :]: v for k, v in state.items() if k.startswith("model/")}
        return state["model"]
    return state


def latest(records, **match):
    """The most recently finished record whose config has the `match` values, preferring the headline group;
    None if there is none."""
    rows = [r for r in records if all(r["config"].get(k) == v for k, v in match.items())]
    rows.sort(key=lambda r: (r.get("group") == "headline", r.get("finished_at", "")))
    return rows[-1] if rows else None


def curves(records):
    runs = [r for r in train_runs(records) if r.get("group") in ("headline", "augmentation")]
    runs = runs or [r for r in train_runs(records) if r.get("group") == "fast"]
    if not runs:
        return
    acc, loss = {}, {}
    for r in runs:
        h, where = r["history"], ("val" if "val_acc" in r["history"] else "test")
        acc[f"{r['run']} ({where})"] = (h["epoch"], h[f"{where}_acc"])
        loss[r["run"]] = (h["epoch"], h["train_loss"])
    plots.line_plot(
        acc,
        RESULTS / "curves_test_acc.png",
        "epoch",
        "accuracy",
        "CIFAR-10 accuracy per epoch",
        hline=(0.65, "65%"),
    )
    plots.line_plot(
        loss, RESULTS / "curves_train_loss.png", "epoch", "training loss (augmented batches)", "Training loss"
    )


def first_layer_filters(records):
    """Every first-layer filter of the SimpleCNN (NumPy and PyTorch) and LeNet-style runs as an RGB tile."""
    for name, match in (
        ("numpy_simplecnn", dict(impl="numpy", model="simple")),
        ("torch_simplecnn", dict(impl="torch", model="simple")),
        ("torch_lenet", dict(model="lenet")),
    ):
        record = latest(train_runs(records), **match)
        weights = load_weights(record["run"]) if record else None
        if weights is None:
            continue
        if "0.W" in weights:  # NumPy (kh, kw, Cin, Cout) -> (Cout, kh, kw, Cin)
            w = np.asarray(weights["0.W"]).transpose(3, 0, 1, 2)
        else:  # PyTorch (Cout, Cin, kh, kw) -> (Cout, kh, kw, Cin)
            first = next(k for k in weights if k.endswith("weight") and weights[k].ndim == 4)
            w = weights[first].float().numpy().transpose(0, 2, 3, 1)
        k = w.shape[1]
        plots.image_grid(
            w,
            RESULTS / f"filters_{name}.png",
            ncols=min(16, len(w)),
            title=f"{record['run']}: the {len(w)} first-layer {k}x{k}x3 filters (each scaled to its own range)",
        )


def test_images(seed=0):
    """uint8 test images, int64 labels, and a seeded class-mixed order of their indices."""
    from shared.data import load_cifar10

    _, (x_test, y_test) = load_cifar10()
    return x_test, y_test, np.random.default_rng(seed).permutation(len(x_test))


def colored(maps, cmap="viridis"):
    """(N, h, w) activations -> (N, 32, 32, 3) RGB tiles in [0, 1], each map scaled to its own range and
    enlarged by pixel repetition to 32 x 32."""
    import matplotlib

    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    scaled = (maps - lo) / np.maximum(hi - lo, 1e-12)
    rep = 32 // maps.shape[1]
    scaled = scaled.repeat(rep, axis=1).repeat(rep, axis=2)
    return matplotlib.colormaps[cmap](scaled)[..., :3]


def activation_maps(records, image_pos, per_layer=11):
    """One test image through the NumPy SimpleCNN: the first `per_layer` channels after each conv's ReLU."""
    from cnn_cifar.augment import normalize
    from cnn_cifar.scratch import Conv2D, SimpleCNN

    record = latest(train_runs(records), impl="numpy", model="simple")
    weights = load_weights(record["run"]) if record else None
    if weights is None:
        return
    cfg = record["config"]
    net = SimpleCNN(channels=tuple(cfg["channels"]), hidden=cfg["hidden"][0], rng=np.random.default_rng(0))
    net.load_state_dict(weights)
    per_layer = min(per_layer, *cfg["channels"])
    x_test, y_test, order = test_images()
    i = order[image_pos]
    image = x_test[i : i + 1]
    h, tiles, titles = normalize(image), [], []
    for k, layer in enumerate(net.layers):
        h = layer.forward(h, training=False)
        if k > 0 and isinstance(net.layers[k - 1], Conv2D):  # the ReLU after a conv: one row of tiles
            name = f"conv{len(tiles) // 2 + 1}"
            first = image / 255.0 if not tiles else np.ones((1, 32, 32, 3))  # the input, then blanks
            tiles += [first, colored(h[0].transpose(2, 0, 1)[:per_layer])]
            titles += ["input" if len(tiles) == 2 else ""]
            titles += [f"{name} {h.shape[1]}x{h.shape[2]}" if c == 0 else f"#{c}" for c in range(per_layer)]
    pred = int(h.argmax())
    plots.image_grid(
        np.concatenate(tiles),
        RESULTS / "activations_numpy_simplecnn.png",
        ncols=per_layer + 1,
        titles=titles,
        normalize_each=False,
        title=(
            f"{record['run']}: test image {i} ({CIFAR10_CLASSES[y_test[i]]}, predicted {CIFAR10_CLASSES[pred]}); "
            f"first {per_layer} channels after each conv + ReLU"
        ),
    )


def candidate_predictions(records):
    """(run record, predicted labels of all 10,000 test images) of the run with the highest claimed test
    accuracy whose weights are here: cnn_cifar.train runs, and fast94's committed weights; (None, None)."""
    from cnn_cifar.evaluate import kind_of, train_config
    from cnn_cifar.train import build, predict_logits

    ranked = sorted(
        (r for r in records if kind_of(r) is not None), key=lambda r: r["metrics"]["test_acc"], reverse=True
    )
    x_test, _, _ = test_images()
    for r in ranked:
        path = weights_file(r["run"])
        if path is None or (kind_of(r) == "fast94" and path.parent.name == "resume"):
            continue
        if kind_of(r) == "train":
            cfg = train_config(r)
            impl = build(cfg)
            impl.set_weights(load_weights(r["run"]))
            return r, predict_logits(impl, x_test, cfg).argmax(axis=1)
        from cnn_cifar import fast94
        from cnn_cifar.augment import to_nchw

        config = r["config"]
        model = fast94.load_weights(path)
        logits = fast94.predict(
            model,
            to_nchw(x_test),
            tta=config["tta"],
            precision=config["precision"],
            channels_last=config["channels_last"],
        )
        return r, logits.argmax(1).numpy()
    return None, None


def confusion_and_mistakes(records, n_wrong=30):
    record, pred = candidate_predictions(records)
    if record is None:
        return
    x_test, y_test, order = test_images()
    confusion = np.zeros((10, 10))
    np.add.at(confusion, (y_test, pred), 1)
    confusion /= confusion.sum(axis=1, keepdims=True)
    acc = float((pred == y_test).mean())
    plots.heatmap(
        confusion,
        RESULTS / "confusion_matrix.png",
        CIFAR10_CLASSES,
        CIFAR10_CLASSES,
        title=f"{record['run']}, {100 * acc:.2f}% of 10,000 test images\nrows: true class, columns: predicted",
    )
    wrong = [i for i in order if pred[i] != y_test[i]][:n_wrong]
    plots.image_grid(
        x_test[wrong] / 255.0,
        RESULTS / "misclassified.png",
        ncols=10,
        titles=[f"{SHORT_NAMES[y_test[i]]}\u2192{SHORT_NAMES[pred[i]]}" for i in wrong],
        normalize_each=False,
        title=f"{record['run']}: misclassified test images (true -> predicted)",
    )


def augmentation_ablation(records):
    """Same network and recipe with and without augmentation: final train and test accuracy."""
    noaug = [
        r for r in train_runs(records) if r.get("group") == "augmentation" and not r["config"]["augment"]
    ]
    if not noaug:
        return
    labels, values = [], []
    for off in noaug:
        ignore = ("augment", "run", "group", "save_weights", "resume", "progress", "threads", "device")
        same = {k: v for k, v in off["config"].items() if k not in ignore}
        on = [
            r
            for r in train_runs(records)
            if r["config"]["augment"]
            and {k: v for k, v in r["config"].items() if k in same} == same
            and r["metrics"].get("test_size") == off["metrics"].get("test_size")
        ]
        for name, r in (("crop+flip", on[-1] if on else None), ("no augmentation", off)):
            if r is None:
                continue
            labels += [f"{r['impl']} {name}: train", f"{r['impl']} {name}: test"]
            values += [r["metrics"]["train_acc"], r["metrics"]["test_acc"]]
    plots.bar_plot(labels, values, RESULTS / "augmentation_ablation.png", "accuracy", "Augmentation ablation")


def transfer(records):
    runs = [r for r in records if r.get("group") == "transfer" and "train_size" in r.get("config", {})]
    if not runs:
        return
    series = {}
    for r in sorted(runs, key=lambda r: r["config"]["train_size"]):
        label = f"{r['config'].get('backbone', '?')} {r['config'].get('mode', r['model'])}"
        xs, ys = series.setdefault(label, ([], []))
        xs.append(r["config"]["train_size"])
        ys.append(r["metrics"]["test_acc"])
    plots.line_plot(
        series,
        RESULTS / "transfer_test_acc.png",
        "training images (cats + dogs)",
        "test accuracy (cats vs dogs)",
        "Transfer learning vs training from scratch",
        logx=True,
    )


def main(argv):
    from shared.threads import set_threads

    cfg = parse_config(FigConfig(), argv)
    set_threads(cfg.threads)
    records = load_run_records("cnn_cifar")
    curves(records)
    first_layer_filters(records)
    activation_maps(records, cfg.image)
    confusion_and_mistakes(records)
    augmentation_ablation(records)
    transfer(records)
    print(f"figures in {RESULTS}: {', '.join(sorted(p.name for p in RESULTS.glob('*.png')))}")


if __name__ == "__main__":
    run_main(main)
