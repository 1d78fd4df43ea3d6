"""Fit a segmentation with pyspark.ml and turn it into scikit-learn steps that need no Spark.

The Spark pipeline: ``VectorAssembler`` of the feature columns (in the job's
order) -> ``StandardScaler(withMean=True, withStd=True)`` (``scaler=standard``;
``scaler=none`` skips it) -> ``KMeans``, ``BisectingKMeans`` or
``GaussianMixture``, with k, seed, and ``max_iter`` and ``tol`` when the algo
config sets them (else Spark's defaults, see ``spark_settings``). Spark has no
``n_init``: one initialisation (k-means||) per fit. Bisecting K-Means gets its
features scaled but not centred (``withMean=False``): Spark seeds each split at
1e-4 x the norm of the parent's centre, 0 for centred data, where every customer
stays in one segment; a shift changes no distance.

The fitted model is stored as a scikit-learn ``Pipeline`` of segexp's
``segexp.model.centroids`` steps built from the Spark model's numbers (see there
for why each predicts as Spark does); the bisecting tree is read from the files
Spark's own ``save`` writes (its nodes, children and centres), which the Python
API does not expose otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from segexp.engines.catalog import SPARK_ALGORITHMS
from segexp.engines.spark_data import to_pandas
from segexp.errors import ConfigError
from segexp.model.centroids import (
    BisectingTree,
    GaussianComponents,
    NearestCentres,
    SparkStandardScaler,
)

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

RAW_COLUMN = "segexp_raw"
FEATURES_COLUMN = "segexp_features"
SEGMENT_COLUMN = "segment"


@dataclass
class SparkFit:
    """What one Spark fit produced."""

    assigned: DataFrame  # the input rows with FEATURES_COLUMN (scaled) and SEGMENT_COLUMN
    spark_model: PipelineModel
    pipeline: Pipeline  # scikit-learn steps predicting as the Spark model does
    algorithm: str  # the pyspark.ml class
    fit_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)  # what Spark was given
    log_likelihood: float | None = None  # Gaussian mixtures


def spark_settings(target: str, params: Mapping[str, Any], k: int, seed: int) -> dict[str, Any]:
    """The pyspark.ml parameters for an algo config: k, seed, and ``maxIter``/``tol`` when
    the config sets ``max_iter``/``tol`` (else Spark's defaults: 20 iterations for the
    k-means, 100 for a mixture; bisecting K-Means has no tolerance and always runs them)."""
    settings: dict[str, Any] = {"k": int(k), "seed": int(seed)}
    if params.get("max_iter") is not None:
        settings["maxIter"] = int(params["max_iter"])
    if params.get("tol") is not None and target != "sklearn.cluster.BisectingKMeans":
        settings["tol"] = float(params["tol"])
    return settings


def _clusterer(target: str, settings: Mapping[str, Any], features: str):
    from pyspark.ml import clustering

    name = SPARK_ALGORITHMS.get(target)
    if name is None:
        raise ConfigError(f"algo._target_: engine=spark has no {target}")
    cls = getattr(clustering, name.rpartition(".")[2])
    extra: dict[str, Any] = {"probabilityCol": "segexp_probability"} if "Gaussian" in name else {}
    return cls(featuresCol=features, predictionCol=SEGMENT_COLUMN, **settings, **extra)


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
    from pyspark.ml import Pipeline as SparkPipeline
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    stages: list[Any] = [
        VectorAssembler(inputCols=list(columns), outputCol=RAW_COLUMN, handleInvalid="error")
    ]
    features = RAW_COLUMN
    if scaler == "standard":
        # bisecting K-Means seeds each split at 1e-4 x the norm of the parent's centre,
        # which is 0 for centred data (every customer then stays in one segment): it gets
        # the features scaled but not centred, the same distances shifted
        centre = target != "sklearn.cluster.BisectingKMeans"
        stages.append(
            StandardScaler(
                inputCol=RAW_COLUMN, outputCol=FEATURES_COLUMN, withMean=centre, withStd=True
            )
        )
        features = FEATURES_COLUMN
    stages.append(_clusterer(target, settings, features))
    started = time.perf_counter()
    model = SparkPipeline(stages=stages).fit(frame)
    fit_seconds = time.perf_counter() - started
    assigned = model.transform(frame)
    if features != FEATURES_COLUMN:
        assigned = assigned.withColumn(FEATURES_COLUMN, assigned[RAW_COLUMN])
    model.write().overwrite().save(str(model_dir))
    fitted: Any = model.stages[-1]
    log_likelihood = None
    if fitted.hasSummary and hasattr(fitted.summary, "logLikelihood"):
        log_likelihood = float(fitted.summary.logLikelihood)
    return SparkFit(
        assigned=assigned,
        spark_model=model,
        pipeline=as_sklearn(model, columns, head, model_dir),
        algorithm=SPARK_ALGORITHMS[target],
        fit_seconds=fit_seconds,
        settings=dict(settings),
        log_likelihood=log_likelihood,
    )


def as_sklearn(
    model: PipelineModel, columns: Sequence[str], head: pd.DataFrame, saved: Path
) -> Pipeline:
    """``prepare`` (the feature columns, as numbers) -> ``scale`` -> ``cluster``, predicting
    as the Spark pipeline does, for promote and predict."""
    from pyspark.ml.clustering import BisectingKMeansModel, GaussianMixtureModel, KMeansModel
    from pyspark.ml.feature import StandardScalerModel

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
        cluster = bisecting_tree(saved, len(model.stages) - 1)
    elif isinstance(fitted, GaussianMixtureModel):
        components = to_pandas(fitted.gaussiansDF)
        cluster = GaussianComponents.from_components(
            np.asarray(fitted.weights),
            np.stack([np.asarray(m.toArray()) for m in components["mean"]]),
            np.stack([np.asarray(c.toArray()) for c in components["cov"]]),
        )
    else:  # pragma: no cover - _clusterer builds only the three above
        raise TypeError(type(fitted).__name__)
    return Pipeline([("prepare", prepare), ("scale", scale), ("cluster", cluster)])


def bisecting_tree(saved: Path, stage: int) -> BisectingTree:
    """The tree of a saved BisectingKMeansModel (Spark's ``data/data`` Parquet: one row per
    node with its index, centre and children; leaves have the indices 0..k-1)."""
    (folder,) = sorted(saved.glob(f"stages/{stage}_*"))
    nodes = pd.read_parquet(folder / "data" / "data")
    nodes = nodes.sort_values("index", kind="stable").reset_index(drop=True)
    position = {int(index): i for i, index in enumerate(nodes["index"])}
    children = np.full((len(nodes), 2), -1, dtype=int)
    for i, kids in enumerate(nodes["children"]):
        kids = [int(c) for c in (kids if kids is not None else [])]
        if kids:
            # Spark's predict goes to the nearer child; a node with one child passes to it
            children[i] = [position[kids[0]], position[kids[-1]]]
    named = {int(c) for pair in nodes["children"] if pair is not None for c in pair}
    (root,) = [i for i, index in enumerate(nodes["index"]) if int(index) not in named]
    centres = np.stack([_vector(v) for v in nodes["center"]])
    leaf_ids = np.where(children[:, 0] < 0, nodes["index"].to_numpy(dtype=int), -1)
    return BisectingTree.from_nodes(centres, children, leaf_ids, root)


def _vector(value: Any) -> np.ndarray:
    """A vector column of a Parquet file Spark wrote, read by pandas (its struct as a dict)."""
    if isinstance(value, dict):
        if value.get("type") == 1 or value.get("indices") is None:
            return np.asarray(value["values"], dtype=float)
        dense = np.zeros(int(value["size"]))
        dense[np.asarray(value["indices"], dtype=int)] = value["values"]
        return dense
    return np.asarray(value, dtype=float)
