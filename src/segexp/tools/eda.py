"""``python -m segexp.eda``: look at the data before segmenting it, as one MLflow run.

Composes ``conf/eda.yaml`` (the same ``data`` and ``mlflow`` config groups as a
sweep, so ``data=... data.path=...`` and the tracking settings are written once)
and logs one run tagged ``segexp.kind=eda`` and ``segexp.data_fingerprint`` in
the sweep's experiment. It holds:

    summary.csv, summary.md        one row per column: type, count, missing, unique,
                                   mean, std, min, quartiles, max, IQR outliers, top value
    correlation_pearson.csv, correlation_spearman.csv
    plots/hist_<column>.png        histogram per numeric column, one colour per hue level
    plots/pie_<column>.png         split of each categorical column (the gender split)
    plots/scatter_matrix.png       pairwise scatter of the numeric columns
    plots/boxplots.png             box per numeric column, outlier count in its title
    plots/correlation_pearson.png, plots/correlation_spearman.png
    plots/missingness.png          present/absent matrix of every cell (as missingno draws it)

Metrics: ``n_customers``, ``n_columns``, ``missing_cells``, ``missing.<column>``,
``outliers.<column>`` and, for a transaction log, the RFM rule counts. Bad data
or config stop before any run is created (``segexp: error: ...``, exit code 2).
"""

from __future__ import annotations

import logging
import math
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from segexp.data.load import CustomerTable, closest
from segexp.errors import ConfigError, DataError
from segexp.insight.plots import save
from segexp.tools.shell import hydra_tool
from segexp.tracking.store import Tracker, resolve_tracking_uri

log = logging.getLogger("segexp")

_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]
_MISSING_LEVEL = "(missing)"
_PREFERRED_HUE = "gender"


@dataclass(frozen=True)
class EdaOptions:
    """The ``eda`` block of conf/eda.yaml."""

    hue: str | None = "auto"
    iqr_factor: float = 1.5
    max_scatter_rows: int = 2000
    max_scatter_columns: int = 6
    max_pie_levels: int = 12
    dpi: int = 80

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> EdaOptions:
        eda = dict(cfg.get("eda") or {})
        plots = dict(cfg.get("plots") or {})
        factor = eda.get("iqr_factor", 1.5)
        if not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 0:
            raise ConfigError(f"eda.iqr_factor: a number >= 0 (1.5 is usual); got {factor!r}")
        return cls(
            hue=eda.get("hue", "auto"),
            iqr_factor=float(factor),
            max_scatter_rows=int(eda.get("max_scatter_rows", 2000)),
            max_scatter_columns=int(eda.get("max_scatter_columns", 6)),
            max_pie_levels=int(eda.get("max_pie_levels", 12)),
            dpi=int(plots.get("dpi", 80)),
        )


# --- what the data holds ----------------------------------------------------------------------


def column_roles(table: CustomerTable, data_cfg: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns to describe: the declared ones, else by dtype."""
    frame = table.frame
    skip = {table.id_column, table.label_column}
    numeric = [c for c in (data_cfg.get("numeric") or []) if c in frame.columns]
    if not numeric:
        numeric = [
            c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
        ]
    categorical = [c for c in (data_cfg.get("categorical") or []) if c in frame.columns]
    return [str(c) for c in numeric], [str(c) for c in categorical]


def choose_hue(table: CustomerTable, categorical: Sequence[str], hue: str | None) -> str | None:
    """The column colouring histograms and scatter plots; ``auto``: gender, else none."""
    if hue in (None, "", "none", "null"):
        return None
    if hue == "auto":
        if _PREFERRED_HUE in table.frame.columns:
            return _PREFERRED_HUE
        return categorical[0] if categorical else None
    if hue not in table.frame.columns:
        raise DataError(
            f"{table.source}: eda.hue names column '{hue}', which the data does not have"
            f"{closest(hue, list(map(str, table.frame.columns)))}; use a categorical column, "
            "auto or null"
        )
    return str(hue)


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
    """One row per column: what it is, how complete, and its distribution."""
    frame = table.frame
    rows = []
    for column in frame.columns:
        values = frame[column]
        if column == table.id_column:
            role = "id"
        elif column == table.label_column:
            role = "label"
        elif column in numeric:
            role = "numeric"
        else:
            role = "categorical"
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
            described = values.astype(float).describe()
            row.update(
                mean=described["mean"],
                std=described["std"],
                min=described["min"],
                q25=described["25%"],
                median=described["50%"],
                q75=described["75%"],
                max=described["max"],
                outliers_iqr=iqr_outliers(values, iqr_factor),
            )
        counts = values.value_counts()
        if role in ("categorical", "label") and len(counts):
            row.update(top=str(counts.index[0]), top_count=int(counts.iloc[0]))
        rows.append(row)
    columns = [
        "column", "role", "dtype", "count", "missing", "missing_share", "unique", "mean",
        "std", "min", "q25", "median", "q75", "max", "outliers_iqr", "top", "top_count",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (numbers to 4 significant digits, blanks for NaN)."""

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float | np.floating):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body]) + "\n"


