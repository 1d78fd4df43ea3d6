"""Figures of a segmentation and of a sweep, on matplotlib's Figure + Agg canvas (no pyplot
state: safe in parallel jobs). Constrained layout places titles, ticks, legends and notes."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation

from segexp.contract import NOISE_LABEL
from segexp.insight.naming import readable_label

DEFAULT_DPI = 150
WIDTH, HEIGHT = 6.4, 4.8  # inches
TITLE_SIZE = 12.0
SUBTITLE_SIZE = 9.5
LABEL_SIZE = 10.0
TICK_SIZE = 9.0
LEGEND_SIZE = 9.0
NOTE_SIZE = 9.0
TOP_IN = 0.78  # title and subtitle above the axes

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
_SUBTITLE_COLOR = "#555555"
_NOTE_COLOR = "#a23b1f"
NOISE_NAME = "Not assigned (noise)"
_MAX_NAME = 36  # characters of a segment name in a legend
_MAX_LEGEND_ENTRIES = 12
# k-selection marks: one colour and marker shape per distinct k, unlike the curve's.
_MARK_COLORS = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2"]
_MARK_SHAPES = ["D", "s", "^", "v", "P", "p", "h"]
_CURVE_COLOR = "#3b4d61"

ALGORITHM_NAMES = {
    "kmeans": "K-Means",
    "minibatch_kmeans": "Mini-batch K-Means",
    "gmm": "Gaussian mixture",
    "dbscan": "DBSCAN",
    "agglomerative": "Agglomerative (Ward)",
    "birch": "BIRCH",
    "spectral": "Spectral clustering",
}
SCALER_NAMES = {
    "standard": "standard scaling",
    "minmax": "min-max scaling",
    "robust": "robust scaling",
    "none": "no scaling",
}
FEATURE_NAMES = {
    "income_spending": "income & spending",
    "age_income_spending": "age, income & spending",
    "age_spending": "age & spending",
    "all_numeric": "all numeric columns",
    "rfm": "recency, frequency & monetary",
    "rfm_full": "recency, frequency, monetary, tenure & order value",
    "default": "default features",
}
CRITERION_NAMES = {  # in a k=... legend entry; others read as their key in words
    "calinski_harabasz": "Calinski-Harabasz",
    "davies_bouldin": "Davies-Bouldin",
    "bic": "BIC",
    "chosen": "this run",
}
CRITERION_LONG_NAMES = {**CRITERION_NAMES, "gap": "gap statistic"}  # in a 'no k' note
METRIC_LABELS = {
    "inertia": "inertia (within-segment sum of squares)",
    "silhouette": "mean silhouette (higher is better)",
    "calinski_harabasz": "Calinski-Harabasz index (higher is better)",
    "davies_bouldin": "Davies-Bouldin index (lower is better)",
    "bic": "BIC (lower is better)",
    "gap": "gap statistic",
}
# Units of well-known columns (a header's own bracketed unit wins: 'Income (k$)').
COLUMN_UNITS = {
    "annual_income": "k$",
    "income": "k$",
    "spending_score": "1-100",
    "age": "years",
    "recency": "days",
    "tenure": "days",
    "frequency": "orders",
}
_BRACKETED = re.compile(r"[(\[{]([^)\]}]*)[)\]}]")
_K_PART = re.compile(r"^k(\d+)$")
_PARAM_PART = re.compile(r"^([A-Za-z_]*[A-Za-z])_?(-?\d[\w.+-]*)$")


def _run_parts(text: str) -> list[str] | None:
    """[algorithm, settings, scaling, features] of a run name ('algo-k5-scaler-features') or
    a sweep group ('algo / scaler / features'); None if ``text`` is neither."""
    group, tokens, settings = [p.strip() for p in text.split(" / ")], text.split("-"), []
    if len(group) == 3:
        algo, scaler, features = group
    elif len(tokens) >= 3 and " " not in text:
        algo, scaler, features = tokens[0], *tokens[-2:]
        # '-' before a digit is a negative value's sign: 'n_jobs-1'
        for token in re.split(r"-(?=\D)", "-".join(tokens[1:-2])) if tokens[1:-2] else []:
            k, param = _K_PART.match(token), _PARAM_PART.match(token)
            settings.append(f"k={k[1]}" if k else f"{param[1]}={param[2]}" if param else token)
    else:
        return None
    if scaler not in SCALER_NAMES:
        return None
    words = FEATURE_NAMES.get(features, features.replace("_", " "))
    return [ALGORITHM_NAMES.get(algo, algo), ", ".join(settings), SCALER_NAMES[scaler], words]


def human_title(text: str) -> str:
    """'kmeans-k5-standard-income_spending' -> 'K-Means, k=5 · standard scaling · income &
    spending'; text that is no run or group name stays as it is."""
    prefix, _, rest = text.rpartition(": ")
    parts = _run_parts(rest)
    if parts is None:
        return text
    algo, settings, scaler, features = parts
    title = f"{algo}, {settings}" if settings else algo
    title = f"{title} · {scaler} · {features}"
    return f"{prefix[:1].upper()}{prefix[1:]}: {title}" if prefix else title


