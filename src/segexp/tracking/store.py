"""The one way a run reaches MLflow: store location, experiments, runs, logging.

A job computes everything its run holds into a ``RunRecord`` (params, metrics,
tags, and a folder of artifact files); ``log_run`` turns it into one MLflow
run: create, one ``log_batch``, one artifact upload, end. Every launcher and
the Python API go through it. MLflow is imported on first use, not at import
time: it is the slowest import of the stack and ``--help`` needs none of it.

Uses ``MlflowClient`` with explicit run ids (never the fluent API's global
active run), so parallel jobs, the sweep callback and the tools cannot pick up
each other's runs, and ``MLFLOW_RUN_ID`` in the environment cannot hijack a
parent (mlflow#15713). Each job logs its params, metrics and tags in one batch
and its artifacts in one call.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segexp.contract import TAG_ERROR, TAG_KIND, TAG_SWEEP_ID
from segexp.errors import TrackingError

DEFAULT_DB_NAME = "mlflow.db"
ARTIFACT_DIR_NAME = "mlruns"
# MLflow's own tag names (mlflow.utils.mlflow_tags), spelled out to keep mlflow out of imports
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"
# MLflow 3's UI opens an experiment on its GenAI views unless told it holds model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
_MAX_TAG_LENGTH = 5000
_MAX_PARAM_LENGTH = 6000


def resolve_tracking_uri(configured: str | None, base_dir: str | Path | None = None) -> str:
    """Absolute tracking URI: the configured one, else MLFLOW_TRACKING_URI, else a local SQLite.

    Relative SQLite and file paths are made absolute against ``base_dir`` (the
    folder the command was started in) so Hydra's output folders never receive runs.
    """
    base = Path(base_dir or os.getcwd()).resolve()
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        return f"sqlite:///{base / DEFAULT_DB_NAME}"
    if uri.startswith("sqlite:///"):
        db_path = uri[len("sqlite:///") :]
        if db_path != ":memory:" and not os.path.isabs(db_path):
            return f"sqlite:///{(base / db_path).resolve()}"
        return uri
    if "://" not in uri:  # a bare folder: MLflow's file store (opt-in only in MLflow 3)
        return str((base / uri).resolve())
    if uri.startswith("file:") and not uri.startswith("file:///"):
        return (base / uri[len("file:") :]).resolve().as_uri()
    return uri


def local_artifact_root(tracking_uri: str) -> Path | None:
    """A local SQLite store keeps artifacts beside it in ``mlruns/``; a server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        db_path = Path(tracking_uri[len("sqlite:///") :])
        return db_path.parent / ARTIFACT_DIR_NAME
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "experiment"