# --- figures (matplotlib Figure + Agg canvas: no pyplot state) --------------------------------


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _hue_levels(frame: pd.DataFrame, hue: str | None) -> list[tuple[str, np.ndarray]]:
    if hue is None:
        return [("all", np.ones(len(frame), dtype=bool))]
    values = frame[hue].astype(object).where(frame[hue].notna(), _MISSING_LEVEL).astype(str)
    return [(str(level), (values == level).to_numpy()) for level in sorted(values.unique())]


def histogram_figure(frame: pd.DataFrame, column: str, hue: str | None) -> Figure:
    """Histogram of one numeric column, one colour per hue level on shared bins."""
    fig = _figure(4.2, 3.0)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.16, top=0.88)
    ax = fig.add_subplot()
    values = frame[column].astype(float)
    clean = values.dropna().to_numpy()
    bins = np.histogram_bin_edges(clean, bins=min(30, max(5, int(np.sqrt(clean.size)))))
    for i, (level, mask) in enumerate(_hue_levels(frame, hue)):
        part = values[mask].dropna().to_numpy()
        # matplotlib accepts an array of bin edges; its stubs say Sequence[float]
        ax.hist(part, bins=bins, alpha=0.55, color=_COLORS[i % len(_COLORS)], label=level)  # type: ignore[arg-type]
    if hue is not None:
        ax.legend(fontsize=7, frameon=False, title=hue, title_fontsize=7)
    ax.set_xlabel(column)
    ax.set_ylabel("customers")
    ax.set_title(f"{column} ({int(values.isna().sum())} missing)", fontsize=9)
    return fig


def pie_figure(frame: pd.DataFrame, column: str) -> Figure:
    """Share of each level of a categorical column (missing cells as their own slice)."""
    fig = _figure(3.4, 3.0)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.88)
    ax = fig.add_subplot()
    counts = frame[column].astype(object).where(frame[column].notna(), _MISSING_LEVEL).astype(str)
    counts = counts.value_counts()
    ax.pie(
        counts.to_numpy(),
        labels=[f"{level} ({n})" for level, n in counts.items()],
        colors=[_COLORS[i % len(_COLORS)] for i in range(len(counts))],
        autopct="%1.0f%%",
        textprops={"fontsize": 8},
    )
    ax.set_title(f"{column} split ({len(frame)} customers)", fontsize=9)
    return fig


def _short(value: float) -> str:
    return f"{value:.3g}"


