"""Hydra Callback that makes a multirun one MLflow parent run with its jobs under it: checked
before anything is written, the sweep in the environment (``SEGEXP_SWEEP``) for every job."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import shlex
import shutil
import sys
import textwrap
import time
import traceback
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from segexp import contract
from segexp.data import load_customers
from segexp.errors import (
    EXIT_USER_ERROR,
    ConfigError,
    SegexpError,
    StoreWriteError,
    TrackingError,
    composed,
    is_usage_error,
    stop,
    usage_error_line,
)
from segexp.jobs import summary, validation
from segexp.jobs.job import code_version
from segexp.jobs.outcomes import (
    BestRuns,
    JobOutcome,
    SweepContext,
    SweepProgress,
    clock,
    job_line,
    set_verbose,
)
from segexp.jobs.signals import raise_if_stopped
from segexp.jobs.threads import PARALLEL_ENV, launcher_workers
from segexp.tracking import store
from segexp.tracking.leaderboard import METRIC_DIRECTIONS, format_table
from segexp.tracking.liveness import process_tags

log = logging.getLogger("segexp")

ENV_VAR = "SEGEXP_SWEEP"
TAG_SWEEP_DIR = contract.TAG_PREFIX + "internal.sweep_dir"  # how a worker elsewhere finds its sweep
CONFIG_NAME = "config"
_MAX_MESSAGE = 2000
STOP_SIGNALS = {130: "SIGINT", 143: "SIGTERM"}  # exit code (128 + signal) -> its name


def _parsed(overrides: list[str], sweeper_params: dict | None) -> list[Override]:
    arguments = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(overrides)
    return OverridesParser.create().parse_overrides(arguments)


def plan_jobs(overrides: list[str], sweeper_params: dict | None = None) -> list[list[str]]:
    """Each job's overrides as Hydra's basic sweeper expands a command line: the product of
    every sweep's values (``algo=kmeans,gmm k=3,4`` is four jobs)."""
    lists: list[list[str]] = []
    for override in _parsed(overrides, sweeper_params):
        key = override.get_key_element()
        if not override.is_sweep_override():
            lists.append([f"{key}={override.get_value_element_as_str()}"])
        elif override.is_discrete_sweep():
            lists.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        else:
            raise ConfigError(
                f"{override.input_line}: Hydra's basic sweeper takes lists and ranges, "
                "not intervals; use hydra/sweeper=optuna for interval(...)"
            )
    return [list(job) for job in itertools.product(*lists)]


def count_jobs(overrides: list[str], sweeper_params: dict | None = None) -> int:
    """How many jobs ``plan_jobs`` gives, no list built: a range is counted from its bounds
    (``range(1,10**12)`` is never listed), so a sweep over the limit costs nothing."""
    total = 1
    for override in filter(Override.is_discrete_sweep, _parsed(overrides, sweeper_params)):
        sweep = override.value()
        if not isinstance(sweep, RangeSweep):
            total *= sum(1 for _ in override.sweep_string_iterator())
        elif not sweep.step:
            raise ConfigError(
                f"{override.input_line}: a range's step must not be 0; e.g. "
                f"{override.get_key_element()}=range(3,9) or range(2,11,2)"
            )
        else:  # as len(range(start, stop, step)), for float ranges too
            start, stop = float(sweep.start or 0), float(sweep.stop or 0)
            total *= max(0, math.ceil((stop - start) / sweep.step))
    return total


def compose_jobs(config_name: str, jobs: list[list[str]], groups: set[str]) -> list[DictConfig]:
    """Every job's config, composed once per combination of group choices and fixed values
    (Hydra's compose API), each job's swept values set on a copy."""
    values_of: dict[str, set[str]] = {}
    for override in itertools.chain(*jobs):
        values_of.setdefault(override.split("=", 1)[0], set()).add(override)
    swept = {k for k, v in values_of.items() if len(v) > 1 and k.lstrip("+~") not in groups}
    parser = OverridesParser.create()
    composed: dict[tuple[str, ...], DictConfig] = {}
    configs = []
    for job in jobs:
        values = [o for o in job if o.split("=", 1)[0] in swept and o[0] not in "+~"]
        base = tuple(o for o in job if o not in values)
        if base not in composed:
            composed[base] = compose(config_name, list(base), return_hydra_config=True)
        cfg = composed[base].copy()
        with open_dict(cfg):
            for item in parser.parse_overrides(values):
                OmegaConf.update(cfg, item.key_or_group, item.value(), merge=False)
        configs.append(cfg)
    return configs


