"""Runs as a table, and the direction each metric is ranked in.

Shared by the sweep callback (the leaderboard artifact of every parent run)
and ``segexp.compare``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

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

GROUP_KEYS = ("algo", "scaler", "features")
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


def rank_runs(frame: pd.DataFrame, metric: str = "silhouette") -> pd.DataFrame:
    """Sort best first by ``metric`` in its natural direction; runs without it go last."""
    if frame.empty or metric not in frame.columns:
        return frame
    ascending = not METRIC_DIRECTIONS.get(metric, True)
    ranked = frame.sort_values(metric, ascending=ascending, na_position="last", kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked
