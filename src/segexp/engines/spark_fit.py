"""Fit with pyspark.ml, score and profile from Spark aggregations over every row, and keep the
model as scikit-learn steps (``segexp.model.centroids``) that predict as Spark does."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline as SparkPipeline
from pyspark.ml import PipelineModel, clustering
from pyspark.ml.clustering import BisectingKMeansModel, KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, StandardScalerModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from segexp.engines.catalog import SPARK_ALGORITHMS
from segexp.insight.naming import NamingConfig, level_words, load_naming_config
from segexp.insight.profiles import (
    MAX_SPLIT_VALUES,
    MISSING_VALUE,
    OTHER_VALUE,
    SegmentProfile,
    labelled_values,
    labels_for,
    named_profile_table,
    profiled_columns,
)
from segexp.model.centroids import (
    BisectingTree,
    GaussianComponents,
    NearestCentres,
    SparkStandardScaler,
)
from segexp.model.metrics import Scores

RAW_COLUMN = "segexp_raw"
FEATURES_COLUMN = "segexp_features"
SEGMENT_COLUMN = "segment"
BISECTING = "sklearn.cluster.BisectingKMeans"
GENDER = "gender"
EXCLUDED = ("customer_id",)
BASE_STATS = ("mean", "std", "median", "q1", "q3", "min", "max")
WHOLE = -1  # the profile rollup's row of all customers (Spark's algorithms leave no noise)


def col(name: str) -> Column:
    """``F.col`` of a column whatever its name holds (dots, spaces, backticks)."""
    return F.col("`" + str(name).replace("`", "``") + "`")


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()``, typed as the pandas DataFrame it is."""
    return cast("pd.DataFrame", frame.toPandas())


@dataclass
class SparkFit:
    """What one Spark fit produced."""

    assigned: DataFrame  # the input rows with FEATURES_COLUMN (scaled) and SEGMENT_COLUMN
    spark_model: PipelineModel
    pipeline: Pipeline  # scikit-learn steps predicting as the Spark model does
    fit_seconds: float
    log_likelihood: float | None = None  # Gaussian mixtures


def spark_settings(target: str, params: Mapping[str, Any], k: int, seed: int) -> dict[str, Any]:
    """k and seed, and maxIter/tol when the algo config sets max_iter/tol (else Spark's
    defaults); bisecting K-Means has no tolerance."""
    settings: dict[str, Any] = {"k": int(k), "seed": int(seed)}
    if params.get("max_iter") is not None:
        settings["maxIter"] = int(params["max_iter"])
    if params.get("tol") is not None and target != BISECTING:
        settings["tol"] = float(params["tol"])
    return settings


def fit(
    frame: DataFrame,
    columns: Sequence[str],
    scaler: str,
    target: str,
    settings: Mapping[str, Any],
    head: pd.DataFrame,
    model_dir: Path,
) -> SparkFit:
    """Fit on every row of ``frame``; the Spark model is saved to ``model_dir``."""
    features = FEATURES_COLUMN if scaler == "standard" else RAW_COLUMN
    stages: list[Any] = [VectorAssembler(inputCols=list(columns), outputCol=RAW_COLUMN)]
    if scaler == "standard":
        # bisecting K-Means seeds each split at 1e-4 x the norm of the parent's centre, 0 for
        # centred data (one segment then): scaled but not centred, the same distances
        centre = target != BISECTING
        stages.append(StandardScaler(inputCol=RAW_COLUMN, outputCol=features, withMean=centre))
    name = SPARK_ALGORITHMS[target].rpartition(".")[2]
    extra = {"probabilityCol": "segexp_probability"} if name == "GaussianMixture" else {}
    algorithm = getattr(clustering, name)
    stages.append(
        algorithm(featuresCol=features, predictionCol=SEGMENT_COLUMN, **settings, **extra)
    )
    started = time.perf_counter()
    model = SparkPipeline(stages=stages).fit(frame)
    fit_seconds = time.perf_counter() - started
    assigned = model.transform(frame).withColumn(FEATURES_COLUMN, F.col(features))
    model.write().overwrite().save(str(model_dir))
    fitted: Any = model.stages[-1]
    summary = fitted.summary if fitted.hasSummary else None
    likelihood = getattr(summary, "logLikelihood", None)
    pipeline = as_sklearn(model, columns, head, model_dir)
    return SparkFit(assigned, model, pipeline, fit_seconds, likelihood)


