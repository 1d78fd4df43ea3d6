"""Segment profiles of a Spark run: Spark aggregates every row (exact quartiles, value
counts), ``segexp.insight.profiles`` levels, names and writes them as any profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segexp.engines.spark_data import col, to_pandas
from segexp.insight.naming import NamingConfig, level_words, load_naming_config
from segexp.insight.profiles import (
    _MAX_SPLIT_VALUES,
    _MISSING,
    _OTHER,
    SegmentProfile,
    labelled_values,
    labels_for,
    named_profile_table,
    profiled_columns,
)

GENDER = "gender"
EXCLUDED = ("customer_id",)
BASE_STATS = ("mean", "std", "median", "q1", "q3", "min", "max")
WHOLE = -1  # the rollup's row of all customers (Spark's algorithms leave no noise label)


def _statistics(frame: DataFrame, numeric: Sequence[str]) -> tuple[pd.Series, dict[str, Any]]:
    """(customers per segment, {statistic: segments x columns}), WHOLE the row of all."""
    parts = [F.count(F.lit(1)).alias("size")]
    for i, column in enumerate(numeric):
        value = col(column).cast("double")
        quartiles = F.percentile(value, F.array(*[F.lit(q) for q in (0.25, 0.5, 0.75)]))
        q1, median, q3 = (quartiles[j] for j in range(3))
        found = (F.avg(value), F.stddev_samp(value), median, q1, q3, F.min(value), F.max(value))
        parts += [s.alias(f"{name}.{i}") for name, s in zip(BASE_STATS, found, strict=True)]
    rows = to_pandas(frame.rollup("s").agg(*parts).fillna(WHOLE, subset=["s"]))
    rows = rows.set_index("s").sort_index()
    stats = {
        name: pd.DataFrame(
            {c: rows[f"{name}.{i}"] for i, c in enumerate(numeric)}, index=rows.index
        ).astype(float)
        for name in BASE_STATS
    }
    return rows["size"].astype(int), stats


def _value_counts(frame: DataFrame, values: dict[str, Column]) -> pd.DataFrame:
    """Customers per column (c), segment (s) and value (v), for every column in one job."""
    pairs = [F.struct(F.lit(c).alias("c"), v.alias("v")) for c, v in values.items()]
    if not pairs:
        return pd.DataFrame({"c": [], "s": [], "v": [], "count": []})
    counted = frame.select("s", F.inline(F.array(*pairs))).groupBy("c", "s", "v").count()
    return to_pandas(counted)


def _rank_differences(counts: pd.DataFrame, numeric: list[str], order: list[int]) -> pd.DataFrame:
    """``naming.rank_differences`` from value counts: each value's percentile mid-rank (as
    pandas' ``rank(pct=True)``), averaged per segment, against all customers'."""
    found = {}
    for column, part in counts.dropna(subset=["v"]).groupby("c"):
        per_value = part.groupby("v")["count"].sum()
        n = per_value.sum()
        rank = (per_value.cumsum() - (per_value - 1) / 2) / n
        mean = (rank * per_value).sum() / n
        spread = np.sqrt(((rank - mean) ** 2 * per_value).sum() / n)
        ranked = part["v"].map(rank) * part["count"]
        by_segment = ranked.groupby(part["s"]).sum() / part.groupby("s")["count"].sum()
        found[column] = (by_segment - mean) / spread if spread > 0 else np.nan
    return pd.DataFrame(found, index=order, columns=numeric, dtype=float)


def _value_shares(counts: pd.DataFrame, order: list[int], labels: Any) -> pd.DataFrame:
    """The pandas profile's value shares (codes named by ``labels``, values past the ten most
    frequent 'other') from Spark's counts, per segment and (row WHOLE) of all customers."""
    counts = counts.assign(v=labelled_values(counts["v"], labels))
    totals = counts.groupby("v")["count"].sum().sort_values(ascending=False, kind="stable")
    if len(totals) > _MAX_SPLIT_VALUES:
        top = totals.index[:_MAX_SPLIT_VALUES]
        counts = counts.assign(v=counts["v"].where(counts["v"].isin(top), _OTHER))
    table = pd.crosstab(counts["s"], counts["v"], counts["count"], aggfunc="sum")
    table = table.reindex(order).fillna(0.0).astype(float)
    table.loc[WHOLE] = table.sum()
    table = table.div(np.maximum(table.sum(axis=1), 1.0), axis=0)
    return table.rename_axis(index=None, columns=None)


def spark_profile(
    assigned: DataFrame,
    head: pd.DataFrame,
    feature_columns: Sequence[str],
    naming_cfg: Any = None,
    categorical_columns: Sequence[str] = (),
    value_labels: Mapping[str, Mapping[Any, Any]] | None = None,
) -> SegmentProfile:
    """``compute_profile`` of every row of ``assigned`` (its ``segment`` column) by Spark;
    ``head`` (the table's first rows) decides which columns are profiled, by dtype;
    ``value_labels`` name the codes of split columns, as in ``compute_profile``."""
    config = naming_cfg if isinstance(naming_cfg, NamingConfig) else load_naming_config(naming_cfg)
    numeric, splits = profiled_columns(head, feature_columns, GENDER, EXCLUDED, categorical_columns)
    frame = assigned.withColumn("s", F.col("segment").cast("long"))
    sizes, every = _statistics(frame, numeric)
    order = [int(s) for s in sizes.index if s != WHOLE]
    base = {name: table.loc[WHOLE] for name, table in every.items()}
    stats = {name: every[name].loc[order] for name in ("mean", "median", "q1", "q3")}
    stats["std_diff"] = (stats["mean"] - base["mean"]) / base["std"].where(base["std"] > 0)
    counts = _value_counts(frame, {c: col(c).cast("double") for c in numeric})
    stats["rank_diff"] = _rank_differences(counts, numeric, order)
    stats["ratio"] = stats["mean"] / base["mean"].where(base["mean"] != 0)
    levels = level_words(
        stats["rank_diff"],
        stats["mean"] - base["mean"],
        stats["median"] - base["median"],
        config.min_difference,
    )
    texts = {c: F.coalesce(col(c).cast("string"), F.lit(_MISSING)) for c in splits}
    split_counts = _value_counts(frame, texts)
    shares = {
        c: _value_shares(split_counts[split_counts["c"] == c], order, labels_for(c, value_labels))
        for c in splits
    }
    table, names = named_profile_table(
        order,
        numeric,
        stats,
        levels,
        sizes.loc[order].to_dict(),
        {c: shares[c].loc[order] for c in splits},
        config,
        feature_columns=feature_columns,
        available_columns=[str(c) for c in head.columns if c not in EXCLUDED],
        gender_column=GENDER,
    )
    whole = {
        "size": int(sizes[WHOLE]),
        "columns": {c: {s: float(base[s][c]) for s in BASE_STATS} for c in numeric},
        "shares": {c: {str(k): float(v) for k, v in shares[c].loc[WHOLE].items()} for c in splits},
    }
    return SegmentProfile(
        table=table,
        numeric_columns=numeric,
        feature_columns=[c for c in feature_columns if c in head.columns],
        split_columns=splits,
        base=whole,
        names=names,
        rate_format=config.rate_format,
    )
