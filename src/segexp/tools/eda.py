"""``segexp-eda``: look at any customer table before segmenting it, as one MLflow run
(``segexp.kind=eda``) and a local folder; docs/data.md lists what they hold."""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from omegaconf import DictConfig

from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_KIND,
    TAG_PREFIX,
)
from segexp.data import load_customers
from segexp.data.export import write_table
from segexp.data.load import CustomerTable, closest
from segexp.data.schema import ROLES
from segexp.errors import ConfigError, DataError
from segexp.insight.plots import HEIGHT, LABEL_SIZE, LEGEND_SIZE, TICK_SIZE, TITLE_SIZE, WIDTH, save
from segexp.jobs.job import code_version
from segexp.tracking.leaderboard import format_markdown
from segexp.tracking.store import Tracker, resolve_tracking_uri, runs_url, ui_command

_COLORS = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
]  # fmt: skip
_MISSING_LEVEL = "(missing)"
_PREFERRED_HUE = "gender"
_WIDTH = 100  # terminal columns the summary fits in
_MAX_BOXES = 12  # box plots in one figure (6 to a row)
_TOP = 3  # entries per summary line (most missing, most outliers, strongest pairs)


def column_roles(table: CustomerTable) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns as the schema resolved them (not the config's auto)."""
    frame = table.frame
    numeric = [c for c in table.numeric if c in frame.columns]
    categorical = [c for c in table.categorical if c in frame.columns]
    return numeric, categorical


class Split(NamedTuple):
    """The column colouring histograms and scatter plots, and why it was chosen."""

    column: str | None
    why: str


def choose_split(
    table: CustomerTable, categorical: Sequence[str], hue: str | None, max_levels: int = 8
) -> Split:
    """``auto``: gender when present, else the categorical with the fewest levels (2 or
    more, at most ``max_levels``; ties: file order), else none; a named column wins."""
    frame = table.frame
    if hue in (None, "", "none", "null"):
        return Split(None, "eda.hue=null")
    if hue != "auto":
        if hue not in frame.columns:
            raise DataError(
                f"{table.source}: eda.hue names column '{hue}', which the data does not have"
                f"{closest(str(hue), list(map(str, frame.columns)))}; use a categorical column, "
                "auto or null"
            )
        return Split(str(hue), "set by eda.hue")
    if _PREFERRED_HUE in frame.columns:
        return Split(_PREFERRED_HUE, "auto: gender")
    levels = {c: int(frame[c].nunique()) for c in categorical}
    fit = [c for c in categorical if 2 <= levels[c] <= max_levels]
    if not fit:
        return Split(None, f"no categorical column with 2-{max_levels} levels")
    best = min(fit, key=lambda c: levels[c])
    return Split(best, f"auto: the categorical with the fewest levels ({levels[best]})")


def iqr_outliers(values: pd.Series, factor: float = 1.5) -> int:
    """Values beyond Tukey's fences [Q1 - f*IQR, Q3 + f*IQR] (the box plot's whiskers)."""
    clean = values.dropna().to_numpy(dtype=float)
    if clean.size == 0:
        return 0
    q1, q3 = np.percentile(clean, [25, 75])
    spread = factor * (q3 - q1)
    return int(((clean < q1 - spread) | (clean > q3 + spread)).sum())


def summary_table(
    table: CustomerTable, numeric: Sequence[str], iqr_factor: float = 1.5
) -> pd.DataFrame:
    """One row per column: its role, how complete, and its distribution."""
    frame, schema = table.frame, table.schema
    roles = {table.id_column: "id", table.label_column: "label"}
    if schema is not None:
        roles = {c.column: c.role for c in schema.columns}
    rows = []
    for column in frame.columns:
        values = frame[column]
        role = "numeric" if column in numeric else roles.get(str(column), "categorical")
        row: dict[str, Any] = {
            "column": column,
            "role": role,
            "dtype": str(values.dtype),
            "count": int(values.notna().sum()),
            "missing": int(values.isna().sum()),
            "missing_share": float(values.isna().mean()) if len(values) else 0.0,
            "unique": int(values.nunique()),
        }
        if role == "numeric":
            described = values.astype(float).describe().drop("count")
            row.update(described.rename({"25%": "q25", "50%": "median", "75%": "q75"}))
            row["outliers_iqr"] = iqr_outliers(values, iqr_factor)
        if role == "date":
            row.update(min=str(values.min()), max=str(values.max()))
        if role in ("categorical", "label", "excluded", "date"):
            counts = values.value_counts()
            if len(counts):
                row.update(top=str(counts.index[0]), top_count=int(counts.iloc[0]))
        rows.append(row)
    columns = [
        "column", "role", "dtype", "count", "missing", "missing_share", "unique", "mean",
        "std", "min", "q25", "median", "q75", "max", "outliers_iqr", "top", "top_count",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _figure(width: float = WIDTH, height: float = HEIGHT) -> Figure:
    """At least the run plots' width, on the Agg canvas (no pyplot state), constrained layout."""
    fig = Figure(figsize=(max(width, WIDTH), height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(fig: Figure, *where: int, title: str = "", xlabel: str = "", ylabel: str = ""):
    ax = fig.add_subplot(*where)
    ax.set_title(title, fontsize=TITLE_SIZE if len(where) < 3 else LABEL_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def _levels(values: pd.Series) -> pd.Series:
    """Each cell as text, a missing cell as its own level."""
    return values.astype(object).where(values.notna(), _MISSING_LEVEL).astype(str)


def _hue_levels(frame: pd.DataFrame, hue: str | None) -> list[tuple[str, np.ndarray]]:
    if hue is None:
        return [("all", np.ones(len(frame), dtype=bool))]
    values = _levels(frame[hue])
    return [(str(level), (values == level).to_numpy()) for level in sorted(values.unique())]


def histogram_figure(frame: pd.DataFrame, column: str, hue: str | None) -> Figure:
    """Histogram of one numeric column, one colour per hue level on shared bins."""
    values = frame[column].astype(float)
    title = f"{column} ({len(values)} customers, {int(values.isna().sum())} missing)"
    fig = _figure()
    ax = _axes(fig, title=title, xlabel=column, ylabel="customers")
    clean = values.dropna().to_numpy()
    bins = np.histogram_bin_edges(clean, bins=min(30, max(5, int(np.sqrt(clean.size)))))
    for i, (level, mask) in enumerate(_hue_levels(frame, hue)):
        part = values[mask].dropna().to_numpy()
        ax.hist(part, bins=bins, alpha=0.55, color=_COLORS[i % len(_COLORS)], label=level)
    if hue is not None:
        ax.legend(fontsize=LEGEND_SIZE, frameon=False, title=hue, title_fontsize=LEGEND_SIZE)
    return fig


def bar_figure(frame: pd.DataFrame, column: str) -> Figure:
    """Customers per level of a categorical column, most first (missing cells as a level)."""
    counts = _levels(frame[column]).value_counts()
    total = max(int(counts.sum()), 1)
    fig = _figure(height=max(2.4, 0.42 * len(counts) + 1.4))
    ax = _axes(fig, title=f"{column} ({total} customers)", xlabel="customers")
    rows = np.arange(len(counts))
    ax.barh(rows, counts.to_numpy(), color=_COLORS[0])
    ax.set_yticks(rows, [_clip(str(level), 30) for level in counts.index], fontsize=LABEL_SIZE)
    ax.invert_yaxis()
    for row, n in zip(rows, counts.to_numpy(), strict=True):
        ax.text(n, row, f" {n} ({n / total:.0%})", va="center", fontsize=TICK_SIZE)
    ax.set_xlim(0, counts.max() * 1.25)
    return fig


def _clip(text: str, width: int) -> str:
    """Long names cut in the middle: 'prefix_...1' and 'prefix_...2' stay apart."""
    if len(text) <= width:
        return text
    tail = min(5, width // 3)
    return text[: width - tail - 1] + "~" + text[-tail:]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def scatter_matrix_figure(
    frame: pd.DataFrame, columns: Sequence[str], hue: str | None, max_rows: int, seed: int = 0
) -> Figure:
    """Every pair of numeric columns as a scatter panel, histograms on the diagonal: panels
    of one axes (each column on its own min..max), far faster to draw than n x n axes."""
    n = len(columns)
    size = min(1.6 * n + 1.5, 11.0)
    fig = _figure(size, max(size, WIDTH))
    ax = fig.add_subplot()
    shown, title = frame, "pairwise scatter"
    if len(frame) > max_rows:
        shown = frame.sample(n=max_rows, random_state=seed)
        title += f" ({max_rows} of {len(frame)} customers, random sample)"
    values = shown[list(columns)].astype(float)
    low, high = values.min(), values.max()
    unit = (values - low) / (high - low).where(high > low, 1.0)  # every column on 0..1
    inner = 0.86  # panel size; the rest of each cell is the gap between panels
    for i, row_column in enumerate(columns):
        y0 = n - 1 - i
        ax.text(-0.06, y0 + inner / 2, _clip(row_column, 18), rotation=90, ha="right",
                va="center", fontsize=LABEL_SIZE)  # fmt: skip
        for j in range(n):
            ax.add_patch(Rectangle((j, y0), inner, inner, fill=False, lw=0.5, color="#999999"))
        counts, edges = np.histogram(unit[row_column].dropna(), bins=15, range=(0, 1))
        heights = counts / max(counts.max(), 1) * inner
        ax.bar(i + edges[:-1] * inner, heights, width=inner / 15, bottom=y0, align="edge",
               color="#888888")  # fmt: skip
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    for k, (level, mask) in enumerate(_hue_levels(shown, hue) if pairs else []):
        xs = [j + unit[columns[j]][mask].to_numpy() * inner for _, j in pairs]
        ys = [n - 1 - i + unit[columns[i]][mask].to_numpy() * inner for i, _ in pairs]
        ax.scatter(np.concatenate(xs), np.concatenate(ys), s=4, alpha=0.6, linewidths=0,
                   color=_COLORS[k % len(_COLORS)], label=level)  # fmt: skip
    for j, column in enumerate(columns):
        ax.text(j + inner / 2, -0.12, _clip(column, 18), ha="center", va="top",
                fontsize=LABEL_SIZE)  # fmt: skip
        for x, value, align in ((j, low[column], "left"), (j + inner, high[column], "right")):
            ax.text(x, -0.02, f"{value:.3g}", ha=align, va="top", fontsize=TICK_SIZE,
                    color="#555555")  # fmt: skip
    ax.set_xlim(-0.02, n)
    ax.set_ylim(-0.02, n)
    ax.set_axis_off()
    if hue is not None and n > 1:
        fig.legend(fontsize=LEGEND_SIZE, frameon=False, loc="outside upper right", ncol=4,
                   markerscale=2.5, title=hue, title_fontsize=LEGEND_SIZE)  # fmt: skip
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


def boxplot_figure(frame: pd.DataFrame, columns: Sequence[str], iqr_factor: float) -> Figure:
    """One box per numeric column (own scale each, 6 to a row), its IQR outlier count above."""
    n = max(len(columns), 1)
    per_row = min(n, 6)
    rows = math.ceil(n / per_row)
    fig = _figure(min(1.8 * per_row + 1.0, 14), 3.4 * rows + 0.6)
    for i, column in enumerate(columns):
        title = f"{iqr_outliers(frame[column], iqr_factor)} outliers"
        ax = _axes(fig, rows, per_row, i + 1, title=title)
        values = frame[column].dropna().astype(float).to_numpy()
        ax.boxplot(values, whis=iqr_factor, widths=0.6, flierprops={"markersize": 3})
        ax.set_xticks([1], [_clip(str(column), 16)], fontsize=TICK_SIZE)
    fig.suptitle(f"box plots (whiskers at {iqr_factor:g} x IQR)", fontsize=TITLE_SIZE)
    return fig


def correlation_figure(correlation: pd.DataFrame, title: str) -> Figure:
    """Correlation matrix as a heatmap on a fixed -1..1 scale, values written in the cells."""
    n = len(correlation)
    side = min(max(WIDTH, 0.6 * n + 3.0), 14)
    fig = _figure(side, side * 0.85)
    ax = _axes(fig, title=title)
    image = ax.imshow(correlation.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [_clip(str(c), 20) for c in correlation.columns]
    size = LABEL_SIZE if n <= 12 else TICK_SIZE if n <= 20 else 6
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=size)
    ax.set_yticks(range(n), labels, fontsize=size)
    for i, j in np.ndindex(n, n) if n <= 20 else ():  # wider: cells too small for numbers
        value = correlation.iat[i, j]
        color = "white" if abs(value) > 0.6 else "black"
        text = "" if pd.isna(value) else f"{value:.2f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    fig.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=TICK_SIZE)
    return fig


def missingness_matrix(frame: pd.DataFrame, max_rows: int = 2000) -> tuple[np.ndarray, int]:
    """Present (1) / absent (0) per cell; tall tables in blocks of rows (absent if any is)."""
    present = frame.notna().to_numpy()
    block = max(1, math.ceil(len(present) / max_rows))
    if block > 1:
        pad = (-len(present)) % block
        padded = np.vstack([present, np.ones((pad, present.shape[1]), dtype=bool)])
        present = padded.reshape(-1, block, present.shape[1]).all(axis=1)
    return present.astype(np.uint8), block


def missingness_figure(frame: pd.DataFrame, max_rows: int = 2000, max_labels: int = 40) -> Figure:
    """Missing cells as gaps in dark columns (missingno's matrix), or words when there are
    none; past ``max_labels`` columns only the most missing ones are labelled."""
    counts = frame.isna().sum().to_numpy()
    rows, n = frame.shape
    if not counts.sum():
        fig = _figure(WIDTH, 2.0)
        words = f"No missing cells\nall {frame.size} cells are filled ({rows} rows x {n} columns)"
        fig.text(0.5, 0.5, words, ha="center", va="center", fontsize=TITLE_SIZE)
        return fig
    matrix, block = missingness_matrix(frame, max_rows)
    fig = _figure(min(0.6 * n + 2.5, 16), HEIGHT)
    ylabel = "row" if block == 1 else f"rows, in blocks of {block}"
    ax = _axes(fig, ylabel=ylabel)
    ax.imshow(matrix, aspect="auto", interpolation="nearest", vmin=0, vmax=1,
              cmap=ListedColormap(["#ffffff", "#404040"]))  # fmt: skip
    names = [str(c) for c in frame.columns]
    if n <= max_labels:
        for boundary in range(1, n):
            ax.axvline(boundary - 0.5, color="white", linewidth=1)
        labelled = list(range(n))
    else:
        gaps = np.flatnonzero(counts)
        labelled = sorted(gaps[np.argsort(-counts[gaps], kind="stable")][:max_labels])
    ax.set_xticks(labelled, [f"{_clip(names[i], 24)} ({counts[i]})" for i in labelled],
                  rotation=45, ha="left", fontsize=TICK_SIZE)  # fmt: skip
    ax.xaxis.tick_top()
    title = f"missing cells: {int(counts.sum())} of {frame.size} (white = absent)"
    if n > max_labels:
        title += f"; {n} columns in file order, labelled where cells are missing"
    ax.set_xlabel(title, fontsize=LABEL_SIZE)
    return fig


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "column"


@dataclass(frozen=True)
class EdaPlan:
    """What the EDA covers, settled before any run exists (so bad options log nothing)."""

    numeric: list[str]
    categorical: list[str]
    split: Split
    drawn: list[str]  # numeric columns with a histogram, a box and a correlation
    bars: list[str]  # categorical columns with a bar chart

    @classmethod
    def of(cls, table: CustomerTable, options: DictConfig) -> EdaPlan:
        """``options``: the ``eda`` block of conf/eda.yaml (checked by the schema)."""
        numeric, categorical = column_roles(table)
        split = choose_split(table, categorical, options.hue, options.max_hue_levels)
        frame = table.frame
        bars = [c for c in categorical if frame[c].nunique(dropna=False) <= options.max_pie_levels]
        return cls(
            numeric, categorical, split, numeric[: options.max_columns], bars[: options.max_columns]
        )


@dataclass(frozen=True)
class EdaReport:
    """What one EDA found and where it is logged; ``summary()`` is the terminal screen."""

    table: CustomerTable
    plan: EdaPlan
    options: DictConfig
    roles: dict[str, int]
    missing: list[tuple[str, int]]  # most missing cells first
    outliers: list[tuple[str, int]]  # most IQR outliers first
    pairs: list[tuple[str, str, float]]  # strongest Pearson correlations first
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    experiment: str = ""
    experiment_id: str = ""
    tracking_uri: str = ""
    folder: str = ""  # the local copy of the figures and tables

    def summary(self) -> str:
        """One screen: at most ~20 lines of at most 100 characters."""
        rows, columns = self.table.frame.shape
        plan, split, factor = self.plan, self.plan.split, self.options.iqr_factor
        source = self.table.source
        source = source if len(source) <= 60 else "..." + source[-57:]
        lines = [f"EDA of {source}: {rows} rows x {columns} columns"]

        def add(key: str, *texts: str) -> None:  # the key on the first line only
            for i, text in enumerate(texts):
                line = f"  {key if i == 0 else '':<11}{text}"
                lines.append(line if len(line) <= _WIDTH else line[: _WIDTH - 3] + "...")

        add("roles", ", ".join(f"{self.roles.get(role, 0)} {role}" for role in ROLES))
        schema = self.table.schema
        excluded = [
            f"{c.column} ({_plain_reason(c.reason)})"
            for c in (schema.columns if schema is not None else [])
            if c.role == "excluded"
        ]
        add("excluded", _listing(excluded, "; ") or "none")
        shown = f"{split.column or 'none'} ({split.why})"
        if not split.column and not split.why.startswith("eda.hue"):
            shown = f"none: {split.why} (choose one with eda.hue=<column>)"
        add("split by", shown)
        cells = _plural(int(self.metrics["missing_cells"]), "cell")
        share = [f"{_clip(c, 24)} {n} ({n / max(rows, 1):.0%})" for c, n in self.missing]
        add("missing", _listing(share, ", ", f"{cells}; most in ") if share else "no missing cells")
        counts = [f"{_clip(c, 24)} {n}" for c, n in self.outliers]
        beyond = f"beyond {factor:g} x IQR"
        add("outliers", _listing(counts, ", ", f"{beyond}: ") if counts else f"none {beyond}")
        pairs = [f"{r:+.2f}  {_clip(a, 32)} ~ {_clip(b, 32)}" for a, b, r in self.pairs]
        if pairs:
            pairs[0] += " (Pearson)"
        add("correlated", *(pairs or ["fewer than 2 numeric columns"]))
        drawn = f"{_plural(len(plan.drawn), 'histogram')}, {_plural(len(plan.bars), 'bar chart')}"
        add("figures", drawn)
        left_numeric = len(plan.numeric) - len(plan.drawn)
        if left_numeric:
            add(
                "",
                f"{left_numeric} of {len(plan.numeric)} numeric columns left out of figures",
                f"and correlations (the first {self.options.max_columns} kept: eda.max_columns)",
            )
        left_bars = len(plan.categorical) - len(plan.bars)
        if left_bars:
            add("", f"{left_bars} categorical columns without a bar chart (too many levels)")
        if self.folder:
            add("saved in", f"{self.folder}/ (figures in plots/, tables, schema)")
        if self.run_id:
            add("MLflow run", f"{self.run_id} in experiment '{self.experiment}'")
            url = f"{runs_url(self.tracking_uri, self.experiment_id)}/{self.run_id}"
            uri, path = self.tracking_uri, Path(self.tracking_uri.removeprefix("sqlite:///"))
            if uri.startswith("sqlite:///") and path.is_relative_to(Path.cwd()):
                uri = f"sqlite:///{path.relative_to(Path.cwd())}"  # a short command to copy
            ui = ui_command(uri)
            add("open", *([ui, f"then {url}"] if ui else [url]))
        return "\n".join(lines)


def _listing(items: Sequence[str], sep: str, head: str = "", room: int = _WIDTH - 13) -> str:
    """``head`` and as many items as fit in ``room`` characters, then how many did not."""
    text = head
    for i, item in enumerate(items):
        more = f"{sep}... (+{len(items) - i} more)" if i else f"... ({len(items)})"
        candidate = text + (sep if i else "") + item
        rest = len(items) - i - 1
        if len(candidate) + (len(more) if rest else 0) > room:
            return text + more
        text = candidate
    return text


def _plain_reason(why: str) -> str:
    """'constant (np.int64(3))' -> 'constant (3)': NumPy 2 reprs in schema reasons."""
    return re.sub(r"np\.\w+\((.*?)\)", r"\1", why or "set in the data config")


def _top(counts: Mapping[str, float], top: int = _TOP) -> list[tuple[str, int]]:
    ranked = sorted(((c, int(n)) for c, n in counts.items() if n > 0), key=lambda x: -x[1])
    return ranked[:top]


def write_eda_artifacts(
    table: CustomerTable, options: DictConfig, folder: Path, plan: EdaPlan, dpi: int
) -> EdaReport:
    """Every EDA table and plot into ``folder``; returns the findings and the metrics to log."""
    frame = table.frame
    numeric, hue = plan.numeric, plan.split.column
    summary = summary_table(table, numeric, options.iqr_factor)
    roles = {str(role): int(n) for role, n in summary["role"].value_counts().items()}
    if table.schema is not None:
        (folder / "schema.json").write_text(json.dumps(table.schema.records(), indent=2))
    role_counts = ", ".join(f"{roles.get(role, 0)} {role}" for role in ROLES)
    write_table(summary, folder / "summary.csv", "csv")  # column names are the data's
    (folder / "summary.md").write_text(
        f"# Data summary: {table.source}\n\n{len(frame)} customers, {frame.shape[1]} columns "
        f"({role_counts}), fingerprint `{table.fingerprint}`.\n\n" + format_markdown(summary) + "\n"
    )
    plots = folder / "plots"
    for column in plan.drawn:
        save(histogram_figure(frame, column, hue), plots / f"hist_{_safe_name(column)}.png", dpi)
    for column in plan.bars:
        save(bar_figure(frame, column), plots / f"bar_{_safe_name(column)}.png", dpi)
    pairs: list[tuple[str, str, float]] = []
    if plan.drawn:
        shown = plan.drawn[: options.max_scatter_columns]
        scatter = scatter_matrix_figure(frame, shown, hue, options.max_scatter_rows)
        save(scatter, plots / "scatter_matrix.png", dpi)
        boxes = plan.drawn[:_MAX_BOXES]  # more are unreadable; summary.csv has every column's
        save(boxplot_figure(frame, boxes, options.iqr_factor), plots / "boxplots.png", dpi)
        for method in ("pearson", "spearman"):
            correlation = frame[plan.drawn].astype(float).corr(method=method)
            write_table(correlation, folder / f"correlation_{method}.csv", "csv", index=True)
            figure = correlation_figure(correlation, f"{method.capitalize()} correlation")
            save(figure, plots / f"correlation_{method}.png", dpi)
            if method == "pearson":  # the strongest |r| first, each pair once
                upper = correlation.where(np.triu(np.ones(correlation.shape, dtype=bool), k=1))
                ranked = upper.stack().dropna().sort_values(key=abs, ascending=False, kind="stable")
                pairs = [(str(a), str(b), float(r)) for (a, b), r in ranked[:_TOP].items()]
    save(missingness_figure(frame), plots / "missingness.png", dpi)

    metrics: dict[str, float] = {
        "n_customers": float(len(frame)),
        "n_columns": float(frame.shape[1]),
        "missing_cells": float(frame.isna().sum().sum()),
    }
    by_column = summary.set_index(summary["column"].astype(str))
    missing = by_column["missing"].astype(float).to_dict()
    outliers = by_column.loc[by_column["role"] == "numeric", "outliers_iqr"].astype(float).to_dict()
    metrics.update({f"missing.{_safe_name(c)}": n for c, n in missing.items()})
    metrics.update({f"outliers.{_safe_name(c)}": n for c, n in outliers.items()})
    metrics.update(table.notes)
    return EdaReport(table, plan, options, roles, _top(missing), _top(outliers), pairs, metrics)


def eda(cfg: DictConfig) -> EdaReport:
    """Load, describe and log the data as one MLflow run (bad data or config: no run)."""
    options = cfg.eda
    folder = output_folder(cfg.get("output"), bool(cfg.get("overwrite")))
    table = load_customers(cfg.data)
    plan = EdaPlan.of(table, options)
    uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
    tracker = Tracker(uri)
    experiment_id = tracker.experiment_id(str(cfg.mlflow.experiment))
    tags = {
        TAG_KIND: "eda",
        TAG_DATA_FINGERPRINT: table.fingerprint,
        TAG_DATA_SOURCE: table.source,
        TAG_CODE_VERSION: code_version(),
        **{TAG_PREFIX + k: v for k, v in table.tags.items()},
    }
    run_id = tracker.start_run(experiment_id, f"eda-{cfg.data.name}", tags)
    try:
        with tempfile.TemporaryDirectory(prefix="segexp-eda-") as tmp:
            report = write_eda_artifacts(table, options, Path(tmp), plan, cfg.plots.dpi)
            params: dict[str, Any] = {
                "data": table.source,
                "data_kind": str(cfg.data.get("kind") or "customers"),
                "hue": plan.split.column or "none",
                "iqr_factor": options.iqr_factor,
                "max_columns": options.max_columns,
                **(table.schema.params() if table.schema is not None else {}),
            }
            tracker.log(run_id, params=params, metrics=report.metrics, artifact_dir=tmp)
            if folder is not None:
                publish_folder(Path(tmp), folder)
    except BaseException as exc:
        tracker.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    tracker.end_run(run_id, "FINISHED")
    return replace(
        report,
        run_id=run_id,
        experiment=str(cfg.mlflow.experiment),
        experiment_id=str(experiment_id),
        tracking_uri=uri,
        folder=str(folder or ""),
    )


def output_folder(output: str | None, overwrite: bool) -> Path | None:
    """The local folder (``output``; None: MLflow only), refused when it exists without
    ``overwrite=true`` (their types: the schema's, checked first)."""
    if not output:
        return None
    folder = Path(output).expanduser()
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"output={output}: exists and is not a folder; choose another output=")
    if folder.exists() and not overwrite:
        raise ConfigError(
            f"output={output}: the folder exists; set overwrite=true to replace it, "
            "or choose another output=FOLDER (output=null: MLflow only)"
        )
    return folder


def publish_folder(source: Path, folder: Path) -> None:
    """Copy ``source`` to ``folder`` whole: staged beside it, then renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if folder.is_dir():  # overwrite=true, checked before the run
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
