"""Fit with pyspark.ml, score from Spark aggregations, and keep the model as scikit-learn
steps (``segexp.model.centroids``) that predict as Spark does without Spark."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline as SparkPipeline
from pyspark.ml import PipelineModel, clustering
from pyspark.ml.clustering import BisectingKMeansModel, GaussianMixtureModel, KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import StandardScaler, StandardScalerModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from segexp.engines.catalog import SPARK_ALGORITHMS
from segexp.engines.spark_data import to_pandas
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
    stages: list[Any] = [
        VectorAssembler(inputCols=list(columns), outputCol=RAW_COLUMN, handleInvalid="error")
    ]
    features = RAW_COLUMN
    if scaler == "standard":
        # bisecting K-Means seeds each split at 1e-4 x the norm of the parent's centre, 0 for
        # centred data (one segment then): scaled but not centred, the same distances
        centre = target != BISECTING
        stages.append(
            StandardScaler(inputCol=RAW_COLUMN, outputCol=FEATURES_COLUMN, withMean=centre)
        )
        features = FEATURES_COLUMN
    name = SPARK_ALGORITHMS[target].rpartition(".")[2]
    extra = {"probabilityCol": "segexp_probability"} if name == "GaussianMixture" else {}
    stages.append(
        getattr(clustering, name)(
            featuresCol=features, predictionCol=SEGMENT_COLUMN, **settings, **extra
        )
    )
    started = time.perf_counter()
    model = SparkPipeline(stages=stages).fit(frame)
    fit_seconds = time.perf_counter() - started
    assigned = model.transform(frame).withColumn(FEATURES_COLUMN, F.col(features))
    model.write().overwrite().save(str(model_dir))
    fitted: Any = model.stages[-1]
    log_likelihood = None
    if fitted.hasSummary and hasattr(fitted.summary, "logLikelihood"):
        log_likelihood = float(fitted.summary.logLikelihood)
    pipeline = as_sklearn(model, columns, head, model_dir)
    return SparkFit(assigned, model, pipeline, fit_seconds, log_likelihood)


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
            scale = SparkStandardScaler.from_numbers(
                stage.mean.toArray(), stage.std.toArray(), with_mean=stage.getWithMean()
            )
    fitted = model.stages[-1]
    cluster: Any
    if isinstance(fitted, KMeansModel):
        cluster = NearestCentres.from_centres(np.asarray(fitted.clusterCenters()))
    elif isinstance(fitted, BisectingKMeansModel):
        cluster = bisecting_tree(model, saved)
    else:
        assert isinstance(fitted, GaussianMixtureModel)
        components = to_pandas(fitted.gaussiansDF)
        cluster = GaussianComponents.from_components(
            np.asarray(fitted.weights),
            np.stack([m.toArray() for m in components["mean"]]),
            np.stack([c.toArray() for c in components["cov"]]),
        )
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
    return BisectingTree.from_nodes(
        centres, children, np.where(children[:, 0] < 0, index, -1), root
    )


def score(assigned: DataFrame) -> Scores:
    """The run's scores in the clusterer's space, from Spark aggregations over every row;
    silhouette is Spark's, on squared Euclidean distances (docs/scale.md)."""
    summary = Summarizer.metrics("mean", "count").summary(F.col(FEATURES_COLUMN)).alias("m")
    moments = assigned.groupBy(SEGMENT_COLUMN).agg(summary).select(SEGMENT_COLUMN, "m.*")
    found = to_pandas(moments).sort_values(SEGMENT_COLUMN)
    sizes = found["count"].to_numpy(dtype=float)
    means = np.stack([v.toArray() for v in found["mean"]])
    # each customer's squared distance to its segment's mean
    centres = moments.select(SEGMENT_COLUMN, vector_to_array(F.col("mean")).alias("c"))
    points = assigned.select(SEGMENT_COLUMN, vector_to_array(F.col(FEATURES_COLUMN)).alias("x"))
    differences = F.zip_with("x", "c", lambda x, c: (x - c) * (x - c))
    squared = F.aggregate(differences, F.lit(0.0), lambda total, d: total + d)
    spread = to_pandas(
        points.join(F.broadcast(centres), SEGMENT_COLUMN)
        .groupBy(SEGMENT_COLUMN)
        .agg(F.sum(squared).alias("ss"), F.avg(F.sqrt(squared)).alias("dist"))
    )
    spread = spread.set_index(SEGMENT_COLUMN).reindex(found[SEGMENT_COLUMN])
    n_total, n_clusters = float(sizes.sum()), len(sizes)
    squares, distances = spread["ss"].to_numpy(float), spread["dist"].to_numpy(float)
    scores = Scores(notes={"silhouette_space": "squared_euclidean"})
    scores.values.update(
        n_clusters=float(n_clusters),
        n_customers=n_total,
        noise_fraction=0.0,  # these algorithms leave no noise
        inertia=float(squares.sum()),
        min_segment_share=float(sizes.min() / n_total),
        max_segment_share=float(sizes.max() / n_total),
    )
    if n_clusters < 2 or n_clusters >= n_total:
        what = (
            "only one segment was found"
            if n_clusters < 2
            else f"every customer is its own segment ({n_clusters} segments)"
        )
        for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
            scores.undefined[name] = (
                f"{what}; {name} needs 2 or more segments, fewer than customers"
            )
        return scores
    evaluator = ClusteringEvaluator(
        featuresCol=FEATURES_COLUMN,
        predictionCol=SEGMENT_COLUMN,
        metricName="silhouette",
        distanceMeasure="squaredEuclidean",
    )
    scores.values["silhouette"] = float(evaluator.evaluate(assigned))
    scores.notes["silhouette_mode"] = "exact (Spark, every customer)"
    # scikit-learn's formulas of Calinski-Harabasz and Davies-Bouldin, from the moments
    centre = (means * sizes[:, None]).sum(axis=0) / n_total
    between = float((sizes * ((means - centre) ** 2).sum(axis=1)).sum())
    within = float(squares.sum())
    scores.values["calinski_harabasz"] = (
        1.0 if within == 0 else between * (n_total - n_clusters) / (within * (n_clusters - 1))
    )
    gaps = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(distances, 0) or np.allclose(gaps, 0):
        scores.values["davies_bouldin"] = 0.0
    else:
        gaps[gaps == 0] = np.inf
        combined = distances[:, None] + distances[None, :]
        scores.values["davies_bouldin"] = float(np.mean(np.max(combined / gaps, axis=1)))
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
