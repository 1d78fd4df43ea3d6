"""Figures of a segmentation and of a sweep. Figures only: nothing here talks to MLflow.

Built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state), so they are
safe in parallel jobs. Constrained layout fits ticks, labels and legends under a title
band of fixed height: 6.4 x 4.8 in at ``DEFAULT_DPI`` (960 x 720 px), wider where a
legend sits right of the axes, taller where k marks and notes sit below. Text is 9 pt
or more. Titles read as words (``human_title``: 'K-Means, k=5 · standard scaling ·
income & spending'), legends carry the segments' names and sit off the data.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.ticker import MaxNLocator, ScalarFormatter

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

# --- words for run-name parts ------------------------------------------------------------

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
CRITERION_NAMES = {  # in a k=... legend entry
    "elbow": "elbow",
    "silhouette": "silhouette",
    "calinski_harabasz": "Calinski-Harabasz",
    "davies_bouldin": "Davies-Bouldin",
    "bic": "BIC",
    "gap": "gap",
    "consensus": "consensus",
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
    """[algorithm, settings, scaling, features] of a run or group name; None if not one.

    Run names are 'algo-k5-scaler-features' (or 'dbscan-eps0.3-min_samples5-scaler-
    features'); sweep groups are 'algo / scaler / features'.
    """
    if " / " in text:
        parts = [p.strip() for p in text.split(" / ")]
        if len(parts) == 3 and parts[1] in SCALER_NAMES:
            return [ALGORITHM_NAMES.get(parts[0], parts[0]), "", *_scaler_features(parts[1:])]
        return None
    tokens = text.split("-")
    if len(tokens) < 3 or " " in text or tokens[-2] not in SCALER_NAMES:
        return None
    settings = []
    # '-' before a digit is a negative value's sign: 'n_jobs-1'
    for token in re.split(r"-(?=\D)", "-".join(tokens[1:-2])) if tokens[1:-2] else []:
        k, param = _K_PART.match(token), _PARAM_PART.match(token)
        settings.append(f"k={k[1]}" if k else f"{param[1]}={param[2]}" if param else token)
    algo = ALGORITHM_NAMES.get(tokens[0], tokens[0])
    return [algo, ", ".join(settings), *_scaler_features(tokens[-2:])]


def _scaler_features(parts: Sequence[str]) -> list[str]:
    scaler, features = parts
    words = FEATURE_NAMES.get(features, features.replace("_", " "))
    return [SCALER_NAMES.get(scaler, scaler), words]


def human_title(text: str) -> str:
    """'kmeans-k5-standard-income_spending' -> 'K-Means, k=5 · standard scaling · income &
    spending'; 'elbow: kmeans / standard / income_spending' -> 'Elbow: K-Means · ...'.
    Text that is no run or group name is returned as it is."""
    prefix, _, rest = text.rpartition(": ")
    parts = _run_parts(rest)
    if parts is None:
        return text
    algo, settings, scaler, features = parts
    head = f"{algo}, {settings}" if settings else algo
    title = f"{head} · {scaler} · {features}"
    return f"{prefix[:1].upper()}{prefix[1:]}: {title}" if prefix else title


def axis_label(column: Any) -> str:
    """A column as an axis label in words, with its unit where known: 'annual income (k$)'."""
    header = str(column)
    bracketed = _BRACKETED.search(header)
    words = readable_label(header)
    unit = bracketed.group(1).strip() if bracketed else COLUMN_UNITS.get(words.replace(" ", "_"))
    return f"{words} ({unit})" if unit and unit != words else words


def segment_label(label: int, names: Mapping[int, str] | None = None) -> str:
    """A segment's legend text: its name (shortened), noise as 'Not assigned (noise)'."""
    if int(label) == NOISE_LABEL:
        return NOISE_NAME
    name = (names or {}).get(int(label)) or f"segment {label}"
    return name if len(name) <= _MAX_NAME else name[: _MAX_NAME - 1] + "…"


def segment_names_in(folder: Path) -> dict[int, str]:
    """Segment id -> name from ``folder/segments.json`` when the run wrote one, else {}."""
    path = Path(folder) / "segments.json"
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {int(s["id"]): str(s["name"]) for s in document["segments"]}
    except (ValueError, KeyError, TypeError):
        return {}


def _profile_names(profile: Any) -> dict[int, str]:
    named = getattr(profile, "names", None) or {}
    return {int(s): str(getattr(n, "name", n)) for s, n in named.items()}


# --- layout --------------------------------------------------------------------------------

_TEXT_PATH = TextToPath()


@lru_cache(maxsize=2048)
def text_width(text: str, size: float) -> float:
    """Width of one line of ``text`` at ``size`` points, in inches (no renderer needed)."""
    width, _, _ = _TEXT_PATH.get_text_width_height_descent(
        text, FontProperties(size=size), ismath=False
    )
    return float(width) / 72.0


def inch_margins(
    width: float, height: float, left: float, right: float, bottom: float, top: float
) -> tuple:
    """subplots_adjust fractions from margins in inches."""
    return (
        ("left", left / width),
        ("right", 1 - right / width),
        ("bottom", bottom / height),
        ("top", 1 - top / height),
    )


def figure(
    kind: str,
    width: float = WIDTH,
    height: float = HEIGHT,
    margins: tuple | None = None,
    bottom: float = 0.0,
) -> tuple[Figure, Any]:
    """A new figure on the Agg canvas with one axes, for a plot of ``kind``.

    Constrained layout fits the ticks, labels and legends between the title band at the
    top (``TOP_IN``, where ``put_title`` writes) and ``bottom`` inches kept for notes;
    ``margins`` (``inch_margins``) place the axes by hand instead.
    """
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    if margins is not None:
        fig.subplots_adjust(**dict(margins))
    else:
        rect = (0.0, bottom / height, 1.0, 1 - (bottom + TOP_IN - 0.05) / height)  # l, b, w, h
        fig.set_layout_engine("constrained", rect=rect, w_pad=0.1, h_pad=0.1)
    ax = fig.add_subplot()
    ax.set_gid(kind)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5))
        axis.set_major_formatter(ScalarFormatter())
    ax.tick_params(labelsize=TICK_SIZE)
    ax.xaxis.label.set_fontsize(LABEL_SIZE)
    ax.yaxis.label.set_fontsize(LABEL_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _fit_line(text: str, size: float, room: float, smallest: float) -> tuple[str, float]:
    """(text, font size) that fits ``room`` inches: a smaller size down to ``smallest``,
    then two lines broken at the ' · ' (or space) nearest the middle."""
    width = text_width(text, size) * 1.12  # bold is wider than the regular face measured
    if width <= room:
        return text, size
    if width * smallest / size <= room:
        return text, size * room / width
    cuts = [m.start() for m in re.finditer(" · ", text)] or [
        m.start() for m in re.finditer(" ", text)
    ]
    if not cuts:
        return text, smallest
    cut = min(cuts, key=lambda i: abs(i - len(text) / 2))
    first, second = text[:cut], text[cut:].lstrip(" ·")
    widest = max(text_width(first, size), text_width(second, size)) * 1.12
    return f"{first}\n{second}", max(smallest, min(size, size * room / widest))


def put_title(ax, text: str, fontsize: float = TITLE_SIZE, subtitle: str = "") -> None:
    """Title (and a grey subtitle) in the band at the top of the figure, shrunk or broken
    in two lines to fit its width."""
    fig = ax.figure
    height, room = fig.get_figheight(), fig.get_figwidth() - 0.6
    text, size = _fit_line(text, fontsize, room, min(fontsize, 10.0))
    fig.text(0.5, 1 - 0.1 / height, text, ha="center", va="top", fontsize=size, weight="bold")
    if subtitle:
        below = 0.1 + (text.count("\n") + 1) * size * 1.2 / 72 + 0.06
        subtitle, small = _fit_line(subtitle, SUBTITLE_SIZE, room, 9.0)
        fig.text(
            0.5,
            1 - below / height,
            subtitle,
            ha="center",
            va="top",
            fontsize=small,
            color=_SUBTITLE_COLOR,
        )


def segment_color(label: int) -> str:
    return _NOISE_COLOR if label == NOISE_LABEL else _COLORS[int(label) % len(_COLORS)]


def save(fig: Figure, path: Path, dpi: int = DEFAULT_DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # zlib level 1: a third of the encoding time of the default 6, files ~20% larger
    options: dict[str, Any] = (
        {"pil_kwargs": {"compress_level": 1}} if path.suffix.lower() == ".png" else {}
    )
    fig.savefig(path, dpi=dpi, **options)
    return path


def _segment_figure(kind: str, labels: Sequence[str]) -> tuple[Figure, Any]:
    """A figure wide enough for a one-column legend of ``labels`` right of 4.3 in of axes."""
    widest = max((text_width(t, LEGEND_SIZE) for t in labels), default=-0.45)
    return figure(kind, max(WIDTH, 6.0 + widest))


def _legend_right(ax, **kwargs: Any) -> None:
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.03, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize=LEGEND_SIZE,
        title="Segment",
        title_fontsize=LEGEND_SIZE,
        alignment="left",
        **kwargs,
    )


# --- a run's figures -----------------------------------------------------------------------


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
    """Customers coloured by segment, each segment's centre marked: the two features (in
    their units), or a PCA projection of more; the legend names the segments. ``total``:
    the run's customer count when these are a random sample of them (plots.max_points)."""
    xy, xlabel, ylabel, where = _projection(features, transformed)
    found = [int(s) for s in np.unique(labels)]
    order = [s for s in found if s != NOISE_LABEL] + [s for s in found if s == NOISE_LABEL]
    texts = [segment_label(s, names) for s in order]
    with_legend = len(order) <= _MAX_LEGEND_ENTRIES
    fig, ax = _segment_figure("segments_scatter", texts if with_legend else [])
    centres = []
    for label, text in zip(order, texts, strict=True):
        mask = labels == label
        noise = label == NOISE_LABEL
        ax.scatter(
            xy[mask, 0],
            xy[mask, 1],
            s=10 if noise else 16,
            color=segment_color(label),
            alpha=0.7 if noise else 0.85,
            linewidths=0,
            label=text,
            zorder=1 if noise else 2,
        )
        if not noise:
            centres.append((label, xy[mask].mean(axis=0)))
    if centres:
        points = np.array([c for _, c in centres])
        ax.scatter(
            points[:, 0],
            points[:, 1],
            s=170,
            marker="X",
            c=[segment_color(s) for s, _ in centres],
            edgecolors="black",
            linewidths=1.3,
            zorder=4,
            label="_centres",
            gid="centroids",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if not ylabel:
        ax.set_yticks([])
    if with_legend:
        _legend_right(ax, markerscale=1.8, handletextpad=0.4)
    else:
        ax.text(1.03, 1.0, f"{len(order)} segments", transform=ax.transAxes, va="top")
    shown = f"{len(labels):,}" if total is None else f"a random {len(labels):,} of {total:,}"
    subtitle = f"{shown} {where} · × = centre of a segment"
    put_title(ax, human_title(title), subtitle=subtitle)
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
        ax.text(
            0.5,
            0.5,
            "\n".join(textwrap.wrap(reason or "silhouette not available", 60)),
            ha="center",
            va="center",
            fontsize=11,
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        put_title(ax, human_title(title), subtitle="Silhouette of each customer")
        return fig
    segments = [int(s) for s in np.unique(labels)]
    texts = [segment_label(s, names) for s in segments]
    with_legend = len(segments) <= _MAX_LEGEND_ENTRIES
    fig, ax = _segment_figure("silhouette_diagram", texts if with_legend else [])
    y = 0
    gap = max(2, len(per_customer) // 60)
    for label, text in zip(segments, texts, strict=True):  # first segment on top, as listed
        values = np.sort(per_customer[labels == label])[::-1]
        ax.fill_betweenx(
            np.arange(y, y + len(values)),
            0,
            values,
            color=segment_color(label),
            linewidth=0,
            label=text,
        )
        y += len(values) + gap
    mean = float(per_customer.mean())
    ax.axvline(mean, color="black", linestyle="--", linewidth=1.2)
    ax.text(
        mean,
        1.0,
        f" mean {mean:.2f}",
        fontsize=NOTE_SIZE,
        va="bottom",
        ha="left",
        transform=ax.get_xaxis_transform(),
    )
    ax.set_xlim(min(-0.1, float(per_customer.min()) - 0.05), 1)
    ax.set_ylim(y, -gap)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("silhouette (-1 misplaced · 0 on a border · 1 well inside its segment)")
    if with_legend:
        _legend_right(ax)
    subtitle = f"Silhouette of each of {len(per_customer):,} customers, sorted within segments"
    put_title(ax, human_title(title), subtitle=subtitle)
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
    profile: Any = None,
    names: Mapping[int, str] | None = None,
    total: int | None = None,
) -> None:
    """The segments scatter and the silhouette diagram of a run (its profile figures are
    drawn by ``segexp.insight.profiles``: the heatmap and the snake plot).

    Segment names come from ``names``, else the ``profile``, else the run's
    ``folder/segments.json`` (written before its figures are drawn).
    """
    if names is None:
        names = _profile_names(profile) if profile is not None else segment_names_in(folder)
    plots_dir = folder / "plots"
    scatter = segments_scatter(features, transformed, labels, title, names, total)
    save(scatter, plots_dir / "segments.png", dpi)
    diagram = silhouette_diagram(
        silhouette_per_customer, silhouette_labels, title, silhouette_reason, names
    )
    save(diagram, plots_dir / "silhouette.png", dpi)


# --- a sweep's figures ---------------------------------------------------------------------


def _marks_and_undefined(
    marks: Any, undefined: Mapping[str, str] | None
) -> tuple[dict[str, int], dict[str, str]]:
    """Criterion -> k and criterion -> reason, from mappings or a ``KSelection``."""
    if marks is not None and hasattr(marks, "recommended"):
        found = dict(marks.recommended)
        reasons = dict(getattr(marks, "undefined", {}) or {})
    else:
        found = dict(marks or {})
        reasons = {}
    reasons.update(undefined or {})
    return {c: int(k) for c, k in found.items()}, {c: str(r) for c, r in reasons.items()}


def criteria_by_k(marks: Mapping[str, int]) -> dict[int, list[str]]:
    """k -> the criteria that recommend it (in the order given, consensus last), by k."""
    grouped: dict[int, list[str]] = {}
    for criterion, k in marks.items():
        grouped.setdefault(int(k), []).append(criterion)
    for criteria in grouped.values():
        criteria.sort(key=lambda c: c == "consensus")
    return dict(sorted(grouped.items()))


def _mark_label(k: int, criteria: Sequence[str]) -> str:
    return f"k={k}: " + ", ".join(CRITERION_NAMES.get(c, c.replace("_", " ")) for c in criteria)


def _note_lines(undefined: Mapping[str, str], width_in: float) -> list[str]:
    sample = "no k: the gap keeps rising up to the largest k swept"  # average letters
    chars = max(40, int(width_in / text_width(sample, NOTE_SIZE) * len(sample) * 0.95))
    lines: list[str] = []
    for criterion, reason in undefined.items():
        name = CRITERION_LONG_NAMES.get(criterion, criterion.replace("_", " "))
        text = f"no k: {name} ({reason})" if reason else f"no k: {name}"
        lines += textwrap.wrap(text, chars, subsequent_indent="    ")
    return lines


def _below_axes(
    kind: str, n_legend_rows: int, notes: Mapping[str, str], axes_height: float = 2.9
) -> tuple[Figure, Any, float]:
    """A figure with a band under the axes for a legend of ``n_legend_rows`` and the notes:
    (fig, ax, inches from the figure's bottom to the top of the band)."""
    lines = _note_lines(notes, WIDTH - 0.5)
    band = 0.24 * n_legend_rows + 0.19 * len(lines) + (0.1 if lines else 0.0)
    height = max(HEIGHT, TOP_IN + axes_height + 0.7 + band)
    fig, ax = figure(kind, WIDTH, height, bottom=band)
    for i, line in enumerate(lines):
        fig.text(
            0.25 / WIDTH,
            (0.1 + 0.19 * (len(lines) - 1 - i)) / height,
            line,
            fontsize=NOTE_SIZE,
            color=_NOTE_COLOR,
            va="bottom",
            ha="left",
            gid="no_k_note" if not line.startswith(" ") else "no_k_note_more",
        )
    return fig, ax, band


def _legend_below(fig: Figure, top_in: float, **kwargs: Any) -> None:
    anchor = (0.25 / WIDTH, top_in / fig.get_figheight())
    fig.legend(
        loc="upper left",
        bbox_to_anchor=anchor,
        frameon=False,
        fontsize=LEGEND_SIZE,
        borderaxespad=0.0,
        **kwargs,
    )


def metric_vs_k(
    table: pd.DataFrame,
    metric: str,
    title: str,
    marks: Any = None,
    undefined: Mapping[str, str] | None = None,
) -> Figure:
    """A metric against k for one sweep group, with the recommended k values marked.

    ``marks``: criterion -> k, or a ``segexp.model.selection.KSelection`` (its
    ``undefined`` criteria get a note). Criteria that agree on a k share one marker
    whose legend entry lists them ('k=5: elbow, silhouette, gap'); each distinct k has
    its own colour and shape. ``undefined``: criterion -> why it found no k, written
    under the plot ('no k: gap statistic (...)').
    """
    found, reasons = _marks_and_undefined(marks, undefined)
    grouped = criteria_by_k(found)
    fig, ax, legend_top = _below_axes("metric_vs_k", len(grouped), reasons)
    per_k = (
        table[["k", metric]]
        .assign(k=pd.to_numeric(table["k"], errors="coerce"))
        .dropna()
        .groupby("k", sort=True)[metric]
        .mean()
    )
    ks = per_k.index.to_numpy(dtype=float)
    ax.plot(ks, per_k.to_numpy(), marker="o", markersize=5, color=_CURVE_COLOR, linewidth=1.8)
    for i, (k, criteria) in enumerate(grouped.items()):
        color, shape = _MARK_COLORS[i % len(_MARK_COLORS)], _MARK_SHAPES[i % len(_MARK_SHAPES)]
        ax.axvline(k, linestyle=":", linewidth=1.4, color=color, zorder=1)
        value = float(per_k.loc[k]) if k in per_k.index else np.nan
        ax.plot(
            [k],
            [value],
            linestyle="none",
            marker=shape,
            markersize=13,
            markerfacecolor=color,
            markeredgecolor="black",
            markeredgewidth=1.0,
            zorder=4,
            label=_mark_label(k, criteria),
            gid="k_mark",
        )
    if grouped:
        handles, labels = ax.get_legend_handles_labels()
        _legend_below(fig, legend_top, handles=handles, labels=labels, markerscale=0.75)
    ax.set_xlabel("k (number of segments)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric.replace("_", " ")))
    ax.set_xticks(sorted({int(k) for k in ks} | set(grouped)))
    prefix, _, rest = title.rpartition(": ")
    what = METRIC_LABELS.get(metric, metric).split(" (")[0]
    kind = prefix[:1].upper() + prefix[1:] if prefix and _run_parts(rest) else ""
    subtitle = f"{kind}: {what} by number of segments" if kind else f"{what} by number of segments"
    put_title(ax, human_title(rest) if kind else human_title(title), subtitle=subtitle)
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
    fig, ax, legend_top = _below_axes("k_distance", lines, {})
    ax.plot(np.arange(len(sorted_distances)), sorted_distances, color=_CURVE_COLOR, lw=1.8)
    if suggested is not None:
        ax.axhline(
            suggested,
            color="#d62728",
            linestyle="--",
            linewidth=1.4,
            label=f"suggested eps = {suggested:.3g} (knee of the curve)",
        )
    if current is not None:
        ax.axhline(
            current,
            color="#2ca02c",
            linestyle=":",
            linewidth=1.6,
            label=f"configured eps = {current:.3g}",
        )
    if lines:
        _legend_below(fig, legend_top)
    ax.set_xlabel("customers, sorted by k-distance")
    ax.set_ylabel(f"distance to neighbour #{min_samples} (self included)")
    subtitle = f"Choosing DBSCAN's eps: distance of each customer to neighbour #{min_samples}"
    put_title(ax, human_title(title) if title else "k-distance", subtitle=subtitle + ", sorted")
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
    path = Path(folder) / "plots" / "k_distance.png"
    figure_ = k_distance_figure(sorted_distances, min_samples, suggested, current, title)
    return save(figure_, path, dpi)
