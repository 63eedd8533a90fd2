"""Matplotlib figures for the reports, written as PNG files (no screen needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path):
    """Write a finished figure as a PNG (folders made as needed) and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def line_plot(series, path, xlabel, ylabel, title="", logy=False, logx=False, hline=None):
    """series: {label: (x, y)}; hline: optional (y, label) reference line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, marker="." if len(x) < 40 else None)
    if hline is not None:
        ax.axhline(hline[0], color="gray", linestyle="--", linewidth=1, label=hline[1])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def image_grid(images, path, ncols=10, titles=None, cmap="gray", title="", normalize_each=True):
    """images: (N, H, W) or (N, H, W, 3) array; each tile scaled to its own range unless normalize_each=False."""
    images = np.asarray(images, dtype=np.float64)
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.1, nrows * 1.2 + (0.3 if title else 0)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if normalize_each:
            img = (img - img.min()) / (img.max() - img.min() + 1e-12)
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def bar_plot(labels, values, path, ylabel, title=""):
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.bar(range(len(values)), values)
    ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)


def heatmap(matrix, path, row_labels, col_labels, title="", fmt="{:.2f}", cmap="viridis"):
    matrix = np.asarray(matrix, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(col_labels), 1 + 0.5 * len(row_labels)))
    im = ax.imshow(matrix, cmap=cmap)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return save_figure(fig, path)
