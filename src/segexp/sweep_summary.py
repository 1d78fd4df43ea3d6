"""What the parent run of a sweep holds when the sweep ends.

The leaderboard of its jobs (CSV, best first) and, per (algo, scaler,
features) group swept over k, an elbow plot (inertia vs k) and a
silhouette-vs-k plot.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from segexp import plots
from segexp.leaderboard import GROUP_KEYS, rank_runs, runs_to_frame
from segexp.sweep_state import SweepState
from segexp.tracking import TAG_PREFIX, Tracker

LEADERBOARD_FILE = "leaderboard.csv"


def sweep_runs(tracker: Tracker, state: SweepState) -> pd.DataFrame:
    """Every job run of the sweep as a frame (any status)."""
    runs = tracker.client.search_runs(
        [state.experiment_id],
        filter_string=f"tags.`{TAG_PREFIX}sweep_id` = '{state.sweep_id}' "
        f"and tags.`{TAG_PREFIX}kind` = 'job'",
        max_results=50000,
    )
    return runs_to_frame(runs)


def _group_slug(values: tuple) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(map(str, values)))


def k_groups(frame: pd.DataFrame):
    """(group key, rows) for every (algo, scaler, features) group with two or more k values."""
    if frame.empty or "k" not in frame.columns:
        return
    finished = frame[(frame["status"] == "FINISHED") & frame["k"].notna()]
    for key, rows in finished.groupby(list(GROUP_KEYS), sort=True):
        if rows["k"].nunique() >= 2:
            yield key, rows.sort_values("k")


def summarize_sweep(
    tracker: Tracker, state: SweepState, outcomes: list[dict], folder: Path, config: DictConfig
) -> tuple[dict[str, float], dict[str, str]]:
    """Write the parent's artifacts into ``folder``; return its metrics and tags."""
    frame = sweep_runs(tracker, state)
    metrics = {
        "jobs_total": float(len(outcomes)),
        **{
            f"jobs_{s}": float(sum(o["status"] == s for o in outcomes))
            for s in ("finished", "failed", "skipped", "invalid")
        },
    }
    tags: dict[str, str] = {}
    if frame.empty:
        return metrics, tags
    ranked = rank_runs(frame, "silhouette")
    ranked.to_csv(folder / LEADERBOARD_FILE, index=False)
    best = ranked[ranked["status"] == "FINISHED"]
    if "silhouette" in best.columns and best["silhouette"].notna().any():
        top = best.iloc[0]
        metrics["best_silhouette"] = float(top["silhouette"])
        tags[f"{TAG_PREFIX}best_run_id"] = str(top["run_id"])
        tags[f"{TAG_PREFIX}best_run_name"] = str(top["run_name"])
    dpi = int(config.plots.dpi)
    for key, rows in k_groups(frame):
        slug = _group_slug(key)
        label = " / ".join(map(str, key))
        if "inertia" in rows.columns and rows["inertia"].notna().sum() >= 2:
            plots.save(
                plots.metric_vs_k(rows, "inertia", f"elbow: {label}"),
                folder / "plots" / f"elbow-{slug}.png",
                dpi,
            )
        if "silhouette" in rows.columns and rows["silhouette"].notna().sum() >= 2:
            plots.save(
                plots.metric_vs_k(rows, "silhouette", f"silhouette vs k: {label}"),
                folder / "plots" / f"silhouette_vs_k-{slug}.png",
                dpi,
            )
    return metrics, tags
