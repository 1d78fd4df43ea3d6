"""Clustering scores of one segmentation, in the space the clusterer saw.

Undefined is not zero: a score that does not exist for a result (one cluster,
all noise) is left out of ``values`` and its reason goes to ``undefined``,
which the tracker logs as ``segexp.undefined.<metric>`` tags. DBSCAN noise
(label -1) is excluded from the scores and reported as ``noise_fraction``.

Mixed data (a clusterer that took category codes, k-prototypes): the space has
categorical columns, so

- ``silhouette`` is computed on Gower distances (tag ``segexp.silhouette_space=gower``):
  between two customers, the mean over the feature columns of |a - b| / range for a
  numeric column (range over the scored customers; a constant column adds 0) and of
  0 (same category) / 1 (different) for a categorical one. Exact up to
  ``silhouette_max_rows`` customers, else on the seeded sample of that many that
  ``sklearn.metrics.silhouette_score(..., sample_size=, random_state=seed)`` draws;
  distances are built in row blocks, never as one n x n matrix;
- ``inertia`` is the clusterer's own objective ``cost_`` (k-prototypes: squared
  numeric distance + gamma x mismatches to the segment's prototype);
- ``calinski_harabasz`` and ``davies_bouldin`` are undefined (segment means and
  Euclidean distances of category codes mean nothing) and tagged so.
"""

from __future__ import annotations

from collections.abc import Sequence
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

GOWER_SPACE = "gower"
EUCLIDEAN_ONLY = ("calinski_harabasz", "davies_bouldin")

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


def gower_ranges(points: np.ndarray, categorical: Sequence[int]) -> np.ndarray:
    """Per-column range (max - min) of the points; 0 for the categorical columns."""
    ranges = np.ptp(points, axis=0).astype(float) if len(points) else np.zeros(points.shape[1])
    ranges[list(categorical)] = 0.0
    return ranges


def gower_distances(
    a: np.ndarray, b: np.ndarray, categorical: Sequence[int], ranges: np.ndarray
) -> np.ndarray:
    """Gower distance of every row of ``a`` to every row of ``b`` (len(a) x len(b))."""
    cats = set(int(c) for c in categorical)
    out = np.zeros((len(a), len(b)))
    for j in range(a.shape[1]):
        if j in cats:
            out += a[:, j, None] != b[None, :, j]
        elif ranges[j] > 0:
            out += np.abs(a[:, j, None] - b[None, :, j]) / ranges[j]
    return out / a.shape[1]


def gower_silhouette_samples(
    points: np.ndarray, labels: np.ndarray, categorical: Sequence[int], ranges: np.ndarray
) -> np.ndarray:
    """Silhouette of every point on Gower distances, as ``sklearn.metrics.silhouette_samples``
    computes it on a precomputed matrix (a singleton segment's points score 0), with the
    distances built in blocks of rows (memory bounded by _WORKING_MEMORY_MB)."""
    _, segment = np.unique(labels, return_inverse=True)
    counts = np.bincount(segment).astype(float)
    members = np.zeros((len(labels), len(counts)))
    members[np.arange(len(labels)), segment] = 1.0
    block = max(1, _WORKING_MEMORY_MB * 2**20 // (8 * 3 * max(len(labels), 1)))
    out = np.empty(len(labels))
    for start in range(0, len(labels), block):
        stop = min(start + block, len(labels))
        sums = gower_distances(points[start:stop], points, categorical, ranges) @ members
        rows, own = np.arange(stop - start), segment[start:stop]
        intra = sums[rows, own] / np.maximum(counts[own] - 1, 1)
        sums[rows, own] = np.inf
        inter = (sums / counts).min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (inter - intra) / np.maximum(intra, inter)
        values[counts[own] == 1] = 0.0
        out[start:stop] = np.nan_to_num(values)
    return out


def score_fitted(fitted, *, silhouette_max_rows: int = 10000, seed: int = 0) -> Scores:
    """``score_segmentation`` of a ``FittedSegmentation``: in its clusterer's space, mixed
    (Gower silhouette, the clusterer's ``cost_``) when it took category codes."""
    positions = tuple(getattr(fitted, "categorical_positions", ()) or ())
    cost = getattr(fitted.pipeline[-1], "cost_", None) if positions else None
    return score_segmentation(
        fitted.transformed,
        fitted.labels,
        silhouette_max_rows=silhouette_max_rows,
        seed=seed,
        categorical=positions,
        cost=cost,
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
    """Silhouette, inertia, Calinski-Harabasz, Davies-Bouldin and segment shares.

    ``categorical``: positions of columns holding category codes (mixed data, see the
    module docstring); ``cost``: the clusterer's own objective, logged as inertia then.
    """
    mixed = bool(len(categorical))
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
        if not mixed:
            scores.values["inertia"] = within_cluster_sum_of_squares(points_c, labels_c)
        elif cost is not None:
            scores.values["inertia"] = float(cost)
        else:
            scores.undefined["inertia"] = (
                "the clusterer took categorical features and reports no cost_; squared "
                "distances of category codes mean nothing"
            )
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

    if mixed:
        return _score_mixed(scores, points_c, labels_c, categorical, silhouette_max_rows, seed)
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


def _score_mixed(
    scores: Scores,
    points: np.ndarray,
    labels: np.ndarray,
    categorical: Sequence[int],
    silhouette_max_rows: int,
    seed: int,
) -> Scores:
    """Gower silhouette; the Euclidean-only scores undefined (see the module docstring)."""
    for name in EUCLIDEAN_ONLY:
        scores.undefined[name] = (
            f"{name} assumes Euclidean space (segment means and distances between them); "
            "the clusterer took categorical features as categories, which have neither; "
            "silhouette is on Gower distances (segexp.silhouette_space)"
        )
    scores.notes["silhouette_space"] = GOWER_SPACE
    ranges = gower_ranges(points, categorical)
    if len(labels) > silhouette_max_rows:
        # the sample silhouette_score(sample_size=, random_state=seed) draws
        chosen = np.random.RandomState(seed).permutation(len(labels))[:silhouette_max_rows]
        sample, sample_labels = points[chosen], labels[chosen]
        n_segments = len(np.unique(sample_labels))
        if not 2 <= n_segments < len(sample_labels):
            scores.undefined["silhouette"] = (
                f"the sample of {silhouette_max_rows} customers (metrics.silhouette_max_rows) "
                f"holds {n_segments} segments; silhouette needs 2 or more, fewer than customers"
            )
            return scores
        per_customer = gower_silhouette_samples(sample, sample_labels, categorical, ranges)
        scores.values["silhouette"] = float(np.mean(per_customer))
        scores.notes["silhouette_mode"] = (
            f"sampled: {silhouette_max_rows} of {len(labels)} customers "
            f"(metrics.silhouette_max_rows), seed {seed}"
        )
        return scores
    per_customer = gower_silhouette_samples(points, labels, categorical, ranges)
    scores.values["silhouette"] = float(np.mean(per_customer))
    scores.silhouette_per_customer, scores.silhouette_labels = per_customer, labels
    scores.notes["silhouette_mode"] = "exact"
    return scores


def mixture_criteria(model, points: np.ndarray) -> dict[str, float]:
    """BIC and AIC for models that define them (Gaussian mixtures)."""
    out = {}
    for name in ("bic", "aic"):
        method = getattr(model, name, None)
        if callable(method):
            out[name] = float(method(points))
    return out
