"""Segment profiles of a Spark run, from Spark aggregations over every row.

The same ``SegmentProfile`` ``segexp.insight.profiles.compute_profile`` builds
from a pandas table (the same columns, statistics, levels, names and actions,
so ``profile.csv``, ``profile.md``, ``segments.json`` and the profile figures
are written by the same functions), with its numbers computed by Spark: segment
and base means (``avg``), sample standard deviations (``stddev_samp``, pandas'
``std``), exact quartiles (``percentile``: linear interpolation, as pandas'
``quantile``), minimum and maximum, the rank differences of the level rule
(percentile mid-ranks from a running count over each column's distinct values, as
pandas' ``rank(pct=True)``), and the value shares of the split columns (the ten
most frequent values, the rest as ``other``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segexp.contract import NOISE_LABEL
from segexp.engines.spark_data import quoted, to_pandas
from segexp.insight.naming import NamingConfig, level_words, load_naming_config
from segexp.insight.profiles import (
    _MAX_SPLIT_VALUES,
    _MISSING,
    _OTHER,
    SegmentProfile,
    named_profile_table,
    profiled_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_QUARTILES = (0.25, 0.5, 0.75)


def _stats_by(frame: DataFrame, key: Any, numeric: Sequence[str]):
    """One row per group of ``key`` (a column, or a constant for the whole base)."""
    from pyspark.sql import functions as F

    quantiles = list(_QUARTILES)
    parts: list[Any] = [F.count(F.lit(1)).alias("size")]
    for i, column in enumerate(numeric):
        value = F.col(quoted(column)).cast("double")
        parts += [
            F.avg(value).alias(f"mean{i}"),
            F.stddev_samp(value).alias(f"std{i}"),
            F.min(value).alias(f"min{i}"),
            F.max(value).alias(f"max{i}"),
            F.percentile(value, F.array(*[F.lit(float(q)) for q in quantiles])).alias(f"q{i}"),
        ]
    return to_pandas(frame.groupBy(key.alias("s")).agg(*parts)).set_index("s").sort_index()


def _rank_differences(frame: DataFrame, numeric: Sequence[str], order: list[int]) -> pd.DataFrame:
    """``naming.rank_differences`` by Spark: each value's percentile mid-rank (running count
    over the column's distinct values), averaged per segment, against all customers."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    data = {}
    for column in numeric:
        value = F.col(quoted(column)).cast("double")
        rows = frame.select(F.col("segment").cast("long").alias("s"), value.alias("v")).where(
            F.col("v").isNotNull() & ~F.isnan("v")
        )
        counts = rows.groupBy("v").agg(F.count(F.lit(1)).alias("c"))
        running = Window.orderBy("v").rowsBetween(Window.unboundedPreceding, Window.currentRow)
        midrank = F.sum("c").over(running) - (F.col("c") - 1) / 2
        ranks = counts.withColumn("r", midrank)
        base = to_pandas(ranks).astype(float)
        n = base["c"].sum()
        base["r"] /= n
        mean = (base["c"] * base["r"]).sum() / n
        spread = float(np.sqrt((base["c"] * (base["r"] - mean) ** 2).sum() / n)) if n else 0.0
        by_segment = to_pandas(
            rows.join(ranks.select("v", "r"), "v").groupBy("s").agg(F.avg("r").alias("r"))
        ).set_index("s")["r"]
        diff = (by_segment.reindex(order).to_numpy(dtype=float) / n - mean) / spread
        data[column] = diff if spread > 0 else np.full(len(order), np.nan)
    return pd.DataFrame(data, index=order, columns=list(numeric))


def _value_shares(frame: DataFrame, column: str, order: Sequence[int]) -> pd.DataFrame:
    """Share of each value per segment (rows in ``order``), as the pandas profile counts them."""
    from pyspark.sql import functions as F

    value = F.col(quoted(column))
    text = F.when(value.isNull(), F.lit(_MISSING)).otherwise(value.cast("string"))
    counts = to_pandas(
        frame.select(F.col("segment").cast("long").alias("s"), text.alias("v"))
        .groupBy("s", "v")
        .count()
    )
    totals = counts.groupby("v")["count"].sum().sort_values(ascending=False, kind="stable")
    top = list(totals.index[:_MAX_SPLIT_VALUES])
    if len(totals) > _MAX_SPLIT_VALUES:
        counts["v"] = counts["v"].where(counts["v"].isin(top), _OTHER)
        top.append(_OTHER)
    table = counts.pivot_table(index="s", columns="v", values="count", aggfunc="sum", fill_value=0)
    table = table.reindex(index=list(order), columns=sorted(top), fill_value=0).astype(float)
    table = table.div(np.maximum(table.sum(axis=1), 1.0), axis=0)
    table.index.name, table.columns.name = None, None
    return table


