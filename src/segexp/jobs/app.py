"""The Hydra application behind ``segexp`` / ``python -m segexp``: one run, or a sweep with ``-m``.

Range shorthand (``k=3..8``) is expanded before Hydra reads the command line;
everything else is Hydra: config groups, overrides, ``-m``, launchers and
sweepers. The configs are the package's own (``pkg://segexp.conf``), with the
user's ``conf/`` folder in front of them (see ``hydra_plugins.segexp_sweep.user_conf``).

Importing this module loads Hydra and OmegaConf only: the job (pandas,
scikit-learn) and the publishing pool are loaded once Hydra has composed the
config, so ``--help`` and a usage error answer at once. A config Hydra refuses
(unknown key or option, unparsable override) is one ``segexp: error:`` line.

Exit codes: 0 every job finished (or was skipped as a duplicate), 1 a job
failed, 2 bad input or configuration.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from segexp.errors import EXIT_USER_ERROR, SegexpError
from segexp.jobs import callbacks, publish
from segexp.jobs.outcomes import JobOutcome, describe_outcome
from segexp.jobs.ranges import expand_argv
from segexp.jobs.validation import check_sweep_before_hydra
from segexp.tools import shell

log = logging.getLogger("segexp")
CONFIG_NAME = "config"
CONFIG_PATH = "pkg://segexp.conf"
_single_outcomes: list[JobOutcome] = []
_refusal: list[str] = []  # the error line of a command refused before any job ran


def _report_single(outcome: JobOutcome) -> None:
    """A single run's line; its user error is the one-line ``segexp: error:``."""
    if outcome.status == "invalid":
        print(f"segexp: error: {outcome.message}", file=sys.stderr)
    elif outcome.status == "failed":
        print(f"segexp: run failed: {describe_outcome(outcome)}", file=sys.stderr)
    else:
        log.info(describe_outcome(outcome))


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


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def _task(cfg: DictConfig) -> float:
    shell.composed()
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        # Checked before the job's modules (MLflow) load: a bad value answers at once.
        # (A sweep's jobs were checked by segexp's sweeper before it launched any; under
        # another sweeper a bad job is recorded invalid by run_job, and the sweep goes on.)
        from segexp.jobs.validation import check_job_config

        try:
            check_job_config(cfg)
        except SegexpError as exc:
            outcome = JobOutcome("invalid", run_name="run", message=str(exc))
            _single_outcomes.append(outcome)
            _report_single(outcome)
            return -math.inf  # a single run: nobody reads it
    callbacks.prepare(cfg)
    from segexp.jobs.job import run_job

    choices = {str(k): str(v) for k, v in hydra_cfg.runtime.choices.items()}
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep = callbacks.sweep_context(cfg, str(hydra_cfg.sweep.dir))
        job_num = int(hydra_cfg.job.num)
        # With this process's publishing pool, runs are logged while the next job fits;
        # the sweep's end waits for them. A launcher's worker process logs each itself.
        try:
            outcome = run_job(
                cfg, sweep=sweep, job_num=job_num, choices=choices, wait=not publish.has_pool()
            )
            if sweep is not None:
                callbacks.record_outcome(sweep, outcome)
        except SegexpError as exc:  # the store refused the sweep itself (a deleted experiment)
            callbacks.end_progress()
            print(f"segexp: error: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None  # stops the sweep: Hydra lets it pass
        callbacks.job_done(outcome)
        # The job's folder Hydra made (empty: its files are in the store) goes.
        callbacks.remove_empty_job_folder(str(hydra_cfg.runtime.output_dir))
    else:
        callbacks.ensure_pool()
        outcome = run_job(cfg, choices=choices)
        _single_outcomes.append(outcome)
        _report_single(outcome)
    # The sweeper's own direction when it has one (Optuna's: "maximize" or Direction.x).
    direction = hydra_cfg.sweeper.get("direction")
    return objective(cfg, outcome, None if direction is None else str(direction))


def last_outcomes() -> list[JobOutcome]:
    """The outcome of the single run (not a sweep) of the last ``main`` call."""
    return list(_single_outcomes)


def last_refusal() -> str | None:
    """The error line of the last ``main`` call that refused its command before any job
    ran (a malformed range, an unknown key, a sweep over limits.max_jobs); else None."""
    return _refusal[-1] if _refusal else None


def _refuse(message: str, code: int) -> int:
    print(f"segexp: error: {message}", file=sys.stderr)
    _refusal.append(message)
    return code


def exit_code(statuses: Sequence[str]) -> int:
    if "failed" in statuses:
        return 1
    if "invalid" in statuses:
        return EXIT_USER_ERROR
    return 0


def main(argv: Sequence[str] | None = None, *, pool: bool = False) -> int:
    """Run the app on ``argv`` (default: the command line); return the process exit code.

    ``pool``: publish runs through a pool of worker processes (the ``segexp`` command;
    not for callers whose main module the workers would import, such as notebooks).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    _single_outcomes.clear()
    _refusal.clear()
    callbacks.reset(pool=pool)
    try:
        args = expand_argv(args)
    except SegexpError as exc:
        return _refuse(str(exc), exc.exit_code)
    if shell.wants_help(args):
        return shell.print_help(CONFIG_NAME, args, "segexp")
    try:
        check_sweep_before_hydra(args, CONFIG_NAME)
    except SegexpError as exc:
        return _refuse(str(exc), exc.exit_code)
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else "segexp", *args]
    ours = False
    try:
        with shell.raising_composition_errors() as ours:
            _task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        ran_nothing = (
            not _single_outcomes and callbacks.LAST_SWEEP is None and not callbacks.sweep_is_open()
        )
        # Hydra exits 1 on a config it cannot compose (unknown group option, bad override);
        # once a sweep's parent run exists, a sweeper or launcher error is a failure (1).
        return EXIT_USER_ERROR if code == 1 and ran_nothing else code
    except SegexpError as exc:
        # segexp's sweeper refused the sweep (its size, a job's config) before any job ran.
        if _single_outcomes or callbacks.LAST_SWEEP is not None or callbacks.sweep_is_open():
            raise
        callbacks.end_progress()
        return _refuse(str(exc), exc.exit_code)
    except Exception as exc:
        # Hydra refused the command line or a job's config before any job ran.
        if not ours or not shell.is_usage_error(exc) or _single_outcomes:
            raise
        callbacks.end_progress()
        overrides, multirun = shell.command_overrides(args)
        line = shell.usage_error_line(exc, CONFIG_NAME, overrides, multirun)
        return _refuse(line.removeprefix("segexp: error: "), EXIT_USER_ERROR)
    finally:
        sys.argv = saved_argv
        callbacks.end_unfinished_sweep()
        publish.wait_all()
    if callbacks.LAST_SWEEP is not None:
        return exit_code([o.status for o in callbacks.LAST_SWEEP.outcomes])
    return exit_code([o.status for o in _single_outcomes])
