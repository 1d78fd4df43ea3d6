"""BLAS/OpenMP threads per fit, from the fit's size and the fits running beside it: threads
the cores cannot feed cost more than they save (docs/scale.md)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from threadpoolctl import ThreadpoolController

PARALLEL_ENV = "SEGEXP_PARALLEL_FITS"  # the fits a launcher runs at once here


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def ray_task_cpus() -> int | None:
    """The CPUs Ray assigned to the task this process runs; None outside a Ray task."""
    ray = sys.modules.get("ray")  # never imported here: a Ray worker has it loaded
    if ray is None or not ray.is_initialized():
        return None
    try:
        context = ray.get_runtime_context()
        cpus = context.get_assigned_resources().get("CPU")
        in_task = context.worker.mode == ray.WORKER_MODE  # not the driver
    except Exception:  # an older or newer Ray without these calls: no opinion
        return None
    return max(1, int(cpus)) if cpus and in_task else None


def launcher_workers(launcher: Any, cores: int | None = None) -> int | None:
    """Jobs joblib's launcher runs at once here (``n_jobs``, negative counted back from the
    cores as joblib does); None for other launchers."""
    if not str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        return None
    n_jobs = -1 if launcher.get("n_jobs") is None else int(launcher.get("n_jobs"))
    return max(1, n_jobs if n_jobs > 0 else (cores or usable_cores()) + 1 + n_jobs)


@dataclass(frozen=True)
class ThreadPolicy:
    """How many BLAS/OpenMP threads a fit of ``n_rows`` customers gets here."""

    cores: int
    parallel: int
    configured: int | None = None  # limits.threads
    single_thread_below_rows: int = 50000

    def threads(self, n_rows: int) -> int:
        if self.configured is not None:
            return self.configured
        if n_rows < self.single_thread_below_rows:
            return 1
        return max(1, self.cores // max(1, self.parallel))

    @contextlib.contextmanager
    def limit(self, n_rows: int) -> Iterator[int]:
        """Run the block with ``threads(n_rows)`` threads in every BLAS/OpenMP pool."""
        threads = self.threads(n_rows)
        with _controller(len(sys.modules)).limit(limits=threads):
            yield threads


def thread_policy(limits: Any) -> ThreadPolicy:
    """The policy of this process from ``cfg.limits``."""
    configured = limits.get("threads")
    task_cpus = ray_task_cpus()
    return ThreadPolicy(
        task_cpus or usable_cores(),
        1 if task_cpus else int(os.environ.get(PARALLEL_ENV) or 1),
        None if configured is None else int(configured),
        int(limits.get("single_thread_below_rows", 50000)),
    )


@functools.lru_cache(maxsize=1)
def _controller(loaded_modules: int) -> ThreadpoolController:
    """One controller (a scan of the loaded libraries, about 4 ms) until an import may have
    loaded another BLAS/OpenMP."""
    return ThreadpoolController()