def spark_profile(
    assigned: DataFrame,
    head: pd.DataFrame,
    feature_columns: Sequence[str],
    naming_cfg: Any = None,
    gender_column: str | None = "gender",
    exclude_columns: Sequence[str] = ("customer_id",),
    categorical_columns: Sequence[str] = (),
) -> SegmentProfile:
    """``compute_profile`` of every row of ``assigned`` (its ``segment`` column), by Spark.

    ``head`` (the table's first rows) only decides which columns are profiled, by dtype.
    """
    from pyspark.sql import functions as F

    config: NamingConfig = (
        naming_cfg if isinstance(naming_cfg, NamingConfig) else load_naming_config(naming_cfg)
    )
    numeric, splits = profiled_columns(
        head, feature_columns, gender_column, exclude_columns, categorical_columns
    )
    groups = _stats_by(assigned, F.col("segment").cast("long"), numeric)
    whole = _stats_by(assigned, F.lit(0), numeric).iloc[0]
    found = sorted(int(s) for s in groups.index)
    order = [s for s in found if s != NOISE_LABEL] + [s for s in found if s == NOISE_LABEL]
    groups = groups.reindex(order)
    n_total = int(whole["size"])

    def column_stat(name: str, position: int | None = None) -> pd.DataFrame:
        data = {}
        for i, column in enumerate(numeric):
            values = groups[f"{name}{i}"] if position is None else groups[f"q{i}"]
            data[column] = (
                values.to_numpy(dtype=float)
                if position is None
                else np.array([v[position] for v in values], dtype=float)
            )
        return pd.DataFrame(data, index=order, columns=numeric)

    base_mean = pd.Series({c: float(whole[f"mean{i}"]) for i, c in enumerate(numeric)})
    base_std = pd.Series({c: float(whole[f"std{i}"]) for i, c in enumerate(numeric)})
    stats = {
        "mean": column_stat("mean"),
        "median": column_stat("q", 1),
        "q1": column_stat("q", 0),
        "q3": column_stat("q", 2),
    }
    stats["std_diff"] = (stats["mean"] - base_mean) / base_std.where(base_std > 0)
    stats["rank_diff"] = _rank_differences(assigned, numeric, order)
    stats["ratio"] = stats["mean"] / base_mean.where(base_mean != 0)
    base_median = pd.Series({c: float(whole[f"q{i}"][1]) for i, c in enumerate(numeric)})
    levels = level_words(
        stats["rank_diff"],
        stats["mean"] - base_mean,
        stats["median"] - base_median,
        config.min_difference,
    )

    size_of = {int(s): int(groups.loc[s, "size"]) for s in order}
    split_shares = {c: _value_shares(assigned, c, order) for c in splits}
    skip = set(exclude_columns)
    table, names = named_profile_table(
        order,
        numeric,
        stats,
        levels,
        size_of,
        split_shares,
        config,
        feature_columns=feature_columns,
        available_columns=[str(c) for c in head.columns if c not in skip],
        gender_column=gender_column,
    )
    base = {
        "size": n_total,
        "columns": {
            c: {
                "mean": float(whole[f"mean{i}"]),
                "std": float(whole[f"std{i}"]),
                "median": float(whole[f"q{i}"][1]),
                "q1": float(whole[f"q{i}"][0]),
                "q3": float(whole[f"q{i}"][2]),
                "min": float(whole[f"min{i}"]),
                "max": float(whole[f"max{i}"]),
            }
            for i, c in enumerate(numeric)
        },
        "shares": {
            c: {
                str(k): float(v)
                for k, v in _value_shares(assigned.withColumn("segment", F.lit(0)), c, [0])
                .iloc[0]
                .items()
            }
            for c in splits
        },
    }
    return SegmentProfile(
        table=table,
        numeric_columns=numeric,
        feature_columns=[c for c in feature_columns if c in head.columns],
        split_columns=splits,
        base=base,
        names=names,
    )
