"""The report's figures, each from the run records and committed weights it needs (skipped, with a line, when
absent). Sample grids use fixed seeds, so rerunning draws the same digits.

    python -m vae_gan.figures

    vae_test_loss.png       the VAE twins' test loss (nats per image) by epoch, NumPy and PyTorch
    samples_<run>.png       64 samples of every committed model (seeded z ~ N(0, I); a VAE's decoded means)
    latent_2d.png           the 2-D VAE: test codes mu(x) coloured by digit, and the decoded grid of z
    interpolations.png      decoded straight lines between the codes of pairs of test digits
    gan_balance_<run>.png   a GAN's losses by epoch
    gan_d_of_x_<run>.png    its mean D(x) and D(G(z)) by epoch
    gan_classes_<run>.png   the class histogram of its samples by epoch (mode collapse: drifting from uniform)
    gan_study.png           the GAN study's runs: D(G(z)) and the class histogram's KL from uniform, by epoch
    gan_study.md            the study's table: what each run changed, its FID, class balance, D(x), D(G(z))
    quality.md              every FID in the records beside the real-vs-real floor (REPORT.md includes it)
"""

import dataclasses
from pathlib import Path
from statistics import NormalDist

import numpy as np

from shared import plots
from shared.checkpoint import load_npz, load_torch
from shared.cli import run_main
from shared.data import load_mnist
from shared.report import committed_records
from vae_gan import train as T
from vae_gan.twin import build

RESULTS = Path(__file__).resolve().parent / "results"
CHECKPOINTS = RESULTS.parent / "checkpoints"
GRID_SEED = 12
IMPL = {"numpy": "NumPy", "torch": "PyTorch"}


def load_model(record):
    """The adapter of a committed run, rebuilt from its record's config with its weights; None if absent."""
    path = next(
        (p for p in (CHECKPOINTS / f"{record['run']}{s}" for s in (".npz", ".pt")) if p.is_file()), None
    )
    if path is None:
        return None
    fields = {f.name for f in dataclasses.fields(T.Config)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items() if k in fields}
    model = build(T.check(dataclasses.replace(T.Config(), **{**config, "device": "cpu"})))
    model.set_weights(load_npz(path) if path.suffix == ".npz" else load_torch(path))
    return model


def is_vae(record):
    return record["config"]["model"] in T.VAES


def draw_samples(record, model, n=64):
    """A VAE decodes seeded z ~ N(0, I) to pixel means; a GAN generates from seeded z."""
    latent = record["config"]["latent"]
    z = np.random.default_rng(GRID_SEED).standard_normal((n, latent), dtype=np.float32)
    images = model.sample(z)
    return images.reshape(n, 28, 28)


def vae_curves(records):
    twins = [r for r in records if r["run"] in ("numpy-vae-400-z20", "torch-vae-400-z20")]
    if not twins:
        print("vae_test_loss.png skipped: no VAE twin records")
        return
    series = {
        f"{IMPL[r['impl']]} ({r['run']})": (r["history"]["epoch"], r["history"]["test_loss"]) for r in twins
    }
    plots.line_plot(series, RESULTS / "vae_test_loss.png", "epoch", "test loss (nats per image)",
                    title="pytorch/examples' VAE recipe, NumPy and PyTorch", hline=(104, "target 104"))  # fmt: skip


def sample_grids(records):
    for record in records:
        model = load_model(record)
        if model is None:
            continue
        title = f"{record['run']}: " + (
            f"test loss {record['metrics']['test_loss']:.1f} nats"
            if is_vae(record)
            else f"FID {record['metrics'].get('fid', float('nan')):.2f}"
        )
        plots.image_grid(draw_samples(record, model), RESULTS / f"samples_{record['run']}.png", ncols=8,
                         normalize_each=False, title=title)  # fmt: skip


def latent_2d(records, n_grid=15):
    record = next((r for r in records if is_vae(r) and r["config"]["latent"] == 2), None)
    model = load_model(record) if record else None
    if model is None:
        print("latent_2d.png skipped: no committed 2-D VAE")
        return
    import matplotlib.pyplot as plt

    _, x_test = T.prepare_data(T.check(dataclasses.replace(T.Config(), model="vae")))
    (_, _), (_, y_test) = load_mnist()
    mu, _ = model.encode(x_test)
    # the grid at the Gaussian quantiles: equal prior mass between neighbours, as Kingma & Welling's figure 4
    q = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n_grid)]
    z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
    tiles = (
        model.decode(z)
        .reshape(n_grid, n_grid, 28, 28)
        .transpose(0, 2, 1, 3)
        .reshape(n_grid * 28, n_grid * 28)
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.6))
    points = left.scatter(mu[:, 0], mu[:, 1], c=y_test, cmap="tab10", s=2, alpha=0.6)
    left.legend(*points.legend_elements(), title="digit", fontsize=7, loc="upper right")
    left.set(xlabel="mu_1", ylabel="mu_2", title=f"10,000 test codes, {record['run']}")
    right.imshow(tiles, cmap="gray")
    right.set(title="decoded z on a grid of N(0, 1) quantiles 0.05..0.95")
    right.axis("off")
    plots.save_figure(fig, RESULTS / "latent_2d.png")


