"""Runs as a table, ranked: the sweep's leaderboard.csv, ``segexp.compare`` and the ``best``
rule promotion uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segexp.errors import ConfigError, EmptyLeaderboardError
from segexp.model.selection import (
    DEFAULT_MAX_NOISE_FRACTION,
    DEFAULT_MIN_SEGMENT_SHARE,
    noise_rule_reason,
    over_noise_limit,
    small_segment_reason,
    under_share_limit,
)

# True: larger is better. Metrics not listed here cannot be ranked.
METRIC_DIRECTIONS: dict[str, bool] = {
    "silhouette": True,
    "calinski_harabasz": True,
    "davies_bouldin": False,
    "inertia": False,
    "bic": False,
    "aic": False,
    "stability": True,
    "ari": True,
    "nmi": True,
    "ref_silhouette": True,
    "ref_calinski_harabasz": True,
    "ref_davies_bouldin": False,
    "min_segment_share": True,
    "max_segment_share": False,
    "noise_fraction": False,
    "fit_seconds": False,
}

LEADING_COLUMNS = ["run_id", "run_name", "status", "algo", "k", "scaler", "features"]


def runs_to_frame(runs: Iterable) -> pd.DataFrame:
    """One row per MLflow run: ids, status, every param and metric (metrics as floats)."""
    rows = []
    for run in runs:
        row = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
        }
        row.update(run.data.params)
        row.update({f"metric:{k}": v for k, v in run.data.metrics.items()})
        row["sweep_id"] = run.data.tags.get("segexp.sweep_id")
        row["data_fingerprint"] = run.data.tags.get("segexp.data_fingerprint")
        space = run.data.tags.get("segexp.silhouette_space")
        if space:  # a column only when some run's silhouette is not the Euclidean one
            row[SILHOUETTE_SPACE_COLUMN] = space
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    metric_cols = [c for c in frame.columns if c.startswith("metric:")]
    frame = frame.rename(columns={c: c.split(":", 1)[1] for c in metric_cols})
    if "k" in frame.columns:
        frame["k"] = pd.to_numeric(frame["k"], errors="coerce").astype("Int64")
    front = [c for c in LEADING_COLUMNS if c in frame.columns]
    return frame[front + [c for c in frame.columns if c not in front]]


# Shown after the ranked metric when present; other metrics only when asked for.
DISPLAY_METRICS = (
    "silhouette",
    "ref_silhouette",
    "stability",
    "ari",
    "nmi",
    "calinski_harabasz",
    "davies_bouldin",
    "bic",
    "n_clusters",
    "min_segment_share",
    "noise_fraction",
    "suggested_eps",
)
# Ties on the ranked metric: more stable first, then fewer segments, then the earlier run.
TIE_BREAKS: tuple[tuple[str, bool], ...] = (
    ("stability", False),
    ("n_clusters", True),
    ("start_time", True),
    ("run_id", True),
)
FINISHED = "FINISHED"
LEFT_OUT_COLUMN = "left_out"  # why a run is not ranked ('' for the ranked ones)
# The distances of a run's silhouette (tag segexp.silhouette_space; empty: Euclidean), e.g.
# gower (k-prototypes): silhouettes of different spaces are not ranked against each other.
SILHOUETTE_SPACE_COLUMN = "silhouette_space"
EUCLIDEAN = "euclidean"


@dataclass(frozen=True)
class LeaderboardFilters:
    """Which runs a leaderboard keeps (empty/None: any), and the noise and share rules that
    leave runs out of the ranking (on by default; None: off)."""

    algo: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    scaler: tuple[str, ...] = ()
    min_segment_share: float | None = DEFAULT_MIN_SEGMENT_SHARE
    min_stability: float | None = None
    k_min: int | None = None
    k_max: int | None = None
    status: str | None = FINISHED
    max_noise_fraction: float | None = DEFAULT_MAX_NOISE_FRACTION

    def describe(self, prefix: str = "") -> str:
        """The active filters as ``key=value`` words (keys after ``prefix``), for messages; the
        rules only when not the default (``left_out_summary`` reports what they leave out)."""
        parts = [
            f"{prefix}{name}={','.join(getattr(self, name))}"
            for name in ("algo", "features", "scaler")
            if getattr(self, name)
        ]
        parts += [
            f"{prefix}{name}={getattr(self, name)}"
            for name in ("min_stability", "k_min", "k_max", "status")
            if getattr(self, name) is not None
        ]
        for name, default in (
            ("max_noise_fraction", DEFAULT_MAX_NOISE_FRACTION),
            ("min_segment_share", DEFAULT_MIN_SEGMENT_SHARE),
        ):
            limit = getattr(self, name)
            if limit != default:
                parts.append(f"{prefix}{name}={'null' if limit is None else f'{limit:g}'}")
        return " ".join(parts) or "no filters"

    def noise_reason(self, prefix: str = "") -> str:
        """Why the noise rule leaves a run out, naming the key that changes it."""
        limit = self.max_noise_fraction
        return noise_rule_reason(
            DEFAULT_MAX_NOISE_FRACTION if limit is None else limit, f"{prefix}max_noise_fraction"
        )

    def share_reason(self, prefix: str = "") -> str:
        """Why the share rule leaves a run out, naming the key that changes it."""
        limit = self.min_segment_share or DEFAULT_MIN_SEGMENT_SHARE
        return small_segment_reason(limit, f"{prefix}min_segment_share")

    def left_out(self, frame: pd.DataFrame) -> pd.Series:
        """Per run, why a rule leaves it out of the ranking ('' for none): noise, then share."""
        reason = pd.Series("", index=frame.index, dtype=object)
        reason[under_share_limit(frame, self.min_segment_share)] = self.share_reason()
        reason[over_noise_limit(frame, self.max_noise_fraction)] = self.noise_reason()
        return reason


def larger_is_better(metric: str, direction: str = "auto") -> bool:
    """Ranking direction: 'max'/'min' as given, 'auto' from METRIC_DIRECTIONS."""
    if direction in ("max", "min"):
        return direction == "max"
    if direction != "auto":
        raise ConfigError(f"direction: allowed values are auto, max, min; got {direction!r}")
    if metric not in METRIC_DIRECTIONS:
        raise ConfigError(
            f"metric={metric}: no known ranking direction for it; set direction=max or "
            f"direction=min (known: {', '.join(METRIC_DIRECTIONS)})"
        )
    return METRIC_DIRECTIONS[metric]


def apply_filters(frame: pd.DataFrame, filters: LeaderboardFilters | None) -> pd.DataFrame:
    """Rows passing every filter (not the rules); a run without a filtered metric does not."""
    if frame.empty or filters is None:
        return frame

    def column(name: str) -> pd.Series:
        return frame.get(name, pd.Series(None, index=frame.index, dtype=object))

    keep = pd.Series(True, index=frame.index)
    if filters.status is not None:
        keep &= column("status") == filters.status
    for name in ("algo", "features", "scaler"):
        if allowed := getattr(filters, name):
            keep &= column(name).astype(str).isin(allowed)
    k = pd.to_numeric(column("k"), errors="coerce")
    if filters.k_min is not None:
        keep &= k >= filters.k_min
    if filters.k_max is not None:
        keep &= k <= filters.k_max
    if filters.min_stability is not None:
        keep &= pd.to_numeric(column("stability"), errors="coerce") >= filters.min_stability
    return frame[keep.fillna(False).astype(bool)]


def build_leaderboard(
    frame: pd.DataFrame,
    metric: str = "silhouette",
    filters: LeaderboardFilters | None = None,
    direction: str = "auto",
) -> pd.DataFrame:
    """Filtered runs ranked best first by ``metric`` (ties: TIE_BREAKS; without it: last).

    Runs a rule leaves out (or whose silhouette is on other distances) follow, unranked, their
    ``left_out`` column saying why: leaderboard.csv lists every job. ``candidates`` splits them.
    """
    larger = larger_is_better(metric, direction)
    rule = filters if filters is not None else LeaderboardFilters(status=None)
    kept = apply_filters(frame, filters)
    if kept.empty:
        return kept.reset_index(drop=True)
    work = kept.copy()
    work[LEFT_OUT_COLUMN] = rule.left_out(work)
    over = work[LEFT_OUT_COLUMN] != ""
    if metric == "silhouette":
        other, reason = _other_silhouette_space(work, ~over)
        work.loc[other, LEFT_OUT_COLUMN] = reason[other]
        over = over | other
    work["_left_out"] = over.astype(int)
    keys, ascending = ["_left_out", metric], [True, not larger]
    for name, asc in TIE_BREAKS:
        if name in kept.columns and name != metric:
            keys.append(name)
            ascending.append(asc)
    if metric not in work.columns:
        work[metric] = float("nan")
    ranked = work.sort_values(keys, ascending=ascending, na_position="last", kind="stable")
    ranked = ranked.drop(columns="_left_out").reset_index(drop=True)
    n_ranked = int((~over).sum())
    rank = pd.array([*range(1, n_ranked + 1)] + [pd.NA] * (len(ranked) - n_ranked), "Int64")
    ranked.insert(0, "rank", rank)
    return ranked


def _other_silhouette_space(work: pd.DataFrame, eligible: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(mask, reason) of runs whose silhouette is on other distances than the ranked space's:
    the Euclidean one when an eligible run has it, else the most common one."""
    none = (pd.Series(False, index=work.index), pd.Series("", index=work.index))
    if SILHOUETTE_SPACE_COLUMN not in work.columns or "silhouette" not in work.columns:
        return none
    space = work[SILHOUETTE_SPACE_COLUMN].fillna("").astype(str).replace("", EUCLIDEAN)
    scored = eligible & work["silhouette"].notna()
    spaces = space[scored]
    if spaces.nunique() < 2:
        return none
    ranked_space = EUCLIDEAN if (spaces == EUCLIDEAN).any() else str(spaces.mode().iloc[0])
    other = scored & (space != ranked_space)
    reason = (
        "its silhouette is on " + space.str.replace("_", " ") + " distances "
        f"(segexp.silhouette_space), not comparable with the {ranked_space.replace('_', ' ')} "
        "silhouette of the ranked runs; compare those runs on their own"
    )
    return other, reason