def checked_jobs(
    overrides: list[str], params: dict, config: DictConfig, groups: set[str]
) -> tuple[list[list[str]], list[DictConfig]]:
    """Each job's overrides and composed config, checked before any runs; ``ConfigError``
    names the first refused job. Needs Hydra initialised."""
    total = count_jobs(overrides, params)
    validation.check_sweep_size(total, validation.max_jobs(config))
    jobs = plan_jobs(overrides, params)
    configs = compose_jobs(CONFIG_NAME, jobs, groups)
    for num, (job, cfg) in enumerate(zip(jobs, configs, strict=True)):
        try:
            validation.check_job_config(cfg)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}; in job #{num} of {total} ({' '.join(job)}), nothing was run"
            ) from None
    return jobs, configs


def task_overrides(config: DictConfig) -> list[str]:
    """The command line's overrides as typed: ``${...}`` in them is left unresolved here."""
    typed = OmegaConf.to_container(config.hydra.overrides.task)
    return [str(o) for o in typed] if isinstance(typed, list) else []


def _sweeper_params(config: DictConfig) -> dict | None:
    """The basic sweeper's sweeps a config sets (``hydra.sweeper.params``); None for another
    sweeper (Optuna's, which counts its own ``n_trials``)."""
    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = config.hydra.sweeper.get("params") or {}
    return {str(k): str(v) for k, v in params.items()}


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep launches (Optuna: ``n_trials``); None when unknown."""
    params = _sweeper_params(config)
    if params is not None:
        return count_jobs(task_overrides(config), params)
    trials = config.hydra.sweeper.get("n_trials")
    optuna = "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()
    return trials if optuna and isinstance(trials, int) else None


def check_store_reaches_workers(launcher: DictConfig, tracking_uri: str) -> None:
    """A Ray cluster's jobs run on other machines: a store on this machine's disk is not
    theirs to write."""
    address = OmegaConf.select(launcher, "ray.init.address", default=None)
    if (
        str(launcher.get("_target_", "")).endswith("RayLauncher")
        and address not in (None, "", "local")
        and tracking_uri.startswith(("sqlite:", "file:"))
    ):
        raise ConfigError(
            f"mlflow.tracking_uri={tracking_uri}: the jobs of a Ray cluster "
            f"(hydra.launcher.ray.init.address={address}) run on other machines and cannot "
            "write a store on this machine's disk; start a tracking server every machine "
            "reaches and use mlflow.tracking_uri=http://<host>:5000"
        )


def sweep_in_environment(sweep_dir: str | None = None) -> SweepContext | None:
    """The sweep this process (or the command that started it) has open, if any."""
    raw = os.environ.get(ENV_VAR)
    sweep = SweepContext(**json.loads(raw)) if raw else None
    return sweep if sweep is None or sweep_dir in (None, sweep.sweep_dir) else None


def sweep_context(cfg: DictConfig, sweep_dir: str) -> SweepContext | None:
    """The sweep of a job in ``sweep_dir``: inherited in the environment, else the RUNNING
    parent run tagged with this folder (a worker on another machine); None: no sweep."""
    inherited = sweep_in_environment(sweep_dir)
    if inherited is not None:
        return inherited
    tracking_uri = store.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    client = store.tracker_for(tracking_uri).client
    experiment = client.get_experiment_by_name(str(cfg.mlflow.experiment))
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`{contract.TAG_KIND}` = 'sweep' and tags.`{TAG_SWEEP_DIR}` = '{sweep_dir}' "
            "and attributes.status = 'RUNNING'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    sweep_id, parent_run_id = runs[0].data.tags[contract.TAG_SWEEP_ID], runs[0].info.run_id
    return SweepContext(
        sweep_id, tracking_uri, experiment.experiment_id, parent_run_id, sweep_dir=sweep_dir
    )


def record_outcome(sweep: SweepContext, outcome: JobOutcome) -> None:
    """A job that logged no run of its own leaves its outcome on the parent run."""
    if outcome.status not in ("skipped", "invalid") or outcome.job_num is None:
        return
    document = asdict(outcome)
    document["message"] = document["message"][:_MAX_MESSAGE]
    store.tracker_for(sweep.tracking_uri).set_tags(
        sweep.parent_run_id,
        {f"{contract.TAG_OUTCOME_PREFIX}{outcome.job_num}": json.dumps(document)},
    )


def objective_of(config: DictConfig) -> tuple[str, str]:
    """``objective.metric`` and its direction as the leaderboard takes it (max or min)."""
    objective = config.get("objective") or {}
    direction = str(objective.get("direction", "maximize")).lower()
    return str(objective.get("metric", "silhouette")), "min" if direction[:3] == "min" else "max"


def start_sweep(
    config: DictConfig,
    table: Any,
    total: int | None,
    sweep_dir: str,
    command: str,
    *,
    configs_checked: bool = False,
) -> SweepContext:
    """Open the sweep's parent run (its experiment created when missing) and say where the
    runs go. A store that refuses it raises ``TrackingError``."""
    tracking_uri = store.resolve_tracking_uri(config.mlflow.tracking_uri)
    experiment = store.check_experiment_name(config.mlflow.experiment)
    sweep_id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    tags = {
        contract.TAG_KIND: "sweep",
        contract.TAG_SWEEP_ID: sweep_id,
        TAG_SWEEP_DIR: sweep_dir,
        contract.TAG_PREFIX + "command": command,
        contract.TAG_DATA_FINGERPRINT: table.fingerprint,
        contract.TAG_DATA_SOURCE: table.source,
        contract.TAG_CODE_VERSION: code_version(),
        **process_tags(),  # a sweep whose process is gone is ended KILLED by the next one
    }
    if total is not None:
        tags[store.TAG_JOBS_PLANNED] = str(total)
    tracker = store.tracker_for(tracking_uri)
    try:
        experiment_id = tracker.experiment_id(experiment)
        parent = tracker.start_run(experiment_id, f"sweep-{sweep_id}", tags)
    except SegexpError:
        raise
    except Exception as exc:  # read-only, a server error: one line
        raise TrackingError(store.store_problem(tracking_uri, exc)) from exc
    jobs = "jobs" if total is None else f"{total} job{'s' if total != 1 else ''}"
    print(
        f"segexp: sweep {sweep_id}: {jobs}; runs go to {tracking_uri} (experiment {experiment})",
        flush=True,
    )
    return SweepContext(sweep_id, tracking_uri, experiment_id, parent, configs_checked, sweep_dir)


def end_sweep(
    config: DictConfig, sweep: SweepContext
) -> tuple[list[JobOutcome], BestRuns, str | None]:
    """Every job's outcome read back; the parent's summary logged, the parent ended, and the
    runs table saved as an MLflow UI view (its key; None where the store refused it). A
    store that refuses the summary: StoreWriteError (parent FAILED where it answers)."""
    tracker = store.tracker_for(sweep.tracking_uri)
    metric, direction = objective_of(config)
    try:
        outcomes = summary.sweep_outcomes(tracker, sweep)
        options = {"dpi": int(config.plots.dpi), "metric": metric, "direction": direction}
        options["multirun_yaml"] = OmegaConf.to_yaml(config)
        ids = (sweep.experiment_id, sweep.parent_run_id, sweep.sweep_id)
        best = summary.finish_sweep(tracker, *ids, outcomes, options)
    except Exception as exc:
        with contextlib.suppress(Exception):
            tracker.fail_run(sweep.parent_run_id, f"logging the sweep's summary: {exc}")
        raise StoreWriteError(
            f"{sweep.tracking_uri}: logging the summary of sweep {sweep.sweep_id} failed ({exc})"
        ) from exc
    view = None
    with contextlib.suppress(Exception):  # without a view the link filters and sorts alone
        view = store.save_sweep_view(
            tracker.client, sweep.experiment_id, sweep.sweep_id, metric, direction == "max"
        )
    return outcomes, best, view


class SweepCallback(Callback):
    """One sweep of the command: its parent run, progress and summary."""

    def __init__(self) -> None:
        self.sweep: SweepContext | None = None
        self.sweep_dir: str | None = None
        self.progress: SweepProgress | None = None
        self.started = 0.0
        self.finished = 0  # jobs of this process whose run the store holds FINISHED

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a launcher's worker gets a blank callback

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception:  # Hydra would only warn, and run the jobs without their sweep
            traceback.print_exc()
            sys.exit(1)

    def _start(self, config: DictConfig) -> None:
        self.started = time.monotonic()
        set_verbose(config.get("verbose", False))
        overrides = task_overrides(config)
        try:
            validation.check_config_complete(config)
            tracking_uri = store.resolve_tracking_uri(config.mlflow.tracking_uri)
            store.check_experiment_name(config.mlflow.experiment)
            check_store_reaches_workers(config.hydra.launcher, tracking_uri)
            params, total = _sweeper_params(config), sweep_size(config)
            if params is not None:  # every job's config, composed and checked before any runs
                groups = {str(g) for g in config.hydra.runtime.choices}
                checked_jobs(overrides, params, config, groups)
            # Only the data is checked here: swept groups may change features per job.
            table = load_customers(config.data)
            self.sweep_dir = str(config.hydra.sweep.dir)
            problem = store.folder_problem(Path(self.sweep_dir).absolute())
            if problem is not None:  # Hydra would stop with a traceback after the parent run
                raise ConfigError(
                    f"hydra.sweep.dir={self.sweep_dir}: {problem}; choose a writable folder"
                    " (hydra.sweep.dir=PATH)"
                )
            composed()  # from here on Hydra reports errors as for a running sweep
            command = " ".join(sys.argv[1:])
            self.sweep = start_sweep(
                config, table, total, self.sweep_dir, command, configs_checked=params is not None
            )
        except SegexpError as exc:
            raise stop(str(exc)) from None
        except Exception as exc:  # Hydra refused a job's config (an option, a key)
            if not is_usage_error(exc):
                raise
            line = usage_error_line(exc, CONFIG_NAME, overrides, True)
            raise stop(line.removeprefix("segexp: error: ")) from None
        os.environ[ENV_VAR] = json.dumps(asdict(self.sweep))
        if str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher"):
            self.progress = SweepProgress(total, str(config.objective.metric), self.started)
            return
        workers = launcher_workers(config.hydra.launcher)
        if workers is not None:  # how many fit at once here, to size their thread pools
            os.environ[PARALLEL_ENV] = str(min(workers, total or workers))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        outcome = getattr(job_return.return_value, "outcome", None)
        if job_return.status != JobStatus.COMPLETED or outcome is None:
            return  # the task raised (Hydra reports it), or a single run (it printed its line)
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        self.finished += outcome.status == "finished"
        if self.progress is not None:
            self.progress.job_done(outcome)
        else:  # a worker's job, or a job of another launcher
            line = job_line(outcome, run_id=True)
            (log.error if outcome.status in ("failed", "invalid") else log.info)(line)
        if outcome.store_error and self.sweep is not None:
            self._stop_on_store_error(self.sweep, outcome)
        raise_if_stopped()

    def _stop_on_store_error(self, sweep: SweepContext, outcome: JobOutcome) -> NoReturn:
        """The store refused a run: the sweep ends FAILED where the store still answers."""
        self._close()
        ended = f"parent run {sweep.parent_run_id} left RUNNING (the next command ends it)"
        with contextlib.suppress(Exception):
            store.tracker_for(sweep.tracking_uri).fail_run(
                sweep.parent_run_id, f"the store stopped taking runs: {outcome.message}"
            )
            ended = f"parent run {sweep.parent_run_id} ended FAILED"
        where = f"the store stopped taking runs at job #{outcome.job_num}"
        runs = f"{self.finished} job runs of sweep {sweep.sweep_id}"
        db = store.sqlite_path(sweep.tracking_uri)
        if db is not None and not db.exists():  # deleted under the sweep: its runs with it
            raise stop(
                f"{where}: its file {db} was deleted during the sweep, with the parent run and "
                f"the {runs} it held; run the sweep again (a new store is created)",
                1,
            )
        raise stop(
            f"{where} ({outcome.message}); {runs} are FINISHED in {sweep.tracking_uri}, "
            f"{ended}; free the disk or restart the server and run the sweep again",
            1,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep, self.sweep = self.sweep, None
        os.environ.pop(ENV_VAR, None)  # the sweep is not left open, whatever happens next
        if sweep is None:
            self._close()
            return
        if self.progress is not None:
            self.progress.status("logging the sweep's summary")
        try:
            outcomes, best, view = end_sweep(config, sweep)
        except SegexpError as exc:
            self._close()
            raise stop(str(exc), exc.exit_code) from None
        self._close()
        print_summary(sweep, outcomes, time.monotonic() - self.started)
        print_best(best)
        print_next(config, sweep, ranked=not best.rows.empty, view=view)
        statuses = {o.status for o in outcomes}  # 1 when a job failed, 2 when one was refused
        sys.exit(1 if "failed" in statuses else EXIT_USER_ERROR if "invalid" in statuses else 0)

    def _close(self) -> None:
        """The sweep is over for this process: its environment, display and empty folders."""
        self.sweep = None
        os.environ.pop(ENV_VAR, None)
        os.environ.pop(PARALLEL_ENV, None)
        progress, self.progress = self.progress, None
        if progress is not None:
            progress.close()
        if self.sweep_dir is not None:
            remove_empty_sweep_folders(self.sweep_dir)


def end_unfinished_sweep(code: int) -> None:
    """The command stopped before its sweep's end (a signal, a launcher's error): the parent
    and open job runs end KILLED (``segexp.ended_by=<signal>``), or the parent FAILED."""
    sweep = sweep_in_environment()
    os.environ.pop(ENV_VAR, None)
    os.environ.pop(PARALLEL_ENV, None)
    if sweep is None:
        return
    signame = STOP_SIGNALS.get(code)
    tracker = store.tracker_for(sweep.tracking_uri)
    with contextlib.suppress(Exception):
        if signame is None:
            tracker.fail_run(
                sweep.parent_run_id, "the sweep stopped before its end; see the command's output"
            )
        else:
            killed = summary.end_interrupted_sweep(tracker, sweep, signame)
            runs = store.sweep_job_runs(tracker.client, sweep.experiment_id, sweep.sweep_id)
            done = sum(r.info.status in ("FINISHED", "FAILED") for r in runs)
            parent = tracker.client.get_run(sweep.parent_run_id)
            planned = parent.data.tags.get(store.TAG_JOBS_PLANNED, "?")
            open_runs = f" and {killed} open job run{'s' if killed != 1 else ''}" if killed else ""
            print(
                f"segexp: stopped by {signame} (exit {code}): sweep {sweep.sweep_id} ended "
                f"KILLED after {done} of {planned} jobs (parent run {sweep.parent_run_id}"
                f"{open_runs}, tag segexp.ended_by={signame}); segexp-compare and "
                "segexp-promote best= take it only with allow_incomplete=true",
                file=sys.stderr,
            )
    remove_empty_sweep_folders(sweep.sweep_dir)


def remove_empty_job_folder(job_dir: str) -> None:
    """A job's folder Hydra made goes when empty (a segexp job writes only to the store)."""
    with contextlib.suppress(OSError):  # holds something, or is gone already
        os.rmdir(job_dir)


