"""How jobs ended, as plain data and as terminal lines: what a sweep's progress, summary
and exit code are made of. ``SweepProgress`` is a sweep's one progress display: a live
bar (rich) on a terminal, one plain line per finished job anywhere else (CI, pipes, tests).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from hydra_plugins.segexp_sweep.user_conf import VERBOSE_ENV, log_level

SUMMARY_METRICS = ("n_clusters", "silhouette", "inertia")
# MLflow's INFO lines when it creates or migrates a store ("Creating initial MLflow
# database tables...", "Updating database tables"): shown only when verbose.
STORE_LOGGERS = ("mlflow.store.db.utils",)


def verbose_requested(configured: Any = False) -> bool:
    """``verbose=true`` in the config, or ``SEGEXP_VERBOSE=1`` in the environment."""
    return log_level(configured) == "INFO"


def set_verbose(verbose: bool) -> None:
    """Show MLflow's store-migration lines only when verbose, in this process and in the
    processes it starts from now on (they read ``SEGEXP_VERBOSE``)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    quiet_store_logs(verbose)


def quiet_store_logs(verbose: bool | None = None) -> None:
    """Levels of MLflow's store loggers: INFO when verbose (default: ``SEGEXP_VERBOSE``),
    else nothing below CRITICAL: a store error (with its traceback, "SQLAlchemy database
    error") reaches the user as segexp's own one line.

    MLflow (3.x) configures only its top logger, so a level set here on a child
    logger holds whether MLflow is imported before or after."""
    verbose = verbose_requested() if verbose is None else verbose
    for name in STORE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


@dataclass
class JobOutcome:
    """How one job ended: finished | failed | invalid (no run) | skipped (an earlier job's twin)."""

    status: str
    run_name: str
    run_id: str | None = None
    message: str = ""
    job_num: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    store_error: bool = False  # failed because the store refused its run: the sweep stops


@dataclass(frozen=True)
class SweepContext:
    """What the jobs of one multirun share: the store, experiment and parent run."""

    sweep_id: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    configs_checked: bool = False  # every job's config was checked before the first ran


@dataclass
class BestRuns:
    """The top of a finished sweep's leaderboard, for the lines printed at its end."""

    metric: str
    larger_is_better: bool
    ranked: int  # runs ranked (finished, with the metric)
    rows: list[dict[str, Any]] = field(default_factory=list)  # rank, run_name, metric, ...
    left_out: int = 0  # finished runs with the metric that a ranking rule left out


def describe_outcome(outcome: JobOutcome) -> str:
    """One log line per job."""
    num = outcome.job_num
    head = f"[{outcome.run_name}]" if num is None else f"[#{num} {outcome.run_name}]"
    if outcome.status == "finished":
        shown = ", ".join(
            f"{k}={outcome.metrics[k]:.4g}" for k in SUMMARY_METRICS if k in outcome.metrics
        )
        run = f" (run {outcome.run_id})" if outcome.run_id else ""
        return f"{head} FINISHED {shown}{run}"
    return f"{head} {outcome.status.upper()}: {outcome.message}"


# ------------------------------------------------------------------- progress


def clock(seconds: float, up: bool = False) -> str:
    """0:04, 12:30, 1:02:03 (``up``: whole seconds rounded up, for time left)."""
    total = max(0, math.ceil(seconds) if up else int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def job_line(outcome: JobOutcome, metric: str = "silhouette") -> str:
    """'#3 kmeans-k5-standard-income_spending FINISHED silhouette=0.672 n_clusters=5'."""
    name = outcome.run_name
    if outcome.job_num is not None and name != f"job #{outcome.job_num}":
        name = f"#{outcome.job_num} {name}"
    if outcome.status == "finished":
        shown = [m for m in (metric, "n_clusters") if m in outcome.metrics]
        values = " ".join(f"{m}={outcome.metrics[m]:.3g}" for m in dict.fromkeys(shown))
        return f"{name} FINISHED {values}".rstrip()
    message = outcome.message.splitlines()[0] if outcome.message else ""
    return f"{name} {outcome.status.upper()}: {message}"


def _is_live_terminal(stream: IO[str]) -> bool:
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    return os.environ.get("TERM", "") != "dumb"


class SweepProgress:
    """Jobs done out of the sweep's total, failures, time elapsed and time left.

    On a terminal: a live bar (rich) under the job lines, gone when the sweep ends.
    Elsewhere: one line per finished job, e.g.
    ``[3/12] #2 kmeans-k5-standard-income_spending FINISHED silhouette=0.672 n_clusters=5
    (0:04 elapsed, ~0:08 left)``. ``total`` None: the sweeper decides as it goes (no
    time left is shown).
    """

    def __init__(
        self,
        total: int | None,
        metric: str = "silhouette",
        stream: IO[str] | None = None,
        live: bool | None = None,
        started: float | None = None,
    ) -> None:
        self.total = total
        self.metric = metric
        self.stream = stream if stream is not None else sys.stdout
        self.done = 0
        self.failed = 0
        self.started = time.monotonic() if started is None else started  # monotonic clock
        self._first_done: float | None = None
        self._last_done: float | None = None
        self._progress: Any = None
        self._task: Any = None
        if live if live is not None else _is_live_terminal(self.stream):
            self._start_live()

    # -- estimates

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float | None:
        """Seconds left: the mean time per job since the first one ended (the first also
        paid for starting up) times the jobs left, less the time the current one took so
        far. None until two jobs ended."""
        if self.total is None or self.done < 2 or self._first_done is None:
            return None
        assert self._last_done is not None  # set with _first_done
        per_job = (self._last_done - self._first_done) / (self.done - 1)
        remaining = max(0, self.total - self.done)
        return max(0.0, per_job * remaining - (time.monotonic() - self._last_done))

    def counter(self) -> str:
        """'[3/12]', '[4/12, 1 failed]'."""
        total = "?" if self.total is None else str(self.total)
        failed = f", {self.failed} failed" if self.failed else ""
        return f"[{self.done}/{total}{failed}]"

    def timing(self) -> str:
        """'0:04 elapsed, ~0:08 left'."""
        left = self.left()
        rest = "" if left is None or self.done == self.total else f", ~{clock(left, up=True)} left"
        return f"{clock(self.elapsed())} elapsed{rest}"

    # -- events

    def job_done(self, outcome: JobOutcome) -> None:
        now = time.monotonic()
        self.done += 1
        if outcome.status in ("failed", "invalid"):
            self.failed += 1
        if self._first_done is None:
            self._first_done = now
        self._last_done = now
        line = job_line(outcome, self.metric)
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            failed = f"{self.failed} failed" if self.failed else ""
            self._progress.update(self._task, completed=self.done, failed=failed)
            return
        print(f"{self.counter()} {line} ({self.timing()})", file=self.stream, flush=True)

    def status(self, text: str) -> None:
        """What the sweep does now (the bar's label; nothing printed without a terminal)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def close(self) -> None:
        if self._progress is not None:
            progress, self._progress = self._progress, None
            progress.stop()

    # -- the live bar

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
        )
        from rich.text import Text

        owner = self

        class TimeColumn(ProgressColumn):
            """'0:04 elapsed, ~0:08 left', as the plain lines say it."""

            def render(self, task: Any) -> Text:
                return Text(owner.timing(), style="cyan")

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]}"),
            TimeColumn(),
            console=Console(file=self.stream),
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._task = self._progress.add_task("sweep", total=self.total, failed="")
        self._progress.start()
