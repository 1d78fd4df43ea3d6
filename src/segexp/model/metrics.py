"""Clustering scores of one segmentation in the space the clusterer saw (docs/tracking.md).

A score that does not exist (one cluster, all noise) is left out of ``values`` and its
reason goes to ``undefined``; DBSCAN noise (-1) is left out and counted as
``noise_fraction``. Mixed data (category codes, k-prototypes): silhouette on Gower
distances, inertia = the clusterer's ``cost_``, no Calinski-Harabasz / Davies-Bouldin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

from segexp.contract import NOISE_LABEL

GOWER_SPACE = "gower"
EUCLIDEAN_ONLY = ("calinski_harabasz", "davies_bouldin")
_WORKING_MEMORY_MB = 256  # pairwise-distance blocks, whatever the row count


@dataclass
class Scores:
    """Metric values that exist, and the reasons for those that do not."""

    values: dict[str, float] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # Per-customer silhouette of the scored customers (exact mode only), for the diagram.
    silhouette_per_customer: np.ndarray | None = None
    silhouette_labels: np.ndarray | None = None


def within_cluster_sum_of_squares(points: np.ndarray, labels: np.ndarray) -> float:
    """Inertia for any algorithm: squared distances to each segment's mean, summed."""
    gaps = points - pd.DataFrame(points).groupby(labels).transform("mean").to_numpy()
    return float(np.square(gaps, out=gaps).sum())


def gower_space(points: np.ndarray, categorical: Sequence[int]) -> np.ndarray:
    """Points whose Manhattan distances are the Gower distances times the column count (the
    silhouette ignores a common factor): numeric columns over their range, halved one-hots."""
    cats = sorted(int(c) for c in categorical)
    numeric = np.delete(points, cats, axis=1).astype(float)
    ranges = np.ptp(numeric, axis=0)
    parts = [numeric[:, ranges > 0] / ranges[ranges > 0]]
    for c in cats:
        codes = np.unique(points[:, c], return_inverse=True)[1].ravel()
        parts.append(np.eye(codes.max() + 1)[codes] / 2)
    return np.hstack(parts)


def score_fitted(fitted, *, silhouette_max_rows: int = 10000, seed: int = 0) -> Scores:
    """``score_segmentation`` of a ``FittedSegmentation`` in its clusterer's space."""
    positions = fitted.categorical_positions
    return score_segmentation(
        fitted.transformed,
        fitted.labels,
        silhouette_max_rows=silhouette_max_rows,
        seed=seed,
        categorical=positions,
        cost=getattr(fitted.pipeline[-1], "cost_", None) if positions else None,
    )


def score_segmentation(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    silhouette_max_rows: int = 10000,
    seed: int = 0,
    categorical: Sequence[int] = (),
    cost: float | None = None,
) -> Scores:
    """Silhouette, inertia, Calinski-Harabasz, Davies-Bouldin and segment shares
    (``categorical``: the category-code columns; ``cost``: their clusterer's objective)."""
    mixed = bool(len(categorical))
    scores = Scores()
    clustered = labels != NOISE_LABEL
    points_c, labels_c = points[clustered], labels[clustered]
    sizes = np.unique(labels_c, return_counts=True)[1]
    n_clusters = len(sizes)
    scores.values["n_clusters"] = float(n_clusters)
    scores.values["noise_fraction"] = float(1.0 - clustered.mean()) if len(labels) else 0.0
    if n_clusters == 0:
        reason = "all customers are noise: no segment was found"
        for name in ("inertia", "min_segment_share", "max_segment_share"):
            scores.undefined[name] = reason
    else:
        if not mixed:
            scores.values["inertia"] = within_cluster_sum_of_squares(points_c, labels_c)
        elif cost is not None:
            scores.values["inertia"] = float(cost)
        else:
            scores.undefined["inertia"] = (
                "the clusterer took categorical features and reports no cost_; squared "
                "distances of category codes mean nothing"
            )
        scores.values["min_segment_share"] = float(sizes.min() / len(labels))
        scores.values["max_segment_share"] = float(sizes.max() / len(labels))

    pairwise = ("silhouette", *EUCLIDEAN_ONLY)
    if n_clusters < 2:
        what = "all customers are noise" if n_clusters == 0 else "only one segment was found"
        for name in pairwise:
            scores.undefined[name] = f"{what}; {name} needs at least 2 segments"
        return scores
    if n_clusters >= len(labels_c):
        for name in pairwise:
            scores.undefined[name] = (
                f"every scored customer is its own segment ({n_clusters} segments for "
                f"{len(labels_c)} customers); {name} needs fewer segments than customers"
            )
        return scores

    space, metric = points_c, "euclidean"
    if mixed:
        for name in EUCLIDEAN_ONLY:
            scores.undefined[name] = (
                f"{name} assumes Euclidean space (segment means and distances between them); "
                "the clusterer took categorical features as categories, which have neither; "
                "silhouette is on Gower distances (segexp.silhouette_space)"
            )
        scores.notes["silhouette_space"] = GOWER_SPACE
        space, metric = gower_space(points_c, categorical), "manhattan"
    with config_context(working_memory=_WORKING_MEMORY_MB):
        if len(labels_c) > silhouette_max_rows:
            try:
                value = silhouette_score(
                    space, labels_c, metric=metric, sample_size=silhouette_max_rows,
                    random_state=seed,
                )  # fmt: skip
            except ValueError:  # the sample holds one segment, or one per customer
                scores.undefined["silhouette"] = (
                    f"the sample of {silhouette_max_rows} customers (metrics.silhouette_max_rows) "
                    "holds too few or too many segments; silhouette needs 2 or more, fewer "
                    "than customers"
                )
            else:
                scores.values["silhouette"] = float(value)
                scores.notes["silhouette_mode"] = (
                    f"sampled: {silhouette_max_rows} of {len(labels_c)} customers "
                    f"(metrics.silhouette_max_rows), seed {seed}"
                )
        else:
            per_customer = silhouette_samples(space, labels_c, metric=metric)
            # silhouette_score is exactly this mean; computing the samples once feeds the plot
            scores.values["silhouette"] = float(np.mean(per_customer))
            scores.silhouette_per_customer, scores.silhouette_labels = per_customer, labels_c
            scores.notes["silhouette_mode"] = "exact"
    if not mixed:
        scores.values["calinski_harabasz"] = float(calinski_harabasz_score(points_c, labels_c))
        scores.values["davies_bouldin"] = float(davies_bouldin_score(points_c, labels_c))
    return scores


def mixture_criteria(model, points: np.ndarray) -> dict[str, float]:
    """BIC and AIC for models that define them (Gaussian mixtures)."""
    return {
        name: float(getattr(model, name)(points))
        for name in ("bic", "aic")
        if callable(getattr(model, name, None))
    }