def remove_empty_sweep_folders(sweep_dir: str) -> None:
    """Hydra's ``multirun.yaml`` (the parent run holds the config), the empty job folders, the
    sweep folder and, for a relative one, each of its empty parents inside the current folder."""
    sweep = Path(sweep_dir)
    with contextlib.suppress(OSError):
        (sweep / "multirun.yaml").unlink()
    for child in sweep.glob("*"):
        if child.is_dir():
            remove_empty_job_folder(str(child))
    for folder in [sweep] if sweep.is_absolute() else [sweep, *list(sweep.parents)[:-1]]:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:  # holds something (another sweeper's results), or is gone
            if folder.exists():
                return


def print_summary(sweep: SweepContext, outcomes: list[JobOutcome], seconds: float) -> None:
    counts = Counter(o.status for o in outcomes)
    shown = ("finished", "skipped", "failed", "invalid")
    line = ", ".join(f"{counts[s]} {s}" for s in shown if counts[s])
    print(
        f"segexp: sweep {sweep.sweep_id}: {len(outcomes)} jobs: {line} in {clock(seconds)}; "
        f"parent run {sweep.parent_run_id}"
    )
    problems = [o for o in outcomes if o.status in ("failed", "invalid")]
    if problems:
        print(f"segexp: {len(problems)} failed jobs:", file=sys.stderr)
    for o in problems:
        print(f"  #{o.job_num} {o.run_name}: {o.status}: {o.message}", file=sys.stderr)