def scatter_matrix_figure(
    frame: pd.DataFrame, columns: Sequence[str], hue: str | None, max_rows: int, seed: int = 0
) -> Figure:
    """Every pair of numeric columns as a scatter panel, histograms on the diagonal.

    Drawn as panels of one axes (each column scaled to its own min..max, printed
    under the panels): one axes renders in a fraction of the time of n x n.
    """
    n = len(columns)
    size = max(3.0, min(1.4 * n + 1.0, 9.0))
    fig = _figure(size, size)
    ax = fig.add_axes((0.1, 0.1, 0.88, 0.82))
    shown = frame
    title = "pairwise scatter"
    if len(frame) > max_rows:
        shown = frame.sample(n=max_rows, random_state=seed)
        title += f" ({max_rows} of {len(frame)} customers, random sample)"
    values = shown[list(columns)].astype(float)
    low, high = values.min(), values.max()
    span = (high - low).where(high > low, 1.0)
    unit = (values - low) / span  # every column on 0..1
    inner = 0.86  # panel size; the rest of each cell is the gap between panels
    for i, row_column in enumerate(columns):
        y0 = n - 1 - i
        ax.text(-0.06, y0 + inner / 2, row_column, rotation=90, ha="right", va="center", fontsize=7)
        for j, col_column in enumerate(columns):
            ax.add_patch(Rectangle((j, y0), inner, inner, fill=False, lw=0.5, color="#999999"))
            if i == j:
                counts, edges = np.histogram(unit[col_column].dropna(), bins=15, range=(0, 1))
                heights = counts / max(counts.max(), 1) * inner
                ax.bar(
                    j + edges[:-1] * inner,
                    heights,
                    width=inner / 15,
                    bottom=y0,
                    align="edge",
                    color="#888888",
                )
    for k, (level, mask) in enumerate(_hue_levels(shown, hue)):
        xs, ys = [], []
        for i, row_column in enumerate(columns):
            for j, col_column in enumerate(columns):
                if i != j:
                    xs.append(j + unit[col_column][mask].to_numpy() * inner)
                    ys.append(n - 1 - i + unit[row_column][mask].to_numpy() * inner)
        if xs:
            ax.scatter(
                np.concatenate(xs),
                np.concatenate(ys),
                s=2,
                alpha=0.6,
                color=_COLORS[k % len(_COLORS)],
                label=level,
                linewidths=0,
            )
    for j, column in enumerate(columns):
        ax.text(j + inner / 2, -0.1, column, ha="center", va="top", fontsize=7)
        ax.text(j, -0.02, _short(low[column]), ha="left", va="top", fontsize=6, color="#555555")
        ax.text(
            j + inner,
            -0.02,
            _short(high[column]),
            ha="right",
            va="top",
            fontsize=6,
            color="#555555",
        )
    ax.set_xlim(-0.02, n)
    ax.set_ylim(-0.02, n)
    ax.set_axis_off()
    if hue is not None and n > 1:
        fig.legend(fontsize=7, frameon=False, loc="upper right", ncol=4, markerscale=3)
    fig.suptitle(title, fontsize=9, x=0.1, ha="left")
    return fig