def candidates(ranked: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked runs, runs a rule left out) of a ``build_leaderboard`` table."""
    if LEFT_OUT_COLUMN not in ranked.columns:
        return ranked, ranked.iloc[0:0]
    out = ranked[LEFT_OUT_COLUMN].fillna("").astype(str) != ""
    return ranked[~out], ranked[out]


def left_out_summary(
    ranked: pd.DataFrame,
    filters: LeaderboardFilters | None = None,
    prefix: str = "",
    noise_hint: str = "",
    share_hint: str = "",
) -> str:
    """'2 runs left out: more than 10% of customers not assigned (max_noise_fraction=0.1)',
    one clause per reason (the rules' followed by their hint); '' when none was left out."""
    _, out = candidates(ranked)
    if out.empty:
        return ""
    rule = filters if filters is not None else LeaderboardFilters()
    texts = {
        rule.noise_reason(): rule.noise_reason(prefix) + noise_hint,
        rule.share_reason(): rule.share_reason(prefix) + share_hint,
    }
    parts = []
    for reason, group in out.groupby(LEFT_OUT_COLUMN, sort=False):
        runs = "1 run" if len(group) == 1 else f"{len(group)} runs"
        parts.append(f"{runs} left out: {texts.get(str(reason), str(reason))}")
    return "; ".join(parts)


def select_best(
    frame: pd.DataFrame,
    metric: str = "silhouette",
    filters: LeaderboardFilters | None = None,
    direction: str = "auto",
    *,
    prefix: str = "",
) -> pd.Series:
    """The ``best`` rule promotion uses: rank 1 among runs that have ``metric`` (default filters:
    FINISHED runs, both rules); EmptyLeaderboardError naming the keys after ``prefix``."""
    filters = filters if filters is not None else LeaderboardFilters()
    ranked, out = candidates(build_leaderboard(frame, metric, filters, direction))
    if not ranked.empty and metric in ranked.columns:
        ranked = ranked[ranked[metric].notna()]
    if ranked.empty:
        left = ""
        if not out.empty:
            hints = {
                "noise_hint": f", {prefix}max_noise_fraction=1.0 allows them",
                "share_hint": f", {prefix}min_segment_share=0 allows them",
            }
            left = f"; {left_out_summary(out, filters, prefix, **hints)}"
        raise EmptyLeaderboardError(
            f"no run with metric '{metric}' passes the filters ({filters.describe(prefix)}) among "
            f"{len(frame)} runs{left}; relax the filters or rank by another metric"
        )
    return ranked.iloc[0]


def display_columns(ranked: pd.DataFrame, metric: str, extra: Sequence[str] = ()) -> list[str]:
    """Readable column order: rank, name, params, varying hyperparameters, metrics, run id."""

    def shown(name: str) -> bool:
        return name in ranked.columns and ranked[name].notna().any()

    columns = [c for c in ("rank", "run_name", "algo", "k", "scaler", "features") if shown(c)]

    def same_as_k(name: str) -> bool:  # n_clusters: ${k} and the like only repeat k
        if "k" not in ranked.columns:
            return False
        both = ranked[name].notna() & ranked["k"].notna()
        pairs = ranked.loc[both, [name, "k"]].astype(str)
        return bool((pairs[name] == pairs["k"]).all())

    varying = [
        c
        for c in ranked.columns
        if c.startswith("algo.") and ranked[c].nunique(dropna=True) > 1 and not same_as_k(c)
    ]
    metrics = [metric] + [m for m in DISPLAY_METRICS if m != metric]
    columns += varying + [m for m in metrics if shown(m) or m == metric]
    columns += [c for c in extra if c in ranked.columns and c not in columns]
    if "status" in ranked.columns and ranked["status"].nunique() > 1:
        columns.append("status")
    columns.append("run_id")
    return [c for c in dict.fromkeys(columns) if c in ranked.columns]


def _cell(value) -> str:
    """A value as a table shows it: 4 significant digits, no exponent below 1e9, '' if absent."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        number = float(value)
        if np.isfinite(number) and 1e4 <= abs(number) < 1e9:  # 123456.7 -> 123500, not 1.235e+05
            return f"{float(f'{number:.4g}'):.0f}"
        return f"{value:.4g}"
    return str(value)


def format_table(frame: pd.DataFrame, max_width: int | None = None) -> str:
    """Aligned plain-text table; wider than ``max_width``, the widest text columns are cut with
    an ellipsis (to 10 characters at least), numbers never."""
    ellipsis, shortest = "\u2026", 10
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) for c in frame.columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    if max_width is not None:
        excess = sum(widths) + 2 * (len(widths) - 1) - max_width
        while excess > 0:
            text = [i for i, num in enumerate(numeric) if not num and widths[i] > shortest]
            if not text:
                break
            widest = max(text, key=lambda i: widths[i])
            cut = min(excess, widths[widest] - max(shortest, len(header[widest])))
            if cut <= 0:
                break
            widths[widest] -= cut
            excess -= cut

    def fit(value: str, width: int) -> str:
        return value if len(value) <= width else value[: width - 1] + ellipsis

    def line(values: list[str]) -> str:
        return "  ".join(
            fit(v, w).rjust(w) if num else fit(v, w).ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in cells])


def format_markdown(frame: pd.DataFrame) -> str:
    """GitHub-flavoured Markdown table (numbers right-aligned, '|' escaped)."""

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) for c in frame.columns]
    rule = "|" + "|".join("---:" if num else "---" for num in numeric) + "|"
    rows = [line(map(_cell, row)) for row in frame.itertuples(index=False)]
    return "\n".join([line(map(str, frame.columns)), rule, *rows])