def interpolations(records, pairs=((3, 2), (1, 0), (4, 7), (8, 5)), steps=10):
    record = next((r for r in records if r["run"] == "torch-vae-400-z20"), None)
    model = load_model(record) if record else None
    if model is None:
        print("interpolations.png skipped: no committed torch-vae-400-z20")
        return
    _, x_test = T.prepare_data(T.check(dataclasses.replace(T.Config(), model="vae")))
    rows = []
    for a, b in pairs:  # test images by index: the codes' means, joined by a straight line
        mu, _ = model.encode(x_test[[a, b]])
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        rows.append(model.decode((1 - t) * mu[0] + t * mu[1]).reshape(steps, 28, 28))
    plots.image_grid(np.concatenate(rows), RESULTS / "interpolations.png", ncols=steps, normalize_each=False,
                     title=f"{record['run']}: straight lines between the codes of two test digits")  # fmt: skip


def gan_figures(records):
    for record in (r for r in records if not is_vae(r) and r.get("group") == "gan"):
        h, run = record["history"], record["run"]
        plots.line_plot({"D loss": (h["epoch"], h["train_d_loss"]), "G loss": (h["epoch"], h["train_g_loss"])},
                        RESULTS / f"gan_balance_{run}.png", "epoch", "mean loss over the epoch", title=run)  # fmt: skip
        plots.line_plot(
            {"D(x)": (h["epoch"], h["train_d_real"]), "D(G(z))": (h["epoch"], h["train_d_fake"])},
            RESULTS / f"gan_d_of_x_{run}.png",
            "epoch",
            "mean probability 'real'",
            title=run,
            hline=(0.5, "1/2"),
        )
        if "class_counts" in h:
            counts = np.array(h["class_counts"], dtype=np.float64)
            shares = counts / counts.sum(axis=1, keepdims=True)
            plots.heatmap(shares.T, RESULTS / f"gan_classes_{run}.png", [str(d) for d in range(10)],
                          [str(e) for e in h["epoch"]], title=f"{run}: share of samples per class, by epoch")  # fmt: skip


STUDY_SETTINGS = ("lr", "beta1", "d_lr_scale", "real_label", "g_loss", "epochs", "batch_size", "latent")


def gan_study_table(runs):
    """results/gan_study.md: each study run's settings that differ from the baseline's (runs[0]), its FID and
    class balance, and the last epoch's D(x) and D(G(z))."""
    base = runs[0]["config"]
    lines = ["| run | changed from the baseline | FID | KL(classes \\|\\| uniform), nats | D(x), D(G(z)) last epoch |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        changed = [f"{k} {r['config'][k]}" for k in STUDY_SETTINGS if r["config"].get(k) != base.get(k)]
        h, m = r["history"], r["metrics"]
        lines.append(f"| `{r['run']}` | {', '.join(changed) or '(the baseline)'} | {m['fid']:.2f} | "
                     f"{m['class_uniformity']:.3f} | {h['train_d_real'][-1]:.3f}, {h['train_d_fake'][-1]:.3f} |")  # fmt: skip
    (RESULTS / "gan_study.md").write_text("\n".join(lines) + "\n")


def gan_study(records, baseline="torch-gan-mlp-z64"):
    runs = [r for r in records if r["run"] == baseline] + [
        r for r in records if r.get("group") == "gan-study"
    ]
    if len(runs) < 2:
        print("gan_study.png skipped: no GAN study records")
        return
    gan_study_table(runs)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for r in runs:
        h = r["history"]
        label = f"{r['run']} (FID {r['metrics'].get('fid', float('nan')):.1f})"
        style = dict(lw=2.5, color="black") if r["run"] == baseline else dict(lw=1.3)
        left.plot(h["epoch"], h["train_d_fake"], label=label, **style)
        right.plot(h["epoch"], h["class_uniformity"], label=label, **style)
    left.axhline(0.5, color="gray", ls=":", lw=1)
    left.set(
        xlabel="epoch",
        ylabel="mean D(G(z)) over the epoch's D steps",
        title="D/G balance (1/2: D cannot tell)",
    )
    right.set(xlabel="epoch", ylabel="KL(class histogram || uniform), nats", yscale="log", title=
              "mode collapse: 2,000 samples by the classifier (log 10 = 2.30: one class)")  # fmt: skip
    right.axhline(np.log(10), color="gray", ls=":", lw=1)
    right.legend(fontsize=7, loc="upper right")
    plots.save_figure(fig, RESULTS / "gan_study.png")


def quality_table(records):
    """results/quality.md: the FID and class balance of every run that measured them, best first, under the floor
    that real images score against the test set (the classifier's record)."""
    scored = sorted((r for r in records if "fid" in r["metrics"]), key=lambda r: r["metrics"]["fid"])
    floor = next((r for r in records if "fid_train_vs_test" in r["metrics"]), None)
    lines = ["| run | model | FID vs the 10,000 test images | KL(classes of the samples \\|\\| uniform), nats |",
             "|---|---|---|---|"]  # fmt: skip
    if floor:
        m = floor["metrics"]
        lines.append(f"| real images (`{floor['run']}` record) | {m['floor_samples']:,} training images | "
                     f"{m['fid_train_vs_test']:.2f} (the floor) | – |")  # fmt: skip
    for r in scored:
        m = r["metrics"]
        lines.append(f"| `{r['run']}` | {r['model']} | {m['fid']:.2f} ({m['fid_samples']:,} samples) | "
                     f"{m['class_uniformity']:.3f} |")  # fmt: skip
    (RESULTS / "quality.md").write_text("\n".join(lines) + "\n")


def main(argv):
    quality_table(committed_records("vae_gan"))
    records = [r for r in committed_records("vae_gan") if not r["model"].startswith("mnist-cnn")]
    vae_curves(records)
    sample_grids(records)
    latent_2d(records)
    interpolations(records)
    gan_figures(records)
    gan_study(records)


if __name__ == "__main__":
    run_main(main)
