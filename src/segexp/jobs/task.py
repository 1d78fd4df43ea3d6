"""What the ``segexp`` command's Hydra task does: one job, logged. A single run is checked,
run and reported here; a sweep's job is logged under its parent run (``callbacks``)."""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from segexp.errors import SegexpError, StoreWriteError, composed, stop
from segexp.jobs import callbacks
from segexp.jobs.job import run_job
from segexp.jobs.outcomes import JobOutcome, job_line, set_verbose
from segexp.jobs.validation import check_job_config
from segexp.model.selection import DEFAULT_MIN_SEGMENT_SHARE
from segexp.tracking.store import (
    check_experiment_name,
    resolve_tracking_uri,
    runs_url,
    ui_command,
)

log = logging.getLogger("segexp")


class JobObjective(float):
    """The objective a sweeper optimises, carrying the job's outcome for the callback."""

    outcome: JobOutcome

    def __new__(cls, value: float, outcome: JobOutcome) -> JobObjective:
        made = super().__new__(cls, value)
        made.outcome = outcome
        return made

    def __reduce__(self) -> Any:  # a launcher's worker sends it back pickled
        return (JobObjective, (float(self), self.outcome))


def objective(cfg: DictConfig, outcome: JobOutcome, direction: str | None = None) -> float:
    """``objective.metric`` of the run; without one, the worst value for ``direction`` (not
    NaN: hydra-optuna-sweeper 1.3 stops the sweep on NaN)."""
    value = outcome.metrics.get(str(cfg.objective.metric), math.nan)
    if not math.isnan(float(value)):
        return float(value)
    maximize = str(direction or cfg.objective.direction).endswith("maximize")
    return -math.inf if maximize else math.inf


def _single_run(cfg: DictConfig, choices: dict[str, str]) -> JobOutcome:
    """One run: checked before anything loads, its line printed, its exit code raised."""
    try:
        check_job_config(cfg)
        check_experiment_name(cfg.mlflow.experiment)
        tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)  # a server gone: 1 line
        outcome = run_job(cfg, choices=choices, checked=True)
    except StoreWriteError as exc:
        raise stop(f"the store refused the run: {exc}", 1) from None
    except SegexpError as exc:
        raise stop(str(exc)) from None
    if outcome.status == "invalid":
        raise stop(outcome.message)
    if outcome.status == "failed":
        print(f"segexp: run failed: {job_line(outcome, run_id=True)}", file=sys.stderr)
        raise SystemExit(1)
    log.info(job_line(outcome, run_id=True))
    _print_run_page(tracking_uri, outcome)
    smallest = outcome.metrics.get("min_segment_share", 1.0)
    if smallest < DEFAULT_MIN_SEGMENT_SHARE:
        print(
            f"segexp: warning: the smallest segment holds {smallest:.2%} of the customers, under "
            f"{DEFAULT_MIN_SEGMENT_SHARE:.0%} (filter.min_segment_share): likely an outlier "
            "split; rankings leave such runs out and segexp-promote takes it only with "
            "allow_small_segments=true",
            file=sys.stderr,
        )
    return outcome


def _print_run_page(tracking_uri: str, outcome: JobOutcome) -> None:
    """Where to look at the run: its page in the MLflow UI (a local store: after the command
    that serves it), as a sweep ends with its runs' page."""
    runs = runs_url(tracking_uri, str(outcome.experiment_id))
    page = f"open {runs}/{outcome.run_id}?workflowType=machine_learning"
    serve = ui_command(tracking_uri)
    print(f"  {serve}  # the MLflow UI, then:\n  {page}" if serve else f"  {page}", flush=True)


def run_task(cfg: DictConfig) -> float:
    """The ``segexp`` command's task: one job, logged; the objective, carrying its outcome."""
    hydra_cfg = HydraConfig.get()
    choices = {str(k): str(v) for k, v in hydra_cfg.runtime.choices.items()}
    if hydra_cfg.mode != RunMode.MULTIRUN:
        composed()
        set_verbose(cfg.get("verbose", False))
        outcome = _single_run(cfg, choices)
    else:  # a job of a multirun, logged under its sweep's parent run
        num = int(hydra_cfg.job.num)
        sweep = callbacks.sweep_context(cfg, str(hydra_cfg.sweep.dir))
        try:
            outcome = run_job(cfg, sweep=sweep, job_num=num, choices=choices)
        except StoreWriteError as exc:
            message, name = str(exc), f"job #{num}"
            outcome = JobOutcome("failed", name, message=message, job_num=num, store_error=True)
        else:
            if sweep is not None:
                callbacks.record_outcome(sweep, outcome)
            callbacks.remove_empty_job_folder(str(hydra_cfg.runtime.output_dir))
    # The sweeper's own direction when it has one (Optuna's: "maximize" or Direction.x).
    direction = hydra_cfg.sweeper.get("direction")
    value = objective(cfg, outcome, None if direction is None else str(direction))
    return JobObjective(value, outcome)
