"""How many segments: the k each selection criterion recommends for one sweep group.

A sweep group is the runs of one (algo, scaler, features) combination over
several k. Each criterion reads one metric against k:

    elbow              knee of inertia vs k (Kneedle: Satopaa et al. 2011, ``kneed``)
    silhouette         k with the largest silhouette
    calinski_harabasz  k with the largest Calinski-Harabasz index
    davies_bouldin     k with the smallest Davies-Bouldin index
    bic                k with the smallest BIC (Gaussian mixtures log it)

Sweeps use these five (``k_selection.csv`` has one column each). The gap rule
(Tibshirani) is here for studies only: ``gap_statistic`` refits every k on ten
uniform reference tables of the data, ten times a sweep's fits, so sweeps do not
compute it; rows that carry ``gap``/``gap_sk`` add the ``gap`` criterion.

Consensus rule: the plurality vote of the criteria that recommend a k. A tie
goes to the k the silhouette criterion picked when it is among the tied
values, else to the smallest tied k (the simpler segmentation). Consensus is
defined when at least two criteria recommend a k.

Several runs with the same k in one group (e.g. different seeds) are averaged
per k before a criterion reads them.

The noise rule: a segmentation that leaves customers unassigned (DBSCAN noise,
segment -1) is scored on the customers it kept, so leaving the hard ones out
raises its silhouette. Runs whose ``noise_fraction`` is above
``max_noise_fraction`` (default ``DEFAULT_MAX_NOISE_FRACTION``, 10 %) are
therefore left out of every choice: the criteria here, the leaderboard's
ranking and ``best`` rule (``segexp.tracking.leaderboard``), and so compare,
promote, the sweep summary and the report of a sweep. ``max_noise_fraction=1.0``
(or ``None``) turns the rule off. A run that logged no ``noise_fraction`` passes.

The share rule joins it everywhere: a run whose smallest segment holds less than
``min_segment_share`` of the customers (default ``DEFAULT_MIN_SEGMENT_SHARE``, 2 %)
isolated a few outliers rather than segmenting, however high its silhouette (a 439/1
split scores 0.90-0.99; 8,831/100/19 customers, 0.2 %). 2 % keeps every Mall
segmentation up to k=10 and a segment of 10 customers in 500. ``min_segment_share=0``
(or ``None``) turns it off; a run that logged no ``min_segment_share`` passes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

CONSENSUS = "consensus"
# Runs leaving more than this share of customers unassigned (noise) are not chosen.
DEFAULT_MAX_NOISE_FRACTION = 0.10
NOISE_METRIC = "noise_fraction"
# Runs whose smallest segment holds less than this share of the customers are not chosen.
DEFAULT_MIN_SEGMENT_SHARE = 0.02
# runs that differ only in k: one k-selection group (preprocess: 'none', 'log-clip', ...)
GROUP_KEYS = ("algo", "scaler", "preprocess", "features")
SHARE_METRIC = "min_segment_share"
# criterion -> (metric column, True when larger is better)
EXTREMUM_CRITERIA: dict[str, tuple[str, bool]] = {
    "silhouette": ("silhouette", True),
    "calinski_harabasz": ("calinski_harabasz", True),
    "davies_bouldin": ("davies_bouldin", False),
    "bic": ("bic", False),
}
# the criteria a sweep computes; "gap" joins them only where rows carry the gap statistic
CRITERIA = ("elbow", *EXTREMUM_CRITERIA)
GAP = "gap"
MIN_CRITERIA_FOR_CONSENSUS = 2


@dataclass
class KSelection:
    """The k each criterion recommends, and why the others recommend none."""

    recommended: dict[str, int] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)


def check_max_noise_fraction(value: object, where: str = "max_noise_fraction") -> float | None:
    """A valid noise limit (a number in [0, 1]) or None; ValueError naming ``where`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(
            f"{where}: expected a share between 0 and 1 (e.g. 0.1), or 1.0 / null to allow "
            f"any noise; got {value!r}"
        )
    return float(value)


def noise_rule_reason(limit: float, key: str = "max_noise_fraction") -> str:
    """Why a run is left out: 'more than 10% of customers not assigned (max_noise_fraction=0.1)'."""
    return f"more than {limit * 100:g}% of customers not assigned ({key}={limit:g})"


def small_segment_reason(limit: float, key: str = "min_segment_share") -> str:
    """Why a run is left out: 'a segment under 2% of customers (min_segment_share=0.02)'."""
    return f"a segment under {limit * 100:g}% of customers ({key}={limit:g})"


def under_share_limit(rows: pd.DataFrame, limit: float | None) -> pd.Series:
    """True for the runs whose ``min_segment_share`` is below ``limit`` (never a missing one)."""
    if not limit or SHARE_METRIC not in rows.columns:
        return pd.Series(False, index=rows.index)
    share = pd.to_numeric(rows[SHARE_METRIC], errors="coerce")
    return (share < limit).fillna(False).astype(bool)


def over_noise_limit(rows: pd.DataFrame, limit: float | None) -> pd.Series:
    """True for the runs whose ``noise_fraction`` is above ``limit`` (never for a missing one)."""
    if limit is None or NOISE_METRIC not in rows.columns:
        return pd.Series(False, index=rows.index)
    noise = pd.to_numeric(rows[NOISE_METRIC], errors="coerce")
    return (noise > limit).fillna(False).astype(bool)


def per_k_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per k (ascending): the mean of every numeric metric over that k's runs."""
    if rows.empty or "k" not in rows.columns:
        return pd.DataFrame(columns=["k"])
    frame = rows.copy()
    frame["k"] = pd.to_numeric(frame["k"], errors="coerce")
    frame = frame[frame["k"].notna()]
    numeric = [
        c for c in frame.columns if c != "k" and pd.api.types.is_numeric_dtype(frame[c].dtype)
    ]
    table = frame.groupby("k", sort=True)[numeric].mean().reset_index()
    table["k"] = table["k"].astype(int)
    return table


def _series(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in table.columns:
        return table.iloc[0:0][["k"]].assign(value=[])
    present = table[["k", metric]].dropna()
    return present.rename(columns={metric: "value"})


def kneedle_elbow(x: ArrayLike, y: ArrayLike, sensitivity: float = 1.0) -> float | None:
    """Kneedle (Satopaa et al. 2011) on a convex decreasing curve, offline: the first knee.

    The same steps and result as ``kneed.KneeLocator(x, y, S=sensitivity, curve="convex",
    direction="decreasing")`` (tests/test_selection.py compares them), written out with
    numpy because importing kneed pulls in scipy.signal, about 0.7 s at the end of every
    sweep.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    x_norm = (x - x.min()) / np.ptp(x)
    y_norm = (y - y.min()) / np.ptp(y)
    difference = (y_norm.max() - y_norm) - x_norm  # elbow -> knee of a concave increasing curve
    before = np.concatenate([difference[:1], difference[:-1]])  # neighbours, edges clipped
    after = np.concatenate([difference[1:], difference[-1:]])
    maxima = np.flatnonzero((difference >= before) & (difference >= after))
    minima = np.flatnonzero((difference <= before) & (difference <= after))
    if not maxima.size:
        return None
    thresholds = difference[maxima] - sensitivity * np.abs(np.diff(x_norm).mean())
    threshold, threshold_index, seen_maxima, active = 0.0, 0, 0, True
    for i in range(maxima[0], len(difference) - 1):
        if i in maxima:
            threshold, threshold_index, active = thresholds[seen_maxima], i, True
            seen_maxima += 1
        if i in minima:
            threshold, active = 0.0, False
        if active and difference[i + 1] < threshold:
            return float(x[threshold_index])
    return None


def elbow_k(table: pd.DataFrame) -> tuple[int | None, str]:
    """Knee of inertia vs k by Kneedle (convex, decreasing); (k, '') or (None, reason)."""
    points = _series(table, "inertia")
    if len(points) < 3:
        return None, f"the elbow needs inertia at 3 or more k values; got {len(points)}"
    knee = kneedle_elbow(points["k"].to_numpy(dtype=float), points["value"].to_numpy(dtype=float))
    if knee is None:
        return None, "Kneedle found no knee in inertia vs k (the curve has no clear bend)"
    return int(round(knee)), ""


def extremum_k(table: pd.DataFrame, metric: str, larger_is_better: bool) -> tuple[int | None, str]:
    """The k where ``metric`` is best; (k, '') or (None, reason). Ties go to the smaller k."""
    points = _series(table, metric)
    if len(points) < 2:
        return None, f"{metric} is logged at {len(points)} k value(s); the criterion needs 2"
    values = points["value"].to_numpy(dtype=float)
    best = values.max() if larger_is_better else values.min()
    return int(points["k"].to_numpy()[np.flatnonzero(values == best)[0]]), ""


def gap_k(table: pd.DataFrame) -> tuple[int | None, str]:
    """Tibshirani's rule: the smallest k with gap(k) >= gap(k+1) - s(k+1)."""
    if "gap" not in table.columns or "gap_sk" not in table.columns:
        return None, "no gap statistic was computed (segexp.model.selection.gap_statistic)"
    points = table[["k", "gap", "gap_sk"]].dropna().sort_values("k").reset_index(drop=True)
    if len(points) < 2:
        return None, f"the gap rule needs the gap at 2 or more k values; got {len(points)}"
    for i in range(len(points) - 1):
        if points.loc[i, "gap"] >= points.loc[i + 1, "gap"] - points.loc[i + 1, "gap_sk"]:
            return int(points.loc[i, "k"]), ""
    return None, "the gap keeps rising up to the largest k swept; sweep larger k"


def consensus_k(recommended: Mapping[str, int]) -> int | None:
    """Plurality vote of the criteria; tie -> silhouette's pick if tied, else the smallest k."""
    votes = {name: k for name, k in recommended.items() if name != CONSENSUS}
    if len(votes) < MIN_CRITERIA_FOR_CONSENSUS:
        return None
    counts = Counter(votes.values())
    top = max(counts.values())
    tied = sorted(k for k, n in counts.items() if n == top)
    if len(tied) > 1 and votes.get("silhouette") in tied:
        return int(votes["silhouette"])
    return int(tied[0])


def select_k(
    rows: pd.DataFrame,
    max_noise_fraction: float | None = DEFAULT_MAX_NOISE_FRACTION,
    min_segment_share: float | None = DEFAULT_MIN_SEGMENT_SHARE,
) -> KSelection:
    """Every criterion's k for one sweep group's rows, plus the consensus.

    Rows above ``max_noise_fraction`` (the noise rule) or below ``min_segment_share``
    (the share rule) are left out first; when that leaves none, every criterion is
    undefined with the rules as the reason.
    """
    noisy = over_noise_limit(rows, max_noise_fraction)
    small = under_share_limit(rows, min_segment_share)
    over = noisy | small
    if len(rows) and over.all():
        reasons = [noise_rule_reason(float(max_noise_fraction or 0))] if noisy.any() else []
        reasons += [small_segment_reason(float(min_segment_share or 0))] if small.any() else []
        reason = f"every run has {' or '.join(reasons)}"
        named = ("elbow", *(c for c, (m, _) in EXTREMUM_CRITERIA.items() if m in rows.columns))
        return KSelection(undefined={c: reason for c in (*dict.fromkeys(named), CONSENSUS)})
    table = per_k_table(rows[~over])
    selection = KSelection()
    outcomes: dict[str, tuple[int | None, str]] = {"elbow": elbow_k(table)}
    for criterion, (metric, larger) in EXTREMUM_CRITERIA.items():
        if criterion == "bic" and "bic" not in table.columns:
            continue  # only Gaussian mixtures log BIC; not a missing value elsewhere
        outcomes[criterion] = extremum_k(table, metric, larger)
    if GAP in table.columns:
        outcomes[GAP] = gap_k(table)
    for criterion, (k, reason) in outcomes.items():
        if k is None:
            selection.undefined[criterion] = reason
        else:
            selection.recommended[criterion] = k
    consensus = consensus_k(selection.recommended)
    if consensus is None:
        selection.undefined[CONSENSUS] = (
            f"consensus needs {MIN_CRITERIA_FOR_CONSENSUS} criteria that recommend a k; "
            f"got {len(selection.recommended)}"
        )
    else:
        selection.recommended[CONSENSUS] = consensus
    return selection


def recommend_k(
    rows: pd.DataFrame,
    max_noise_fraction: float | None = DEFAULT_MAX_NOISE_FRACTION,
    min_segment_share: float | None = DEFAULT_MIN_SEGMENT_SHARE,
) -> dict[str, int]:
    """Criterion name -> recommended k for one sweep group; includes 'consensus' when defined."""
    return select_k(rows, max_noise_fraction, min_segment_share).recommended


class Clusterer(Protocol):
    """An unfitted estimator whose ``fit_predict(points)`` returns one label per row."""

    def fit_predict(self, points: np.ndarray, /) -> np.ndarray: ...


def _kmeans_factory(seed: int) -> Callable[[int], Clusterer]:
    from sklearn.cluster import KMeans

    return lambda k: KMeans(n_clusters=k, n_init=10, random_state=seed)


def gap_statistic(
    points: np.ndarray,
    ks: Iterable[int],
    *,
    make_clusterer: Callable[[int], Clusterer] | None = None,
    n_references: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Gap statistic (Tibshirani, Walther, Hastie 2001) of a clustering over k.

    gap(k) = mean over uniform reference sets of log W_k(reference) - log W_k(data),
    W_k being the within-segment sum of squares and the references drawn uniformly
    in the bounding box of ``points``. Returns columns k, gap, gap_sk (the standard
    error term s_k = sd * sqrt(1 + 1/B)) and log_wk; merge it into a group's rows
    and ``select_k`` adds the ``gap`` criterion. ``make_clusterer(k)`` returns an
    unfitted estimator with ``fit_predict`` (default: k-means, 10 inits, ``seed``).
    """
    from segexp.model.metrics import within_cluster_sum_of_squares  # scikit-learn: load on use

    points = np.asarray(points, dtype=float)
    if n_references < 2:
        raise ValueError(f"n_references must be >= 2; got {n_references}")
    factory = make_clusterer or _kmeans_factory(seed)
    rng = np.random.default_rng(seed)
    low, high = points.min(axis=0), points.max(axis=0)
    references = [rng.uniform(low, high, size=points.shape) for _ in range(n_references)]
    rows = []
    for k in ks:
        log_wk = np.log(within_cluster_sum_of_squares(points, factory(k).fit_predict(points)))
        ref_logs = np.array(
            [
                np.log(within_cluster_sum_of_squares(ref, factory(k).fit_predict(ref)))
                for ref in references
            ]
        )
        rows.append(
            {
                "k": int(k),
                "gap": float(ref_logs.mean() - log_wk),
                "gap_sk": float(ref_logs.std() * np.sqrt(1 + 1 / n_references)),
                "log_wk": float(log_wk),
            }
        )
    return pd.DataFrame(rows, columns=["k", "gap", "gap_sk", "log_wk"])


def group_label(group: Sequence[object]) -> str:
    """A metric-name-safe label of a sweep group: 'kmeans-standard-income_spending',
    'kmeans-standard-log-income_spending' (no preprocessing is not named)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(group_parts(group)))


def group_parts(group: Sequence[object]) -> list[str]:
    """A group's parts as run names say them: its preprocessing only when there is one."""
    where = GROUP_KEYS.index("preprocess")
    return [str(p) for i, p in enumerate(group) if not (i == where and str(p) == "none")]


def recommended_k_metrics(
    selections: Mapping[tuple, KSelection], prefix: str = "recommended_k"
) -> dict[str, float]:
    """Parent-run metrics: ``recommended_k.<criterion>`` for a sweep with one group, else
    ``recommended_k.<group>.<criterion>`` for each group (algo-scaler-preprocess-features)."""
    metrics: dict[str, float] = {}
    for group, selection in selections.items():
        middle = "" if len(selections) == 1 else f"{group_label(group)}."
        for criterion, k in selection.recommended.items():
            metrics[f"{prefix}.{middle}{criterion}"] = float(k)
    return metrics


def k_selection_table(
    selections: Mapping[tuple, KSelection],
    group_keys: Sequence[str] = GROUP_KEYS,
) -> pd.DataFrame:
    """One row per group: each criterion's k (blank when undefined) and the reasons, as a CSV.

    The gap column is there only when a selection used the gap statistic (never in a sweep)."""
    used_gap = any(GAP in s.recommended or GAP in s.undefined for s in selections.values())
    criteria = (*CRITERIA, *((GAP,) if used_gap else ()), CONSENSUS)
    rows = []
    for group, selection in selections.items():
        row: dict[str, object] = dict(zip(group_keys, group, strict=True))
        for criterion in criteria:
            row[criterion] = selection.recommended.get(criterion)
        row["undefined"] = "; ".join(f"{c}: {r}" for c, r in selection.undefined.items())
        rows.append(row)
    frame = pd.DataFrame(rows)
    for criterion in criteria:
        if criterion in frame.columns:
            frame[criterion] = frame[criterion].astype("Int64")
    return frame