def axis_label(column: Any) -> str:
    """A column as an axis label in words, with its unit where known: 'annual income (k$)'."""
    header = str(column)
    bracketed = _BRACKETED.search(header)
    words = readable_label(header)
    unit = bracketed.group(1).strip() if bracketed else COLUMN_UNITS.get(words.replace(" ", "_"))
    return f"{words} ({unit})" if unit and unit != words else words


def segment_label(
    label: int, names: Mapping[int, str] | None = None, width: int = _MAX_NAME
) -> str:
    """A segment's legend text: its name (cut to ``width``), noise as 'Not assigned (noise)'."""
    if int(label) == NOISE_LABEL:
        return NOISE_NAME
    name = (names or {}).get(int(label)) or f"segment {label}"
    return name if len(name) <= width else name[: width - 1] + "…"


def segment_names_in(folder: Path) -> dict[int, str]:
    """Segment id -> name from ``folder/segments.json`` when the run wrote one, else {}."""
    try:
        document = json.loads((Path(folder) / "segments.json").read_text(encoding="utf-8"))
        return {int(s["id"]): str(s["name"]) for s in document["segments"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


_TEXT_PATH = TextToPath()


@lru_cache(maxsize=2048)
def text_width(text: str, size: float) -> float:
    """Width of one line of ``text`` at ``size`` points, in inches (no renderer needed)."""
    width, _, _ = _TEXT_PATH.get_text_width_height_descent(text, FontProperties(size=size), False)
    return float(width) / 72.0


def wrapped(text: str, size: float, room: float, **options: Any) -> str:
    """``text`` broken at spaces into lines about ``room`` inches wide at ``size`` points."""
    chars = int(len(text) * room / max(text_width(text, size), 1e-9))
    return textwrap.fill(text, max(chars, 20), **options)


def figure(kind: str, width: float = WIDTH, height: float = HEIGHT) -> tuple[Figure, Any]:
    """A new figure on the Agg canvas, laid out by constrained layout, with one axes."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    fig.set_layout_engine("constrained", w_pad=0.1, h_pad=0.1)
    ax = fig.add_subplot()
    ax.set_gid(kind)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5))  # the formatter: ScalarFormatter already
        axis.label.set_fontsize(LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def put_title(ax, text: str, subtitle: str = "", pad: float = 6.0) -> None:
    """The title over the figure, shrunk to 10 pt then broken at a ' · ' to fit its width;
    the subtitle in grey over the axes."""
    fig = ax.figure
    room = fig.get_figwidth() - 0.6
    width = text_width(text, TITLE_SIZE) * 1.12  # bold is wider than the regular face measured
    if width * 10 / TITLE_SIZE > room and " · " in text:
        cuts = [m.start() for m in re.finditer(" · ", text)]
        cut = min(cuts, key=lambda i: abs(i - len(text) / 2))
        text = f"{text[:cut]}\n{text[cut + 3 :]}"
        width = max(text_width(line, TITLE_SIZE) for line in text.split("\n")) * 1.12
    size = max(10.0, min(TITLE_SIZE, TITLE_SIZE * room / width))
    fig.suptitle(text, fontsize=size, weight="bold")
    if subtitle:
        subtitle = wrapped(subtitle, SUBTITLE_SIZE, room)
        ax.set_title(subtitle, fontsize=SUBTITLE_SIZE, color=_SUBTITLE_COLOR, pad=pad)


def footnote(fig: Figure, text: str, **options: Any) -> None:
    """A note under everything else, from the left edge (constrained layout makes room)."""
    fig.supxlabel(text, x=0.02, ha="left", fontsize=NOTE_SIZE, linespacing=1.4, **options)


def segment_color(label: int) -> str:
    return _NOISE_COLOR if label == NOISE_LABEL else _COLORS[int(label) % len(_COLORS)]


def save(fig: Figure, path: Path, dpi: int = DEFAULT_DPI) -> Path:
    """Write a PNG (zlib level 1: a third of the default's encoding time, files ~20% larger)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 1})
    return path


def _segment_figure(
    kind: str, labels: np.ndarray, names: Mapping[int, str] | None
) -> tuple[Figure, Any, dict[int, str], bool]:
    """A figure wide enough for a one-column legend of the segments (noise last) right of
    4.3 in of axes; their legend texts, and whether they are few enough for a legend."""
    found = sorted((int(s) for s in np.unique(labels)), key=lambda s: (s == NOISE_LABEL, s))
    texts = {s: segment_label(s, names) for s in found}
    with_legend = len(found) <= _MAX_LEGEND_ENTRIES
    shown = texts.values() if with_legend else ()
    widest = max((text_width(t, LEGEND_SIZE) for t in shown), default=-0.45)
    return *figure(kind, max(WIDTH, 6.0 + widest)), texts, with_legend


def legend(ax, below: bool = False, **options: Any) -> None:
    """A legend off the data: right of the axes, or under the x-axis label (inches down)."""
    under = ax.transAxes + ScaledTranslation(-0.55, -0.5, ax.figure.dpi_scale_trans)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(0, 0) if below else (1.03, 1.0),
        bbox_transform=under if below else ax.transAxes,
        frameon=False,
        fontsize=LEGEND_SIZE,
        borderaxespad=0.0,
        alignment="left",
        **options,
    )


def _projection(
    features: pd.DataFrame, transformed: np.ndarray
) -> tuple[np.ndarray, str, str, str]:
    """(points in 2-D, x label, y label, what the axes are) for the segments scatter."""
    numeric = features.select_dtypes("number")
    if features.shape[1] == 2 and numeric.shape[1] == 2:
        x, y = (str(c) for c in numeric.columns)
        return numeric.to_numpy(dtype=float), axis_label(x), axis_label(y), "customers"
    if transformed.shape[1] == 1:
        column = str(features.columns[0]) if features.shape[1] == 1 else "feature"
        flat = np.column_stack([transformed[:, 0], np.zeros(len(transformed))])
        return flat, f"{readable_label(column)} (scaled)", "", "customers on one feature"
    centered = transformed - transformed.mean(axis=0)
    _, singular, components = np.linalg.svd(centered, full_matrices=False)
    share = singular**2 / max(float((singular**2).sum()), 1e-300)
    xy = centered @ components[:2].T
    where = f"customers on principal components 1 and 2 of {transformed.shape[1]} scaled features"
    return xy, f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%} of variance)", where


