"""Figures of a segmentation and of a sweep. Figures only: nothing here talks to MLflow.

Built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state), so
they are safe in parallel jobs and closed by garbage collection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from segexp.contract import NOISE_LABEL

_COLORS = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]
_NOISE_COLOR = "#c8c8c8"


_MARGINS = (("left", 0.15), ("right", 0.97), ("bottom", 0.14), ("top", 0.9))


def figure(
    kind: str, width: float = 4.8, height: float = 3.6, margins: tuple = _MARGINS
) -> tuple[Figure, Any]:
    """A new figure on the Agg canvas with one axes, for a plot of ``kind``.

    Fixed margins and few ticks: a layout engine and dense ticks would double the
    rendering cost of every small plot.
    """
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**dict(margins))
    ax = fig.add_subplot()
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5))
        axis.set_major_formatter(ScalarFormatter())
    return fig, ax


def put_title(ax, text: str, fontsize: float = 9) -> None:
    """Title at a fixed place: Axes.set_title re-measures every tick label to dodge them."""
    ax.figure.text(0.5, 0.965, text, ha="center", va="top", fontsize=fontsize)


def segment_color(label: int) -> str:
    return _NOISE_COLOR if label == NOISE_LABEL else _COLORS[int(label) % len(_COLORS)]


def save(fig: Figure, path: Path, dpi: int = 80) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # zlib level 1: a third of the encoding time of the default 6, files ~20% larger
    options: dict[str, Any] = (
        {"pil_kwargs": {"compress_level": 1}} if path.suffix.lower() == ".png" else {}
    )
    fig.savefig(path, dpi=dpi, **options)
    return path


def _projection(features: pd.DataFrame, transformed: np.ndarray) -> tuple[np.ndarray, str, str]:
    numeric = features.select_dtypes("number")
    if features.shape[1] == 2 and numeric.shape[1] == 2:
        return numeric.to_numpy(dtype=float), str(numeric.columns[0]), str(numeric.columns[1])
    if transformed.shape[1] == 1:
        return np.column_stack([transformed[:, 0], np.zeros(len(transformed))]), "feature", ""
    centered = transformed - transformed.mean(axis=0)
    _, singular, components = np.linalg.svd(centered, full_matrices=False)
    share = singular**2 / max(float((singular**2).sum()), 1e-300)
    xy = centered @ components[:2].T
    return xy, f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})"


def segments_scatter(
    features: pd.DataFrame, transformed: np.ndarray, labels: np.ndarray, title: str
) -> Figure:
    """Customers coloured by segment: the two features, or a PCA projection of more."""
    xy, xlabel, ylabel = _projection(features, transformed)
    fig, ax = figure("segments_scatter")
    for label in np.unique(labels):
        mask = labels == label
        name = "noise" if label == NOISE_LABEL else f"segment {label}"
        ax.scatter(xy[mask, 0], xy[mask, 1], s=12, color=segment_color(label), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    put_title(ax, title)
    if len(np.unique(labels)) <= 10:
        ax.legend(fontsize=7, markerscale=1.2, frameon=False, loc="upper right")
    return fig


def silhouette_diagram(
    per_customer: np.ndarray | None, labels: np.ndarray | None, title: str, reason: str = ""
) -> Figure:
    """Per-customer silhouette, sorted within each segment, with the mean as a line."""
    fig, ax = figure("silhouette_diagram")
    if per_customer is None or labels is None:
        ax.text(
            0.5,
            0.5,
            reason or "silhouette not available",
            ha="center",
            va="center",
            wrap=True,
            fontsize=9,
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        put_title(ax, title)
        return fig
    y = 0
    for label in np.unique(labels):
        values = np.sort(per_customer[labels == label])
        ax.fill_betweenx(np.arange(y, y + len(values)), 0, values, color=segment_color(label))
        ax.text(-0.05, y + len(values) / 2, str(label), fontsize=7, ha="right", va="center")
        y += len(values) + 4
    mean = float(per_customer.mean())
    ax.axvline(mean, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(min(-0.1, float(per_customer.min()) - 0.05), 1)
    ax.set_yticks([])
    ax.set_xlabel(f"silhouette (mean {mean:.3f})")
    put_title(ax, title)
    return fig


def metric_vs_k(
    table: pd.DataFrame, metric: str, title: str, marks: dict[str, int] | None = None
) -> Figure:
    """A metric against k for one sweep group, with the recommended k values marked."""
    fig, ax = figure("metric_vs_k")
    ordered = table.sort_values("k")
    ax.plot(ordered["k"], ordered[metric], marker="o", color=_COLORS[0])
    for i, (criterion, k) in enumerate((marks or {}).items()):
        ax.axvline(
            k, linestyle=":", color=_COLORS[(i + 1) % len(_COLORS)], label=f"{criterion}: k={k}"
        )
    if marks:
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax.set_xlabel("k")
    ax.set_ylabel(metric)
    ax.set_xticks(sorted(ordered["k"].unique()))
    put_title(ax, title)
    return fig


def run_plots(
    folder: Path,
    features: pd.DataFrame,
    transformed: np.ndarray,
    labels: np.ndarray,
    silhouette_per_customer: np.ndarray | None,
    silhouette_labels: np.ndarray | None,
    silhouette_reason: str,
    title: str,
    dpi: int = 80,
) -> None:
    """The segments scatter and the silhouette diagram of a run (its profile figures are
    drawn by ``segexp.insight.profiles``: the heatmap and the snake plot)."""
    plots_dir = folder / "plots"
    save(segments_scatter(features, transformed, labels, title), plots_dir / "segments.png", dpi)
    diagram = silhouette_diagram(
        silhouette_per_customer, silhouette_labels, title, silhouette_reason
    )
    save(diagram, plots_dir / "silhouette.png", dpi)


def k_distance_figure(
    sorted_distances: np.ndarray,
    min_samples: int,
    suggested: float | None,
    current: float | None,
    title: str = "",
) -> Figure:
    """Sorted k-distance curve with the suggested and the configured eps as lines."""
    fig, ax = figure("k_distance")
    ax.plot(np.arange(len(sorted_distances)), sorted_distances, color="#4e79a7")
    if suggested is not None:
        ax.axhline(
            suggested, color="#e15759", linestyle="--", label=f"suggested eps={suggested:.3g}"
        )
    if current is not None:
        ax.axhline(current, color="#59a14f", linestyle=":", label=f"configured eps={current:.3g}")
    if suggested is not None or current is not None:
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.set_xlabel("customers, sorted by k-distance")
    ax.set_ylabel(f"distance to neighbour #{min_samples} (self included)")
    put_title(ax, title or "k-distance")
    return fig


def save_k_distance_plot(
    folder: str | Path,
    *,
    sorted_distances: np.ndarray,
    min_samples: int,
    suggested: float | None,
    current: float | None,
    title: str = "",
    dpi: int = 80,
) -> Path:
    """Draw the k-distance figure into ``folder/plots/k_distance.png``."""
    path = Path(folder) / "plots" / "k_distance.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    k_distance_figure(sorted_distances, min_samples, suggested, current, title).savefig(
        path, dpi=dpi
    )
    return path
