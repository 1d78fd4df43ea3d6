"""The k each criterion recommends for one sweep group (docs/sweeps.md); runs over the noise
or under the share limit are left out: dropping or isolating customers scores too well."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from segexp.model.metrics import within_cluster_sum_of_squares

CONSENSUS = "consensus"
DEFAULT_MAX_NOISE_FRACTION = 0.10
NOISE_METRIC = "noise_fraction"
DEFAULT_MIN_SEGMENT_SHARE = 0.02
SHARE_METRIC = "min_segment_share"
# runs that differ only in k: one k-selection group (preprocess: 'none', 'log-clip', ...)
GROUP_KEYS = ("algo", "scaler", "preprocess", "features")
# criterion (the metric it reads) -> True when larger is better
EXTREMUM_CRITERIA = {
    "silhouette": True,
    "calinski_harabasz": True,
    "davies_bouldin": False,
    "bic": False,
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


def noise_rule_reason(limit: float, key: str = "max_noise_fraction") -> str:
    return f"more than {limit * 100:g}% of customers not assigned ({key}={limit:g})"


def small_segment_reason(limit: float, key: str = "min_segment_share") -> str:
    return f"a segment under {limit * 100:g}% of customers ({key}={limit:g})"


def _metric(rows: pd.DataFrame, name: str) -> pd.Series:
    """The runs' ``name`` as numbers; NaN, never over a limit, where a run did not log it."""
    values = rows[name] if name in rows.columns else pd.Series(np.nan, index=rows.index)
    return pd.to_numeric(values, errors="coerce")


def under_share_limit(rows: pd.DataFrame, limit: float | None) -> pd.Series:
    """True for the runs whose ``min_segment_share`` is below ``limit`` (a share is >= 0)."""
    return _metric(rows, SHARE_METRIC) < (limit or 0)


def over_noise_limit(rows: pd.DataFrame, limit: float | None) -> pd.Series:
    """True for the runs whose ``noise_fraction`` is above ``limit`` (a fraction is <= 1)."""
    return _metric(rows, NOISE_METRIC) > (1 if limit is None else limit)


def per_k_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per k (ascending): the mean of every numeric metric over that k's runs."""
    if rows.empty or "k" not in rows.columns:
        return pd.DataFrame(columns=["k"])
    frame = rows.assign(k=pd.to_numeric(rows["k"], errors="coerce")).dropna(subset=["k"])
    numeric = [c for c in frame.columns if c != "k" and pd.api.types.is_numeric_dtype(frame[c])]
    table = frame.groupby("k", sort=True)[numeric].mean().reset_index()
    return table.astype({"k": int})


