"""Per-segment profiles against the whole customer base and the files a run writes; DBSCAN
noise (segment -1) keeps its size and share but gets no levels, description or actions."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from segexp.contract import NOISE_LABEL
from segexp.data.export import write_table
from segexp.insight import plots
from segexp.insight.naming import (
    NamingConfig,
    SegmentName,
    by_column,
    level_words,
    load_naming_config,
    name_segments,
    rank_differences,
    readable_label,
)
from segexp.insight.report import render

PROFILE_CSV = "profile.csv"
PROFILE_MD = "profile.md"
SEGMENTS_JSON = "segments.json"
HEATMAP_PNG = "plots/profile_heatmap.png"
SNAKE_PNG = "plots/snake.png"
STATS = ("mean", "median", "q1", "q3", "std_diff", "rank_diff", "ratio")
_BASE_STATS = ["mean", "std", "median", "q1", "q3", "min", "max"]
MAX_SPLIT_VALUES = 10
OTHER_VALUE = "other"
MISSING_VALUE = "missing"
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}
_TOP_VALUES = 3  # values a category's text names


@dataclass
class SegmentProfile:
    """A segmentation's profile: the wide table plus what it was computed from."""

    table: pd.DataFrame  # one row per segment (index: segment id, noise last)
    numeric_columns: list[str]  # profiled numeric columns, clustering features first
    feature_columns: list[str]  # the clustering features
    split_columns: list[str]  # categorical columns whose value shares are profiled
    base: dict[str, Any]  # whole-base statistics (size, per-column stats, value shares)
    names: dict[int, SegmentName]
    flag_columns: list[str] = field(default_factory=list)  # split columns read as rates
    rate_format: str = "{rate} vs {overall} overall"  # the naming config's words for a rate

    @property
    def segments(self) -> list[int]:
        return [int(s) for s in self.table.index]

    def std_diffs(self) -> pd.DataFrame:
        """Segments x numeric columns, standardized differences from the base."""
        return self.table[[f"{c}_std_diff" for c in self.numeric_columns]].set_axis(
            self.numeric_columns, axis=1
        )