def segments_scatter(
    features: pd.DataFrame,
    transformed: np.ndarray,
    labels: np.ndarray,
    title: str,
    names: Mapping[int, str] | None = None,
    total: int | None = None,
) -> Figure:
    """Customers coloured by segment, each segment's centre marked, on the two features (in
    their units) or two principal components. ``total``: the run's customer count when these
    are a random sample of them (plots.max_points)."""
    xy, xlabel, ylabel, where = _projection(features, transformed)
    fig, ax, texts, with_legend = _segment_figure("segments_scatter", labels, names)
    for label, text in texts.items():
        noise = label == NOISE_LABEL
        ax.scatter(
            *xy[labels == label].T,
            s=10 if noise else 16,
            color=segment_color(label),
            alpha=0.7 if noise else 0.85,
            linewidths=0,
            label=text,
            zorder=1 if noise else 2,
        )
    centres = [s for s in texts if s != NOISE_LABEL]
    if centres:
        ax.scatter(
            *np.array([xy[labels == s].mean(axis=0) for s in centres]).T,
            s=170,
            marker="X",
            c=[segment_color(s) for s in centres],
            edgecolors="black",
            linewidths=1.3,
            zorder=4,
            gid="centroids",
        )
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if not ylabel:
        ax.set_yticks([])
    if with_legend:
        legend(ax, markerscale=1.8, handletextpad=0.4, title="Segment")
    else:
        ax.text(1.03, 1.0, f"{len(texts)} segments", transform=ax.transAxes, va="top")
    shown = f"{len(labels):,}" if total is None else f"a random {len(labels):,} of {total:,}"
    put_title(ax, human_title(title), f"{shown} {where} · × = centre of a segment")
    return fig


