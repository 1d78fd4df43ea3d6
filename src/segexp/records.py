"""A finished job as data, and the one function that turns it into an MLflow run.

The runner computes everything a run holds (params, metrics, tags, a staged
folder of artifacts, and deferred artifact tasks such as plots) into a
picklable ``RunRecord``. ``log_record`` writes it to MLflow, either in the
job's own process or in the writer process (segexp.writer) that logs while the
next job computes. Both paths produce the same run.

Deferred tasks are pickled into the staged folder, not into the record, so a
record is a few hundred bytes on the writer's pipe. Whoever renders a folder's
tasks first claims it with an atomic marker file: the writer renders in job
order, and its render helper (or, without one, the main process once it has no
job left to fit) renders from the back of the queue (``render_staged``), so
both cores draw plots instead of one.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import shutil
import time
import traceback
from collections.abc import Callable
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


TASKS_FILE = ".segexp-tasks.pkl"
_CLAIM, _DONE, _ERROR = ".segexp-claimed", ".segexp-rendered", ".segexp-render-error"
_WAIT_SECONDS = 600


def stage_tasks(folder: Path, tasks: list[ArtifactTask]) -> None:
    """Store deferred tasks beside the staged artifacts (excluded from the upload)."""
    with open(folder / TASKS_FILE, "wb") as handle:
        pickle.dump(tasks, handle, protocol=pickle.HIGHEST_PROTOCOL)


def render_staged(folder: Path) -> bool:
    """Run the folder's deferred tasks unless another process claimed them; True if we did."""
    if not (folder / TASKS_FILE).exists():
        return False
    try:
        os.close(os.open(folder / _CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    try:
        with open(folder / TASKS_FILE, "rb") as handle:
            tasks = pickle.load(handle)
        for task in tasks:
            task.run(folder)
    except Exception as exc:
        (folder / _ERROR).write_text(f"{type(exc).__name__}: {exc}")
    finally:
        (folder / TASKS_FILE).unlink(missing_ok=True)
        (folder / _DONE).touch()
    return True


def _finish_rendering(folder: Path, claimant_alive: Callable[[], bool] | None = None) -> None:
    """Render here, or wait for the process that claimed the folder; raise its error.

    ``claimant_alive`` says whether the other process that may hold a claim still
    runs; when it has died mid-drawing, this process takes the folder over.
    """
    if not render_staged(folder) and (folder / _CLAIM).exists():
        deadline = time.monotonic() + _WAIT_SECONDS
        while not (folder / _DONE).exists():
            if claimant_alive is not None and not claimant_alive():
                (folder / _CLAIM).unlink(missing_ok=True)
                render_staged(folder)
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"artifacts in {folder} were claimed but never rendered")
            time.sleep(0.002)
    if (folder / _ERROR).exists():
        raise RuntimeError((folder / _ERROR).read_text())
    for marker in (_CLAIM, _DONE):
        (folder / marker).unlink(missing_ok=True)


@dataclass
class RunRecord:
    """Everything one job logs. ``error`` set means the run ends FAILED with that error."""

    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    staged_dir: str | None = None  # artifacts written by the job, and its deferred tasks
    error: str | None = None
    job_num: int | None = None
    summary: dict[str, float] = field(default_factory=dict)  # shown in the job's log line


def log_record(
    tracker: Tracker,
    record: RunRecord,
    experiment_id: str,
    parent_run_id: str | None,
    claimant_alive: Callable[[], bool] | None = None,
) -> dict:
    """Create the run, log everything in one batch and one upload, end it; return the outcome.

    ``claimant_alive``: see ``_finish_rendering`` (the writer passes its render helper's).
    """
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
        if folder is not None:
            _finish_rendering(folder, claimant_alive)
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
