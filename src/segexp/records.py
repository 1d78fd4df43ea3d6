"""A finished job as data, and the one function that turns it into an MLflow run.

The runner computes everything a run holds (params, metrics, tags, a staged
folder of artifacts, and deferred artifact tasks such as plots) into a
picklable ``RunRecord``. ``log_record`` writes it to MLflow, either in the
job's own process or in the writer process (segexp.writer) that logs while the
next job computes. Both paths produce the same run.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segexp.tracking import Tracker


@dataclass
class ArtifactTask:
    """A deferred artifact: ``module:function`` called as ``function(folder=..., **kwargs)``."""

    function: str
    kwargs: dict[str, Any]

    def run(self, folder: Path) -> None:
        module_name, _, name = self.function.partition(":")
        getattr(importlib.import_module(module_name), name)(folder=folder, **self.kwargs)


@dataclass
class RunRecord:
    """Everything one job logs. ``error`` set means the run ends FAILED with that error."""

    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    staged_dir: str | None = None  # artifacts already written by the job
    tasks: list[ArtifactTask] = field(default_factory=list)
    error: str | None = None
    job_num: int | None = None
    summary: dict[str, float] = field(default_factory=dict)  # shown in the job's log line


def log_record(
    tracker: Tracker, record: RunRecord, experiment_id: str, parent_run_id: str | None
) -> dict:
    """Create the run, log everything in one batch and one upload, end it; return the outcome."""
    run_id = tracker.start_run(experiment_id, record.run_name, record.tags, parent_run_id)
    outcome = {
        "run_name": record.run_name,
        "run_id": run_id,
        "job_num": record.job_num,
        "metrics": record.summary,
        "message": "",
    }
    try:
        if record.error is not None:
            tracker.log(run_id, params=record.params)
            tracker.fail_run(run_id, record.error)
            return {**outcome, "status": "failed", "message": record.error.splitlines()[0]}
        folder = Path(record.staged_dir) if record.staged_dir else None
        for task in record.tasks:
            task.run(folder)
        tracker.log(run_id, params=record.params, metrics=record.metrics, artifact_dir=folder)
        tracker.end_run(run_id, "FINISHED")
        return {**outcome, "status": "finished"}
    except Exception as exc:  # rendering or the store failed: the run says so
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            tracker.fail_run(run_id, error + "\n" + traceback.format_exc(limit=8))
        return {**outcome, "status": "failed", "message": error}
    finally:
        if record.staged_dir:
            shutil.rmtree(record.staged_dir, ignore_errors=True)


def describe_outcome(outcome: dict) -> str:
    """One log line per job."""
    num = outcome.get("job_num")
    head = f"[{outcome['run_name']}]" if num is None else f"[#{num} {outcome['run_name']}]"
    if outcome["status"] == "finished":
        metrics = outcome.get("metrics") or {}
        shown = ", ".join(
            f"{k}={metrics[k]:.4g}" for k in ("n_clusters", "silhouette", "inertia") if k in metrics
        )
        return f"{head} FINISHED {shown} (run {outcome['run_id']})"
    return f"{head} {outcome['status'].upper()}: {outcome['message']}"
