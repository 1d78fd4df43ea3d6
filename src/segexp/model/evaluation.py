"""Evidence about one fitted segmentation beyond its own-space scores.

``evaluate_run`` adds, per run (keys under ``evaluation.*`` in the config):

- Reference-space scores ``ref_silhouette``, ``ref_calinski_harabasz``,
  ``ref_davies_bouldin``: the run's segments scored in ONE fixed space per
  dataset, so runs with different scalers or feature subsets are comparable.
  The space: every column of the data config's ``numeric`` list that is present,
  numeric and not constant (id and label columns excluded), standardized with
  the mean and standard deviation of the whole loaded table. Noise (label -1)
  and customers with a missing reference value are left out of these scores.
- ``stability``: fits of a clone of the run's pipeline on seeded resamples of
  its customers (subsample without replacement, or bootstrap), the adjusted
  Rand index of every pair of fits on the customers both contain, averaged.
- ``ari``/``nmi`` against the data's label column when it has one (noise
  counts as its own segment).
- For algorithms with an ``eps`` hyperparameter (DBSCAN, OPTICS): the sorted
  distance of every customer to its ``min_samples``-th nearest neighbour (the
  point itself counted, as DBSCAN counts it) as a figure, and its Kneedle
  knee logged as ``suggested_eps``.

Undefined values are absent and ``undefined`` says why; never 0 or NaN.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import NearestNeighbors

from segexp.data.load import CustomerTable
from segexp.errors import ConfigError
from segexp.model.metrics import score_segmentation
from segexp.model.pipeline import FittedSegmentation

if TYPE_CHECKING:  # matplotlib loads only where a figure is drawn, not in every job
    from matplotlib.figure import Figure

STABILITY_METHODS = ("subsample", "bootstrap")
REFERENCE_METRICS = ("silhouette", "calinski_harabasz", "davies_bouldin")
K_DISTANCE_FIGURE = "k_distance"
_ABSENT = np.iinfo(np.int64).min  # a customer not drawn into a resample
# A refit's thread limit, from its row count (segexp.jobs.threads.ThreadPolicy.limit).
ThreadLimit = Callable[[int], contextlib.AbstractContextManager]


def _no_limit(n_rows: int) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


@dataclass
class EvaluationResult:
    """Extra metrics of a run, reasons for the undefined ones, figures and notes (tags)."""

    values: dict[str, float] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # figure name -> keyword arguments of save_k_distance_plot, for drawing it later elsewhere
    plot_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationSettings:
    """The ``evaluation`` config group, validated."""

    reference_space: bool = True
    n_resamples: int = 6
    fraction: float = 0.8
    method: str = "subsample"
    max_rows: int = 20000
    ground_truth: bool = True
    k_distance: bool = True


def _section(cfg: Any, key: str) -> Mapping[str, Any]:
    value = cfg.get(key) if cfg is not None else None
    if value is None:
        return {}
    if isinstance(value, DictConfig):
        # OmegaConf types a container's keys as any DictKeyType; a config section's are names
        return cast("dict[str, Any]", OmegaConf.to_container(value, resolve=True))
    return dict(value)


def _flag(section: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false; got {value!r}")
    return value


def evaluation_settings(cfg: DictConfig | Mapping[str, Any]) -> EvaluationSettings:
    """Read and check ``cfg.evaluation``; ConfigError naming the key on a bad value."""
    section = _section(cfg, "evaluation")
    stability = dict(section.get("stability") or {})
    defaults = EvaluationSettings()
    n_resamples = stability.get("n_resamples", defaults.n_resamples)
    if (
        not isinstance(n_resamples, int)
        or isinstance(n_resamples, bool)
        or n_resamples < 0
        or n_resamples == 1
    ):
        raise ConfigError(
            "evaluation.stability.n_resamples: must be 0 (stability off) or an integer >= 2 "
            f"(pairs of fits are compared); got {n_resamples!r}"
        )
    method = stability.get("method", defaults.method)
    if method not in STABILITY_METHODS:
        raise ConfigError(
            f"evaluation.stability.method: allowed values are {', '.join(STABILITY_METHODS)}; "
            f"got {method!r}"
        )
    fraction = stability.get("fraction", defaults.fraction)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise ConfigError(
            "evaluation.stability.fraction: the share of customers per subsample must be a "
            f"number in (0, 1]; got {fraction!r}"
        )
    max_rows = stability.get("max_rows", defaults.max_rows)
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 10:
        raise ConfigError(
            f"evaluation.stability.max_rows: must be an integer >= 10; got {max_rows!r}"
        )
    return EvaluationSettings(
        reference_space=_flag(section, "reference_space", "evaluation.reference_space", True),
        n_resamples=int(n_resamples),
        fraction=float(fraction),
        method=str(method),
        max_rows=int(max_rows),
        ground_truth=_flag(section, "ground_truth", "evaluation.ground_truth", True),
        k_distance=_flag(section, "k_distance", "evaluation.k_distance", True),
    )


# ---------------------------------------------------------------- reference space


def reference_columns(table: CustomerTable, numeric: Sequence[str]) -> list[str]:
    """Clustering-eligible numeric columns: declared numeric, present, numeric, not constant."""
    frame = table.frame
    excluded = {table.id_column, table.label_column}
    columns = []
    for column in numeric:
        if column in excluded or column not in frame.columns:
            continue
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values):
            continue
        if values.nunique(dropna=True) < 2:
            continue
        columns.append(str(column))
    return columns


def reference_space(table: CustomerTable, numeric: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every table row in the reference space (z-scores over the whole table; NaN kept)."""
    columns = reference_columns(table, numeric)
    values = table.frame[columns].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are not eligible
        mean = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0)
    return (values - mean) / sd, columns