def as_sklearn(
    model: PipelineModel, columns: Sequence[str], head: pd.DataFrame, saved: Path
) -> Pipeline:
    """prepare (the feature columns as numbers) -> scale -> cluster, predicting as Spark."""
    prepare = ColumnTransformer(
        [("num", "passthrough", list(columns))], remainder="drop", verbose_feature_names_out=False
    ).fit(head[list(columns)].astype(float))
    scale: Any = FunctionTransformer().fit(np.zeros((1, len(columns))))
    for stage in model.stages:
        if isinstance(stage, StandardScalerModel):
            mean, std = stage.mean.toArray(), stage.std.toArray()
            scale = SparkStandardScaler.from_numbers(mean, std, with_mean=stage.getWithMean())
    fitted: Any = model.stages[-1]
    cluster: Any
    if isinstance(fitted, KMeansModel):
        cluster = NearestCentres.from_centres(np.asarray(fitted.clusterCenters()))
    elif isinstance(fitted, BisectingKMeansModel):
        cluster = bisecting_tree(model, saved)
    else:  # GaussianMixtureModel
        parts = to_pandas(fitted.gaussiansDF)
        means, covariances = (np.stack([v.toArray() for v in parts[c]]) for c in ("mean", "cov"))
        weights = np.asarray(fitted.weights)
        cluster = GaussianComponents.from_components(weights, means, covariances)
    return Pipeline([("prepare", prepare), ("scale", scale), ("cluster", cluster)])


def bisecting_tree(model: PipelineModel, saved: Path) -> BisectingTree:
    """The tree of a bisecting K-Means model, which the Python API does not expose: its
    saved data, one row per node (index, centre, children; the leaves are 0..k-1)."""
    (folder,) = sorted(saved.glob(f"stages/{len(model.stages) - 1}_*"))
    nodes = to_pandas(SparkSession.active().read.parquet(str(folder / "data" / "data")))
    nodes = nodes.sort_values("index")
    index = nodes["index"].to_numpy(dtype=int)
    position = {int(node): i for i, node in enumerate(index)}
    children = np.full((len(nodes), 2), -1, dtype=int)
    for i, kids in enumerate(nodes["children"]):
        if kids is not None and len(kids):
            # Spark's predict goes to the nearer child; a node with one child passes to it
            children[i] = [position[int(kids[0])], position[int(kids[-1])]]
    named = {int(c) for kids in nodes["children"] if kids is not None for c in kids}
    (root,) = [i for i, node in enumerate(index) if node not in named]
    centres = np.stack([v.toArray() for v in nodes["center"]])
    leaves = np.where(children[:, 0] < 0, index, -1)
    return BisectingTree.from_nodes(centres, children, leaves, root)


