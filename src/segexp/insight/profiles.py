"""Per-segment profiles: what each segment looks like next to the whole customer base.

For every segment: size and share; mean, median and quartiles of each numeric
column; the split of the gender column (and of categorical features); each
column's standardized difference from the base ((segment mean - base mean) /
base standard deviation), rank difference (``naming.rank_differences``) and ratio
(segment mean / base mean); the level (high/low only when the rank difference, the
mean and the median all agree: see ``segexp.insight.naming``), name and actions.
Numeric columns are the clustering features first, then the table's other
numeric columns, so archetype rules can use a column that described the customers
without shaping the segments. Any table works: headings are the column names, a
gender split only appears when the table has the gender column, and the actions
offered depend on its columns.

Categories read as people read them: coded values by their labels
(``data.value_labels``: ``{Channel: {1: Horeca, 2: Retail}}``), each segment's
top values with their lift over all customers ("Retail 96% (2.1x)"), and 0/1,
true/false or yes/no columns as a rate against all customers ("Response: 15% vs
9% overall"); a flag's rate also gets a level (its difference from the base rate
in standard deviations of the flag, by ``naming.levels.min_difference``), so
actions can rest on it.

DBSCAN noise (label -1) is not a segment. It keeps its row in profile.csv and
segments.json (segment -1, labelled ``naming.noise.name``, "Not assigned") for
its size and share, but gets no levels, no profile sentence and no actions, and
profile.md shows it as one line ("Not assigned: 29 customers (14.5%)"), never
as a segment. It is part of the base: the base is every customer that was
segmented.

Writes ``profile.csv``, ``profile.md``, ``segments.json``,
``plots/profile_heatmap.png`` and ``plots/snake.png`` for each run; figures
only use matplotlib's Figure + Agg canvas (as ``segexp.plots``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segexp.contract import NOISE_LABEL
from segexp.data.export import write_table
from segexp.insight.naming import (
    NamingConfig,
    SegmentName,
    column_key,
    level_words,
    load_naming_config,
    name_segments,
    rank_differences,
)

if TYPE_CHECKING:  # matplotlib is imported where figures are drawn: tables need none of it
    from matplotlib.figure import Figure

PROFILE_CSV = "profile.csv"
PROFILE_MD = "profile.md"
SEGMENTS_JSON = "segments.json"
HEATMAP_PNG = "plots/profile_heatmap.png"
SNAKE_PNG = "plots/snake.png"
STATS = ("mean", "median", "q1", "q3", "std_diff", "rank_diff", "ratio")
_MAX_SPLIT_VALUES = 10
_OTHER = "other"
_MISSING = "missing"


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

    @property
    def segments(self) -> list[int]:
        return [int(s) for s in self.table.index]

    def std_diffs(self) -> pd.DataFrame:
        """Segments x numeric columns, standardized differences from the base."""
        return pd.DataFrame(
            {c: self.table[f"{c}_std_diff"] for c in self.numeric_columns}, index=self.table.index
        )


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def profiled_columns(
    frame: pd.DataFrame,
    feature_columns: Sequence[str],
    gender_column: str | None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """(numeric columns, split columns): features first, then the table's other numeric ones.

    ``categorical`` columns get a value split even when coded as numbers (Channel 1/2),
    so a code's mean never makes a segment's name.
    """
    skip = set(exclude)
    coded = {c for c in categorical if c in frame.columns}
    features = [c for c in feature_columns if c in frame.columns]
    numeric = [c for c in features if c not in coded and _is_numeric(frame[c])]
    numeric += [
        str(c)
        for c in frame.columns
        if c not in numeric and c not in skip and c not in coded and _is_numeric(frame[c])
    ]
    splits = [gender_column] if gender_column and gender_column in frame.columns else []
    splits += [c for c in features if c not in numeric and c not in splits]
    splits += [c for c in categorical if c in coded and c not in skip and c not in splits]
    return numeric, splits


_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


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
    if not value_labels:
        return None
    if column in value_labels:
        return value_labels[column]
    key = column_key(column)
    return next((v for c, v in value_labels.items() if column_key(str(c)) == key), None)


def flag_of(values: pd.Series) -> pd.Series | None:
    """1.0/0.0 per customer (NaN: missing) for a 0/1, true/false or yes/no column; else None."""
    filled = values.dropna()
    if filled.empty:
        return None
    texts = {_code_text(v).lower() for v in filled.unique()}
    if len(texts) != 2 or not texts <= _TRUE | _FALSE or not texts & _TRUE:
        return None
    truth = values.map(lambda v: v if pd.isna(v) else float(_code_text(v).lower() in _TRUE))
    return truth.astype(float)


def _value_shares(values: pd.Series, labels: np.ndarray, order: Sequence[int]) -> pd.DataFrame:
    """Share of each value per segment (rows in ``order``); values past the top ten -> 'other'."""
    text = values.astype(object).where(values.notna(), _MISSING).astype(str)
    counts = text.value_counts()
    top = list(counts.index[:_MAX_SPLIT_VALUES])
    if len(counts) > _MAX_SPLIT_VALUES:
        text = text.where(text.isin(top), _OTHER)
        top.append(_OTHER)
    value_codes = pd.Categorical(text, categories=sorted(top)).codes
    row_of = {segment: i for i, segment in enumerate(order)}
    segment_rows = np.fromiter((row_of[int(s)] for s in labels), dtype=np.int64, count=len(labels))
    table = np.zeros((len(order), len(top)))
    np.add.at(table, (segment_rows, value_codes), 1.0)
    table /= np.maximum(table.sum(axis=1, keepdims=True), 1.0)
    return pd.DataFrame(table, index=list(order), columns=sorted(top))


def _segment_order(labels: np.ndarray) -> list[int]:
    found = sorted(int(s) for s in np.unique(labels))
    return [s for s in found if s != NOISE_LABEL] + [s for s in found if s == NOISE_LABEL]


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
    rate_levels: pd.DataFrame | None = None,
    rate_diffs: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[int, Any]]:
    """The profile table (one row per segment in ``order``: size, share, each numeric
    column's statistics and level, split shares, name, archetype, description, actions)
    and the names, from per-segment statistics however they were computed (pandas here,
    Spark aggregations in ``segexp.engines.spark_profile``). ``rates`` (segments x flag
    columns: each flag's rate), their levels and differences join the names' evidence."""
    n_total = sum(size_of.values())
    columns: dict[str, Any] = {
        "size": [size_of[s] for s in order],
        "share": [size_of[s] / n_total for s in order],
    }
    for column in numeric:
        for stat in STATS:
            columns[f"{column}_{stat}"] = stats[stat][column].to_numpy()
        columns[f"{column}_level"] = levels[column].to_numpy()
    for column, shares in split_shares.items():
        for value in shares.columns:
            columns[f"{column}_{value}_share"] = shares[value].to_numpy()
    has_rates = rates is not None and rate_levels is not None and rate_diffs is not None
    if rates is not None and rate_levels is not None and rate_diffs is not None:
        for column in rates.columns:
            columns[f"{column}_rate"] = rates[column].to_numpy()
            columns[f"{column}_level"] = rate_levels[column].to_numpy()
        levels = pd.concat([levels, rate_levels], axis=1)

    gender = split_shares.get(gender_column) if gender_column is not None else None
    gender_shares = {s: dict(gender.loc[s]) for s in order} if gender is not None else None
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
        gender_shares=gender_shares,
        std_diffs=pd.concat([stats["std_diff"], rate_diffs], axis=1)
        if has_rates
        else stats["std_diff"],
        available_columns=list(available_columns),
    )
    head = {
        "name": [names[s].name for s in order],
        "archetype": [names[s].archetype or "" for s in order],
    }
    tail = {
        "description": [names[s].description for s in order],
        "actions": ["; ".join(names[s].actions) for s in order],
    }
    table = pd.DataFrame({**head, **columns, **tail}, index=pd.Index(order, name="segment"))
    if NOISE_LABEL in table.index:  # not a segment: no level words
        level_columns = [*numeric, *(rates.columns if rates is not None and has_rates else [])]
        table.loc[NOISE_LABEL, [f"{c}_level" for c in level_columns]] = ""
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
    """Profile, name and attach actions to every segment of one segmentation.

    ``categorical_columns`` (``cfg.data.categorical``) are split by value, never averaged;
    ``value_labels`` (``cfg.data.value_labels``) name their codes.
    """
    labels = np.asarray(labels).astype(int)
    if len(labels) != len(frame):
        raise ValueError(f"labels has {len(labels)} entries for {len(frame)} customer rows")
    config: NamingConfig = (
        naming_cfg if isinstance(naming_cfg, NamingConfig) else load_naming_config(naming_cfg)
    )
    frame = frame.reset_index(drop=True)
    numeric, splits = profiled_columns(
        frame, feature_columns, gender_column, exclude_columns, categorical_columns
    )
    order = _segment_order(labels)

    values = frame[numeric].astype(float)
    grouped = values.groupby(labels)
    base_mean, base_std = values.mean(), values.std()
    stats = {
        "mean": grouped.mean(),
        "median": grouped.median(),
        "q1": grouped.quantile(0.25),
        "q3": grouped.quantile(0.75),
    }
    stats["std_diff"] = (stats["mean"] - base_mean) / base_std.where(base_std > 0)
    stats["rank_diff"] = rank_differences(values, labels)
    stats["ratio"] = stats["mean"] / base_mean.where(base_mean != 0)
    stats = {name: stat.reindex(order) for name, stat in stats.items()}
    levels = level_words(
        stats["rank_diff"],
        stats["mean"] - base_mean,
        stats["median"] - values.median(),
        config.min_difference,
    )

    sizes = np.bincount(np.searchsorted(sorted(order), labels), minlength=len(order))
    size_of = dict(zip(sorted(order), sizes.tolist(), strict=True))
    shown = {c: labelled_values(frame[c], labels_for(c, value_labels)) for c in splits}
    split_shares = {c: _value_shares(shown[c], labels, order) for c in splits}
    flags = {c: f for c in splits if c != gender_column and (f := flag_of(frame[c])) is not None}
    rates = pd.DataFrame({c: f.groupby(labels).mean() for c, f in flags.items()}).reindex(order)
    base_rates = {c: float(f.mean()) for c, f in flags.items()}
    spread = pd.Series({c: float(f.std(ddof=0)) for c, f in flags.items()}, dtype=float)
    rate_diffs = (rates - pd.Series(base_rates, dtype=float)) / spread.where(spread > 0)
    rate_levels = pd.DataFrame(
        np.where(
            rate_diffs >= config.min_difference,
            "high",
            np.where(rate_diffs <= -config.min_difference, "low", "mid"),
        ),
        index=rates.index,
        columns=rates.columns,
        dtype=object,
    )
    table, names = named_profile_table(
        order,
        numeric,
        stats,
        levels,
        size_of,
        split_shares,
        config,
        feature_columns=feature_columns,
        available_columns=[str(c) for c in frame.columns if c not in set(exclude_columns)],
        gender_column=gender_column,
        rates=rates,
        rate_levels=rate_levels,
        rate_diffs=rate_diffs,
    )

    quartiles = values.quantile([0.25, 0.5, 0.75])
    base = {
        "size": len(labels),
        "columns": {
            c: {
                "mean": float(base_mean[c]),
                "std": float(base_std[c]),
                "median": float(quartiles.loc[0.5, c]),
                "q1": float(quartiles.loc[0.25, c]),
                "q3": float(quartiles.loc[0.75, c]),
                "min": float(values[c].min()),
                "max": float(values[c].max()),
            }
            for c in numeric
        },
        "shares": {
            c: {
                str(k): float(v)
                for k, v in _value_shares(shown[c], np.zeros(len(frame)), [0]).iloc[0].items()
            }
            for c in splits
        },
        "rates": base_rates,
    }
    return SegmentProfile(
        table=table,
        numeric_columns=numeric,
        feature_columns=[c for c in feature_columns if c in frame.columns],
        split_columns=splits,
        base=base,
        names=names,
        flag_columns=list(flags),
    )


# --- text outputs -------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _signed(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.2f}"


def column_heading(profile: SegmentProfile, column: str) -> str:
    """Column name, starred when it describes segments without having shaped them."""
    return column if column in profile.feature_columns else f"{column}*"


def _cell(text: Any) -> str:
    """Markdown table cell text: a '|' in a header or value would split the cell."""
    return str(text).replace("|", "\\|")


def split_shares(profile: SegmentProfile, segment: int, column: str) -> dict[str, float]:
    """Value -> share of a split column in one segment.

    Read by the base's values, not by column-name prefix, so columns such as
    ``Channel`` and ``Channel_type`` never mix.
    """
    row = profile.table.loc[segment]
    values = profile.base["shares"].get(column, {})
    return {v: float(row[f"{column}_{v}_share"]) for v in values if f"{column}_{v}_share" in row}


_TOP_VALUES = 3  # values a category's text names


def split_text(profile: SegmentProfile, segment: int, column: str, top: int = _TOP_VALUES) -> str:
    """How a segment stands on a split column, as people read it: a flag as its rate against
    all customers ('15% vs 9% overall'), a category as its top values with their lift over
    all customers ('Retail 96% (2.1x), Horeca 4% (0.1x)')."""
    row = profile.table.loc[segment]
    if column in profile.flag_columns:
        rate, overall = row[f"{column}_rate"], profile.base["rates"][column]
        return f"{_percent(rate)} vs {_percent(overall)} overall"
    shares = split_shares(profile, segment, column)
    base = profile.base["shares"].get(column, {})
    ranked = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [
        f"{value} {share:.0%}" + (f" ({share / base[value]:.1f}x)" if base.get(value) else "")
        for value, share in ranked[:top]
        if share > 0
    ]
    return ", ".join(parts)


def _percent(value: Any) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.0%}"


def _majority_text(profile: SegmentProfile, segment: int, column: str) -> str:
    return split_text(profile, segment, column, top=1)


def not_assigned_text(size: int, share: float, label: str = "Not assigned") -> str:
    """'Not assigned: 29 customers (14.5%)': how segment -1 (noise) is shown everywhere."""
    return f"{label}: {int(size)} customer{'' if int(size) == 1 else 's'} ({share:.1%})"


def not_assigned(profile: SegmentProfile) -> str:
    """The not-assigned line of a profile with noise, else ''."""
    if NOISE_LABEL not in profile.table.index:
        return ""
    row = profile.table.loc[NOISE_LABEL]
    return not_assigned_text(row["size"], row["share"], profile.names[NOISE_LABEL].name)


def profile_markdown(profile: SegmentProfile) -> str:
    """The profile as Markdown: a summary table, then one section per segment with actions.

    Noise (segment -1) is one line under the table, with its count and share only.
    """
    segments = [s for s in profile.segments if s != NOISE_LABEL]
    cols = profile.numeric_columns
    head = ["Segment", "Name", "Customers"] + [column_heading(profile, c) for c in cols]
    head = [_cell(h) for h in [*head, *profile.split_columns]]
    lines = [
        "# Segment profile",
        "",
        "Mean of each column, its level against all customers and its standardized difference "
        "from all customers in standard deviations. High or low only when the segment's "
        "customers rank above or below all customers by naming.levels.min_difference sd of "
        "the ranks and its mean and median agree; otherwise average.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", "---", "---:"] + ["---:"] * (len(head) - 3)) + "|",
    ]
    for segment in segments:
        row = profile.table.loc[segment]
        cells = [str(segment), _cell(row["name"]), f"{int(row['size'])} ({row['share']:.0%})"]
        cells += [
            f"{_fmt(row[f'{c}_mean'])} {row[f'{c}_level']} ({_signed(row[f'{c}_std_diff'])} sd)"
            for c in cols
        ]
        cells += [_cell(_majority_text(profile, segment, c)) for c in profile.split_columns]
        lines.append("| " + " | ".join(cells) + " |")
    base_cells = ["all", "All customers", f"{profile.base['size']} (100%)"]
    base_cells += [_fmt(profile.base["columns"][c]["mean"]) for c in cols]
    for c in profile.split_columns:
        shares = profile.base["shares"].get(c, {})
        top = max(shares.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        if c in profile.flag_columns:
            base_cells.append(_percent(profile.base["rates"][c]))
        else:
            base_cells.append(_cell(f"{top[0]} {top[1]:.0%}") if top else "")
    lines.append("| " + " | ".join(base_cells) + " |")
    if any(c not in profile.feature_columns for c in cols):
        lines += ["", "\\* describes the segments but was not a clustering feature."]
    if not_assigned(profile):
        lines += [
            "",
            f"{_cell(not_assigned(profile))}, left out of every segment by the algorithm "
            "(segment -1); not a segment, so no profile or actions.",
        ]

    for segment in segments:
        row = profile.table.loc[segment]
        named = profile.names[segment]
        lines += [
            "",
            f"## {segment} · {named.name}",
            "",
            f"{named.description}. {int(row['size'])} customers ({row['share']:.1%})"
            + (f", archetype `{named.archetype}`." if named.archetype else "."),
            "",
            "| Column | Mean | Median | Q1 - Q3 | Diff (sd) | Rank diff (sd) | Ratio to all "
            "| Level |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in cols:
            lines.append(
                f"| {_cell(column_heading(profile, c))} | {_fmt(row[f'{c}_mean'])} "
                f"| {_fmt(row[f'{c}_median'])} "
                f"| {_fmt(row[f'{c}_q1'])} - {_fmt(row[f'{c}_q3'])} "
                f"| {_signed(row[f'{c}_std_diff'])} | {_signed(row[f'{c}_rank_diff'])} "
                f"| {_fmt(row[f'{c}_ratio'], 2)} "
                f"| {row[f'{c}_level']} |"
            )
        for c in profile.split_columns:
            lines += ["", f"{c}: {split_text(profile, segment, c)}"]
        lines += ["", "Suggested actions:", ""] + [f"- {a}" for a in named.actions]
    return "\n".join(lines) + "\n"


def segments_document(profile: SegmentProfile) -> dict[str, Any]:
    """What segments.json holds: names, archetypes, levels, actions, sizes, and the base."""
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
        "not_assigned": _not_assigned_entry(profile),
        "base": profile.base,
    }


def _not_assigned_entry(profile: SegmentProfile) -> dict[str, Any]:
    if NOISE_LABEL not in profile.table.index:
        return {"size": 0, "share": 0.0, "text": ""}
    row = profile.table.loc[NOISE_LABEL]
    return {
        "size": int(row["size"]),
        "share": float(row["share"]),
        "text": not_assigned(profile),
    }


def load_segment_names(path: str | Path) -> dict[int, str]:
    """Segment id -> name from a run's segments.json (a file or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / SEGMENTS_JSON
    document = json.loads(path.read_text())
    return {int(s["id"]): str(s["name"]) for s in document["segments"]}


# --- figures ------------------------------------------------------------------------------

_MAX_PLOTTED_COLUMNS = 20  # a wider table shows its columns that differ most
_MAX_SNAKE_COLUMNS = 12  # the snake plot keeps its 6.4 x 3.4 in
_SNAKE_LABEL_WIDTH = 1.25  # inches of a rotated snake column label (then '…')
_CELL_WIDTH = 1.0  # inches per heatmap column
_SIN_ROTATION = 0.57  # sin(35 degrees): rotated column labels


def _row_label(profile: SegmentProfile, segment: int, width: int = 30) -> str:
    if segment == NOISE_LABEL:
        from segexp.insight.plots import NOISE_NAME

        return NOISE_NAME
    name = profile.names[segment].name
    name = name if len(name) <= width else name[: width - 1] + "…"
    return f"{segment} · {name}"


def _short_number(value: float) -> str:
    """A mean as a cell shows it: 48.3, 1,234, 12.3k, 4.5M."""
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.1f}M"
    if size >= 1e4:
        return f"{value / 1e3:.1f}k"
    if size >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if size >= 1 else f"{value:.2f}"


def _plotted_columns(
    profile: SegmentProfile, diffs: pd.DataFrame, limit: int = _MAX_PLOTTED_COLUMNS
) -> list[str]:
    """The columns a profile figure shows: all of them, or on a wide table the clustering
    features then the other columns with the largest differences, in the table's order."""
    columns = [str(c) for c in diffs.columns]
    if len(columns) <= limit:
        return columns
    spread = diffs.abs().max(axis=0).fillna(0.0)
    features = [c for c in columns if c in profile.feature_columns]
    others = [c for c in columns if c not in profile.feature_columns]
    ranked = sorted(features, key=lambda c: -spread[c]) + sorted(others, key=lambda c: -spread[c])
    keep = set(ranked[:limit])
    return [c for c in columns if c in keep]


def _column_label(profile: SegmentProfile, column: str, units: bool = True) -> str:
    """A column in words (with its unit where known), starred when it shaped no segment."""
    from segexp.insight.naming import readable_label
    from segexp.insight.plots import axis_label

    text = axis_label(column) if units else readable_label(column)
    return text if column in profile.feature_columns else f"{text}*"


def _in_lines(labels: list[str], room: float, size: float) -> list[str] | None:
    """The labels on one or two horizontal lines, each at most ``room`` inches wide (broken
    at the space that makes the longer line shortest); None when one does not fit."""
    from segexp.insight.plots import text_width

    placed = []
    for label in labels:
        cuts = [i for i, ch in enumerate(label) if ch == " "]
        options = [label] + [f"{label[:i]}\n{label[i + 1 :]}" for i in cuts]
        widest = {o: max(text_width(line, size) for line in o.split("\n")) for o in options}
        best = min(options, key=lambda o: (widest[o] > room, o.count("\n"), widest[o]))
        if widest[best] > room:
            return None
        placed.append(best)
    return placed


def _column_ticks(ax, labels: list[str], rotate: bool, size: float) -> None:
    """Column names under the axes (at x = 0, 1, ...) as plain texts, rotated 35 degrees
    when ``rotate``: tick objects would cost about a millisecond each."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    ax.set_xticks([])
    under = blended_transform_factory(ax.transData, ax.transAxes) + ScaledTranslation(
        0, -5 / 72, ax.figure.dpi_scale_trans
    )
    for i, label in enumerate(labels):
        ax.text(
            i,
            0,
            label,
            transform=under,
            fontsize=size,
            ha="right" if rotate else "center",
            va="top",
            rotation=35 if rotate else 0,
            rotation_mode="anchor",
            linespacing=1.2,
            gid="column_label",
        )


def _row_ticks(ax, labels: list[str], size: float) -> None:
    """Row names left of the axes (at y = 0, 1, ...) as plain texts."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    ax.set_yticks([])
    left = blended_transform_factory(ax.transAxes, ax.transData) + ScaledTranslation(
        -5 / 72, 0, ax.figure.dpi_scale_trans
    )
    for i, label in enumerate(labels):
        ax.text(0, i, label, transform=left, fontsize=size, ha="right", va="center")


def _shortened(label: str, room: float, size: float) -> str:
    """``label`` cut in the middle to at most ``room`` inches: 'purchases…frequency29' keeps
    the end that tells similar columns apart."""
    from segexp.insight.plots import text_width

    if text_width(label, size) <= room:
        return label
    head, tail = label[: len(label) // 2], label[len(label) // 2 :]
    while len(head) + len(tail) > 2 and text_width(f"{head}…{tail}", size) > room:
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return f"{head.rstrip()}…{tail.lstrip()}"


def _labels_height(labels: list[str], rotate: bool, size: float) -> float:
    """Inches the column labels take under the axes."""
    from segexp.insight.plots import text_width

    if not rotate:
        return 0.25 + max((t.count("\n") + 1 for t in labels), default=1) * size * 1.25 / 72
    widest = max((text_width(t, size) for t in labels), default=0.0)
    return 0.25 + widest * _SIN_ROTATION + size / 72


def _footnote(profile: SegmentProfile, shown: list[str], total: int) -> str:
    notes = []
    if any(c not in profile.feature_columns for c in shown):
        notes.append("* not a clustering feature")
    if len(shown) < total:
        notes.append(f"{len(shown)} of {total} columns shown: those that differ most")
    return " · ".join(notes)


def profile_heatmap(profile: SegmentProfile, title: str = "") -> Figure:
    """Segments x columns coloured by standardized difference from all customers (one
    colour scale for every column, with a colorbar); each cell shows the segment's mean
    in the column's own units, the last row that of all customers."""
    from matplotlib.ticker import MaxNLocator

    from segexp.insight import plots

    all_diffs = profile.std_diffs()
    shown = _plotted_columns(profile, all_diffs)
    diffs = all_diffs[shown]
    n_rows, n_cols = diffs.shape
    row_labels = [_row_label(profile, int(s)) for s in diffs.index] + ["All customers"]
    col_labels = [_column_label(profile, c) for c in shown]
    size = plots.TICK_SIZE
    label_width = max(plots.text_width(t, size) for t in row_labels)
    left = label_width + 0.3
    right = 0.25 + 0.18 + 0.95  # gap, colorbar, its ticks and label
    cell = max(_CELL_WIDTH, min(1.6, (plots.WIDTH - left - right) / max(n_cols, 1)))
    in_lines = _in_lines(col_labels, cell - 0.1, size)
    rotate = in_lines is None
    col_labels = in_lines or col_labels
    footnote = _footnote(profile, shown, all_diffs.shape[1])
    bottom = _labels_height(col_labels, rotate, size) + (0.3 if footnote else 0.0)
    rows = n_rows + 1
    room = plots.HEIGHT - plots.TOP_IN - bottom
    axes_height = max(0.42 * rows, min(0.8 * rows, room))
    width = left + cell * n_cols + right
    height = plots.TOP_IN + axes_height + bottom
    margins = plots.inch_margins(width, height, left, right, bottom, plots.TOP_IN)
    fig, ax = plots.figure("profile_heatmap", width, height, margins)

    matrix = diffs.to_numpy(dtype=float)
    finite = np.abs(matrix[np.isfinite(matrix)])
    limit = max(1.0, float(finite.max()) if finite.size else 1.0)
    shade = np.vstack([np.nan_to_num(matrix), np.zeros((1, n_cols))])  # all customers: 0
    image = ax.imshow(shade, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    means = profile.table[[f"{c}_mean" for c in shown]].to_numpy(dtype=float)
    for i in range(n_rows):
        for j in range(n_cols):
            value = matrix[i, j]
            dark = np.isfinite(value) and abs(value) > 0.55 * limit
            ax.text(
                j,
                i,
                _short_number(means[i, j]),
                ha="center",
                va="center",
                fontsize=plots.LABEL_SIZE,
                color="white" if dark else "black",
            )
    for j, column in enumerate(shown):
        base = float(profile.base["columns"][column]["mean"])
        ax.text(j, n_rows, _short_number(base), ha="center", va="center", fontsize=plots.LABEL_SIZE)
    ax.axhline(n_rows - 0.5, color="#333333", linewidth=1.2)
    _column_ticks(ax, col_labels, rotate, size)
    _row_ticks(ax, row_labels, size)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar_axes = fig.add_axes(
        (
            (width - right + 0.25) / width,
            bottom / height,
            0.18 / width,
            axes_height / height,
        )
    )
    bar = fig.colorbar(image, cax=bar_axes, ticks=MaxNLocator(nbins=5))
    bar.set_label("difference from all customers (sd)", fontsize=plots.LABEL_SIZE)
    bar_axes.tick_params(labelsize=size)
    if footnote:
        fig.text(0.15 / width, 0.1 / height, footnote, fontsize=size, color="#555555")
    subtitle = "Colour: difference from all customers (sd) · number: the segment's mean"
    plots.put_title(ax, title or "Segment profile", subtitle=subtitle)
    return fig


def snake_plot(profile: SegmentProfile, title: str = "") -> Figure:
    """Each segment's standardized means across the columns, one line per segment."""
    from segexp.insight import plots

    all_diffs = profile.std_diffs()
    shown = _plotted_columns(profile, all_diffs, _MAX_SNAKE_COLUMNS)
    diffs = all_diffs[shown]
    width, height = 6.4, 3.4
    size = plots.TICK_SIZE
    labels = [_row_label(profile, int(s), width=24) for s in diffs.index]
    col_labels = [_column_label(profile, c, units=False) for c in shown]
    left, top = 0.75, 0.45
    legend = min(2.6, max(plots.text_width(t, plots.LEGEND_SIZE) for t in labels) + 0.7)
    room = (width - left - legend) / max(len(shown), 1)
    in_lines = _in_lines(col_labels, room - 0.1, size) if len(shown) > 1 else col_labels
    rotate = in_lines is None
    if rotate:
        col_labels = [_shortened(t, _SNAKE_LABEL_WIDTH, size) for t in col_labels]
    col_labels = in_lines or col_labels
    footnote = _footnote(profile, shown, all_diffs.shape[1])
    bottom = _labels_height(col_labels, rotate, size) + (0.25 if footnote else 0.0)
    margins = plots.inch_margins(width, height, left, legend, bottom, top)
    fig, ax = plots.figure("snake_plot", width, height, margins)
    x = np.arange(diffs.shape[1])
    for (segment, row), label in zip(diffs.iterrows(), labels, strict=True):
        ax.plot(
            x,
            row.to_numpy(dtype=float),
            marker="o",
            markersize=4,
            linewidth=1.8,
            linestyle="--" if segment == NOISE_LABEL else "-",
            color=plots.segment_color(int(segment)),
            label=label,
        )
    ax.axhline(0, color="#888888", linewidth=0.9)
    _column_ticks(ax, col_labels, rotate, size)
    ax.set_xlim(-0.3, len(shown) - 0.7)
    ax.set_ylabel("vs all customers (sd)", fontsize=plots.LABEL_SIZE)
    ax.legend(
        fontsize=plots.LEGEND_SIZE,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.03, 1.0),
        borderaxespad=0.0,
        handlelength=1.6,
    )
    if footnote:
        fig.text(0.1 / width, 0.08 / height, footnote, fontsize=size, color="#555555")
    plots.put_title(ax, title or "Snake plot: each segment against all customers")
    return fig


# --- a run's files --------------------------------------------------------------------


def _finite_or_none(value: Any) -> Any:
    """Plain JSON types; undefined numbers (NaN) become null."""
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
        from segexp.insight import plots  # matplotlib only where figures are drawn

        written.append(plots.save(profile_heatmap(profile), folder / HEATMAP_PNG, dpi))
        written.append(plots.save(snake_plot(profile), folder / SNAKE_PNG, dpi))
    return written


def write_profile_plots(folder: Path, profile: SegmentProfile, dpi: int = 80) -> None:
    """Only the two figures of a computed profile (drawn when a run is published)."""
    from segexp.insight import plots

    plots.save(profile_heatmap(profile), Path(folder) / HEATMAP_PNG, dpi)
    plots.save(snake_plot(profile), Path(folder) / SNAKE_PNG, dpi)


def write_run_profile(
    folder: Path,
    frame: pd.DataFrame,
    labels: np.ndarray,
    feature_columns: list[str],
    naming_cfg: Any,
    gender_column: str | None = "gender",
    dpi: int = 80,
    make_plots: bool = True,
    categorical_columns: Sequence[str] = (),
) -> dict[int, str]:
    """Profile one run's segmentation into ``folder``; return segment id -> name.

    ``frame`` holds the raw customer rows that were segmented (labels align
    with its rows); ``naming_cfg`` is ``cfg.naming``, a mapping or a YAML path.
    """
    profile = compute_profile(
        frame,
        labels,
        feature_columns,
        naming_cfg,
        gender_column,
        categorical_columns=categorical_columns,
    )
    write_profile_files(folder, profile, dpi=dpi, make_plots=make_plots)
    return segment_names(profile)


def segment_names(profile: SegmentProfile) -> dict[int, str]:
    """Segment id -> name."""
    return {s: profile.names[s].name for s in profile.segments}
