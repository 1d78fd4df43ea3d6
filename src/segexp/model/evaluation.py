"""Evidence about one fitted segmentation beyond its own-space scores (docs/sweeps.md).

Reference-space scores (one z-scored space per dataset, so runs with different scalers or
features compare), resample stability, ground truth, and DBSCAN's k-distance evidence.
Undefined values are absent and ``undefined`` says why; never 0 or NaN.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import NearestNeighbors

from segexp.data.load import CustomerTable
from segexp.errors import ConfigError
from segexp.model.metrics import Scores, score_segmentation
from segexp.model.pipeline import FittedSegmentation

if TYPE_CHECKING:  # matplotlib loads only where a figure is drawn, not in every job
    from matplotlib.figure import Figure

STABILITY_METHODS = ("subsample", "bootstrap")
REFERENCE_METRICS = ("silhouette", "calinski_harabasz", "davies_bouldin")
K_DISTANCE_FIGURE = "k_distance"
_ABSENT = np.iinfo(np.int64).min  # a customer not drawn into a resample
# A refit's thread limit, from its row count (segexp.jobs.threads.ThreadPolicy.limit).
ThreadLimit = Callable[[int], contextlib.AbstractContextManager]


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


def evaluation_settings(cfg: DictConfig) -> EvaluationSettings:
    """Read and check ``cfg.evaluation`` (types: the schema's); ConfigError naming the key."""
    given = OmegaConf.to_container(cfg.get("evaluation") or OmegaConf.create(), resolve=True)
    assert isinstance(given, dict)  # a DictConfig's container is a dict
    values = {**given, **(given.pop("stability", None) or {})}
    fields = EvaluationSettings.__dataclass_fields__
    settings = EvaluationSettings(**{k: v for k, v in values.items() if k in fields})
    n, fraction, rows = settings.n_resamples, settings.fraction, settings.max_rows
    rules = {
        "stability.n_resamples": (
            isinstance(n, int) and not isinstance(n, bool) and (n == 0 or n >= 2),
            "must be 0 (stability off) or an integer >= 2 (pairs of fits are compared)",
        ),
        "stability.method": (
            settings.method in STABILITY_METHODS,
            f"allowed values are {', '.join(STABILITY_METHODS)}",
        ),
        "stability.fraction": (
            isinstance(fraction, int | float)
            and not isinstance(fraction, bool)
            and 0 < fraction <= 1,
            "the share of customers per subsample must be a number in (0, 1]",
        ),
        "stability.max_rows": (
            isinstance(rows, int) and not isinstance(rows, bool) and rows >= 10,
            "must be an integer >= 10",
        ),
    }
    for name in ("reference_space", "ground_truth", "k_distance"):
        rules[name] = (isinstance(getattr(settings, name), bool), "must be true or false")
    for key, (ok, rule) in rules.items():
        if not ok:
            got = getattr(settings, key.rsplit(".", 1)[-1])
            raise ConfigError(f"evaluation.{key}: {rule}; got {got!r}")
    return settings


def reference_columns(table: CustomerTable, numeric: Sequence[str]) -> list[str]:
    """Clustering-eligible numeric columns: declared numeric, present, numeric, not constant."""
    frame = table.frame
    return [
        str(column)
        for column in numeric
        if column not in (table.id_column, table.label_column)
        and column in frame.columns
        and pd.api.types.is_numeric_dtype(frame[column].dtype)
        and not pd.api.types.is_bool_dtype(frame[column])
        and frame[column].nunique(dropna=True) >= 2
    ]


def reference_space(table: CustomerTable, numeric: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every table row in the reference space (z-scores over the whole table; NaN kept)."""
    columns = reference_columns(table, numeric)
    frame = table.frame[columns].astype(float)  # pandas' column stats: 3x numpy's nan* at 10M
    spread = frame.std(ddof=0).to_numpy()
    return (frame.to_numpy() - frame.mean().to_numpy()) / spread, columns


def _reference_scores(
    table: CustomerTable,
    fitted: FittedSegmentation,
    result: EvaluationResult,
    max_rows: int,
    seed: int,
    fit_scores: Scores | None = None,
) -> None:
    """ref_silhouette, ref_calinski_harabasz, ref_davies_bouldin, or why not, into ``result``
    (``fit_scores``: the scores in the fit's space, reused when that space is the same)."""
    space, columns = reference_space(table, table.numeric)
    if not columns:
        reason = "no clustering-eligible numeric column (the table's numeric columns: none that "
        reason += "is present, numeric and not constant)"
        result.undefined.update({f"ref_{m}": reason for m in REFERENCE_METRICS})
        return
    points = space[fitted.kept_rows]
    complete = ~np.isnan(points).any(axis=1)
    result.notes["reference_columns"] = ",".join(columns)
    if not complete.all():
        skipped = int((~complete).sum())
        result.notes["reference_rows_skipped"] = (
            f"{skipped} customers with a missing value in a reference column"
        )
    points = points[complete]
    same_space = (
        fit_scores is not None
        and complete.all()
        and not fitted.categorical_positions
        and points.shape == fitted.transformed.shape
        and np.allclose(points, fitted.transformed)
    )  # e.g. scaler=standard on every numeric column: the same scores, not computed twice
    scores = (
        fit_scores
        if same_space and fit_scores is not None
        else score_segmentation(
            points, fitted.labels[complete], silhouette_max_rows=max_rows, seed=seed
        )
    )
    result.values.update(
        {f"ref_{m}": v for m, v in scores.values.items() if m in REFERENCE_METRICS}
    )
    result.undefined.update(
        {f"ref_{m}": why for m, why in scores.undefined.items() if m in REFERENCE_METRICS}
    )


def resample_positions(
    n_rows: int, n_resamples: int, method: str, fraction: float, seed: int
) -> list[np.ndarray]:
    """Seeded row positions of each resample (subsample: sorted, without replacement)."""
    rng = np.random.default_rng(seed)
    if method == "bootstrap":
        return [rng.integers(0, n_rows, size=n_rows) for _ in range(n_resamples)]
    size = max(2, int(round(fraction * n_rows)))
    return [np.sort(rng.choice(n_rows, size=size, replace=False)) for _ in range(n_resamples)]


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

    Refits the clusterer alone, in the run's feature space: the fitted preprocessing is a
    fixed map of each customer, and refitting it would only add noise.
    """
    rng = np.random.default_rng(seed)
    n_rows = len(fitted.features)
    base = np.arange(n_rows)
    share = f" of {fraction:g} of the customers" if method == "subsample" else ""
    note = f"{method}, {n_resamples} resamples{share}, seed {seed}"
    if n_rows > max_rows:
        base = np.sort(rng.choice(n_rows, size=max_rows, replace=False))
        note += (
            f"; within a random {max_rows} of {n_rows} customers (evaluation.stability.max_rows)"
        )
    notes = {"stability_method": note}
    assignments: list[np.ndarray] = []
    errors: list[str] = []
    warned: set[str] = set()
    for positions in resample_positions(len(base), n_resamples, method, fraction, seed):
        rows = base[positions]
        try:
            with (
                warnings.catch_warnings(record=True) as caught,
                limit(len(rows)) if limit else contextlib.nullcontext(),
            ):
                warnings.simplefilter("always")
                labels = clone(fitted.pipeline[-1]).fit_predict(fitted.transformed[rows])
            warned.update(str(w.message) for w in caught)
        except Exception as exc:  # a resample too small or degenerate for the algorithm
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        labelled = np.full(n_rows, _ABSENT, dtype=np.int64)
        labelled[rows] = labels
        assignments.append(labelled)
    if warned:
        notes["stability_warnings"] = " | ".join(sorted(warned))
    if errors:
        notes["stability_failed_fits"] = f"{len(errors)} of {n_resamples}: {errors[0]}"
    if len(assignments) < 2:
        reason = f"only {len(assignments)} of {n_resamples} resample fits succeeded"
        return None, reason + (f" ({errors[0]})" if errors else ""), notes
    scores = []
    for first, second in itertools.combinations(assignments, 2):
        shared = (first != _ABSENT) & (second != _ABSENT)
        if shared.sum() >= 2:
            scores.append(adjusted_rand_score(first[shared], second[shared]))
    if not scores:
        return None, "no two resamples share 2 or more customers", notes
    return float(np.mean(scores)), "", notes


def _eps_evidence(fitted: FittedSegmentation, result: EvaluationResult, title: str) -> None:
    """suggested_eps (or why not) and the k-distance plot inputs, for an ``eps`` clusterer."""
    params = fitted.pipeline[-1].get_params()
    min_samples = int(params.get("min_samples") or 5)
    metric = params.get("metric", "euclidean")
    if not isinstance(metric, str) or metric == "precomputed":
        reason = f"k-distance needs a named distance metric; the algorithm uses {metric!r}"
        result.undefined["suggested_eps"] = reason
        return
    if len(fitted.transformed) <= min_samples:
        reason = f"{len(fitted.transformed)} customers; k-distance needs more than {min_samples}"
        result.undefined["suggested_eps"] = reason
        return
    # the distance of every customer to its min_samples-th neighbour, itself included
    finder = NearestNeighbors(n_neighbors=min_samples, metric=metric).fit(fitted.transformed)
    distances = np.sort(finder.kneighbors(fitted.transformed)[0][:, -1])
    suggested = None
    if len(distances) >= 3 and np.ptp(distances) > 0:  # the knee of the sorted curve
        from kneed import KneeLocator  # imports scipy.signal (~0.6 s): density runs only

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = np.arange(len(distances), dtype=float)
            knee = KneeLocator(index, distances, curve="convex", direction="increasing").knee
        suggested = None if knee is None else float(distances[int(knee)])
    if suggested is None:
        result.undefined["suggested_eps"] = "Kneedle found no knee in the sorted k-distances"
    else:
        result.values["suggested_eps"] = suggested
    current = params.get("eps")
    result.plot_inputs[K_DISTANCE_FIGURE] = {
        "sorted_distances": distances,
        "min_samples": min_samples,
        "suggested": suggested,
        "current": float(current) if isinstance(current, int | float) else None,
        "title": title,
    }


def evaluate_run(
    table: CustomerTable,
    fitted: FittedSegmentation,
    cfg: DictConfig,
    *,
    title: str = "",
    figures: bool = True,
    limit: ThreadLimit | None = None,
    fit_scores: Scores | None = None,
) -> EvaluationResult:
    """Reference-space scores, stability, ground truth and eps evidence of one fitted run
    (``figures=False``: no Figure, ``plot_inputs`` holds what draws it later)."""
    settings = evaluation_settings(cfg)
    seed = int(cfg.get("seed", 0))
    result = EvaluationResult()
    if settings.reference_space:
        max_rows = int(OmegaConf.select(cfg, "metrics.silhouette_max_rows", default=10000))
        _reference_scores(table, fitted, result, max_rows, seed, fit_scores)
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
        truth = table.frame[table.label_column].iloc[fitted.kept_rows]
        known = truth.notna().to_numpy()
        truth_values, predicted = truth.astype(str).to_numpy()[known], fitted.labels[known]
        result.values["ari"] = float(adjusted_rand_score(truth_values, predicted))
        result.values["nmi"] = float(normalized_mutual_info_score(truth_values, predicted))
    if settings.k_distance and "eps" in fitted.pipeline[-1].get_params():
        _eps_evidence(fitted, result, title)
        if figures and K_DISTANCE_FIGURE in result.plot_inputs:
            from segexp.insight.plots import k_distance_figure  # matplotlib: only here

            inputs = result.plot_inputs[K_DISTANCE_FIGURE]
            result.figures[K_DISTANCE_FIGURE] = k_distance_figure(**inputs)
    return result
