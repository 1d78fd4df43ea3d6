"""What a sweep's parent run holds when it ends: the leaderboard of its jobs (CSV and
Markdown, best first) and, per (algo, scaler, features) group swept over k, the elbow and
silhouette-vs-k plots and the recommended k."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from segexp import contract
from segexp.data.export import write_table
from segexp.errors import SegexpError
from segexp.insight import plots
from segexp.jobs.outcomes import SUMMARY_METRICS, BestRuns, JobOutcome, SweepContext, set_verbose
from segexp.model import selection
from segexp.tracking import staging
from segexp.tracking.leaderboard import (
    LeaderboardFilters,
    build_leaderboard,
    candidates,
    display_columns,
    format_markdown,
    larger_is_better,
    left_out_summary,
    runs_to_frame,
)
from segexp.tracking.store import Tracker, end_killed, kill_open_job_runs, sweep_job_runs

# the plots of a group swept over k: (metric, title, file name)
K_PLOTS = (("inertia", "elbow", "elbow"), ("silhouette", "silhouette vs k", "silhouette_vs_k"))

set_verbose()  # this process's MLflow store lines follow SEGEXP_VERBOSE


def sweep_runs(tracker: Tracker, experiment_id: str, sweep_id: str) -> pd.DataFrame:
    return runs_to_frame(sweep_job_runs(tracker.client, experiment_id, sweep_id))


def k_groups(frame: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The FINISHED runs of every (algo, scaler, features) group with two or more k values."""
    if frame.empty or "k" not in frame.columns:
        return {}
    finished = frame[(frame["status"] == "FINISHED") & frame["k"].notna()].copy()
    for column in selection.GROUP_KEYS:  # runs logged before a key existed: one value for them
        finished[column] = finished[column].fillna("none") if column in finished else "none"
    groups = finished.groupby(list(selection.GROUP_KEYS), sort=True)
    return {key: rows.sort_values("k") for key, rows in groups if rows["k"].nunique() >= 2}


