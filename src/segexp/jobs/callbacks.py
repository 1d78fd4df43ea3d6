"""Hydra Callback that makes a multirun one MLflow parent run with the jobs under it.

on_multirun_start checks the data once (a user mistake stops the sweep with
exit code 2 before anything is written), prepares the parent run and shows the
sweep's progress. With Hydra's basic sweeper (segexp's default) the parent run is
created when the first job starts, so a sweep whose job configs Hydra refuses is
a one-line usage error that writes nothing; with any other sweeper, or a launcher
whose jobs run in other processes (which are told where it is), at once. on_multirun_end
collects every job's outcome from the store, logs the parent's leaderboard and
k plots, ends the parent and prints the counts, the failures, the best runs by
``objective.metric`` and the commands that come next.

Jobs find their sweep through the environment (``SEGEXP_SWEEP``, inherited by
joblib's and a local Ray's workers), else through the store: the parent run is
tagged with the sweep folder Hydra gives every job. Jobs that end without a run
of their own (skipped duplicates, invalid input) are recorded as tags on the
parent; everything else is a run of the store. No local file is involved.

This module stays light (Hydra, OmegaConf): the data, the job and the summary
modules (pandas, scikit-learn) are imported by ``prepare`` once the command's
config is composed, so ``--help`` and usage errors never load them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_KIND,
    TAG_OUTCOME_PREFIX,
    TAG_PREFIX,
    TAG_SWEEP_ID,
)
from segexp.errors import EXIT_USER_ERROR, ConfigError, SegexpError
from segexp.jobs import publish
from segexp.jobs.outcomes import (
    BestRuns,
    JobOutcome,
    OpeningSweep,
    SweepContext,
    SweepProgress,
    clock,
    describe_outcome,
    set_verbose,
    verbose_requested,
)
from segexp.jobs.threads import PARALLEL_ENV, launcher_workers
from segexp.tracking.liveness import process_tags
from segexp.tracking.store import (
    TAG_JOBS_PLANNED,
    Tracker,
    absolute_tracking_uri,
    check_experiment_name,
    resolve_tracking_uri,
    sweep_runs_url,
    tracker_for,
    ui_command,
)

log = logging.getLogger("segexp")

ENV_VAR = "SEGEXP_SWEEP"
TAG_SWEEP_DIR = TAG_PREFIX + "sweep_dir"
_MAX_MESSAGE = 2000


@dataclass
class SweepReport:
    """The outcome of the last multirun in this process, for the summary and exit code."""

    sweep_id: str
    parent_run_id: str
    outcomes: list[JobOutcome] = field(default_factory=list)
    seconds: float | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass
class _Pending:
    """A parent run to create when the first job starts."""

    sweep_id: str
    tracking_uri: str
    experiment: str
    name: str
    tags: dict[str, str]
    total: int | None


LAST_SWEEP: SweepReport | None = None
_OPEN: OpeningSweep | None = None  # the parent run this process opened and has not ended
_PENDING: _Pending | None = None  # the parent run to open at the first job
_OPEN_DIR: str | None = None  # its sweep folder
_NEW_DIR: str | None = None  # the top folder of it that did not exist before this sweep
_PROGRESS: SweepProgress | None = None
_STARTED: float | None = None
_USE_POOL = False  # the command line publishes through a process pool (segexp.__main__)


def sweep_is_open() -> bool:
    """A parent run was opened by this process and is not ended yet."""
    return _OPEN is not None


def reset(*, pool: bool = False) -> None:
    """Before a command: no last sweep; ``pool``: publish through a process pool."""
    global LAST_SWEEP, _USE_POOL
    LAST_SWEEP = None
    _USE_POOL = pool


# ------------------------------------------------------------ SIGINT and SIGTERM

STOP_SIGNALS = ("SIGINT", "SIGTERM")
_STOPPED: dict[str, str | None] = {"by": None}  # the signal that stops this command
_SAVED_HANDLERS: dict[int, Any] = {}


def stopped_by() -> str | None:
    """The signal (SIGINT, SIGTERM) that stopped the running command, if one did."""
    return _STOPPED["by"]


def _on_stop_signal(signum: int, frame: Any) -> None:
    """The first SIGINT/SIGTERM stops the command where it is (SystemExit 128 + signal);
    those that follow while it ends its runs are ignored, so the store is left tidy."""
    if _STOPPED["by"] is not None:
        return
    _STOPPED["by"] = signal.Signals(signum).name
    raise SystemExit(128 + signum)


def install_stop_handlers() -> None:
    """SIGINT and SIGTERM end the command's open runs KILLED (from the main thread only;
    ``restore_stop_handlers`` puts the previous handlers back)."""
    if _SAVED_HANDLERS or threading.current_thread() is not threading.main_thread():
        return
    _STOPPED["by"] = None
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            _SAVED_HANDLERS[number] = signal.signal(number, _on_stop_signal)


def restore_stop_handlers() -> None:
    while _SAVED_HANDLERS:
        number, handler = _SAVED_HANDLERS.popitem()
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    _STOPPED["by"] = None


def prepare(cfg: DictConfig) -> None:
    """Once the command's config is composed: verbosity, SIGINT/SIGTERM handling, then the
    job's modules (pandas, scikit-learn; the command line started the publishing pool
    already when it could)."""
    install_stop_handlers()
    set_verbose(verbose_requested(cfg.get("verbose", False)))
    check_store(cfg)
    from segexp.jobs.gc_pause import quiet_imports

    with quiet_imports():
        import segexp.jobs.job  # noqa: F401
        import segexp.jobs.summary  # noqa: F401


def check_store(cfg: DictConfig) -> None:
    """The store and experiment name, checked before anything loads or is written (a
    server that does not answer, an unusable SQLite path, an empty name): one line, exit 2."""
    mlflow_cfg = cfg.get("mlflow")
    if mlflow_cfg is None:
        return
    try:
        resolve_tracking_uri(mlflow_cfg.get("tracking_uri"))
        check_experiment_name(mlflow_cfg.get("experiment"))
    except SegexpError as exc:
        _stop(str(exc))


def ensure_pool() -> None:
    """The command's publishing pool, started now if the command line did not start it
    (a command that looked wrong to it: a usage error then never waits for the pool)."""
    if _USE_POOL:
        publish.start_pool()


def new_sweep_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def sweep_context(cfg: DictConfig, sweep_dir: str) -> SweepContext | OpeningSweep | None:
    """The sweep a job of the multirun in ``sweep_dir`` belongs to.

    From the environment when the job's process inherited it, else the RUNNING
    parent run tagged with this sweep folder in the job's store (a worker on
    another machine, or a reused worker process). None: no segexp sweep is open.
    """
    if _PENDING is not None and sweep_dir == _OPEN_DIR:  # its first job: open it now
        _open_pending()
    if _OPEN is not None and sweep_dir == _OPEN_DIR:  # this process opened it
        return _OPEN
    raw = os.environ.get(ENV_VAR)
    if raw:
        saved = json.loads(raw)
        if saved.pop("sweep_dir") == sweep_dir:
            return SweepContext(**saved)
    tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
    tracker = tracker_for(tracking_uri)
    experiment = tracker.client.get_experiment_by_name(str(cfg.mlflow.experiment))
    if experiment is None:
        return None
    runs = tracker.client.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`{TAG_KIND}` = 'sweep' and tags.`{TAG_SWEEP_DIR}` = '{sweep_dir}' "
            "and attributes.status = 'RUNNING'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    parent = runs[0]
    return SweepContext(
        parent.data.tags[TAG_SWEEP_ID], tracking_uri, experiment.experiment_id, parent.info.run_id
    )


def check_store_reaches_workers(launcher: DictConfig, tracking_uri: str) -> None:
    """A Ray cluster's jobs run on other machines: a store on this machine's disk
    (SQLite, a folder) is not theirs to write. Refused before anything is written."""
    if not str(launcher.get("_target_", "")).endswith("RayLauncher"):
        return
    address = OmegaConf.select(launcher, "ray.init.address", default=None)
    if address in (None, "", "local") or not tracking_uri.startswith(("sqlite:", "file:")):
        return
    raise ConfigError(
        f"mlflow.tracking_uri={tracking_uri}: the jobs of a Ray cluster "
        f"(hydra.launcher.ray.init.address={address}) run on other machines and cannot "
        "write a store on this machine's disk; start a tracking server every machine "
        "reaches and use mlflow.tracking_uri=http://<host>:5000"
    )


def _validates_jobs_first(config: DictConfig) -> bool:
    """The sweeper is Hydra's basic one (or segexp's): it composes every job's config
    before launching any."""
    target = str(config.hydra.sweeper.get("_target_", ""))
    return target.endswith(("SegexpSweeper", "BasicSweeper"))


def _runs_in_this_process(config: DictConfig) -> bool:
    """Jobs run in this process (segexp's or Hydra's basic launcher, under any sweeper)."""
    target = str(config.hydra.launcher.get("_target_", ""))
    return target.endswith(("SegexpLauncher", "BasicLauncher"))


def record_outcome(sweep: SweepContext | OpeningSweep, outcome: JobOutcome) -> None:
    """A job that logged no run of its own leaves its outcome on the parent run."""
    if outcome.status not in ("skipped", "invalid") or outcome.job_num is None:
        return
    document = asdict(outcome)
    document["message"] = document["message"][:_MAX_MESSAGE]
    publish.store_call(
        Tracker.set_tags,
        sweep.tracking_uri,
        sweep.parent_run_id,
        {f"{TAG_OUTCOME_PREFIX}{outcome.job_num}": json.dumps(document)},
    )


def job_done(outcome: JobOutcome) -> None:
    """A job of this process's sweep ended: the progress display, else one log line."""
    if _PROGRESS is not None:
        _PROGRESS.job_done(outcome)
        return
    line = describe_outcome(outcome)
    (log.error if outcome.status in ("failed", "invalid") else log.info)(line)


