"""Runs as a table, ranked: the sweep's leaderboard.csv, ``segexp.compare`` and the ``best``
rule promotion uses."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

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
    **dict.fromkeys(("silhouette", "calinski_harabasz", "stability", "ari", "nmi"), True),
    **dict.fromkeys(("ref_silhouette", "ref_calinski_harabasz", "min_segment_share"), True),
    **dict.fromkeys(("davies_bouldin", "ref_davies_bouldin", "inertia", "bic", "aic"), False),
    **dict.fromkeys(("max_segment_share", "noise_fraction", "fit_seconds"), False),
}

LEADING_COLUMNS = ["run_id", "run_name", "status", "algo", "k", "scaler", "features"]


def runs_to_frame(runs: Iterable) -> pd.DataFrame:
    """One row per MLflow run: ids, status, every param and metric (metrics as floats)."""
    rows = [
        {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            **run.data.params,
            **run.data.metrics,
            "sweep_id": run.data.tags.get("segexp.sweep_id"),
            "data_fingerprint": run.data.tags.get("segexp.data_fingerprint"),
            SILHOUETTE_SPACE_COLUMN: run.data.tags.get("segexp.silhouette_space") or None,
        }
        for run in runs
    ]
    frame = pd.DataFrame(rows)
    if SILHOUETTE_SPACE_COLUMN in frame and frame[SILHOUETTE_SPACE_COLUMN].isna().all():
        frame = frame.drop(columns=SILHOUETTE_SPACE_COLUMN)  # a column only when not Euclidean
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
TIE_BREAKS = (("stability", False), ("n_clusters", True), ("start_time", True), ("run_id", True))
FINISHED = "FINISHED"
LEFT_OUT_COLUMN = "left_out"  # why a run is not ranked ('' for the ranked ones)
# The distances of a run's silhouette (tag segexp.silhouette_space; empty: Euclidean), e.g.
# gower (k-prototypes): silhouettes of different spaces are not ranked against each other.
SILHOUETTE_SPACE_COLUMN = "silhouette_space"
EUCLIDEAN = "euclidean"
RULE_DEFAULTS = {
    "max_noise_fraction": DEFAULT_MAX_NOISE_FRACTION,
    "min_segment_share": DEFAULT_MIN_SEGMENT_SHARE,
}


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
            f"{prefix}{name}={','.join(value) if isinstance(value, tuple) else value}"
            for name in ("algo", "features", "scaler", "min_stability", "k_min", "k_max", "status")
            if (value := getattr(self, name)) not in ((), None)
        ]
        parts += [
            f"{prefix}{name}={'null' if limit is None else f'{limit:g}'}"
            for name, default in RULE_DEFAULTS.items()
            if (limit := getattr(self, name)) != default
        ]
        return " ".join(parts) or "no filters"

    def reasons(self, prefix: str = "") -> tuple[str, str]:
        """Why the noise and the share rule leave a run out, naming the keys that change them."""
        noise = self.max_noise_fraction
        return (
            noise_rule_reason(
                DEFAULT_MAX_NOISE_FRACTION if noise is None else noise,
                f"{prefix}max_noise_fraction",
            ),
            small_segment_reason(
                self.min_segment_share or DEFAULT_MIN_SEGMENT_SHARE, f"{prefix}min_segment_share"
            ),
        )

    def left_out(self, frame: pd.DataFrame) -> pd.Series:
        """Per run, why a rule leaves it out of the ranking ('' for none): noise, then share."""
        noise, share = self.reasons()
        reason = pd.Series("", index=frame.index, dtype=object)
        reason[under_share_limit(frame, self.min_segment_share)] = share
        reason[over_noise_limit(frame, self.max_noise_fraction)] = noise
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
    work = kept.assign(**{LEFT_OUT_COLUMN: rule.left_out(kept)})
    if metric == "silhouette":
        other = _other_silhouette_space(work, work[LEFT_OUT_COLUMN] == "")
        work[LEFT_OUT_COLUMN] = work[LEFT_OUT_COLUMN].mask(other != "", other)
    if metric not in work.columns:
        work[metric] = float("nan")
    over = work[LEFT_OUT_COLUMN] != ""
    ties = [(name, asc) for name, asc in TIE_BREAKS if name in kept.columns and name != metric]
    ranked = (
        work.assign(_left_out=over)
        .sort_values(
            ["_left_out", metric, *(name for name, _ in ties)],
            ascending=[True, not larger, *(asc for _, asc in ties)],
            na_position="last",
            kind="stable",
        )
        .drop(columns="_left_out")
        .reset_index(drop=True)
    )
    ranked.insert(0, "rank", pd.array(range(1, len(ranked) + 1), "Int64"))
    ranked.loc[ranked[LEFT_OUT_COLUMN] != "", "rank"] = pd.NA  # left-out runs follow, unranked
    return ranked


def _other_silhouette_space(work: pd.DataFrame, eligible: pd.Series) -> pd.Series:
    """Why a run's silhouette is on other distances than the ranked space's ('' if not): that
    space is the Euclidean one when an eligible run has it, else the most common one."""
    none = pd.Series("", index=work.index)
    if SILHOUETTE_SPACE_COLUMN not in work.columns or "silhouette" not in work.columns:
        return none
    space = work[SILHOUETTE_SPACE_COLUMN].fillna("").astype(str).replace("", EUCLIDEAN)
    scored = eligible & work["silhouette"].notna()
    spaces = space[scored]
    if spaces.nunique() < 2:
        return none
    ranked_space = EUCLIDEAN if (spaces == EUCLIDEAN).any() else str(spaces.mode().iloc[0])
    reason = (
        "its silhouette is on " + space.str.replace("_", " ") + " distances "
        f"(segexp.silhouette_space), not comparable with the {ranked_space.replace('_', ' ')} "
        "silhouette of the ranked runs; compare those runs on their own"
    )
    return reason.where(scored & (space != ranked_space), "")


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
    (noise, share), (noise_key, share_key) = rule.reasons(), rule.reasons(prefix)
    texts = {noise: noise_key + noise_hint, share: share_key + share_hint}
    counts = out[LEFT_OUT_COLUMN].astype(str).value_counts(sort=False)
    return "; ".join(
        f"{'1 run' if n == 1 else f'{n} runs'} left out: {texts.get(reason, reason)}"
        for reason, n in counts.items()
    )


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
        left = left_out_summary(
            out,
            filters,
            prefix,
            noise_hint=f", {prefix}max_noise_fraction=1.0 allows them",
            share_hint=f", {prefix}min_segment_share=0 allows them",
        )
        left = f"; {left}" if left else ""
        raise EmptyLeaderboardError(
            f"no run with metric '{metric}' passes the filters ({filters.describe(prefix)}) among "
            f"{len(frame)} runs{left}; relax the filters or rank by another metric"
        )
    return ranked.iloc[0]


def display_columns(ranked: pd.DataFrame, metric: str, extra: Sequence[str] = ()) -> list[str]:
    """Readable column order: rank, name, params, varying hyperparameters, metrics, run id."""

    def shown(name: str) -> bool:
        return name in ranked.columns and ranked[name].notna().any()

    def same_as_k(name: str) -> bool:  # n_clusters: ${k} and the like only repeat k
        pairs = ranked[[name, "k"]].dropna().astype(str)
        return bool((pairs[name] == pairs["k"]).all())

    columns = [c for c in ("rank", "run_name", "algo", "k", "scaler", "features") if shown(c)]
    varying = [
        c
        for c in ranked.columns
        if c.startswith("algo.")
        and ranked[c].nunique() > 1
        and not ("k" in ranked.columns and same_as_k(c))
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
    """Aligned plain-text table (rich); wider than ``max_width``, the widest text columns are cut
    with an ellipsis (to 10 characters at least), numbers never."""
    header, cells, widths = _natural_layout(frame)
    numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) for c in frame.columns]
    floors = [
        w if num else min(w, max(10, len(h)))
        for w, h, num in zip(widths, header, numeric, strict=True)
    ]
    excess = 0 if max_width is None else _line_width(widths) - max_width
    while excess > 0 and (cuttable := [i for i, w in enumerate(widths) if w > floors[i]]):
        widest = max(cuttable, key=lambda i: widths[i])
        cut = min(excess, widths[widest] - floors[widest])
        widths[widest] -= cut
        excess -= cut
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for name, width, num in zip(header, widths, numeric, strict=True):
        justify: JustifyMethod = "right" if num else "left"
        table.add_column(name, width=width, justify=justify, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*row)
    out = io.StringIO()  # plain text: no colour, and store strings are not read as markup
    Console(file=out, width=10**6, color_system=None, markup=False, emoji=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _natural_layout(frame: pd.DataFrame) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the cells as shown, and each column's width before any cut."""
    header = [str(c) for c in frame.columns]
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    return header, cells, widths


def _line_width(widths: Sequence[int]) -> int:
    """A printed line's width: the columns and two spaces between each pair."""
    return sum(widths) + 2 * (len(widths) - 1)


def printed_width(frame: pd.DataFrame) -> int:
    """How wide ``format_table(frame)`` prints (its rule line), without drawing it."""
    return _line_width(_natural_layout(frame)[2])


def format_markdown(frame: pd.DataFrame) -> str:
    """GitHub-flavoured Markdown table (numbers right-aligned, '|' escaped)."""

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    numeric = [pd.api.types.is_numeric_dtype(frame[c].dtype) for c in frame.columns]
    rule = "|" + "|".join("---:" if num else "---" for num in numeric) + "|"
    rows = [line(map(_cell, row)) for row in frame.itertuples(index=False)]
    return "\n".join([line(map(str, frame.columns)), rule, *rows])
