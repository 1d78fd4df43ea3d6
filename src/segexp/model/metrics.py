"""Clustering scores of one segmentation, in the space the clusterer saw.

Undefined is not zero: a score that does not exist for a result (one cluster,
all noise) is left out of ``values`` and its reason goes to ``undefined``,
which the tracker logs as ``segexp.undefined.<metric>`` tags. DBSCAN noise
(label -1) is excluded from the scores and reported as ``noise_fraction``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn import config_context
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_samples,
    silhouette_score,
)

from segexp.contract import NOISE_LABEL

# Bound the memory of pairwise-distance blocks (MiB) whatever the row count.
_WORKING_MEMORY_MB = 256


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
    total = 0.0
    for label in np.unique(labels):
        members = points[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def score_segmentation(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    silhouette_max_rows: int = 10000,
    seed: int = 0,
) -> Scores:
    """Silhouette, inertia, Calinski-Harabasz, Davies-Bouldin and segment shares."""
    scores = Scores()
    n_total = len(labels)
    clustered = labels != NOISE_LABEL
    points_c, labels_c = points[clustered], labels[clustered]
    segment_ids, sizes = np.unique(labels_c, return_counts=True)
    n_clusters = len(segment_ids)
    scores.values["n_clusters"] = float(n_clusters)
    scores.values["noise_fraction"] = float(1.0 - clustered.mean()) if n_total else 0.0
    if n_clusters == 0:
        reason = "all customers are noise: no segment was found"
        for name in ("inertia", "min_segment_share", "max_segment_share"):
            scores.undefined[name] = reason
    else:
        scores.values["inertia"] = within_cluster_sum_of_squares(points_c, labels_c)
        scores.values["min_segment_share"] = float(sizes.min() / n_total)
        scores.values["max_segment_share"] = float(sizes.max() / n_total)

    pairwise = ("silhouette", "calinski_harabasz", "davies_bouldin")
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

    with config_context(working_memory=_WORKING_MEMORY_MB):
        if len(labels_c) > silhouette_max_rows:
            scores.values["silhouette"] = float(
                silhouette_score(
                    points_c, labels_c, sample_size=silhouette_max_rows, random_state=seed
                )
            )
            scores.notes["silhouette_mode"] = (
                f"sampled: {silhouette_max_rows} of {len(labels_c)} customers "
                f"(metrics.silhouette_max_rows), seed {seed}"
            )
        else:
            per_customer = silhouette_samples(points_c, labels_c)
            # silhouette_score is exactly this mean; computing the samples once feeds the plot
            scores.values["silhouette"] = float(np.mean(per_customer))
            scores.silhouette_per_customer, scores.silhouette_labels = per_customer, labels_c
            scores.notes["silhouette_mode"] = "exact"
    scores.values["calinski_harabasz"] = float(calinski_harabasz_score(points_c, labels_c))
    scores.values["davies_bouldin"] = float(davies_bouldin_score(points_c, labels_c))
    return scores


def mixture_criteria(model, points: np.ndarray) -> dict[str, float]:
    """BIC and AIC for models that define them (Gaussian mixtures)."""
    out = {}
    for name in ("bic", "aic"):
        method = getattr(model, name, None)
        if callable(method):
            out[name] = float(method(points))
    return out
