"""How jobs ended, as plain data and as terminal lines: a sweep's progress, summary and
exit code are made of them."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.text import Text

from hydra_plugins.segexp_sweep.user_conf import VERBOSE_ENV, log_level

SUMMARY_METRICS = ("n_clusters", "silhouette", "inertia")
# MLflow's INFO lines when it creates or migrates a store: shown only when verbose.
STORE_LOGGERS = ("mlflow.store.db.utils",)


def verbose_requested(configured: Any = False) -> bool:
    """``verbose=true`` in the config, or ``SEGEXP_VERBOSE=1`` in the environment."""
    return log_level(configured) == "INFO"


def set_verbose(verbose: bool) -> None:
    """Verbose in this process and in those it starts from now on (``SEGEXP_VERBOSE``)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    quiet_store_logs(verbose)


def quiet_store_logs(verbose: bool | None = None) -> None:
    """MLflow's store loggers at INFO when verbose, else CRITICAL: a store error reaches the
    user as segexp's own line. (MLflow configures only its top logger, so this holds.)"""
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
    sweep_dir: str = ""  # Hydra's sweep folder: a worker elsewhere finds its sweep by it


@dataclass
class BestRuns:
    """The top of a finished sweep's leaderboard, for the lines printed at its end."""

    metric: str
    larger_is_better: bool
    ranked: int  # runs ranked (finished, with the metric)
    rows: list[dict[str, Any]] = field(default_factory=list)  # rank, run_name, metric, ...
    left_out: int = 0  # finished runs with the metric that a ranking rule left out
    why: str = ""  # the rules that left them out: '12 runs left out: a segment under 2% ...'


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
        shown = dict.fromkeys(m for m in (metric, "n_clusters") if m in outcome.metrics)
        values = " ".join(f"{m}={outcome.metrics[m]:.3g}" for m in shown)
        return f"{name} FINISHED {values}".rstrip()
    message = outcome.message.splitlines()[0] if outcome.message else ""
    return f"{name} {outcome.status.upper()}: {message}"


def _is_terminal() -> bool:
    try:
        return sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # replaced, or closed
        return False


class _Timing(ProgressColumn):
    """'0:04 elapsed, ~0:08 left' on the live bar, as the plain lines say it."""

    def __init__(self, progress: SweepProgress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task: Task) -> Text:
        return Text(self.progress.timing(), style="cyan")


class SweepProgress:
    """Jobs done of the sweep's total (None: the sweeper decides as it goes), failures, time
    elapsed and left: a live bar (rich) on a terminal, gone at the end; elsewhere one line per
    job, ``[3/12] #2 kmeans-k5-... FINISHED silhouette=0.672 (0:04 elapsed, ~0:08 left)``."""

    def __init__(self, total: int | None, metric: str, started: float) -> None:
        self.total = total
        self.metric = metric
        self.started = started  # time.monotonic()
        self.done = 0
        self.failed = 0
        self.ends: list[float] = []  # when each job ended
        self.bar: Progress | None = None
        if _is_terminal():
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]}"),
                _Timing(self),
                console=Console(file=sys.stdout),
                transient=True,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self.task = self.bar.add_task("sweep", total=total, failed="")
            self.bar.start()

    def left(self) -> float | None:
        """Seconds left: the mean time per job since the first ended (the first also paid for
        starting up) times the jobs left, less the current one's time so far."""
        if self.total is None or self.done < 2:
            return None
        per_job = (self.ends[-1] - self.ends[0]) / (self.done - 1)
        left = per_job * max(0, self.total - self.done) - (time.monotonic() - self.ends[-1])
        return max(0.0, left)

    def timing(self) -> str:
        """'0:04 elapsed, ~0:08 left'."""
        left = self.left()
        rest = "" if left is None or self.done == self.total else f", ~{clock(left, up=True)} left"
        return f"{clock(time.monotonic() - self.started)} elapsed{rest}"

    def job_done(self, outcome: JobOutcome) -> None:
        self.done += 1
        self.failed += outcome.status in ("failed", "invalid")
        self.ends.append(time.monotonic())
        line = job_line(outcome, self.metric)
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
            failed = f"{self.failed} failed" if self.failed else ""
            self.bar.update(self.task, completed=self.done, failed=failed)
            return
        total = "?" if self.total is None else str(self.total)
        failed = f", {self.failed} failed" if self.failed else ""
        print(f"[{self.done}/{total}{failed}] {line} ({self.timing()})", flush=True)

    def status(self, text: str) -> None:
        """What the sweep does now (the bar's label; nothing printed without a terminal)."""
        if self.bar is not None:
            self.bar.update(self.task, description=text)

    def close(self) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.stop()