def silhouette_diagram(
    per_customer: np.ndarray | None,
    labels: np.ndarray | None,
    title: str,
    reason: str = "",
    names: Mapping[int, str] | None = None,
) -> Figure:
    """Per-customer silhouette, sorted within each segment, with the mean as a line."""
    if per_customer is None or labels is None:
        fig, ax = figure("silhouette_diagram")
        text = "\n".join(textwrap.wrap(reason or "silhouette not available", 60))
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11, transform=ax.transAxes)
        ax.set_axis_off()
        put_title(ax, human_title(title), "Silhouette of each customer")
        return fig
    fig, ax, texts, with_legend = _segment_figure("silhouette_diagram", labels, names)
    y = 0
    gap = max(2, len(per_customer) // 60)
    for label, text in texts.items():  # first segment on top, as listed
        values = np.sort(per_customer[labels == label])[::-1]
        rows = np.arange(y, y + len(values))
        ax.fill_betweenx(rows, 0, values, color=segment_color(label), linewidth=0, label=text)
        y += len(values) + gap
    mean = float(per_customer.mean())
    ax.axvline(mean, color="black", linestyle="--", linewidth=1.2)
    under_title = ax.get_xaxis_transform()
    ax.text(mean, 1.0, f" mean {mean:.2f}", fontsize=NOTE_SIZE, va="bottom", transform=under_title)
    ax.set(xlim=(min(-0.1, float(per_customer.min()) - 0.05), 1), ylim=(y, -gap), yticks=[])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("silhouette (-1 misplaced · 0 on a border · 1 well inside its segment)")
    if with_legend:
        legend(ax, title="Segment")
    subtitle = f"Silhouette of each of {len(per_customer):,} customers, sorted within segments"
    put_title(ax, human_title(title), subtitle, pad=16.0)
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
    dpi: int = DEFAULT_DPI,
    total: int | None = None,
) -> None:
    """plots/segments.png and plots/silhouette.png of a run, segments named as in the run's
    segments.json."""
    names = segment_names_in(folder)
    scatter = segments_scatter(features, transformed, labels, title, names, total)
    save(scatter, folder / "plots" / "segments.png", dpi)
    silhouette = (silhouette_per_customer, silhouette_labels, title, silhouette_reason, names)
    save(silhouette_diagram(*silhouette), folder / "plots" / "silhouette.png", dpi)


def _with_notes(kind: str, n_legend_rows: int, notes: Mapping[str, str]) -> tuple[Figure, Any]:
    """A figure tall enough for a legend of ``n_legend_rows`` under the axes and a note per
    criterion that found no k ('no k: gap statistic (...)') under that."""
    lines = []
    for criterion, reason in notes.items():
        name = CRITERION_LONG_NAMES.get(criterion, criterion.replace("_", " "))
        text = f"no k: {name} ({reason})" if reason else f"no k: {name}"
        lines.append(wrapped(text, NOTE_SIZE, WIDTH - 0.5, subsequent_indent="    "))
    n_lines = sum(line.count("\n") + 1 for line in lines)
    band = 0.24 * n_legend_rows + 0.19 * n_lines + (0.1 if lines else 0.0)
    fig, ax = figure(kind, WIDTH, max(HEIGHT, TOP_IN + 3.6 + band))
    if lines:
        footnote(fig, "\n".join(lines), color=_NOTE_COLOR, gid="no_k_note")
    return fig, ax