def print_best(best: BestRuns) -> None:
    """The top of the sweep's leaderboard: rank, run name, the metric, n_clusters, run id."""
    runs = "1 finished run" if best.left_out == 1 else f"{best.left_out} finished runs"
    left_out = f"{runs} left out by the ranking rules (segexp-compare says why)"
    if best.rows.empty:
        why = (best.why or left_out) if best.left_out else f"no finished run has {best.metric}"
        print(f"\nNothing to rank by {best.metric}: {why}.")
        if best.left_out and "min_segment_share" in best.why:  # a few extreme customers
            print(
                "  Skewed or extreme values make segments of their own: sweep "
                "preprocess.log1p=true and preprocess=clip_iqr,winsorize, or lower "
                "filter.min_segment_share (segexp-compare shows each run's smallest segment)."
            )
        return
    better = "larger" if best.larger_is_better else "smaller"
    print(f"\nBest {len(best.rows)} of {best.ranked} runs by {best.metric} ({better} is better):")
    print(textwrap.indent(format_table(best.rows), "  "))
    if best.left_out:  # why: the best score of the progress lines may be among them
        print(f"  {best.why}" if best.why else f"  ({left_out})")


def print_next(
    config: DictConfig, sweep: SweepContext, ranked: bool = True, view: str | None = None
) -> None:
    """The commands after a sweep (compare, promote, the MLflow UI at the saved ``view``), one
    per line, ready to copy, each with a short comment where the terminal has room."""
    metric, direction = objective_of(config)
    context = [f"sweep_id={sweep.sweep_id}"]
    if sweep.tracking_uri != store.absolute_tracking_uri(None):
        context.append(f"mlflow.tracking_uri={sweep.tracking_uri}")
    keys = [o.lstrip("+~").split("=", 1)[0] for o in task_overrides(config)]
    if any(k == "data" or k.startswith(("data.", "mlflow.experiment")) for k in keys):
        context.append(f"mlflow.experiment={config.mlflow.experiment}")
    usual = METRIC_DIRECTIONS.get(metric) == (direction == "max")
    ranking = [] if usual else [f"direction={direction}"]
    compare = ([] if metric == "silhouette" else [f"metric={metric}"]) + ranking + context
    steps = [(shlex.join(["segexp-compare", *compare]), "all runs ranked (wide=true: all columns)")]
    if ranked:  # promote's best= has a run to take
        promote = ["segexp-promote", f"best={metric}", *ranking, *context]
        steps.append((shlex.join(promote), "register the best run"))
    ids = (sweep.tracking_uri, sweep.experiment_id, sweep.sweep_id)
    url = store.sweep_runs_url(*ids, metric, direction == "max", view=view)
    serve = store.ui_command(sweep.tracking_uri)
    if serve is not None:
        steps += [(serve, "the MLflow UI, then:"), (f"open {url}", "")]
    else:
        steps.append((f"open {url}", "the sweep's runs in the MLflow UI"))
    columns = shutil.get_terminal_size((120, 24)).columns
    print("\nNext:")
    width = max(len(command) for command, comment in steps if comment)
    for command, comment in steps:
        line = f"  {command.ljust(width)}  # {comment}" if comment else f"  {command}"
        print(line if len(line) <= columns or not comment else f"  {command}")