def reference_scores(
    table: CustomerTable,
    fitted: FittedSegmentation,
    numeric: Sequence[str],
    *,
    silhouette_max_rows: int = 10000,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """ref_silhouette, ref_calinski_harabasz, ref_davies_bouldin: values, undefined, notes."""
    names = [f"ref_{m}" for m in REFERENCE_METRICS]
    space, columns = reference_space(table, numeric)
    if not columns:
        reason = (
            "no clustering-eligible numeric column (the table's numeric columns: none that is "
            "present, numeric and not constant)"
        )
        return {}, dict.fromkeys(names, reason), {}
    points = space[fitted.kept_rows]
    complete = ~np.isnan(points).any(axis=1)
    notes = {"reference_columns": ",".join(columns)}
    if not complete.all():
        notes["reference_rows_skipped"] = (
            f"{int((~complete).sum())} customers with a missing value in a reference column"
        )
    scores = score_segmentation(
        points[complete],
        fitted.labels[complete],
        silhouette_max_rows=silhouette_max_rows,
        seed=seed,
    )
    values = {f"ref_{m}": scores.values[m] for m in REFERENCE_METRICS if m in scores.values}
    undefined = {
        f"ref_{m}": scores.undefined[m] for m in REFERENCE_METRICS if m in scores.undefined
    }
    return values, undefined, notes


# ---------------------------------------------------------------------- stability


def resample_positions(
    n_rows: int, n_resamples: int, method: str, fraction: float, seed: int
) -> list[np.ndarray]:
    """Seeded row positions of each resample (subsample: sorted, without replacement)."""
    rng = np.random.default_rng(seed)
    if method == "bootstrap":
        return [rng.integers(0, n_rows, size=n_rows) for _ in range(n_resamples)]
    size = max(2, int(round(fraction * n_rows)))
    return [np.sort(rng.choice(n_rows, size=size, replace=False)) for _ in range(n_resamples)]


def adjusted_rand(first: np.ndarray, second: np.ndarray) -> float:
    """Adjusted Rand index from the pair counts of the contingency table.

    The same value as ``sklearn.metrics.adjusted_rand_score`` (tests compare them), without
    its input validation: stability computes 15 of these per run on integer labels.
    """
    _, first_ids = np.unique(first, return_inverse=True)
    _, second_ids = np.unique(second, return_inverse=True)
    table = np.zeros((first_ids.max() + 1, second_ids.max() + 1), dtype=np.int64)
    np.add.at(table, (first_ids, second_ids), 1)
    n = len(first_ids)
    sum_squares = int((table.astype(np.int64) ** 2).sum())
    row_squares = int((table.sum(axis=1).astype(np.int64) ** 2).sum())
    col_squares = int((table.sum(axis=0).astype(np.int64) ** 2).sum())
    # sklearn's pair confusion matrix (tn, fp; fn, tp), in exact integers
    tp = sum_squares - n
    fp = row_squares - sum_squares
    fn = col_squares - sum_squares
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def pairwise_agreement(assignments: Sequence[np.ndarray]) -> list[float]:
    """ARI of every pair of resample labellings on the customers both contain."""
    scores = []
    for first, second in itertools.combinations(assignments, 2):
        shared = (first != _ABSENT) & (second != _ABSENT)
        if shared.sum() >= 2:
            scores.append(adjusted_rand(first[shared], second[shared]))
    return scores


def resample_stability(
    fitted: FittedSegmentation,
    *,
    n_resamples: int = 6,
    fraction: float = 0.8,
    method: str = "subsample",
    seed: int = 0,
    max_rows: int = 20000,
    limit: ThreadLimit | None = None,
) -> tuple[float | None, str, dict[str, str]]:
    """Mean pairwise ARI of refits on resamples: (value, '', notes) or (None, reason, notes).

    Each resample refits a clone of the run's clusterer (same hyperparameters and
    random_state) on the rows it drew, in the run's feature space (the fitted
    preprocessing is a fixed map of each customer: refitting it per resample would only
    add its own sampling noise and cost). Tables above ``max_rows`` customers are first
    cut to a seeded subset of that many. ``limit(n_rows)``: the thread limit each refit
    runs under, chosen for its own size (segexp.jobs.threads).
    """
    rng = np.random.default_rng(seed)
    n_rows = len(fitted.features)
    base = np.arange(n_rows)
    notes = {
        "stability_method": (
            f"{method}, {n_resamples} resamples"
            + (f" of {fraction:g} of the customers" if method == "subsample" else "")
            + f", seed {seed}"
        )
    }
    if n_rows > max_rows:
        base = np.sort(rng.choice(n_rows, size=max_rows, replace=False))
        notes["stability_method"] += (
            f"; within a random {max_rows} of {n_rows} customers (evaluation.stability.max_rows)"
        )
    assignments: list[np.ndarray] = []
    errors: list[str] = []
    warned: set[str] = set()
    for positions in resample_positions(len(base), n_resamples, method, fraction, seed):
        rows = base[positions]
        try:
            with (
                warnings.catch_warnings(record=True) as caught,
                (limit or _no_limit)(len(rows)),
            ):
                warnings.simplefilter("always")
                labels = clone(fitted.pipeline[-1]).fit_predict(fitted.transformed[rows])
            warned.update(str(w.message) for w in caught)
        except Exception as exc:  # a resample too small or degenerate for the algorithm
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        labelled = np.full(n_rows, _ABSENT, dtype=np.int64)
        labelled[rows] = np.asarray(labels, dtype=np.int64)
        assignments.append(labelled)
    if warned:
        notes["stability_warnings"] = " | ".join(sorted(warned))
    if errors:
        notes["stability_failed_fits"] = f"{len(errors)} of {n_resamples}: {errors[0]}"
    if len(assignments) < 2:
        reason = f"only {len(assignments)} of {n_resamples} resample fits succeeded"
        return None, reason + (f" ({errors[0]})" if errors else ""), notes
    scores = pairwise_agreement(assignments)
    if not scores:
        return None, "no two resamples share 2 or more customers", notes
    return float(np.mean(scores)), "", notes


# ------------------------------------------------------------------- ground truth


def ground_truth_scores(table: CustomerTable, fitted: FittedSegmentation) -> dict[str, float]:
    """ARI and NMI of the run's segments against the label column (rows with a label)."""
    truth = table.frame[table.label_column].iloc[fitted.kept_rows]
    known = truth.notna().to_numpy()
    truth_values = truth.astype(str).to_numpy()[known]
    predicted = fitted.labels[known]
    return {
        "ari": float(adjusted_rand_score(truth_values, predicted)),
        "nmi": float(normalized_mutual_info_score(truth_values, predicted)),
    }


# ----------------------------------------------------------------- DBSCAN k-distance


def k_distances(points: np.ndarray, min_samples: int, metric: str = "euclidean") -> np.ndarray:
    """Sorted distance of every point to its ``min_samples``-th neighbour, itself included."""
    n_neighbors = min(int(min_samples), len(points))
    finder = NearestNeighbors(n_neighbors=n_neighbors, metric=metric).fit(points)
    distances, _ = finder.kneighbors(points)
    return np.sort(distances[:, -1])


def suggest_eps(sorted_distances: np.ndarray) -> float | None:
    """The k-distance at the knee of the sorted curve (Kneedle, convex increasing)."""
    from kneed import KneeLocator

    if len(sorted_distances) < 3 or np.ptp(sorted_distances) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        locator = KneeLocator(
            np.arange(len(sorted_distances), dtype=float),
            sorted_distances,
            curve="convex",
            direction="increasing",
        )
    if locator.knee is None:
        return None
    return float(sorted_distances[int(locator.knee)])


def eps_evidence(
    fitted: FittedSegmentation, title: str = ""
) -> tuple[dict[str, float], dict[str, str], dict[str, Any] | None]:
    """suggested_eps (or why not) and the k-distance plot inputs, for an ``eps`` clusterer."""
    params = fitted.pipeline[-1].get_params()
    min_samples = int(params.get("min_samples") or 5)
    metric = params.get("metric", "euclidean")
    if not isinstance(metric, str) or metric == "precomputed":
        reason = f"k-distance needs a named distance metric; the algorithm uses {metric!r}"
        return {}, {"suggested_eps": reason}, None
    if len(fitted.transformed) <= min_samples:
        reason = f"{len(fitted.transformed)} customers; k-distance needs more than {min_samples}"
        return {}, {"suggested_eps": reason}, None
    distances = k_distances(fitted.transformed, min_samples, metric)
    suggested = suggest_eps(distances)
    current = params.get("eps")
    inputs = {
        "sorted_distances": distances,
        "min_samples": min_samples,
        "suggested": suggested,
        "current": float(current) if isinstance(current, int | float) else None,
        "title": title,
    }
    if suggested is None:
        return {}, {"suggested_eps": "Kneedle found no knee in the sorted k-distances"}, inputs
    return {"suggested_eps": suggested}, {}, inputs


# ------------------------------------------------------------------------- entry


def _as_config(cfg: DictConfig | Mapping[str, Any]) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def _get(cfg: DictConfig, dotted: str, default: Any = None) -> Any:
    value = OmegaConf.select(cfg, dotted, default=default)
    return (
        OmegaConf.to_container(value, resolve=True)
        if isinstance(value, DictConfig | ListConfig)
        else value
    )


def evaluate_run(
    table: CustomerTable,
    fitted: FittedSegmentation,
    cfg: DictConfig | Mapping[str, Any],
    *,
    title: str = "",
    figures: bool = True,
    limit: ThreadLimit | None = None,
) -> EvaluationResult:
    """Reference-space scores, stability, ground truth and eps evidence of one fitted run.

    ``figures=False`` skips building Figure objects; ``plot_inputs`` still holds what
    ``save_k_distance_plot`` needs to draw them later (e.g. in a publishing worker).
    """
    cfg = _as_config(cfg)
    settings = evaluation_settings(cfg)
    seed = int(_get(cfg, "seed", 0))
    result = EvaluationResult()
    numeric = table.numeric

    if settings.reference_space:
        values, undefined, notes = reference_scores(
            table,
            fitted,
            numeric,
            silhouette_max_rows=int(_get(cfg, "metrics.silhouette_max_rows", 10000)),
            seed=seed,
        )
        result.values.update(values)
        result.undefined.update(undefined)
        result.notes.update(notes)

    if settings.n_resamples:
        value, reason, notes = resample_stability(
            fitted,
            n_resamples=settings.n_resamples,
            fraction=settings.fraction,
            method=settings.method,
            seed=seed,
            max_rows=settings.max_rows,
            limit=limit,
        )
        result.notes.update(notes)
        if value is None:
            result.undefined["stability"] = reason
        else:
            result.values["stability"] = value

    if settings.ground_truth and table.label_column is not None:  # set, or found (auto)
        result.values.update(ground_truth_scores(table, fitted))

    if settings.k_distance and "eps" in fitted.pipeline[-1].get_params():
        values, undefined, inputs = eps_evidence(fitted, title)
        result.values.update(values)
        result.undefined.update(undefined)
        if inputs is not None:
            result.plot_inputs[K_DISTANCE_FIGURE] = inputs
            if figures:
                from segexp.insight.plots import k_distance_figure

                result.figures[K_DISTANCE_FIGURE] = k_distance_figure(**inputs)
    return result