def write_summary(
    frame: pd.DataFrame, outcomes: list[JobOutcome], folder: Path, options: dict[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    """Write the parent's artifacts into ``folder``; return its metrics and tags."""
    metrics = {"jobs_total": float(len(outcomes))}
    for status in ("finished", "failed", "skipped", "invalid"):
        metrics[f"jobs_{status}"] = float(sum(o.status == status for o in outcomes))
    tags: dict[str, str] = {}
    if options.get("multirun_yaml"):  # the sweep's config, as Hydra would save it
        (folder / contract.MULTIRUN_FILE).write_text(str(options["multirun_yaml"]))
    if frame.empty:
        return metrics, tags
    ranked = build_leaderboard(frame, "silhouette", LeaderboardFilters(status=None))
    write_table(ranked, folder / contract.LEADERBOARD_FILE, "csv")  # run names may start with =
    table = format_markdown(ranked[display_columns(ranked, "silhouette")])
    (folder / "leaderboard.md").write_text(table + "\n")
    chosen = candidates(ranked)[0]  # never a run a rule (noise, segment share) left out
    finished = chosen[chosen["status"] == "FINISHED"]
    if "silhouette" in finished.columns and finished["silhouette"].notna().any():
        top = finished.iloc[0]
        metrics["best_silhouette"] = float(top["silhouette"])
        tags[f"{contract.TAG_PREFIX}best_run_id"] = str(top["run_id"])
        tags[f"{contract.TAG_PREFIX}best_run_name"] = str(top["run_name"])
    groups = k_groups(frame)
    selections = {key: selection.select_k(rows) for key, rows in groups.items()}
    metrics.update(selection.recommended_k_metrics(selections))
    if selections:
        write_table(selection.k_selection_table(selections), folder / "k_selection.csv", "csv")
    for key, rows in groups.items():
        label = " / ".join(selection.group_parts(key))
        for metric, title, name in K_PLOTS:  # undefined criteria get a note on the plots
            if metric in rows.columns and rows[metric].notna().sum() >= 2:
                fig = plots.metric_vs_k(rows, metric, f"{title}: {label}", marks=selections[key])
                path = folder / "plots" / f"{name}-{selection.group_label(key)}.png"
                plots.save(fig, path, int(options.get("dpi", 80)))
    return metrics, tags


def end_interrupted_sweep(tracker: Tracker, sweep: SweepContext, signame: str) -> int:
    """A SIGINT/SIGTERM stopped the sweep: its open job runs and the parent end KILLED,
    tagged ``segexp.ended_by=<signal>``. Returns how many job runs were still open."""
    reason = f"the sweep's command was stopped by {signame}"
    killed = kill_open_job_runs(tracker, sweep.experiment_id, sweep.sweep_id, signame, reason)
    end_killed(tracker, sweep.parent_run_id, signame, reason)
    return killed


def sweep_outcomes(tracker: Tracker, sweep: SweepContext) -> list[JobOutcome]:
    """Every job's outcome: its run, or its tag on the parent. A job logged again after its
    worker died has two runs: the FINISHED one counts, the other says which replaced it."""
    runs = sweep_job_runs(tracker.client, sweep.experiment_id, sweep.sweep_id)
    finished = {
        r.data.tags.get(contract.TAG_JOB_NUM): r.info.run_id
        for r in runs
        if r.info.status == "FINISHED"
    }
    outcomes = []
    for run in runs:
        num, status = run.data.tags.get(contract.TAG_JOB_NUM), run.info.status
        replaced_by = finished.get(num) if num is not None else None
        # A run whose worker died while logging it: still RUNNING, or ended KILLED by the
        # store's check for runs of gone processes (tracking.store.reap_lost_runs).
        if status in ("RUNNING", "KILLED") and replaced_by is not None:
            note = (
                "publishing this run was interrupted (its worker died); the job was "
                f"logged again as run {replaced_by}"
            )
            if status == "RUNNING":
                tracker.fail_run(run.info.run_id, note)
            else:
                tracker.set_tags(run.info.run_id, {contract.TAG_ERROR: note})
            continue
        failed = status != "FINISHED"
        error = (run.data.tags.get(contract.TAG_ERROR) or "").splitlines()
        message = ((error[0] if error else "") or status) if failed else ""
        metrics = {k: run.data.metrics[k] for k in SUMMARY_METRICS if k in run.data.metrics}
        job_num = int(num) if num is not None else None
        outcome = "failed" if failed else "finished"
        outcomes.append(
            JobOutcome(outcome, run.info.run_name, run.info.run_id, message, job_num, metrics)
        )
    for key, value in tracker.client.get_run(sweep.parent_run_id).data.tags.items():
        if key.startswith(contract.TAG_OUTCOME_PREFIX):
            outcomes.append(JobOutcome(**json.loads(value)))
    return sorted(outcomes, key=lambda o: (o.job_num is None, o.job_num or 0))


def best_runs(frame: pd.DataFrame, metric: str, direction: str = "auto", top: int = 5) -> BestRuns:
    """The ``top`` FINISHED runs with ``metric``, ranked as ``segexp-compare`` ranks them."""
    try:
        larger = larger_is_better(metric, direction)
        ranked = build_leaderboard(frame, metric, LeaderboardFilters(), direction)
    except SegexpError:  # a metric with no known direction and direction=auto
        return BestRuns(metric, True, 0)
    if ranked.empty or metric not in ranked.columns:
        return BestRuns(metric, larger, 0)
    ranked = ranked[ranked[metric].notna()]
    with_metric, why = len(ranked), left_out_summary(ranked, prefix="filter.")
    if "rank" in ranked.columns:  # runs a rule left out (too much noise) carry no rank
        ranked = ranked[ranked["rank"].notna()]
    columns = list(dict.fromkeys(["rank", "run_name", metric, "n_clusters", "run_id"]))
    rows = ranked.head(top).reindex(columns=columns).reset_index(drop=True)
    rows = rows.astype({"rank": int, "run_name": str, metric: float, "n_clusters": "Int64"})
    rows["run_id"] = rows["run_id"].astype(str).str[:8]
    return BestRuns(metric, larger, len(ranked), rows, with_metric - len(ranked), why)


def finish_sweep(
    tracker: Tracker,
    experiment_id: str,
    parent_run_id: str,
    sweep_id: str,
    outcomes: list[JobOutcome],
    options: dict[str, Any],
) -> BestRuns:
    """Log the summary to the parent run and end it (FAILED when no job finished); the best
    runs by ``options["metric"]`` in ``options["direction"]``, for the closing lines."""
    frame = sweep_runs(tracker, experiment_id, sweep_id)
    with tempfile.TemporaryDirectory(prefix="segexp-sweep-", dir=staging.process_dir()) as tmp:
        metrics, tags = write_summary(frame, outcomes, Path(tmp), options)
        tracker.log(parent_run_id, metrics=metrics, tags=tags, artifact_dir=tmp)
    finished = any(o.status == "finished" for o in outcomes)
    tracker.end_run(parent_run_id, "FINISHED" if finished else "FAILED")
    metric = str(options.get("metric", "silhouette"))
    if frame.empty:
        return BestRuns(metric, True, 0)
    return best_runs(frame, metric, str(options.get("direction", "auto")))