def metric_vs_k(table: pd.DataFrame, metric: str, title: str, marks: Any = None) -> Figure:
    """A metric against k, one marker per recommended k ('k=5: elbow, silhouette'); ``marks``:
    criterion -> k or a ``KSelection``, whose ``undefined`` criteria get a 'no k' note."""
    found = dict(getattr(marks, "recommended", marks) or {})
    reasons = getattr(marks, "undefined", None) or {}
    grouped: dict[int, list[str]] = {}  # k -> the criteria that recommend it, consensus last
    for criterion, k in sorted(found.items(), key=lambda item: item[0] == "consensus"):
        grouped.setdefault(int(k), []).append(criterion)
    grouped = dict(sorted(grouped.items()))
    fig, ax = _with_notes("metric_vs_k", len(grouped), reasons)
    k_values = pd.to_numeric(table["k"], errors="coerce")
    per_k = table[[metric]].assign(k=k_values).dropna().groupby("k", sort=True)[metric].mean()
    ks = per_k.index.to_numpy(dtype=float)
    ax.plot(ks, per_k.to_numpy(), marker="o", markersize=5, color=_CURVE_COLOR, linewidth=1.8)
    for i, (k, criteria) in enumerate(grouped.items()):
        color = _MARK_COLORS[i % len(_MARK_COLORS)]
        ax.axvline(k, linestyle=":", linewidth=1.4, color=color, zorder=1)
        ax.plot(
            [k],
            [float(per_k.loc[k]) if k in per_k.index else np.nan],
            linestyle="none",
            marker=_MARK_SHAPES[i % len(_MARK_SHAPES)],
            markersize=13,
            markerfacecolor=color,
            markeredgecolor="black",
            zorder=4,
            label=f"k={k}: "
            + ", ".join(CRITERION_NAMES.get(c, c.replace("_", " ")) for c in criteria),
            gid="k_mark",
        )
    if grouped:
        legend(ax, below=True, markerscale=0.75)
    ax.set(
        xlabel="k (number of segments)",
        ylabel=METRIC_LABELS.get(metric, metric.replace("_", " ")),
        xticks=sorted({int(k) for k in ks} | set(grouped)),
    )
    prefix, _, rest = title.rpartition(": ")
    what = METRIC_LABELS.get(metric, metric).split(" (")[0]
    kind = prefix[:1].upper() + prefix[1:] if prefix and _run_parts(rest) else ""
    subtitle = f"{kind}: {what} by number of segments" if kind else f"{what} by number of segments"
    put_title(ax, human_title(rest) if kind else human_title(title), subtitle)
    return fig


def k_distance_figure(
    sorted_distances: np.ndarray,
    min_samples: int,
    suggested: float | None,
    current: float | None,
    title: str = "",
) -> Figure:
    """Sorted k-distance curve with the suggested and the configured eps as lines."""
    lines = int(suggested is not None) + int(current is not None)
    fig, ax = _with_notes("k_distance", lines, {})
    ax.plot(np.arange(len(sorted_distances)), sorted_distances, color=_CURVE_COLOR, lw=1.8)
    if suggested is not None:
        label = f"suggested eps = {suggested:.3g} (knee of the curve)"
        ax.axhline(suggested, color="#d62728", linestyle="--", linewidth=1.4, label=label)
    if current is not None:
        label = f"configured eps = {current:.3g}"
        ax.axhline(current, color="#2ca02c", linestyle=":", linewidth=1.6, label=label)
    if lines:
        legend(ax, below=True)
    ax.set(
        xlabel="customers, sorted by k-distance",
        ylabel=f"distance to neighbour #{min_samples} (self included)",
    )
    subtitle = f"Choosing DBSCAN's eps: distance of each customer to neighbour #{min_samples}"
    put_title(ax, human_title(title) if title else "k-distance", subtitle + ", sorted")
    return fig


def save_k_distance_plot(
    folder: str | Path,
    *,
    sorted_distances: np.ndarray,
    min_samples: int,
    suggested: float | None,
    current: float | None,
    title: str = "",
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Draw the k-distance figure into ``folder/plots/k_distance.png``."""
    figure_ = k_distance_figure(sorted_distances, min_samples, suggested, current, title)
    return save(figure_, Path(folder) / "plots" / "k_distance.png", dpi)
