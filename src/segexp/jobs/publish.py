"""Publishing a job's run: draw its figures, then log it through ``tracking.store.log_run``.

A job computes its run (params, metrics, tags, the table and model files) and
hands it over as a ``PublishRequest``; ``publish`` draws the figures into the
run's folder and logs it. Drawing and MLflow's store are most of a small job's
cost, so the ``segexp`` command line (``segexp.__main__``) keeps a
``concurrent.futures`` process pool for them: its workers import
matplotlib and MLflow while the command imports scikit-learn and Hydra, and
publish each run while the next job fits, on the other core. A process that
has no pool (a joblib or Ray worker, the Python API in a notebook, whose main
module the pool's workers would import) publishes in the job itself. Either way
the same ``publish`` function logs the run.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segexp.tracking.store import RunRecord, log_run, tracker_for

if TYPE_CHECKING:  # the command starts the pool before it loads numpy and pandas
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


def store_call(function: Callable[..., Any], *args: Any) -> Any:
    """Run a store function (``function(tracker, *args)``) where the store is open."""
    pool = _POOL
    if pool is not None:
        try:
            return pool.submit(_with_tracker, function, *args).result()
        except BrokenProcessPool:
            _broken()
    return _with_tracker(function, *args)


def _with_tracker(function: Callable[..., Any], tracking_uri: str, *args: Any) -> Any:
    return function(tracker_for(tracking_uri), *args)


def submit(request: PublishRequest) -> Future:
    """Publish in the pool when this process has one, else here; a Future either way."""
    pool = _POOL
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
    """The run id and error of a submitted run; published here if the pool died meanwhile."""
    try:
        return future.result()
    except BrokenProcessPool:
        _broken()
        return publish(request)


def wait_all() -> None:
    """Wait until every run submitted from this process is in the store."""
    while _PENDING:
        request, future = _PENDING.pop(0)
        result(request, future)


# --- the pool ---------------------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None
_PENDING: list[tuple[PublishRequest, Future]] = []
WORKERS = 1
# Command-line flags that run no job: no pool is started for them.
NO_RUN_FLAGS = ("--help", "-h", "--hydra-help", "--info", "--cfg", "-c", "--shell-completion")


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Keep the cyclic garbage collector off a block of heavy imports, then freeze them.

    MLflow, scikit-learn and matplotlib create millions of long-lived objects on
    import, and every full collection while they load walks all of them again
    (0.4-0.6 s of CPU per process here). ``gc.freeze`` moves what the imports built
    out of the collector's way afterwards; later collections see the jobs' objects.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _warm_up() -> None:
    """Each worker loads what publishing needs before the first run arrives."""
    with quiet_imports():
        import matplotlib

        matplotlib.use("Agg")
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import mlflow.tracking  # noqa: F401

        import segexp.insight.plots  # noqa: F401
        import segexp.insight.profiles  # noqa: F401
        import segexp.jobs.summary  # noqa: F401


def start_pool(workers: int = WORKERS) -> None:
    """Start this process's publishing pool (once); its workers start loading at once."""
    global _POOL
    if _POOL is not None or workers < 1:
        return
    # forkserver (spawn where there is none): workers start from a clean interpreter,
    # never as forks of a process that already holds MLflow's threads or connections.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up)
    for _ in range(workers):
        _POOL.submit(os.getpid)  # makes the pool start its workers now


def has_pool() -> bool:
    return _POOL is not None


def _broken() -> None:
    """The pool died (a worker was killed): publish here from now on."""
    global _POOL
    _POOL = None


def stop_pool() -> None:
    global _POOL
    wait_all()
    if _POOL is not None:
        _POOL.shutdown(wait=True)
        _POOL = None


atexit.register(stop_pool)
