"""Publishing a job's run: draw its figures, then log it through ``tracking.store.log_run``.

A job computes its run (params, metrics, tags, the table and model files) and
hands it over as a ``PublishRequest``; ``publish`` draws the figures into the
run's folder and logs it. Drawing and MLflow's store are most of a small job's
cost, so the ``segexp`` command line (``segexp.__main__``) keeps a
``concurrent.futures`` process pool for them (two workers, forked from a
forkserver that loads matplotlib and MLflow once while the command loads
scikit-learn and Hydra); they publish each run while the next job fits. The
command's store calls (experiment, parent run, the sweep's summary) go to the
same workers, so the command itself never loads MLflow. A process that has no
pool (a joblib or Ray worker; the Python API, whose caller's main module the
workers would import) publishes in the job itself, and so does the command if
a worker dies. Either way the same ``publish`` function logs the run.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segexp.contract import TAG_ERROR, TAG_PUBLISH_KEY
from segexp.tracking.liveness import is_alive
from segexp.tracking.store import RunRecord, log_run, tracker_for

if TYPE_CHECKING:  # the command starts the pool before it loads numpy and pandas
    from multiprocessing.context import ForkServerContext, SpawnContext  # no forkserver on Windows

    import numpy as np
    import pandas as pd


@dataclass
class RunFigures:
    """What the figures of one run are drawn from (picklable, sent to a pool worker)."""

    title: str
    dpi: int
    features: pd.DataFrame
    transformed: np.ndarray
    labels: np.ndarray
    silhouette_per_customer: np.ndarray | None
    silhouette_labels: np.ndarray | None
    silhouette_reason: str
    profile: Any  # segexp.insight.profiles.SegmentProfile
    k_distance: dict[str, Any] | None = None
    total: int | None = None  # the run's customers, when the scatter shows a sample of them

    def draw(self, folder: Path) -> None:
        from segexp.insight import plots
        from segexp.insight.profiles import write_profile_plots

        if self.k_distance is not None:
            plots.save_k_distance_plot(folder, **self.k_distance, dpi=self.dpi)
        write_profile_plots(folder, self.profile, dpi=self.dpi)
        plots.run_plots(
            folder,
            features=self.features,
            transformed=self.transformed,
            labels=self.labels,
            silhouette_per_customer=self.silhouette_per_customer,
            silhouette_labels=self.silhouette_labels,
            silhouette_reason=self.silhouette_reason,
            title=self.title,
            dpi=self.dpi,
            total=self.total,
        )


@dataclass
class PublishRequest:
    """One run to log: where, what, and the figures still to draw into its folder."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None
    record: RunRecord
    figures: RunFigures | None = None


def publish(request: PublishRequest) -> tuple[str, str | None]:
    """Draw the figures, log the run, remove its folder; (run id, error or None)."""
    record = request.record
    folder = Path(record.artifact_dir) if record.artifact_dir else None
    try:
        if folder is not None and request.figures is not None and record.error is None:
            try:
                request.figures.draw(folder)
            except Exception as exc:  # a figure failed: the run says so instead of vanishing
                record.error = f"drawing the run's figures failed: {type(exc).__name__}: {exc}"
        tracker = tracker_for(request.tracking_uri)
        return log_run(tracker, request.experiment_id, record, request.parent_run_id)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def discard(request: PublishRequest) -> None:
    """Drop a run that will not be published (its files go)."""
    if request.record.artifact_dir:
        shutil.rmtree(request.record.artifact_dir, ignore_errors=True)


def store_call(function: Callable[..., Any], *args: Any) -> Any:
    """Run a store function (``function(tracker, *args)``) where the store is open."""
    pool = _pool()
    if pool is not None:
        try:
            return pool.submit(_with_tracker, function, *args).result()
        except BrokenProcessPool:
            _broken()
    return _with_tracker(function, *args)


def store_future(function: Callable[..., Any], *args: Any) -> Future:
    """``store_call`` without waiting for it (nor for the pool to finish starting): a
    Future of its result, from a thread."""
    future: Future = Future()

    def call() -> None:
        try:
            future.set_result(store_call(function, *args))
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=call, daemon=True).start()
    return future


def _with_tracker(function: Callable[..., Any], tracking_uri: str, *args: Any) -> Any:
    return function(tracker_for(tracking_uri), *args)


def submit(request: PublishRequest) -> Future:
    """Publish in the pool when this process has one, else here; a Future either way."""
    request.record.tags.setdefault(TAG_PUBLISH_KEY, uuid.uuid4().hex)  # the same tags either way
    pool = _pool()
    if pool is not None:
        try:
            future = pool.submit(publish, request)
            _PENDING.append((request, future))
            return future
        except BrokenProcessPool:
            _broken()
    done: Future = Future()
    done.set_result(publish(request))
    return done


def result(request: PublishRequest, future: Future) -> tuple[str, str | None]:
    """The run id and error of a submitted run; published here if the pool died meanwhile
    (unless the worker had ended the run before it died)."""
    try:
        return future.result()
    except BrokenProcessPool:
        _broken()
        return _logged_before(request) or publish(request)


