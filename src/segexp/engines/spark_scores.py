"""A Spark segmentation's scores, from Spark aggregations over every row.

The same metric names as every run (``segexp.model.metrics``), in the space the
clusterer saw (the scaled features):

- ``silhouette``: ``pyspark.ml.evaluation.ClusteringEvaluator(metricName="silhouette",
  distanceMeasure="squaredEuclidean")`` on every row. Spark's silhouette is the
  silhouette of *squared* Euclidean distances (a point's mean squared distance to
  the other members of its segment against that to the nearest other segment),
  which it computes in linear time from per-segment sums; it equals
  ``sklearn.metrics.silhouette_score(X, labels, metric="sqeuclidean")``, not the
  Euclidean silhouette engine=sklearn logs, so a Spark run is tagged
  ``segexp.silhouette_space=squared_euclidean``;
- ``inertia``: the within-segment sum of squared distances to the segment means
  (as ``within_cluster_sum_of_squares``);
- ``calinski_harabasz`` and ``davies_bouldin``: scikit-learn's formulas from the
  per-segment counts, means, sums of squares and mean distances to the means;
- ``n_clusters``, ``noise_fraction`` (0: these algorithms leave no noise),
  ``min_segment_share``, ``max_segment_share``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from segexp.engines.spark_data import to_pandas
from segexp.model.metrics import Scores

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SILHOUETTE_SPACE = "squared_euclidean"


def segment_moments(
    assigned: DataFrame, features: str, segment: str, n_features: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(segment ids, sizes, means, sums of squared distances to the mean, mean distances
    to the mean), one entry per segment, ids ascending."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    points = assigned.select(
        F.col(segment).cast("long").alias("s"), vector_to_array(F.col(features)).alias("x")
    )
    sums = to_pandas(
        points.groupBy("s").agg(
            F.count(F.lit(1)).alias("n"),
            *[F.sum(F.col("x")[j]).alias(f"m{j}") for j in range(n_features)],
        )
    ).sort_values("s")
    ids = sums["s"].to_numpy(dtype=int)
    sizes = sums["n"].to_numpy(dtype=float)
    means = sums[[f"m{j}" for j in range(n_features)]].to_numpy(dtype=float) / sizes[:, None]
    table = points.sparkSession.createDataFrame(
        [(int(s), *map(float, m)) for s, m in zip(ids, means, strict=True)],
        ["s", *[f"c{j}" for j in range(n_features)]],
    )
    squared = sum(((F.col("x")[j] - F.col(f"c{j}")) ** 2 for j in range(n_features)), F.lit(0.0))
    spread = (
        to_pandas(
            points.join(F.broadcast(table), "s")
            .select("s", squared.alias("d2"))
            .groupBy("s")
            .agg(F.sum("d2").alias("ss"), F.avg(F.sqrt("d2")).alias("dist"))
        )
        .set_index("s")
        .reindex(ids)
    )
    return ids, sizes, means, spread["ss"].to_numpy(float), spread["dist"].to_numpy(float)


def spark_silhouette(assigned: DataFrame, features: str, segment: str) -> float:
    from pyspark.ml.evaluation import ClusteringEvaluator

    evaluator = ClusteringEvaluator(
        featuresCol=features,
        predictionCol=segment,
        metricName="silhouette",
        distanceMeasure="squaredEuclidean",
    )
    return float(evaluator.evaluate(assigned))


def score_assigned(assigned: DataFrame, features: str, segment: str, n_features: int) -> Scores:
    """The run's scores (see the module docstring); undefined ones with their reason."""
    ids, sizes, means, squares, distances = segment_moments(assigned, features, segment, n_features)
    scores = Scores()
    n_total = float(sizes.sum())
    n_clusters = len(ids)
    scores.values["n_clusters"] = float(n_clusters)
    scores.values["noise_fraction"] = 0.0
    scores.values["inertia"] = float(squares.sum())
    scores.values["min_segment_share"] = float(sizes.min() / n_total)
    scores.values["max_segment_share"] = float(sizes.max() / n_total)
    scores.notes["silhouette_space"] = SILHOUETTE_SPACE
    pairwise = ("silhouette", "calinski_harabasz", "davies_bouldin")
    if n_clusters < 2 or n_clusters >= n_total:
        what = (
            "only one segment was found"
            if n_clusters < 2
            else f"every customer is its own segment ({n_clusters} segments)"
        )
        for name in pairwise:
            scores.undefined[name] = (
                f"{what}; {name} needs 2 or more segments, fewer than customers"
            )
        return scores
    scores.values["silhouette"] = spark_silhouette(assigned, features, segment)
    scores.notes["silhouette_mode"] = "exact (Spark, every customer)"
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


def gmm_criteria(log_likelihood: float | None, n_components: int, n_features: int, n: int):
    """BIC and AIC of a full-covariance Gaussian mixture (scikit-learn's parameter count)."""
    if log_likelihood is None:
        return {}
    d = n_features
    parameters = n_components * d * (d + 1) / 2 + n_components * d + n_components - 1
    return {
        "bic": float(-2 * log_likelihood + parameters * np.log(n)),
        "aic": float(-2 * log_likelihood + 2 * parameters),
    }
