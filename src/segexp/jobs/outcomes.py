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

import pandas as pd
from rich.console import Console
from rich.progress import (
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from hydra_plugins.segexp_sweep.user_conf import VERBOSE_ENV, log_level

SUMMARY_METRICS = ("n_clusters", "silhouette", "inertia")
# MLflow's INFO lines when it creates or migrates a store: shown only when verbose.
STORE_LOGGERS = ("mlflow.store.db.utils",)


def set_verbose(configured: Any = False) -> None:
    """Verbose (``verbose=true`` or ``SEGEXP_VERBOSE=1``) here and in the processes started
    from now on; else MLflow's store loggers are quiet (a store error is segexp's own line)."""
    verbose = log_level(configured) == "INFO"
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    for name in STORE_LOGGERS:  # MLflow configures only its top logger, so this holds
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
    experiment_id: str | None = None  # where its run is (the run's page in the UI)


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
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # rank, run_name, metric, ...
    left_out: int = 0  # finished runs with the metric that a ranking rule left out
    why: str = ""  # the rules that left them out: '12 runs left out: a segment under 2% ...'


def job_line(outcome: JobOutcome, metric: str = "silhouette", run_id: bool = False) -> str:
    """'#3 kmeans-k5-standard-income_spending FINISHED silhouette=0.672 n_clusters=5'
    (``run_id``: then '(run <id>)')."""
    name = outcome.run_name
    if outcome.job_num is not None and name != f"job #{outcome.job_num}":
        name = f"#{outcome.job_num} {name}"
    if outcome.status != "finished":
        message = outcome.message.splitlines()[0] if outcome.message else ""
        return f"{name} {outcome.status.upper()}: {message}"
    keys = dict.fromkeys((metric, *SUMMARY_METRICS))
    shown = [f"{k}={outcome.metrics[k]:.4g}" for k in keys if k in outcome.metrics]
    run = f"(run {outcome.run_id})" if run_id and outcome.run_id else ""
    return " ".join([name, "FINISHED", *shown, run]).rstrip()


def clock(seconds: float, up: bool = False) -> str:
    """0:04, 12:30, 1:02:03 (``up``: whole seconds rounded up, for time left)."""
    minutes, secs = divmod(max(0, math.ceil(seconds) if up else int(round(seconds))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SweepProgress:
    """Jobs done of the sweep's total (None: the sweeper decides), failures, time elapsed and
    left: a live bar (rich) on a terminal, gone at the end; elsewhere one line per job,
    ``[3/12] #2 kmeans-k5-... FINISHED silhouette=0.672 (0:04 elapsed, ~0:08 left)``."""

    def __init__(self, total: int | None, metric: str, started: float) -> None:
        self.total, self.metric, self.started = total, metric, started  # time.monotonic()
        self.failed = 0
        self.ends: list[float] = []  # when each job ended
        self.bar: Progress | None = None
        if sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb":
            self.bar = Progress(
                SpinnerColumn(),
                *Progress.get_default_columns()[:2],
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]}"),
                TimeElapsedColumn(),
                TextColumn("[cyan]{task.fields[left]}"),
                console=Console(file=sys.stdout),
                transient=True,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self.task = self.bar.add_task("sweep", total=total, failed="", left="")
            self.bar.start()

    def timing(self) -> str:
        """'0:04 elapsed, ~0:08 left': the mean time per job since the first ended (the first
        also paid for starting up) times the jobs left, less the current one's time so far."""
        done, elapsed = len(self.ends), clock(time.monotonic() - self.started)
        if self.total is None or done < 2 or done == self.total:
            return f"{elapsed} elapsed"
        per_job = (self.ends[-1] - self.ends[0]) / (done - 1)
        left = per_job * max(0, self.total - done) - (time.monotonic() - self.ends[-1])
        return f"{elapsed} elapsed, ~{clock(max(0.0, left), up=True)} left"

    def job_done(self, outcome: JobOutcome) -> None:
        self.failed += outcome.status in ("failed", "invalid")
        self.ends.append(time.monotonic())
        line = job_line(outcome, self.metric)
        failed = f"{self.failed} failed" if self.failed else ""
        if self.bar is None:
            done = [f"{len(self.ends)}/{'?' if self.total is None else self.total}", failed]
            print(f"[{', '.join(filter(None, done))}] {line} ({self.timing()})", flush=True)
            return
        self.bar.console.print(line, markup=False, highlight=False)
        left = self.timing().partition(", ")[2]
        self.bar.update(self.task, completed=len(self.ends), failed=failed, left=left)

    def status(self, text: str) -> None:
        """What the sweep does now (the bar's label; nothing printed without a terminal)."""
        if self.bar is not None:
            self.bar.update(self.task, description=text)

    def close(self) -> None:
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.stop()
