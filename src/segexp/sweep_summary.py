"""What the parent run of a sweep holds when the sweep ends.

The leaderboard of its jobs (CSV, best first) and, per (algo, scaler,
features) group swept over k, an elbow plot (inertia vs k) and a
silhouette-vs-k plot.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from segexp import plots
from segexp.contract import LEADERBOARD_FILE, TAG_KIND, TAG_PREFIX, TAG_SWEEP_ID
from segexp.leaderboard import (
    GROUP_KEYS,
    LeaderboardFilters,
    build_leaderboard,
    display_columns,
    format_markdown,
    runs_to_frame,
)
from segexp.selection import k_selection_table, recommended_k_metrics, select_k
from segexp.tracking import Tracker

STATUSES = ("finished", "failed", "skipped", "invalid")


def sweep_runs(tracker: Tracker, experiment_id: str, sweep_id: str) -> pd.DataFrame:
    """Every job run of the sweep as a frame (any status)."""
    runs = tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_SWEEP_ID}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'job'",
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


def write_summary(
    frame: pd.DataFrame, outcomes: list[dict], folder: Path, options: dict[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    """Write the parent's artifacts into ``folder``; return its metrics and tags."""
    metrics = {"jobs_total": float(len(outcomes))}
    metrics.update({f"jobs_{s}": float(sum(o["status"] == s for o in outcomes)) for s in STATUSES})
    tags: dict[str, str] = {}
    if frame.empty:
        return metrics, tags
    ranked = build_leaderboard(frame, "silhouette", LeaderboardFilters(status=None))
    ranked.to_csv(folder / LEADERBOARD_FILE, index=False)
    table = format_markdown(ranked[display_columns(ranked, "silhouette")])
    (folder / "leaderboard.md").write_text(table + "\n")
    finished = ranked[ranked["status"] == "FINISHED"]
    if "silhouette" in finished.columns and finished["silhouette"].notna().any():
        top = finished.iloc[0]
        metrics["best_silhouette"] = float(top["silhouette"])
        tags[f"{TAG_PREFIX}best_run_id"] = str(top["run_id"])
        tags[f"{TAG_PREFIX}best_run_name"] = str(top["run_name"])
    dpi = int(options.get("dpi", 80))
    groups = dict(k_groups(frame))
    selections = {key: select_k(rows) for key, rows in groups.items()}
    metrics.update(recommended_k_metrics(selections))
    if selections:
        k_selection_table(selections).to_csv(folder / "k_selection.csv", index=False)
    with plots.reused_figures():
        for key, rows in groups.items():
            slug = _group_slug(key)
            label = " / ".join(map(str, key))
            marks = selections[key].recommended
            if "inertia" in rows.columns and rows["inertia"].notna().sum() >= 2:
                fig = plots.metric_vs_k(rows, "inertia", f"elbow: {label}", marks=marks)
                plots.save(fig, folder / "plots" / f"elbow-{slug}.png", dpi)
            if "silhouette" in rows.columns and rows["silhouette"].notna().sum() >= 2:
                fig = plots.metric_vs_k(
                    rows, "silhouette", f"silhouette vs k: {label}", marks=marks
                )
                plots.save(fig, folder / "plots" / f"silhouette_vs_k-{slug}.png", dpi)
    return metrics, tags


def finish_sweep(
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    sweep_id: str,
    outcomes: list[dict],
    options: dict[str, Any],
) -> None:
    """Log the summary to the parent run and end it (FAILED when no job finished)."""
    frame = sweep_runs(tracker, experiment_id, sweep_id)
    with tempfile.TemporaryDirectory(prefix="segexp-sweep-") as tmp:
        metrics, tags = write_summary(frame, outcomes, Path(tmp), options)
        tracker.log(parent_run_id, metrics=metrics, tags=tags, artifact_dir=tmp)
    finished = any(o["status"] == "finished" for o in outcomes)
    tracker.end_run(parent_run_id, "FINISHED" if finished else "FAILED")