def _stop(message: str) -> None:
    _close_progress()
    print(f"segexp: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep launches, from its overrides as Hydra's basic sweeper
    expands them (Optuna: ``n_trials``); None when the sweeper decides as it goes."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if "optuna" in target.lower():
        trials = sweeper.get("n_trials")
        return int(trials) if isinstance(trials, int) else None
    if not _validates_jobs_first(config):
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = sweeper.get("params") or {}
        arguments = [f"{k}={v}" for k, v in params.items()]
        arguments += [str(o) for o in config.hydra.overrides.task]
        overrides = OverridesParser.create().parse_overrides(arguments)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception:  # a sweep syntax only the sweeper itself expands (glob, ...)
        return None


class SweepCallback(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run: the store and experiment name are checked first, before the
        job's modules load (a server that does not answer is an error in seconds)."""
        check_store(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP, _OPEN_DIR, _PENDING, _PROGRESS, _STARTED
        LAST_SWEEP = None
        _remember_new_dir(None)
        _STARTED = time.monotonic()
        in_process = _runs_in_this_process(config)
        # Hydra's basic sweeper (and segexp's) composes every job's config before the first
        # job starts: a refused one is a usage error and no parent run is written for it.
        # Any other sweeper's error is the sweep's failure: its parent run exists, FAILED.
        defer = in_process and _validates_jobs_first(config)
        if not defer:  # from here on Hydra reports errors itself, as for a running sweep
            from segexp.tools.shell import composed

            composed()
        prepare(config)
        from segexp.data import load_customers
        from segexp.jobs.job import code_version

        try:
            # Only the data is checked here: swept groups may change features per job.
            table = load_customers(config.data)
            # The store before anything is written: its scheme, path or server, the name.
            tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
            check_store_reaches_workers(config.hydra.launcher, tracking_uri)
            experiment = check_experiment_name(config.mlflow.experiment)
        except SegexpError as exc:
            _stop(str(exc))
        sweep_id = new_sweep_id()
        sweep_dir = str(config.hydra.sweep.dir)
        _remember_new_dir(sweep_dir)
        parent_tags = {
            TAG_KIND: "sweep",
            TAG_SWEEP_ID: sweep_id,
            TAG_SWEEP_DIR: sweep_dir,
            TAG_PREFIX + "command": " ".join(sys.argv[1:]),
            TAG_DATA_FINGERPRINT: table.fingerprint,
            TAG_DATA_SOURCE: table.source,
            TAG_CODE_VERSION: code_version(),
            **process_tags(),  # a sweep whose process is gone is ended KILLED by the next one
        }
        total = sweep_size(config)
        if total is not None:
            parent_tags[TAG_JOBS_PLANNED] = str(total)
        _PENDING = _Pending(
            sweep_id,
            tracking_uri,
            experiment,
            f"sweep-{sweep_id}",
            parent_tags,
            total,
        )
        _OPEN_DIR = sweep_dir
        if not defer:
            _open_pending()
        if not in_process:
            # Jobs in other processes find the sweep in their inherited environment.
            assert _OPEN is not None
            try:
                sweep = _OPEN.context()
            except SegexpError as exc:
                _stop(str(exc))
            os.environ[ENV_VAR] = json.dumps({**asdict(sweep), "sweep_dir": sweep_dir})
            # ... and how many fit at once here, to size their thread pools (jobs.threads).
            workers = launcher_workers(config.hydra.launcher)
            if workers is not None:
                os.environ[PARALLEL_ENV] = str(min(workers, total or workers))
            return
        # Started before Hydra sets up the jobs' logging, so their lines print above the bar.
        _PROGRESS = SweepProgress(total, str(config.objective.metric), started=_STARTED)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        opening = _take_open()
        if opening is None:
            _close_progress()
            return
        try:
            sweep = opening.context()
        except SegexpError as exc:  # the store refused the sweep: no parent run exists
            _stop(str(exc))
        from segexp.jobs.summary import finish_sweep, sweep_outcomes

        if _PROGRESS is not None:
            _PROGRESS.status("logging the runs and the sweep's summary")
        publish.wait_all()
        outcomes = publish.store_call(sweep_outcomes, sweep.tracking_uri, sweep)
        metric, direction = objective_of(config)
        best = publish.store_call(
            finish_sweep,
            sweep.tracking_uri,
            sweep.experiment_id,
            sweep.parent_run_id,
            sweep.sweep_id,
            outcomes,
            {
                "dpi": int(config.plots.dpi),
                "metric": metric,
                "direction": direction,
                "multirun_yaml": OmegaConf.to_yaml(config),
            },
        )
        remove_empty_sweep_folders(str(config.hydra.sweep.dir))
        _close_progress()
        seconds = None if _STARTED is None else time.monotonic() - _STARTED
        LAST_SWEEP = SweepReport(sweep.sweep_id, sweep.parent_run_id, outcomes, seconds)
        _print_summary(LAST_SWEEP)
        if isinstance(best, BestRuns):
            _print_best(best)
        _print_next(next_commands(config, sweep, metric, direction))


def objective_of(config: DictConfig) -> tuple[str, str]:
    """``objective.metric`` and its direction as the leaderboard takes it (max or min)."""
    objective = config.get("objective") or {}
    metric = str(objective.get("metric", "silhouette"))
    direction = str(objective.get("direction", "maximize")).lower()
    return metric, "min" if direction.startswith("min") else "max"


def _open_pending() -> None:
    """Create the parent run in the publishing pool (a thread waits for it) and say
    where the runs go."""
    global _OPEN, _PENDING
    pending, _PENDING = _PENDING, None
    if pending is None:
        return
    ensure_pool()
    from segexp.jobs.summary import open_sweep

    opening = publish.store_future(
        open_sweep, pending.tracking_uri, pending.experiment, pending.name, pending.tags
    )
    _OPEN = OpeningSweep(pending.sweep_id, pending.tracking_uri, opening)
    total = pending.total
    jobs = "jobs" if total is None else f"{total} job{'s' if total != 1 else ''}"
    print(
        f"segexp: sweep {pending.sweep_id}: {jobs}; runs go to {pending.tracking_uri} "
        f"(experiment {pending.experiment})",
        flush=True,
    )


def end_progress() -> None:
    """Stop the live progress display (before an error line, at the end)."""
    _close_progress()


def _close_progress() -> None:
    global _PROGRESS
    progress, _PROGRESS = _PROGRESS, None
    if progress is not None:
        progress.close()


def _take_open() -> OpeningSweep | None:
    """The sweep this process opened, now closing: it is no longer offered to jobs."""
    global _OPEN, _PENDING
    os.environ.pop(ENV_VAR, None)
    os.environ.pop(PARALLEL_ENV, None)
    opening, _OPEN, _PENDING = _OPEN, None, None
    return opening


def end_unfinished_sweep(reason: str = "the sweep stopped before its end") -> None:
    """End the parent run of a sweep whose sweeper or launcher raised (Hydra then skips
    on_multirun_end): FAILED with the reason, never left RUNNING. Stopped by SIGINT or
    SIGTERM: the parent and the sweep's open job runs end KILLED (``segexp.ended_by``),
    with one line saying so. Called at the end of every command; puts the signal
    handlers back."""
    progress = _PROGRESS
    done = None if progress is None else (progress.done, progress.total)
    _close_progress()
    signame = stopped_by()
    killed = 0
    try:
        opening = _take_open()
        sweep = None
        if opening is not None:
            try:
                sweep = opening.context()
            except BaseException:  # the parent run was never created: nothing to end,
                sweep = None  # and nothing to keep of the folders Hydra made for it
                _remove_new_dir()
        if sweep is not None:
            publish.wait_all()  # runs already handed over are logged (or fail) first
            if signame is None:
                publish.store_call(
                    Tracker.fail_run,
                    sweep.tracking_uri,
                    sweep.parent_run_id,
                    f"{reason}; see the command's error output",
                )
            else:
                from segexp.jobs.summary import end_interrupted_sweep

                killed = publish.store_call(
                    end_interrupted_sweep, sweep.tracking_uri, sweep, signame
                )
            if _OPEN_DIR is not None:  # the empty folders Hydra made for its jobs
                remove_empty_sweep_folders(_OPEN_DIR)
        if signame is not None:
            print(_stopped_line(signame, sweep, done, killed), file=sys.stderr)
    finally:
        restore_stop_handlers()


def remove_empty_job_folder(job_dir: str) -> None:
    """A job's folder Hydra made goes when it holds no file (a segexp job writes only to
    the store), on whichever machine the job ran; the sweep folder itself stays until
    the sweep ends: another sweeper (Optuna) writes its results there."""
    with contextlib.suppress(OSError):  # holds something, or is gone already
        os.rmdir(job_dir)


def remove_empty_sweep_folders(sweep_dir: str) -> None:
    """At the sweep's end (on the command's machine): the sweep folder and, for a relative
    one, each of its parents inside the current folder, while they are empty."""
    from pathlib import Path

    sweep = Path(sweep_dir)
    for child in sweep.glob("*"):  # job folders a launcher left (a job that never ran)
        if child.is_dir():
            remove_empty_job_folder(str(child))
    folders = [sweep] if sweep.is_absolute() else [sweep, *list(sweep.parents)[:-1]]
    for folder in folders:  # multirun/day/time, multirun/day, multirun
        try:
            folder.rmdir()  # only an empty folder
        except OSError:  # holds something (another sweeper's results), or is gone
            if folder.exists():
                return


def _remember_new_dir(sweep_dir: str | None) -> None:
    """The top folder of ``sweep_dir`` that does not exist yet (Hydra makes it at launch)."""
    global _NEW_DIR
    _NEW_DIR = None
    if not sweep_dir:
        return
    from pathlib import Path

    path = Path(sweep_dir).absolute()
    if path.exists():
        return
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    _NEW_DIR = str(path)


def _remove_new_dir() -> None:
    """A sweep the store refused before its parent run existed (a deleted experiment, a
    store that will not write): Hydra's folders for it go too, as for any usage error."""
    global _NEW_DIR
    folder, _NEW_DIR = _NEW_DIR, None
    if folder is not None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _stopped_line(
    signame: str, sweep: SweepContext | None, done: tuple[int, int | None] | None, killed: int
) -> str:
    code = 128 + int(getattr(signal, signame))
    if sweep is None:
        return f"segexp: stopped by {signame} (exit {code}); no run was left open in the store"
    jobs = ""
    if done is not None:
        total = "?" if done[1] is None else str(done[1])
        jobs = f" after {done[0]} of {total} jobs"
    open_runs = f" and {killed} open job run{'s' if killed != 1 else ''}" if killed else ""
    return (
        f"segexp: stopped by {signame} (exit {code}): sweep {sweep.sweep_id} ended KILLED"
        f"{jobs} (parent run {sweep.parent_run_id}{open_runs}, tag segexp.ended_by="
        f"{signame}); segexp-compare and segexp-promote best= take it only with "
        "allow_incomplete=true"
    )


def _print_summary(report: SweepReport) -> None:
    counts = {s: report.count(s) for s in ("finished", "skipped", "failed", "invalid")}
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    took = "" if report.seconds is None else f" in {clock(report.seconds)}"
    print(
        f"segexp: sweep {report.sweep_id}: {len(report.outcomes)} jobs: {line}{took}; "
        f"parent run {report.parent_run_id}"
    )
    for o in report.outcomes:
        if o.status == "skipped":
            print(f"segexp: #{o.job_num} skipped: {o.message}")
    problems = [o for o in report.outcomes if o.status in ("failed", "invalid")]
    if problems:
        print(f"segexp: {len(problems)} failed jobs:", file=sys.stderr)
        for o in problems:
            print(f"  #{o.job_num} {o.run_name}: {o.status}: {o.message}", file=sys.stderr)


def _print_best(best: BestRuns) -> None:
    """The top of the sweep's leaderboard: rank, run name, the metric, n_clusters, run id."""
    runs = "1 finished run" if best.left_out == 1 else f"{best.left_out} finished runs"
    left_out = f"{runs} left out by the ranking rules (segexp-compare says why)"
    if not best.rows:
        why = left_out if best.left_out else f"no finished run has {best.metric}"
        print(f"\nNothing to rank by {best.metric}: {why}.")
        return
    import pandas as pd

    from segexp.tracking.leaderboard import format_table

    frame = pd.DataFrame(best.rows)
    frame["n_clusters"] = frame["n_clusters"].astype("Int64")
    frame["run_id"] = frame["run_id"].str[:8]
    better = "larger" if best.larger_is_better else "smaller"
    shown = len(best.rows)
    print(f"\nBest {shown} of {best.ranked} runs by {best.metric} ({better} is better):")
    for line in format_table(frame).splitlines():
        print(f"  {line}")
    if best.left_out:
        print(f"  ({left_out})")


def _context_args(config: DictConfig, sweep: SweepContext) -> list[str]:
    """The overrides a later command needs to find this sweep's store and experiment."""
    args = []
    if sweep.tracking_uri != absolute_tracking_uri(None):
        args.append(f"mlflow.tracking_uri={sweep.tracking_uri}")
    keys = [str(o).lstrip("+~").split("=", 1)[0] for o in config.hydra.overrides.task]
    if any(k == "data" or k.startswith(("data.", "mlflow.experiment")) for k in keys):
        args.append(f"mlflow.experiment={config.mlflow.experiment}")
    return args


def next_commands(
    config: DictConfig, sweep: SweepContext, metric: str, direction: str
) -> list[tuple[str, str]]:
    """(line, comment) for the steps after a sweep: compare, promote, the MLflow UI."""
    from segexp.tracking.leaderboard import METRIC_DIRECTIONS

    context = [f"sweep_id={sweep.sweep_id}", *_context_args(config, sweep)]
    ranking = (
        [] if METRIC_DIRECTIONS.get(metric) == (direction == "max") else [f"direction={direction}"]
    )
    compare = ([] if metric == "silhouette" else [f"metric={metric}"]) + ranking + context
    promote = [f"best={metric}", *ranking, *context]
    steps = [
        (shlex.join(["segexp-compare", *compare]), "all runs ranked (wide=true: all columns)"),
        (shlex.join(["segexp-promote", *promote]), "register the best run"),
    ]
    url = sweep_runs_url(
        sweep.tracking_uri, sweep.experiment_id, sweep.sweep_id, metric, direction == "max"
    )
    serve = ui_command(sweep.tracking_uri)
    if serve is not None:
        steps.append((serve, "the MLflow UI, then:"))
        steps.append((f"open {url}", ""))
    else:
        steps.append((f"open {url}", "the sweep's runs in the MLflow UI"))
    return steps


def _print_next(steps: list[tuple[str, str]]) -> None:
    """Commands one per line, ready to copy, each with a short comment where it fits."""
    import shutil

    columns = shutil.get_terminal_size((120, 24)).columns
    print("\nNext:")
    width = max((len(command) for command, comment in steps if comment), default=0)
    for command, comment in steps:
        line = f"  {command.ljust(width)}  # {comment}" if comment else f"  {command}"
        print(line if len(line) <= columns or not comment else f"  {command}")