def _clip(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tracker:
    """MLflow access for one tracking URI, with batched logging per run."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def experiment_id(self, name: str, create: bool = True) -> str:
        """Id of the named experiment, created (race-safe) when missing and ``create``."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment '{name}' is deleted in {self.tracking_uri}; restore it "
                    "(mlflow experiments restore) or choose another mlflow.experiment"
                )
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before segexp set it
                self.client.set_experiment_tag(
                    experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            return experiment.experiment_id
        from mlflow.exceptions import MlflowException

        if not create:
            raise TrackingError(
                f"no experiment named '{name}' in {self.tracking_uri}; run a sweep first "
                "or set mlflow.experiment"
            )
        root = local_artifact_root(self.tracking_uri)
        location = None
        if root is not None:
            location = (root / f"{_slug(name)}-{int(time.time() * 1000)}").as_uri()
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException:
            # another process created it between our lookup and create (mlflow#10334)
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def start_run(
        self,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        all_tags = {k: _clip(v, _MAX_TAG_LENGTH) for k, v in (tags or {}).items()}
        all_tags[MLFLOW_RUN_NAME] = run_name
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        return run.info.run_id

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        artifact_dir: str | Path | None = None,
    ) -> None:
        """One batch of params, metrics and tags, then one upload of a folder of artifacts."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, _clip(v, _MAX_PARAM_LENGTH)) for k, v in (params or {}).items()],
            tags=[RunTag(k, _clip(v, _MAX_TAG_LENGTH)) for k, v in (tags or {}).items()],
        )
        if artifact_dir is not None:
            self.client.log_artifacts(run_id, str(artifact_dir))

    def log_datasets(self, run_id: str, datasets: list[dict[str, str]]) -> None:
        """The run's input tables, as MLflow datasets (the UI's Dataset column)."""
        if not datasets:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(
                    name=d["name"],
                    digest=d["digest"],
                    source_type=d["source_type"],
                    source=d["source"],
                    schema=d.get("schema"),
                    profile=d.get("profile"),
                ),
                tags=[InputTag("mlflow.data.context", d.get("context", "training"))],
            )
            for d in datasets
        ]
        self.client.log_inputs(run_id, datasets=inputs)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log(run_id, tags=tags)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def fail_run(self, run_id: str, error: str) -> None:
        """Record the error as a tag and end the run FAILED."""
        self.client.set_tag(run_id, TAG_ERROR, _clip(error, _MAX_TAG_LENGTH))
        self.end_run(run_id, "FAILED")


@dataclass
class RunRecord:
    """Everything one job logs. ``error`` set means the run ends FAILED with that error."""

    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_dir: str | None = None  # files the job wrote: tables, model, plots
    error: str | None = None
    datasets: list[dict[str, str]] = field(default_factory=list)  # input tables (log_inputs)


def log_run(
    tracker: Tracker, experiment_id: str, record: RunRecord, parent_run_id: str | None = None
) -> tuple[str, str | None]:
    """Create the run, log everything in one batch and one upload, end it.

    Returns (run id, error): error is None for a FINISHED run, else why it FAILED
    (the job's own error, or the store refusing the upload).
    """
    run_id = tracker.start_run(experiment_id, record.run_name, record.tags, parent_run_id)
    try:
        tracker.log_datasets(run_id, record.datasets)
        if record.error is not None:
            tracker.log(run_id, params=record.params)
            tracker.fail_run(run_id, record.error)
            return run_id, record.error.splitlines()[0]
        tracker.log(
            run_id, params=record.params, metrics=record.metrics, artifact_dir=record.artifact_dir
        )
        tracker.end_run(run_id, "FINISHED")
        return run_id, None
    except Exception as exc:  # the store failed mid-run: the run says so
        error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            tracker.fail_run(run_id, error + "\n" + traceback.format_exc(limit=8))
        return run_id, error


def runs_url(tracking_uri: str, experiment_id: str, ui: str = LOCAL_UI) -> str:
    """The UI page that lists the experiment's runs (the runs table, not the GenAI views).

    A tracking server is its own UI; a local store's UI is ``mlflow ui`` at ``ui``."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else ui
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"


def sweep_runs_url(
    tracking_uri: str,
    experiment_id: str,
    sweep_id: str,
    metric: str = "silhouette",
    descending: bool = True,
    ui: str = LOCAL_UI,
) -> str:
    """The runs table filtered to one sweep's job runs, best first by ``metric``."""
    from urllib.parse import quote, urlencode

    query = urlencode(
        {
            "searchFilter": f"tags.`{TAG_SWEEP_ID}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'job'",
            "orderByKey": f"metrics.`{metric}`",
            "orderByAsc": "false" if descending else "true",
        },
        quote_via=quote,
    )
    return f"{runs_url(tracking_uri, experiment_id, ui)}?{query}"


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves the UI of a local store (None: a server is its own UI)."""
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


_TRACKERS: dict[str, Tracker] = {}


def tracker_for(tracking_uri: str) -> Tracker:
    """One Tracker per store and process: creating a client opens the store (~0.3 s on SQLite)."""
    if tracking_uri not in _TRACKERS:
        _TRACKERS[tracking_uri] = Tracker(tracking_uri)
    return _TRACKERS[tracking_uri]


def find_run_name(tracker: Tracker, experiment_ids: list[str], filter_string: str) -> str | None:
    """Name of the first run matching ``filter_string``, quoted for messages; None if none."""
    runs = tracker.client.search_runs(experiment_ids, filter_string=filter_string, max_results=1)
    return f"run {runs[0].info.run_name}" if runs else None