def boxplot_figure(frame: pd.DataFrame, columns: Sequence[str], iqr_factor: float) -> Figure:
    """One box per numeric column (own scale each), its IQR outlier count in the title."""
    n = max(len(columns), 1)
    fig = _figure(min(1.9 * n + 0.6, 14), 3.2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.82, wspace=0.5)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, column in zip(axes, columns, strict=False):
        values = frame[column].dropna().astype(float).to_numpy()
        ax.boxplot(values, whis=iqr_factor, widths=0.6, flierprops={"markersize": 3})
        ax.set_xticks([1], [column], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{iqr_outliers(frame[column], iqr_factor)} outliers", fontsize=8)
    fig.suptitle(f"box plots (whiskers at {iqr_factor:g} x IQR)", fontsize=9)
    return fig


def correlation_figure(correlation: pd.DataFrame, title: str) -> Figure:
    """Correlation matrix as a heatmap on a fixed -1..1 scale, values written in the cells."""
    n = len(correlation)
    fig = _figure(max(3.2, 0.7 * n + 2.0), max(2.8, 0.6 * n + 1.6))
    fig.subplots_adjust(left=0.3, right=0.92, bottom=0.3, top=0.9)
    ax = fig.add_subplot()
    image = ax.imshow(correlation.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [str(c) for c in correlation.columns]
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                value = correlation.iat[i, j]
                text = "" if pd.isna(value) else f"{value:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=9)
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


def missingness_figure(frame: pd.DataFrame, max_rows: int = 2000) -> Figure:
    """Missing cells as gaps in dark columns, one column per table column (missingno's matrix)."""
    matrix, block = missingness_matrix(frame, max_rows)
    width = max(3.5, 0.6 * frame.shape[1] + 2.0)
    fig = _figure(width, 3.6)
    fig.subplots_adjust(left=0.14, right=0.8, bottom=0.08, top=0.7)
    ax = fig.add_subplot()
    ax.imshow(
        matrix,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(["#ffffff", "#404040"]),
        vmin=0,
        vmax=1,
    )
    for boundary in range(1, frame.shape[1]):
        ax.axvline(boundary - 0.5, color="white", linewidth=1)
    counts = frame.isna().sum()
    ax.set_xticks(
        range(frame.shape[1]),
        [f"{c} ({counts[c]})" for c in frame.columns],
        rotation=45,
        ha="left",
        fontsize=7,
    )
    ax.xaxis.tick_top()
    ax.set_ylabel("row" if block == 1 else f"rows, in blocks of {block}", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(
        f"missing cells: {int(counts.sum())} of {frame.size} (white = absent)", fontsize=9, y=-0.1
    )
    return fig


# --- the run ----------------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "column"


def write_eda_artifacts(
    table: CustomerTable, data_cfg: Mapping[str, Any], options: EdaOptions, folder: Path
) -> dict[str, float]:
    """Every EDA table and plot into ``folder``; returns the metrics to log."""
    frame = table.frame
    numeric, categorical = column_roles(table, data_cfg)
    hue = choose_hue(table, categorical, options.hue)
    summary = summary_table(table, numeric, options.iqr_factor)
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(
        f"# Data summary: {table.source}\n\n{len(frame)} customers, {frame.shape[1]} columns, "
        f"fingerprint `{table.fingerprint}`.\n\n" + markdown_table(summary)
    )
    plots = folder / "plots"
    dpi = options.dpi
    for column in numeric:
        save(histogram_figure(frame, column, hue), plots / f"hist_{_safe_name(column)}.png", dpi)
    for column in categorical:
        if frame[column].nunique(dropna=False) <= options.max_pie_levels:
            save(pie_figure(frame, column), plots / f"pie_{_safe_name(column)}.png", dpi)
    if numeric:
        shown = numeric[: options.max_scatter_columns]
        save(
            scatter_matrix_figure(frame, shown, hue, options.max_scatter_rows),
            plots / "scatter_matrix.png",
            dpi,
        )
        save(boxplot_figure(frame, numeric, options.iqr_factor), plots / "boxplots.png", dpi)
        for method in ("pearson", "spearman"):
            correlation = frame[numeric].astype(float).corr(method=method)
            correlation.to_csv(folder / f"correlation_{method}.csv")
            save(
                correlation_figure(correlation, f"{method.capitalize()} correlation"),
                plots / f"correlation_{method}.png",
                dpi,
            )
    save(missingness_figure(frame), plots / "missingness.png", dpi)

    metrics: dict[str, float] = {
        "n_customers": float(len(frame)),
        "n_columns": float(frame.shape[1]),
        "missing_cells": float(frame.isna().sum().sum()),
    }
    for row in summary.itertuples(index=False):
        metrics[f"missing.{_safe_name(row.column)}"] = float(row.missing)
        if row.role == "numeric":
            metrics[f"outliers.{_safe_name(row.column)}"] = float(row.outliers_iqr)
    metrics.update(table.notes)
    return metrics


def run_eda(cfg: DictConfig) -> str:
    """Load, describe and log the data as one MLflow run; returns its run id.

    Data and config errors are raised before the run exists; a failure while
    writing the artifacts ends the run FAILED with the error in a tag.
    """
    options = EdaOptions.from_config(cfg)
    table = load_customers(cfg.data)
    _, categorical = column_roles(table, cfg.data)
    hue = choose_hue(table, categorical, options.hue)
    tracker = Tracker(resolve_tracking_uri(cfg.mlflow.tracking_uri))
    experiment_id = tracker.experiment_id(str(cfg.mlflow.experiment))
    from segexp.jobs.job import code_version

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
            metrics = write_eda_artifacts(table, cfg.data, options, Path(tmp))
            params = {
                "data": table.source,
                "data_kind": str(cfg.data.get("kind") or "customers"),
                "hue": hue or "none",
                "iqr_factor": options.iqr_factor,
            }
            tracker.log(run_id, params=params, metrics=metrics, artifact_dir=tmp)
    except BaseException as exc:
        tracker.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    tracker.end_run(run_id, "FINISHED")
    log.info(
        "EDA of %s (%d customers) logged as run %s in experiment '%s'",
        table.source,
        len(table.frame),
        run_id,
        cfg.mlflow.experiment,
    )
    return run_id


def _eda_action(cfg: DictConfig) -> int:
    run_eda(cfg)
    return 0


main = hydra_tool("eda", _eda_action)
"""Exit codes: 0 logged, 2 bad data or configuration (nothing logged)."""


if __name__ == "__main__":
    sys.exit(main())
