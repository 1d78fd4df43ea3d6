"""The Hydra application behind ``segexp`` / ``python -m segexp``: one run, or a sweep with ``-m``.

Range shorthand (``k=3..8``) is expanded before Hydra reads the command line;
everything else is Hydra: config groups, overrides, ``-m``, launchers and
sweepers. The configs are the package's own (``pkg://segexp.conf``), with the
user's ``conf/`` folder in front of them (see ``hydra_plugins.segexp_sweep.user_conf``).
A config Hydra refuses (unknown key or option, unparsable override) is one
``segexp: error:`` line.

The task is a few lines: ``run_job(cfg)`` and the objective a sweeper reads. A
sweep's parent run, progress and summary are ``segexp.jobs.callbacks.SweepCallback``'s.

Exit codes: 0 every job finished (or was skipped as a duplicate), 1 a job
failed or the store stopped taking runs, 2 bad input or configuration, 130/143
stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from segexp.errors import EXIT_USER_ERROR, SegexpError, StoreWriteError
from segexp.jobs import callbacks
from segexp.jobs.job import run_job
from segexp.jobs.outcomes import JobOutcome, describe_outcome, set_verbose, verbose_requested
from segexp.jobs.ranges import expand_argv
from segexp.jobs.validation import check_job_config, check_sweep_before_hydra
from segexp.model.selection import DEFAULT_MIN_SEGMENT_SHARE
from segexp.tools import shell
from segexp.tracking.store import resolve_tracking_uri

log = logging.getLogger("segexp")
CONFIG_NAME = callbacks.CONFIG_NAME
CONFIG_PATH = "pkg://segexp.conf"


class JobObjective(float):
    """What the task returns: the objective a sweeper (Optuna) optimises, carrying the job's
    outcome for the sweep's callback."""

    outcome: JobOutcome

    def __new__(cls, value: float, outcome: JobOutcome) -> JobObjective:
        made = super().__new__(cls, value)
        made.outcome = outcome
        return made

    def __reduce__(self) -> Any:  # a launcher's worker sends it back pickled
        return (JobObjective, (float(self), self.outcome))


def objective(cfg: DictConfig, outcome: JobOutcome, direction: str | None = None) -> float:
    """What the task returns to a sweeper such as Optuna: ``objective.metric`` of the run.

    When the run has no such value (failed, or the metric is undefined for it): the
    worst value for ``direction`` (the sweeper's, else ``objective.direction``), -inf
    when maximizing, +inf when minimizing. Not NaN: hydra-optuna-sweeper 1.3 with
    optuna 2.x raises on a NaN return value and stops the whole sweep.
    """
    metric = str(cfg.objective.metric)
    value = outcome.metrics.get(metric)
    if value is not None and not math.isnan(float(value)):
        return float(value)
    direction = str(direction or cfg.objective.direction)
    return -math.inf if direction.endswith("maximize") else math.inf


def _sweep_job(cfg: DictConfig, hydra_cfg: Any, choices: dict[str, str]) -> JobOutcome:
    """One job of a multirun, logged under its sweep's parent run."""
    num = int(hydra_cfg.job.num)
    sweep = callbacks.sweep_context(cfg, str(hydra_cfg.sweep.dir))
    try:
        outcome = run_job(cfg, sweep=sweep, job_num=num, choices=choices)
    except StoreWriteError as exc:
        return JobOutcome("failed", f"job #{num}", message=str(exc), job_num=num, store_error=True)
    if sweep is not None:
        callbacks.record_outcome(sweep, outcome)
    callbacks.remove_empty_job_folder(str(hydra_cfg.runtime.output_dir))
    return outcome


def _single_run(cfg: DictConfig, choices: dict[str, str]) -> JobOutcome:
    """One run: checked before anything loads, its line printed, its exit code raised."""
    try:
        resolve_tracking_uri(cfg.mlflow.tracking_uri)  # a server that does not answer: 1 line
        check_job_config(cfg)
        outcome = run_job(cfg, choices=choices)
    except StoreWriteError as exc:
        print(f"segexp: error: the store refused the run: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except SegexpError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    if outcome.status == "invalid":
        print(f"segexp: error: {outcome.message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
    if outcome.status == "failed":
        print(f"segexp: run failed: {describe_outcome(outcome)}", file=sys.stderr)
        raise SystemExit(1)
    log.info(describe_outcome(outcome))
    smallest = outcome.metrics.get("min_segment_share")
    if smallest is not None and smallest < DEFAULT_MIN_SEGMENT_SHARE:
        print(
            f"segexp: warning: the smallest segment holds {smallest:.2%} of the customers, under "
            f"{DEFAULT_MIN_SEGMENT_SHARE:.0%} (filter.min_segment_share): likely an outlier "
            "split; rankings leave such runs out and segexp-promote takes it only with "
            "allow_small_segments=true",
            file=sys.stderr,
        )
    return outcome


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def _task(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    choices = {str(k): str(v) for k, v in hydra_cfg.runtime.choices.items()}
    if hydra_cfg.mode == RunMode.MULTIRUN:
        outcome = _sweep_job(cfg, hydra_cfg, choices)
    else:
        shell.composed()
        set_verbose(verbose_requested(cfg.get("verbose", False)))
        outcome = _single_run(cfg, choices)
    # The sweeper's own direction when it has one (Optuna's: "maximize" or Direction.x).
    direction = hydra_cfg.sweeper.get("direction")
    value = objective(cfg, outcome, None if direction is None else str(direction))
    return JobObjective(value, outcome)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """The first SIGINT/SIGTERM stops the command where it is (SystemExit 128 + signal);
    those that follow while it ends its runs are ignored, so the store is left tidy."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        for number in stops:
            signal.signal(number, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    saved = {number: signal.signal(number, stop) for number in stops}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _refuse(message: str, code: int) -> int:
    print(f"segexp: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line); return the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        check_sweep_before_hydra(args, CONFIG_NAME)  # k=1..10**12 is refused, never listed
        args = expand_argv(args)
    except SegexpError as exc:
        return _refuse(str(exc), exc.exit_code)
    if shell.wants_help(args):
        return shell.print_help(CONFIG_NAME, args, "segexp")
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else "segexp", *args]
    code, ours = 0, False
    try:
        with stop_signals(), shell.raising_composition_errors() as ours:
            _task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if not ours or not shell.is_usage_error(exc):
            raise
        overrides, multirun = shell.command_overrides(args)
        line = shell.usage_error_line(exc, CONFIG_NAME, overrides, multirun)
        code = _refuse(line.removeprefix("segexp: error: "), EXIT_USER_ERROR)
    finally:
        sys.argv = saved_argv
        callbacks.end_unfinished_sweep(code or 1)  # nothing unless a sweep is still open
    return code