def score(assigned: DataFrame) -> Scores:
    """The run's scores in the clusterer's space, from Spark aggregations over every row;
    silhouette is Spark's, on squared Euclidean distances (docs/scale.md)."""
    summary = Summarizer.metrics("mean", "count").summary(F.col(FEATURES_COLUMN)).alias("m")
    moments = assigned.groupBy(SEGMENT_COLUMN).agg(summary).select(SEGMENT_COLUMN, "m.*")
    centres = moments.select(SEGMENT_COLUMN, "count", vector_to_array(F.col("mean")).alias("c"))
    points = assigned.select(SEGMENT_COLUMN, vector_to_array(F.col(FEATURES_COLUMN)).alias("x"))
    differences = F.zip_with("x", "c", lambda x, c: (x - c) * (x - c))
    squared = F.aggregate(differences, F.lit(0.0), lambda total, d: total + d)
    found = to_pandas(
        points.join(F.broadcast(centres), SEGMENT_COLUMN)
        .groupBy(SEGMENT_COLUMN)
        .agg(F.first("count"), F.first("c"), F.sum(squared), F.avg(F.sqrt(squared)))
        .toDF("s", "n", "c", "ss", "dist")
    ).sort_values("s")
    sizes, distances = found["n"].to_numpy(float), found["dist"].to_numpy(float)
    means = np.stack(found["c"].to_numpy())
    n_total, n_clusters, within = float(sizes.sum()), len(sizes), float(found["ss"].sum())
    scores = Scores(notes={"silhouette_space": "squared_euclidean"})
    scores.values.update(
        n_clusters=float(n_clusters),
        n_customers=n_total,
        noise_fraction=0.0,  # these algorithms leave no noise
        inertia=within,
        min_segment_share=float(sizes.min() / n_total),
        max_segment_share=float(sizes.max() / n_total),
    )
    if n_clusters < 2 or n_clusters >= n_total:
        what = "only one segment was found"
        if n_clusters >= 2:
            what = f"every customer is its own segment ({n_clusters} segments)"
        for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
            scores.undefined[name] = (
                f"{what}; {name} needs 2 or more segments, fewer than customers"
            )
        return scores
    evaluator = ClusteringEvaluator(
        featuresCol=FEATURES_COLUMN,
        predictionCol=SEGMENT_COLUMN,
        distanceMeasure="squaredEuclidean",
    )
    scores.values["silhouette"] = float(evaluator.evaluate(assigned))
    scores.notes["silhouette_mode"] = "exact (Spark, every customer)"
    # scikit-learn's formulas of Calinski-Harabasz and Davies-Bouldin, from the moments
    centre = (means * sizes[:, None]).sum(axis=0) / n_total
    between = float((sizes * ((means - centre) ** 2).sum(axis=1)).sum())
    ratio = (n_total - n_clusters) / (n_clusters - 1)
    scores.values["calinski_harabasz"] = 1.0 if within == 0 else between * ratio / within
    gaps = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2))
    davies_bouldin = 0.0
    if not (np.allclose(distances, 0) or np.allclose(gaps, 0)):
        gaps[gaps == 0] = np.inf
        combined = distances[:, None] + distances[None, :]
        davies_bouldin = float(np.mean(np.max(combined / gaps, axis=1)))
    scores.values["davies_bouldin"] = davies_bouldin
    return scores


def gmm_criteria(log_likelihood: float | None, k: int, d: int, n: float) -> dict[str, float]:
    """BIC and AIC of a full-covariance Gaussian mixture (scikit-learn's parameter count)."""
    if log_likelihood is None:
        return {}
    parameters = k * d * (d + 1) / 2 + k * d + k - 1
    return {
        "bic": float(-2 * log_likelihood + parameters * np.log(n)),
        "aic": float(-2 * log_likelihood + 2 * parameters),
    }


def _value_counts(frame: DataFrame, values: dict[str, Column]) -> pd.DataFrame:
    """Customers per column (c), segment (s) and value (v), for every column in one job."""
    if not values:
        return pd.DataFrame({"c": [], "s": [], "v": [], "count": []})
    pairs = [F.struct(F.lit(c).alias("c"), v.alias("v")) for c, v in values.items()]
    return to_pandas(frame.select("s", F.inline(F.array(*pairs))).groupBy("c", "s", "v").count())


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
    if len(totals) > MAX_SPLIT_VALUES:
        top = totals.index[:MAX_SPLIT_VALUES]
        counts = counts.assign(v=counts["v"].where(counts["v"].isin(top), OTHER_VALUE))
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
    parts = [F.count(F.lit(1)).alias("size")]
    for i, column in enumerate(numeric):
        value = col(column).cast("double")
        quartiles = F.percentile(value, F.array(*[F.lit(q) for q in (0.25, 0.5, 0.75)]))
        q1, median, q3 = (quartiles[j] for j in range(3))
        found = (F.avg(value), F.stddev_samp(value), median, q1, q3, F.min(value), F.max(value))
        parts += [s.alias(f"{name}.{i}") for name, s in zip(BASE_STATS, found, strict=True)]
    rows = to_pandas(frame.rollup("s").agg(*parts).fillna(WHOLE, subset=["s"]))
    rows = rows.set_index("s").sort_index()
    every = {
        name: pd.DataFrame({c: rows[f"{name}.{i}"] for i, c in enumerate(numeric)}, rows.index)
        for name in BASE_STATS
    }
    every = {name: table.astype(float) for name, table in every.items()}
    sizes = rows["size"].astype(int)
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
    texts = {c: F.coalesce(col(c).cast("string"), F.lit(MISSING_VALUE)) for c in splits}
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