def _logged_before(request: PublishRequest) -> tuple[str, str | None] | None:
    """The run a dead worker ended (FINISHED or FAILED) for this request, found by its
    publish key; None when it ended none (a run it left RUNNING is ended as lost by the
    store's check for runs of gone processes, and the sweep's summary counts it once)."""
    key = request.record.tags.get(TAG_PUBLISH_KEY)
    if key is None:
        return None
    client = tracker_for(request.tracking_uri).client
    for run in client.search_runs([request.experiment_id], f"tags.`{TAG_PUBLISH_KEY}` = '{key}'"):
        if run.info.status == "FINISHED":
            return run.info.run_id, None
        if run.info.status == "FAILED":
            error = (run.data.tags.get(TAG_ERROR) or "FAILED").splitlines()
            return run.info.run_id, error[0] if error else "FAILED"
    return None


def wait_all() -> None:
    """Wait until every run submitted from this process is in the store."""
    while _PENDING:
        request, future = _PENDING.pop(0)
        result(request, future)


# --- the pool ---------------------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None
_STARTING: threading.Thread | None = None
_WANTED = 0  # workers of this process's pool; 0: it has none
_BROKEN = False
_LOCK = threading.Lock()
_PENDING: list[tuple[PublishRequest, Future]] = []
WORKERS = 2
WORKER_IMPORTS = "segexp.jobs.worker_imports"
# Command-line flags that run no job: no pool is started for them.
NO_RUN_FLAGS = ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--shell-completion")


def _warm_up() -> None:
    """Each worker loads what publishing needs before the first run arrives (with a
    forkserver the modules are loaded already, and this costs nothing).

    Workers ignore SIGINT and SIGTERM: a Ctrl-C reaches the whole process group, and the
    command itself ends the sweep (its runs KILLED) through these workers; they leave
    when the command's pool shuts down, or when the command is gone (``_orphan_watch``).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_orphan_watch, args=(os.getppid(),), daemon=True).start()
    import segexp.jobs.worker_imports  # noqa: F401


def _orphan_watch(parent: int, every: float = 1.0) -> None:
    """End this worker once the command that owns the pool is gone (a SIGKILL): a
    worker waiting for work would otherwise wait for ever."""
    import time

    owner = multiprocessing.parent_process()
    owner_pid = owner.pid if owner is not None else None
    while True:
        time.sleep(every)
        if os.getppid() != parent or (owner_pid is not None and not is_alive(owner_pid)):
            os._exit(0)


def start_pool(workers: int = WORKERS) -> None:
    """Give this process a publishing pool of ``workers`` (once).

    The workers are forked from a forkserver that first loads what they need
    (``WORKER_IMPORTS``). A thread starts that server now, while this process goes
    on loading its own modules; the workers themselves are forked when the first
    store call or run needs them, so a command that stops at a usage error forks none.
    """
    global _STARTING, _WANTED
    if _WANTED or workers < 1:
        return
    _WANTED = workers
    _STARTING = threading.Thread(target=_start_server, daemon=True)
    _STARTING.start()


def _context() -> SpawnContext | ForkServerContext:
    # forkserver (spawn where there is none): workers start from a clean interpreter that
    # loaded what publishing needs once, never as forks of this process (which will hold
    # scikit-learn's thread pools) and never of one that opened a store.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload([WORKER_IMPORTS])
    return forkserver


def _start_server() -> None:
    """Start the forkserver and wait until it has loaded: its first child (which does
    nothing) is forked only then."""
    try:
        process = _context().Process(target=os.getpid, daemon=True)
        process.start()
        process.join()
    except (RuntimeError, OSError, EOFError):  # the command ended first (its server was
        pass  # stopped, see _stop_loading_server), or no process can start here


def _pool() -> ProcessPoolExecutor | None:
    """The pool (forking its workers on first use), or None when this process has none."""
    global _POOL
    with _LOCK:  # the main thread and a store_future thread may ask at once
        if _STARTING is not None:
            _STARTING.join()
        if _POOL is None and _WANTED and not _BROKEN:
            _POOL = ProcessPoolExecutor(_WANTED, mp_context=_context(), initializer=_warm_up)
        return _POOL


def has_pool() -> bool:
    return _pool() is not None


def pool_wanted() -> bool:
    """This process publishes through a pool (started or not yet forked)."""
    return bool(_WANTED) and not _BROKEN


def _broken() -> None:
    """The pool died (a worker was killed): publish here from now on."""
    global _POOL, _BROKEN
    _POOL, _BROKEN = None, True


def stop_pool() -> None:
    global _POOL
    wait_all()
    if _POOL is not None:
        _POOL.shutdown(wait=True)
        _POOL = None
    elif _STARTING is not None and _STARTING.is_alive():
        _stop_loading_server()


def _stop_loading_server() -> None:
    """The command ends (a usage or store error) while the forkserver still loads MLflow
    for a pool it never used: stop it, rather than let it hold the command's output open
    (and a core busy) for seconds after the command is gone. CPython keeps the server's
    pid in ``multiprocessing.forkserver._forkserver``; where it does not, nothing is done."""
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if isinstance(pid, int) and pid > 0:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


atexit.register(stop_pool)
