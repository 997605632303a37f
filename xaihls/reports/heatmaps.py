"""Heatmap pictures of attributions (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def attribution_map(attr: torch.Tensor) -> np.ndarray:
    """(C, H, W) attribution to one (H, W) map: the sum over channels."""
    return attr.detach().to(torch.float64).sum(0).numpy()


def _image(x: torch.Tensor) -> np.ndarray:
    a = x.detach().to(torch.float64).numpy()
    if a.shape[0] == 1:
        return a[0]
    a = np.transpose(a[:3], (1, 2, 0))
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else a * 0


def save_heatmap_grid(
    images: torch.Tensor,
    attributions: dict[str, torch.Tensor],
    path: str | Path,
    row_titles: list[str] | None = None,
) -> Path:
    """One row an image: the input, then one heatmap a method (signed maps centred on 0)."""
    plt = _pyplot()
    n = images.shape[0]
    cols = 1 + len(attributions)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n + 0.4), squeeze=False)
    for i in range(n):
        ax = axes[i][0]
        ax.imshow(_image(images[i]), cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(row_titles[i] if row_titles else f"#{i}", fontsize=8)
        if i == 0:
            ax.set_title("input", fontsize=8)
        for j, (method, attr) in enumerate(attributions.items(), start=1):
            _draw(axes[i][j], attribution_map(attr[i]))
            if i == 0:
                axes[i][j].set_title(method.replace("_", " "), fontsize=7)
    return _save(fig, path)


def save_heatmap(attr: torch.Tensor, path: str | Path) -> Path:
    """One attribution (C, H, W) as a heatmap PNG; a 1-D model's (C, L) as one row a channel."""
    if attr.dim() == 2:
        attr = attr[None]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3, 3))
    _draw(ax, attribution_map(attr))
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, m: np.ndarray) -> None:
    """Unsigned maps on 'hot' from 0; signed maps on 'bwr' centred on 0."""
    if (m >= 0).all():
        ax.imshow(m, cmap="hot", vmin=0, vmax=max(float(m.max()), 1e-12))
    else:
        lim = max(float(np.abs(m).max()), 1e-12)
        ax.imshow(m, cmap="bwr", vmin=-lim, vmax=lim)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    _pyplot().close(fig)
    return path