def profiled_columns(
    frame: pd.DataFrame,
    feature_columns: Sequence[str],
    gender_column: str | None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """(numeric columns, split columns): features first, then the table's other numeric ones.
    ``categorical`` columns are split by value even when coded as numbers (Channel 1/2)."""
    skip = set(exclude)
    coded = {c for c in categorical if c in frame.columns}
    features = [c for c in feature_columns if c in frame.columns]
    numeric = [
        str(c)
        for c in dict.fromkeys([*features, *frame.columns])
        if (c in features or c not in skip)
        and c not in coded
        and is_numeric_dtype(frame[c])
        and not is_bool_dtype(frame[c])
    ]
    splits = [gender_column] if gender_column and gender_column in frame.columns else []
    splits += [c for c in features if c not in numeric and c not in splits]
    splits += [c for c in categorical if c in coded and c not in skip and c not in splits]
    return numeric, splits


def _code_text(value: Any) -> str:
    """A cell as its code reads in a config: 1.0 -> '1', ' yes' -> 'yes'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def labelled_values(values: pd.Series, labels: Mapping[Any, Any] | None) -> pd.Series:
    """Codes replaced by their labels (``{1: Horeca}`` meets 1, 1.0 and '1'); others kept."""
    if not labels:
        return values
    by_code = {_code_text(k): str(v) for k, v in labels.items()}
    found = {v: by_code.get(_code_text(v), v) for v in values.dropna().unique()}
    return values.astype(object).map(found)


def labels_for(column: str, value_labels: Mapping[str, Any] | None) -> Mapping[Any, Any] | None:
    """A column's value labels, by its header or canonical name."""
    return by_column(value_labels or {}, column, None)


def flag_of(values: pd.Series) -> pd.Series | None:
    """1.0/0.0 per customer (NaN: missing) for a 0/1, true/false or yes/no column; else None."""
    texts = {_code_text(v).lower() for v in values.dropna().unique()}
    if len(texts) != 2 or not texts <= _TRUE | _FALSE or not texts & _TRUE:
        return None
    return values.map(lambda v: v if pd.isna(v) else float(_code_text(v).lower() in _TRUE))


def _value_shares(values: pd.Series, labels: np.ndarray, order: Sequence[int]) -> pd.DataFrame:
    """Share of each value per segment (rows in ``order``); values past the top ten -> 'other'."""
    text = values.astype(object).where(values.notna(), MISSING_VALUE).astype(str)
    if text.nunique() > MAX_SPLIT_VALUES:
        text = text.where(text.isin(text.value_counts().index[:MAX_SPLIT_VALUES]), OTHER_VALUE)
    shares = pd.crosstab(np.asarray(labels), text.to_numpy(), normalize="index")
    shares = shares.reindex(index=list(order), columns=sorted(text.unique()), fill_value=0.0)
    return shares.rename_axis(index=None, columns=None)


def named_profile_table(
    order: list[int],
    numeric: list[str],
    stats: Mapping[str, pd.DataFrame],
    levels: pd.DataFrame,
    size_of: Mapping[int, int],
    split_shares: Mapping[str, pd.DataFrame],
    config: NamingConfig,
    *,
    feature_columns: Sequence[str],
    available_columns: Sequence[str],
    gender_column: str | None = "gender",
    rates: pd.DataFrame | None = None,
    rate_diffs: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[int, Any]]:
    """The profile table (a row per segment in ``order``) and names from per-segment statistics
    however computed (pandas here, Spark in ``segexp.engines.spark_fit``); ``rates`` of
    0/1 columns and their standardized differences ``rate_diffs`` are levelled too."""
    n_total = sum(size_of.values())
    columns: dict[str, Any] = {
        "size": [size_of[s] for s in order],
        "share": [size_of[s] / n_total for s in order],
    }
    for column in numeric:
        columns |= {f"{column}_{stat}": stats[stat][column].to_numpy() for stat in STATS}
        columns[f"{column}_level"] = levels[column].to_numpy()
    for column, shares in split_shares.items():
        columns |= {f"{column}_{v}_share": shares[v].to_numpy() for v in shares.columns}
    diffs = stats["std_diff"]
    if rates is not None and rate_diffs is not None:
        # a flag is high or low on its difference alone: no ranks or medians to agree with
        rate_levels = level_words(rate_diffs, rate_diffs, rate_diffs, config.min_difference)
        for column in rates.columns:
            columns[f"{column}_rate"] = rates[column].to_numpy()
            columns[f"{column}_level"] = rate_levels[column].to_numpy()
        levels = pd.concat([levels, rate_levels], axis=1)
        diffs = pd.concat([diffs, rate_diffs], axis=1)

    gender = split_shares.get(gender_column) if gender_column is not None else None
    # Names come from the features (what shaped the segments) unless configured otherwise
    # or none is numeric; actions may rely on any column of the table.
    name_columns = [c for c in feature_columns if c in numeric]
    if config.name_from == "profiled" or not name_columns:
        name_columns = numeric
    names = name_segments(
        levels,
        config,
        name_columns=name_columns,
        sizes=dict(size_of),
        gender_shares={s: dict(gender.loc[s]) for s in order} if gender is not None else None,
        std_diffs=diffs,
        available_columns=list(available_columns),
    )
    table = pd.DataFrame(columns, index=pd.Index(order, name="segment"))
    table.insert(0, "name", [names[s].name for s in order])
    table.insert(1, "archetype", [names[s].archetype or "" for s in order])
    table["description"] = [names[s].description for s in order]
    table["actions"] = ["; ".join(names[s].actions) for s in order]
    if NOISE_LABEL in table.index:  # not a segment: no level words
        table.loc[NOISE_LABEL, [f"{c}_level" for c in levels.columns]] = ""
    return table, names


def compute_profile(
    frame: pd.DataFrame,
    labels: np.ndarray,
    feature_columns: Sequence[str],
    naming_cfg: Any = None,
    gender_column: str | None = "gender",
    exclude_columns: Sequence[str] = ("customer_id",),
    categorical_columns: Sequence[str] = (),
    value_labels: Mapping[str, Mapping[Any, Any]] | None = None,
) -> SegmentProfile:
    """Profile, name and attach actions to every segment; ``categorical_columns`` are split by
    value, never averaged, and ``value_labels`` name their codes."""
    labels = np.asarray(labels).astype(int)
    if len(labels) != len(frame):
        raise ValueError(f"labels has {len(labels)} entries for {len(frame)} customer rows")
    config = naming_cfg if isinstance(naming_cfg, NamingConfig) else load_naming_config(naming_cfg)
    frame = frame.reset_index(drop=True)
    numeric, splits = profiled_columns(
        frame, feature_columns, gender_column, exclude_columns, categorical_columns
    )
    found = sorted(int(s) for s in np.unique(labels))
    order = [s for s in found if s != NOISE_LABEL] + [s for s in found if s == NOISE_LABEL]

    values = frame[numeric].astype(float)
    grouped = values.groupby(labels)
    base_mean, base_std = values.mean(), values.std()
    base_quartiles = values.quantile([0.25, 0.5, 0.75]).set_axis(["q1", "median", "q3"])
    means = grouped.mean()
    quartiles = grouped.quantile([0.25, 0.5, 0.75])  # one sort per column for all three
    stats = {
        "mean": means,
        "median": quartiles.xs(0.5, level=1),
        "q1": quartiles.xs(0.25, level=1),
        "q3": quartiles.xs(0.75, level=1),
        "std_diff": (means - base_mean) / base_std.where(base_std > 0),
        "rank_diff": rank_differences(values, labels),
        "ratio": means / base_mean.where(base_mean != 0),
    }
    stats = {name: stat.reindex(order) for name, stat in stats.items()}
    mean_gap, median_gap = stats["mean"] - base_mean, stats["median"] - base_quartiles.loc["median"]
    levels = level_words(stats["rank_diff"], mean_gap, median_gap, config.min_difference)

    shown = {c: labelled_values(frame[c], labels_for(c, value_labels)) for c in splits}
    flags = {c: f for c in splits if c != gender_column and (f := flag_of(frame[c])) is not None}
    flagged = pd.DataFrame(flags, index=frame.index, dtype=float)
    rates = flagged.groupby(labels).mean().reindex(order)
    spread = flagged.std(ddof=0)
    rate_diffs = (rates - flagged.mean()) / spread.where(spread > 0)
    table, names = named_profile_table(
        order,
        numeric,
        stats,
        levels,
        {int(s): int(n) for s, n in zip(*np.unique(labels, return_counts=True), strict=True)},
        {c: _value_shares(shown[c], labels, order) for c in splits},
        config,
        feature_columns=feature_columns,
        available_columns=[str(c) for c in frame.columns if c not in set(exclude_columns)],
        gender_column=gender_column,
        rates=rates,
        rate_diffs=rate_diffs,
    )
    moments = {"mean": base_mean, "std": base_std, "min": values.min(), "max": values.max()}
    summary = pd.concat([pd.DataFrame(moments).T, base_quartiles])
    everyone = np.zeros(len(frame))
    base = {
        "size": len(labels),
        "columns": {c: summary.loc[_BASE_STATS, c].astype(float).to_dict() for c in numeric},
        "shares": {c: _value_shares(shown[c], everyone, [0]).iloc[0].to_dict() for c in splits},
        "rates": flagged.mean().to_dict(),
    }
    return SegmentProfile(
        table=table,
        numeric_columns=numeric,
        feature_columns=[c for c in feature_columns if c in frame.columns],
        split_columns=splits,
        base=base,
        names=names,
        flag_columns=list(flags),
        rate_format=config.rate_format,
    )


def _fmt(value: Any, spec: str = ",.1f") -> str:
    """A number as profile.md and segments.json show it; 'n/a' when undefined."""
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def _cell(text: Any) -> str:
    """Markdown table cell text: a '|' in a header or value would split the cell."""
    return str(text).replace("|", "\\|")


def split_text(profile: SegmentProfile, segment: int, column: str, top: int = _TOP_VALUES) -> str:
    """A flag as its rate against all customers ('15% vs 9% overall'); a category as its top
    values with their lift over all customers ('Retail 96% (2.1x), Horeca 4% (0.1x)')."""
    row = profile.table.loc[segment]
    if column in profile.flag_columns:
        rate, overall = row[f"{column}_rate"], profile.base["rates"][column]
        return profile.rate_format.format(rate=_fmt(rate, ".0%"), overall=_fmt(overall, ".0%"))
    base = profile.base["shares"].get(column, {})  # by the base's values: Channel_type stays out
    shares = {v: float(row[f"{column}_{v}_share"]) for v in base if f"{column}_{v}_share" in row}
    ranked = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [
        f"{value} {share:.0%}" + (f" ({share / base[value]:.1f}x)" if base.get(value) else "")
        for value, share in ranked[:top]
        if share > 0
    ]
    return ", ".join(parts)


def not_assigned(profile: SegmentProfile) -> str:
    """'Not assigned: 29 customers (14.5%)': how segment -1 (noise) is shown; '' without."""
    if NOISE_LABEL not in profile.table.index:
        return ""
    size, share = profile.table.loc[NOISE_LABEL, ["size", "share"]]
    plural = "" if int(size) == 1 else "s"
    return f"{profile.names[NOISE_LABEL].name}: {int(size)} customer{plural} ({share:.1%})"


def _base_split(profile: SegmentProfile, column: str) -> str:
    """All customers' rate of a flag, or their most common value and its share."""
    if column in profile.flag_columns:
        return _fmt(profile.base["rates"][column], ".0%")
    shares = profile.base["shares"].get(column, {})
    top = max(shares.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    return _cell(f"{top[0]} {top[1]:.0%}") if top else ""


def profile_markdown(profile: SegmentProfile) -> str:
    """The profile as Markdown: a summary table, then one section per segment with actions."""
    return render(
        "profile.md.j2",
        profile=profile,
        noise=not_assigned(profile),
        cell=_cell,
        fmt=_fmt,
        split_text=lambda s, c, top=_TOP_VALUES: split_text(profile, s, c, top),
        base_split=lambda c: _base_split(profile, c),
    )


def segments_document(profile: SegmentProfile) -> dict[str, Any]:
    """What segments.json holds: names, archetypes, levels, actions, sizes, and the base."""
    noise = NOISE_LABEL in profile.table.index
    size, share = profile.table.loc[NOISE_LABEL, ["size", "share"]] if noise else (0, 0.0)
    return {
        "segments": [
            {
                "id": s,
                "name": profile.names[s].name,
                "archetype": profile.names[s].archetype,
                "description": profile.names[s].description,
                "size": int(profile.table.loc[s, "size"]),
                "share": float(profile.table.loc[s, "share"]),
                "levels": profile.names[s].levels,
                "actions": list(profile.names[s].actions),
                "categories": {
                    c: split_text(profile, s, c) for c in profile.split_columns if s != NOISE_LABEL
                },
            }
            for s in profile.segments
        ],
        "feature_columns": profile.feature_columns,
        "profiled_columns": profile.numeric_columns,
        "split_columns": profile.split_columns,
        "flag_columns": profile.flag_columns,
        "noise": (
            "segment -1 (DBSCAN noise) is not a segment: customers the algorithm left out of "
            "every segment, given with their size and share only (no levels, description or "
            "actions); they are part of the base"
        ),
        "not_assigned": {"size": int(size), "share": float(share), "text": not_assigned(profile)},
        "base": profile.base,
    }


_MAX_PLOTTED_COLUMNS = 20  # a wider table shows its columns that differ most
_MAX_SNAKE_COLUMNS = 12  # the snake plot keeps its 6.4 x 3.4 in
_UPRIGHT_COLUMNS = 6  # more heatmap columns than this: labels rotated


def _row_label(profile: SegmentProfile, segment: int, width: int = 30) -> str:
    name = plots.segment_label(segment, {segment: profile.names[segment].name}, width)
    return name if segment == NOISE_LABEL else f"{segment} · {name}"


def _short_number(value: float) -> str:
    """A mean as a cell shows it: 48.3, 1,234, 12.3k, 4.5M."""
    size = abs(value)
    if not math.isfinite(value):
        return "n/a"
    if size >= 1e4:
        return f"{value / 1e6:.1f}M" if size >= 1e6 else f"{value / 1e3:.1f}k"
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 1 else f"{value:.2f}"


def _plotted_columns(profile: SegmentProfile, limit: int = _MAX_PLOTTED_COLUMNS) -> list[str]:
    """All columns, or on a wide table the clustering features then the other columns with
    the largest differences, in the table's order."""
    columns = list(profile.numeric_columns)
    spread = profile.std_diffs().abs().max(axis=0).fillna(0.0)
    ranked = sorted(columns, key=lambda c: (c not in profile.feature_columns, -spread[c]))
    return [c for c in columns if c in ranked[:limit]]


def _columns_axis(
    ax, profile: SegmentProfile, shown: list[str], rotate: bool, units: bool = False
) -> None:
    """Columns in words under the axes, starred when they shaped no segment: upright on up
    to two lines, or rotated and cut in the middle to 18 characters in the snake plot
    (``units``: the heatmap's, with units, never cut); a note on the stars and the columns
    left out."""
    starred = [c not in profile.feature_columns for c in shown]
    labels = [plots.axis_label(c) if units else readable_label(c) for c in shown]
    labels = [f"{t}*" if star else t for t, star in zip(labels, starred, strict=True)]
    if not rotate:
        ax.set_xticks(range(len(labels)), [textwrap.fill(t, 14) for t in labels])
    else:
        labels = [t if units or len(t) <= 18 else f"{t[:8]}…{t[-9:]}" for t in labels]
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", rotation_mode="anchor")
    notes = ["* not a clustering feature"] if any(starred) else []
    if len(shown) < (total := len(profile.numeric_columns)):
        notes.append(f"{len(shown)} of {total} columns shown: those that differ most")
    if notes:
        plots.footnote(ax.figure, " · ".join(notes), color="#555555")


def profile_heatmap(profile: SegmentProfile, title: str = "") -> Figure:
    """Segments x columns coloured by standardized difference from all customers (one scale,
    a colorbar); each cell shows the segment's mean in the column's units, the last row all
    customers' mean."""
    shown = _plotted_columns(profile)
    diffs = profile.std_diffs()[shown].to_numpy(dtype=float)
    n_rows, n_cols = diffs.shape
    rotate = n_cols > _UPRIGHT_COLUMNS
    width = max(plots.WIDTH, 3.8 + (0.75 if rotate else 1.0) * n_cols)
    height = max(plots.HEIGHT, 1.9 + 0.45 * (n_rows + 1) + (1.5 if rotate else 0.3))
    fig, ax = plots.figure("profile_heatmap", width, height)
    limit = float(np.nanmax(np.abs(diffs), initial=1.0))  # at least 1 sd
    shade = np.vstack([np.nan_to_num(diffs), np.zeros((1, n_cols))])  # all customers: 0
    image = ax.imshow(shade, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    means = profile.table[[f"{c}_mean" for c in shown]].to_numpy(dtype=float)
    means = np.vstack([means, [profile.base["columns"][c]["mean"] for c in shown]])
    for (i, j), mean in np.ndenumerate(means):
        color = "white" if abs(shade[i, j]) > 0.55 * limit else "black"
        text = _short_number(mean)
        ax.text(j, i, text, ha="center", va="center", fontsize=plots.LABEL_SIZE, color=color)
    ax.axhline(n_rows - 0.5, color="#333333", linewidth=1.2)
    _columns_axis(ax, profile, shown, rotate, units=True)
    rows = [_row_label(profile, int(s)) for s in profile.table.index] + ["All customers"]
    ax.set_yticks(range(n_rows + 1), rows)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    bar = fig.colorbar(image, ax=ax, ticks=MaxNLocator(nbins=5), fraction=0.9 / width, pad=0.03)
    bar.set_label("difference from all customers (sd)", fontsize=plots.LABEL_SIZE)
    bar.ax.tick_params(labelsize=plots.TICK_SIZE)
    subtitle = "Colour: difference from all customers (sd) · number: the segment's mean"
    plots.put_title(ax, title or "Segment profile", subtitle)
    return fig


def snake_plot(profile: SegmentProfile, title: str = "") -> Figure:
    """Each segment's standardized means across the columns, one line per segment."""
    shown = _plotted_columns(profile, _MAX_SNAKE_COLUMNS)
    fig, ax = plots.figure("snake_plot", 6.4, 3.4)
    for segment, row in profile.std_diffs()[shown].iterrows():
        ax.plot(
            row.to_numpy(dtype=float),
            marker="o",
            markersize=4,
            linewidth=1.8,
            linestyle="--" if segment == NOISE_LABEL else "-",
            color=plots.segment_color(int(segment)),
            label=_row_label(profile, int(segment), width=24),
        )
    ax.axhline(0, color="#888888", linewidth=0.9)
    _columns_axis(ax, profile, shown, rotate=len(shown) > 3)
    ax.set_xlim(-0.3, len(shown) - 0.7)
    ax.set_ylabel("vs all customers (sd)")
    plots.legend(ax, handlelength=1.6)
    plots.put_title(ax, title or "Snake plot: each segment against all customers")
    return fig


def _finite_or_none(value: Any) -> Any:
    """Plain JSON types; undefined numbers (NaN) become null."""
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_profile_files(
    folder: Path, profile: SegmentProfile, dpi: int = 80, make_plots: bool = True
) -> list[Path]:
    """profile.csv, profile.md, segments.json and the two figures into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / PROFILE_CSV, folder / PROFILE_MD, folder / SEGMENTS_JSON]
    write_table(profile.table, written[0], "csv", index=True)
    written[1].write_text(profile_markdown(profile), encoding="utf-8")
    document = _finite_or_none(segments_document(profile))
    written[2].write_text(json.dumps(document, indent=2, allow_nan=False), encoding="utf-8")
    if make_plots:
        written += write_profile_plots(folder, profile, dpi)
    return written


def write_profile_plots(folder: Path, profile: SegmentProfile, dpi: int = 80) -> list[Path]:
    """Only the two figures of a computed profile (drawn when a run is published)."""
    heatmap = plots.save(profile_heatmap(profile), Path(folder) / HEATMAP_PNG, dpi)
    return [heatmap, plots.save(snake_plot(profile), Path(folder) / SNAKE_PNG, dpi)]


def segment_names(profile: SegmentProfile) -> dict[int, str]:
    """Segment id -> name."""
    return {s: named.name for s, named in profile.names.items()}
