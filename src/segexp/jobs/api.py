"""The Python API behind ``segexp.run`` and ``segexp.sweep``: Hydra's compose API and the
command's own functions, so a notebook's runs are the command's runs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from segexp.data import load_customers
from segexp.errors import (
    ConfigError,
    RunFailed,
    SegexpError,
    StoreWriteError,
    is_usage_error,
    usage_error_line,
)
from segexp.insight.profiles import PROFILE_CSV
from segexp.jobs.callbacks import CONFIG_NAME, checked_jobs, end_sweep, record_outcome, start_sweep
from segexp.jobs.job import run_job
from segexp.jobs.ranges import expand_argv
from segexp.jobs.summary import end_interrupted_sweep, sweep_runs
from segexp.jobs.validation import check_job_config, check_sweep_before_hydra
from segexp.tracking import staging
from segexp.tracking.assignments import download_assignments
from segexp.tracking.leaderboard import LeaderboardFilters, build_leaderboard
from segexp.tracking.store import resolve_tracking_uri, tracker_for

USER_CONF_ENV = "SEGEXP_CONF_DIR"
CONFIG_MODULE = "segexp.conf"


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
    """Overrides pointing ``data.path`` at ``data`` (a DataFrame is staged as Parquet, where
    the next command removes it if this process is killed meanwhile)."""
    if isinstance(data, pd.DataFrame):
        staging.sweep()
        with tempfile.TemporaryDirectory(prefix="segexp-frame-", dir=staging.process_dir()) as tmp:
            path = Path(tmp) / "data.parquet"
            data.to_parquet(path, index=False)
            yield [f"data.path={path}", f"+data.source_name={data_name or 'DataFrame'}"]
    elif data is None or isinstance(data, str | os.PathLike):
        named = [f"+data.source_name={data_name}"] if data_name else []
        yield [] if data is None else [f"data.path={Path(data).expanduser().resolve()}", *named]
    else:
        raise ConfigError(
            f"data: expected a file path or a pandas DataFrame; got {type(data).__name__}"
        )


@contextmanager
def _conf_dir(conf_dir: str | os.PathLike | None) -> Iterator[None]:
    """``SEGEXP_CONF_DIR`` set to ``conf_dir`` for the call."""
    saved = os.environ.get(USER_CONF_ENV)
    if conf_dir is not None:
        os.environ[USER_CONF_ENV] = str(Path(conf_dir).expanduser().resolve())
    try:
        yield
    finally:
        if saved is not None:
            os.environ[USER_CONF_ENV] = saved
        elif conf_dir is not None:
            os.environ.pop(USER_CONF_ENV, None)


def _compose(overrides: Sequence[str]) -> DictConfig:
    """The config the command line composes for ``overrides`` (with its ``hydra`` node);
    Hydra's refusal is a ConfigError with the command line's one line."""
    try:
        with initialize_config_module(CONFIG_MODULE, job_name="segexp", version_base="1.3"):
            return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    except Exception as exc:
        if not is_usage_error(exc):
            raise
        line = usage_error_line(exc, CONFIG_NAME, list(overrides), False)
        raise ConfigError(line.removeprefix("segexp: error: ")) from None


def _refused(where: str, exc: SegexpError) -> RunFailed:
    """The command's refusal, with its exit code."""
    return RunFailed(f"{where}: exit code {exc.exit_code}: {exc}", exc.exit_code)


def _choices(cfg: DictConfig) -> dict[str, str]:
    return {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items()}


def run(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
) -> RunResult:
    """Fit and log one job, as ``segexp <overrides>`` does; return what it logged.
    ``RunFailed`` (exit code, the one-line message) when the job did not finish."""
    where = "segexp.run"
    given = [str(o) for o in overrides or []]
    if "-m" in given or "--multirun" in given:
        raise ConfigError("overrides: segexp.run fits one job; use segexp.sweep for -m")
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        try:
            cfg = _compose([*expand_argv(given), *data_args])
            check_job_config(cfg)
            tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
            outcome = run_job(cfg, choices=_choices(cfg), checked=True)
        except SegexpError as exc:
            raise _refused(where, exc) from None
    if outcome.status != "finished" or outcome.run_id is None:
        code = 1 if outcome.status == "failed" else 2
        raise RunFailed(f"{where}: exit code {code}: {outcome.message}", code)
    return _read_run(tracking_uri, outcome.run_id)


def _read_run(tracking_uri: str, run_id: str) -> RunResult:
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="segexp-result-", dir=staging.process_dir()) as folder:
        assignments = download_assignments(client, run_id, Path(folder), id_column="first")
        profile = pd.read_csv(
            client.download_artifacts(run_id, PROFILE_CSV, folder), index_col="segment"
        )
    if assignments.columns[0] != "segment":  # indexed by the customer id
        assignments = assignments.set_index(assignments.columns[0])
    labels = assignments["segment"].astype(int)
    info, data = run.info, run.data
    return RunResult(
        run_id, info.run_name, tracking_uri, data.metrics, data.params, labels, profile, data.tags
    )


def sweep(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
    metric: str = "silhouette",
) -> pd.DataFrame:
    """Run a multirun, as ``segexp -m <overrides>`` does; return its leaderboard: every job
    (any status) best first by ``metric``, ``attrs`` holding the sweep id, parent run id and
    tracking URI. ``RunFailed`` when the sweep could not start or was stopped."""
    where = "segexp.sweep"
    given = [str(o) for o in overrides or [] if o not in ("-m", "--multirun")]
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        try:
            check_sweep_before_hydra(["-m", *given])
            given = [*expand_argv(["-m", *given])[1:], *data_args]
            base = _compose([o for o in given if "," not in o])
            groups = {str(g) for g in base.hydra.runtime.choices}
            with initialize_config_module(CONFIG_MODULE, job_name="segexp", version_base="1.3"):
                jobs, configs = checked_jobs(given, {}, base, groups)
            command = f"segexp.sweep {' '.join(given)}"
            table = load_customers(base.data)
            context = start_sweep(base, table, len(jobs), "", command, configs_checked=True)
        except SegexpError as exc:
            raise _refused(where, exc) from None
        tracker = tracker_for(context.tracking_uri)
        try:
            for num, cfg in enumerate(configs):
                outcome = run_job(cfg, sweep=context, job_num=num, choices=_choices(cfg))
                record_outcome(context, outcome)
            end_sweep(base, context)
        except StoreWriteError as exc:
            with contextlib.suppress(Exception):
                tracker.fail_run(context.parent_run_id, f"the store stopped taking runs: {exc}")
            raise _refused(where, exc) from None
        except KeyboardInterrupt:
            end_interrupted_sweep(tracker, context, "SIGINT")
            raise RunFailed(
                f"{where}: stopped by SIGINT (exit code 130); the sweep's parent run and open "
                "job runs ended KILLED",
                130,
            ) from None
    frame = sweep_runs(tracker, context.experiment_id, context.sweep_id)
    board = build_leaderboard(frame, metric, LeaderboardFilters(status=None))
    board.attrs.update(
        sweep_id=context.sweep_id,
        parent_run_id=context.parent_run_id,
        tracking_uri=context.tracking_uri,
    )
    return board
