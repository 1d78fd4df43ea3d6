"""The Python API behind ``segexp.run`` and ``segexp.sweep``, for notebooks and scripts.

Both run the ``segexp`` command itself in this process (the same Hydra app,
callback, launcher and publishing path), so runs logged from a notebook carry
exactly the command line's params, metrics, tags, run names and artifacts.
``data`` is a file path or a pandas DataFrame; a DataFrame is staged as a
Parquet file for the call (the runs' ``data`` param and source tag say
``DataFrame``, or ``data_name`` when given). Results are read back from the
tracking store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from segexp.errors import ConfigError, RunFailed
from segexp.tracking import staging
from segexp.tracking.assignments import download_assignments

USER_CONF_ENV = "SEGEXP_CONF_DIR"
_STOPPED_CODES = {130: "SIGINT", 143: "SIGTERM"}  # 128 + the signal that stopped the call


@dataclass
class RunResult:
    """One logged job: its run id and metrics, each customer's segment, the segment profile."""

    run_id: str
    run_name: str
    tracking_uri: str
    metrics: dict[str, float]
    params: dict[str, str]
    labels: pd.Series  # segment of each customer, indexed by customer id (or row)
    profile: pd.DataFrame  # one row per segment: size, share, names, statistics
    tags: dict[str, str] = field(default_factory=dict)


@contextmanager
def _data_overrides(data: Any, data_name: str | None) -> Iterator[list[str]]:
    """Overrides pointing ``data.path`` at ``data`` (a DataFrame is staged as Parquet)."""
    if data is None:
        yield []
        return
    if isinstance(data, pd.DataFrame):
        # In this process's staging folder: removed after the call, and by the next
        # segexp command if this process is killed meanwhile (segexp.tracking.staging).
        staging.sweep()
        with tempfile.TemporaryDirectory(prefix="segexp-frame-", dir=staging.process_dir()) as tmp:
            path = Path(tmp) / "data.parquet"
            data.to_parquet(path, index=False)
            yield [f"data.path={path}", f"+data.source_name={data_name or 'DataFrame'}"]
        return
    if isinstance(data, str | os.PathLike):
        path = Path(data).expanduser().resolve()
        yield [f"data.path={path}"] + ([f"+data.source_name={data_name}"] if data_name else [])
        return
    raise ConfigError(
        f"data: expected a file path or a pandas DataFrame; got {type(data).__name__}"
    )


@contextmanager
def _conf_dir(conf_dir: str | os.PathLike | None) -> Iterator[None]:
    if conf_dir is None:
        yield
        return
    saved = os.environ.get(USER_CONF_ENV)
    os.environ[USER_CONF_ENV] = str(Path(conf_dir).expanduser().resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(USER_CONF_ENV, None)
        else:
            os.environ[USER_CONF_ENV] = saved


def _run_command(args: list[str]) -> int:
    """The command in this process. Runs are published here, without the command line's
    pool: its workers would import the caller's main module (a script or notebook)."""
    from segexp.jobs import app

    return app.main(args)


def _tracking_uri(overrides: Sequence[str]) -> str:
    from segexp.tracking.store import resolve_tracking_uri

    configured = next(
        (o.split("=", 1)[1] for o in overrides if o.startswith("mlflow.tracking_uri=")), None
    )
    return resolve_tracking_uri(configured or None)


def run(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
) -> RunResult:
    """Fit and log one job, as ``segexp <overrides>`` does; return what it logged.

    Raises ``RunFailed`` (exit code and the message printed above) when the job
    did not finish.
    """
    from segexp.jobs import app

    given = [str(o) for o in overrides or []]
    if "-m" in given or "--multirun" in given:
        raise ConfigError("overrides: segexp.run fits one job; use segexp.sweep for -m")
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        code = _run_command([*given, *data_args])
    outcomes = app.last_outcomes()
    if code in _STOPPED_CODES:
        raise RunFailed(f"segexp.run: stopped by {_STOPPED_CODES[code]} (exit code {code})", code)
    if code != 0 or not outcomes or outcomes[-1].run_id is None:
        message = outcomes[-1].message if outcomes else app.last_refusal()
        raise RunFailed(f"segexp.run: exit code {code}: {message or 'the job did not start'}", code)
    return _read_run(_tracking_uri(given), outcomes[-1].run_id)


def _read_run(tracking_uri: str, run_id: str) -> RunResult:
    from mlflow.tracking import MlflowClient

    from segexp.insight.profiles import PROFILE_CSV

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="segexp-result-", dir=staging.process_dir()) as folder:
        assignments = download_assignments(client, run_id, Path(folder), id_column="first")
        profile = pd.read_csv(
            client.download_artifacts(run_id, PROFILE_CSV, folder), index_col="segment"
        )
    id_column = assignments.columns[0] if assignments.columns[0] != "segment" else None
    labels = assignments["segment"].astype(int)
    if id_column is not None:
        labels.index = pd.Index(assignments[id_column], name=id_column)
    return RunResult(
        run_id=run_id,
        run_name=run.info.run_name,
        tracking_uri=tracking_uri,
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        labels=labels.rename("segment"),
        profile=profile,
        tags=dict(run.data.tags),
    )


def sweep(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
    metric: str = "silhouette",
) -> pd.DataFrame:
    """Run a multirun, as ``segexp -m <overrides>`` does; return its leaderboard.

    The leaderboard holds every job of the sweep (any status), best first by
    ``metric``, one row per run with its params and metrics; ``attrs`` carries the
    sweep id, parent run id and tracking URI. Raises ``RunFailed`` when the sweep
    could not start (bad input or configuration); failed jobs are rows with status
    FAILED.
    """
    from segexp.jobs import app, callbacks
    from segexp.tracking.leaderboard import LeaderboardFilters, build_leaderboard

    given = [str(o) for o in overrides or [] if o not in ("-m", "--multirun")]
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        code = _run_command(["-m", *given, *data_args])
    report = callbacks.LAST_SWEEP
    if code in _STOPPED_CODES:
        raise RunFailed(
            f"segexp.sweep: stopped by {_STOPPED_CODES[code]} (exit code {code}); the sweep's "
            "parent run and open job runs ended KILLED",
            code,
        )
    if report is None:
        refusal = app.last_refusal() or "the sweep did not start"
        raise RunFailed(f"segexp.sweep: exit code {code}: {refusal}", code)
    from segexp.jobs.summary import sweep_runs
    from segexp.tracking.store import Tracker

    uri = _tracking_uri(given)
    tracker = Tracker(uri)
    parent = tracker.client.get_run(report.parent_run_id)
    frame = sweep_runs(tracker, parent.info.experiment_id, report.sweep_id)
    board = build_leaderboard(frame, metric, LeaderboardFilters(status=None))
    board.attrs.update(
        sweep_id=report.sweep_id, parent_run_id=report.parent_run_id, tracking_uri=uri
    )
    return board