def _series(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    return table.reindex(columns=["k", metric]).dropna().set_axis(["k", "value"], axis=1)


def elbow_k(table: pd.DataFrame) -> tuple[int | None, str]:
    """Knee of inertia vs k by Kneedle (kneed: convex, decreasing); (k, '') or (None, why)."""
    points = _series(table, "inertia")
    if len(points) < 3:
        return None, f"the elbow needs inertia at 3 or more k values; got {len(points)}"
    from kneed import KneeLocator  # imports scipy.signal (~0.6 s): only a sweep's k needs it

    with warnings.catch_warnings():  # kneed warns when it finds no knee; the reason says so
        warnings.simplefilter("ignore")
        knee = KneeLocator(*points.to_numpy(float).T, curve="convex", direction="decreasing").knee
    if knee is None:
        return None, "Kneedle found no knee in inertia vs k (the curve has no clear bend)"
    return int(round(knee)), ""


def extremum_k(table: pd.DataFrame, metric: str, larger_is_better: bool) -> tuple[int | None, str]:
    """The k where ``metric`` is best; (k, '') or (None, reason). Ties go to the smaller k."""
    points = _series(table, metric)
    if len(points) < 2:
        return None, f"{metric} is logged at {len(points)} k value(s); the criterion needs 2"
    values = points["value"] if larger_is_better else -points["value"]
    return int(points.loc[values.idxmax(), "k"]), ""


def gap_k(table: pd.DataFrame) -> tuple[int | None, str]:
    """Tibshirani's rule: the smallest k with gap(k) >= gap(k+1) - s(k+1)."""
    if "gap" not in table.columns or "gap_sk" not in table.columns:
        return None, "no gap statistic was computed (segexp.model.selection.gap_statistic)"
    points = table[["k", "gap", "gap_sk"]].dropna().sort_values("k")
    if len(points) < 2:
        return None, f"the gap rule needs the gap at 2 or more k values; got {len(points)}"
    upper = (points["gap"] - points["gap_sk"]).shift(-1)
    holds = points["k"][points["gap"] >= upper]
    if holds.empty:
        return None, "the gap keeps rising up to the largest k swept; sweep larger k"
    return int(holds.iloc[0]), ""


def consensus_k(recommended: Mapping[str, int]) -> int | None:
    """Plurality vote of the criteria; tie -> silhouette's pick if tied, else the smallest k."""
    votes = {name: k for name, k in recommended.items() if name != CONSENSUS}
    if len(votes) < MIN_CRITERIA_FOR_CONSENSUS:
        return None
    counts = Counter(votes.values())
    tied = sorted(k for k, n in counts.items() if n == max(counts.values()))
    if len(tied) > 1 and votes.get("silhouette") in tied:
        return int(votes["silhouette"])
    return int(tied[0])


def select_k(
    rows: pd.DataFrame,
    max_noise_fraction: float | None = DEFAULT_MAX_NOISE_FRACTION,
    min_segment_share: float | None = DEFAULT_MIN_SEGMENT_SHARE,
) -> KSelection:
    """Every criterion's k, and the consensus, for one group's rows the noise and share rules
    keep; with none kept, each is undefined with the rules as reason."""
    noisy = over_noise_limit(rows, max_noise_fraction)
    small = under_share_limit(rows, min_segment_share)
    over = noisy | small
    if len(rows) and over.all():
        reasons = [noise_rule_reason(float(max_noise_fraction or 0))] if noisy.any() else []
        reasons += [small_segment_reason(float(min_segment_share or 0))] if small.any() else []
        reason = f"every run has {' or '.join(reasons)}"
        named = ("elbow", *(c for c in EXTREMUM_CRITERIA if c in rows.columns))
        return KSelection(undefined={c: reason for c in (*named, CONSENSUS)})
    table = per_k_table(rows[~over])
    outcomes: dict[str, tuple[int | None, str]] = {"elbow": elbow_k(table)}
    for criterion, larger in EXTREMUM_CRITERIA.items():
        if criterion != "bic" or "bic" in table.columns:  # only Gaussian mixtures log BIC
            outcomes[criterion] = extremum_k(table, criterion, larger)
    if GAP in table.columns:
        outcomes[GAP] = gap_k(table)
    selection = KSelection(
        {c: k for c, (k, _) in outcomes.items() if k is not None},
        {c: reason for c, (k, reason) in outcomes.items() if k is None},
    )
    consensus = consensus_k(selection.recommended)
    if consensus is None:
        selection.undefined[CONSENSUS] = (
            f"consensus needs {MIN_CRITERIA_FOR_CONSENSUS} criteria that recommend a k; "
            f"got {len(selection.recommended)}"
        )
    else:
        selection.recommended[CONSENSUS] = consensus
    return selection


def gap_statistic(
    points: np.ndarray,
    ks: Iterable[int],
    *,
    n_references: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Gap statistic (Tibshirani 2001) over k: columns k, gap, gap_sk, log_wk; for studies (it
    refits k-means at each k on ``n_references`` uniform tables); rows with it add ``gap``."""
    points = np.asarray(points, dtype=float)
    if n_references < 2:
        raise ValueError(f"n_references must be >= 2; got {n_references}")
    rng = np.random.default_rng(seed)
    low, high = points.min(axis=0), points.max(axis=0)
    references = [rng.uniform(low, high, size=points.shape) for _ in range(n_references)]

    def log_wk(data: np.ndarray, k: int) -> float:
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(data)
        return float(np.log(within_cluster_sum_of_squares(data, labels)))

    rows = []
    for k in ks:
        ref_logs = np.array([log_wk(ref, k) for ref in references])
        own = log_wk(points, k)
        sk = float(ref_logs.std() * np.sqrt(1 + 1 / n_references))
        rows.append({"k": int(k), "gap": float(ref_logs.mean() - own), "gap_sk": sk, "log_wk": own})
    return pd.DataFrame(rows, columns=["k", "gap", "gap_sk", "log_wk"])


def group_parts(group: Sequence[object]) -> list[str]:
    """A group's parts as run names say them: its preprocessing only when there is one."""
    where = GROUP_KEYS.index("preprocess")
    return [str(p) for i, p in enumerate(group) if not (i == where and str(p) == "none")]


def group_label(group: Sequence[object]) -> str:
    """A metric-name-safe label of a sweep group: 'kmeans-standard-income_spending'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(group_parts(group)))


def recommended_k_metrics(
    selections: Mapping[tuple, KSelection], prefix: str = "recommended_k"
) -> dict[str, float]:
    """``recommended_k.<criterion>`` for a sweep of one group, else ``.<group>.<criterion>``."""
    one = len(selections) == 1
    return {
        f"{prefix}.{'' if one else group_label(group) + '.'}{criterion}": float(k)
        for group, selection in selections.items()
        for criterion, k in selection.recommended.items()
    }


def k_selection_table(
    selections: Mapping[tuple, KSelection], group_keys: Sequence[str] = GROUP_KEYS
) -> pd.DataFrame:
    """One row per group: each criterion's k (blank when undefined) and the reasons; a gap
    column only when a selection used the gap statistic."""
    used_gap = any(GAP in s.recommended or GAP in s.undefined for s in selections.values())
    criteria = (*CRITERIA, *((GAP,) if used_gap else ()), CONSENSUS)
    frame = pd.DataFrame(
        {
            **dict(zip(group_keys, group, strict=True)),
            **{criterion: selection.recommended.get(criterion) for criterion in criteria},
            "undefined": "; ".join(f"{c}: {r}" for c, r in selection.undefined.items()),
        }
        for group, selection in selections.items()
    )
    present = [criterion for criterion in criteria if criterion in frame.columns]
    return frame.astype(dict.fromkeys(present, "Int64"))
