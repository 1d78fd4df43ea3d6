"""Hydra Callback that makes a multirun one MLflow parent run with the jobs under it.

on_multirun_start checks the data once (a user mistake stops the sweep with
exit code 2 before anything is written), opens the parent run and tells the
jobs where it is. on_multirun_end collects every job's outcome from the store,
logs the parent's leaderboard and k plots, ends the parent and prints the
failures.

Jobs find their sweep through the environment (``SEGEXP_SWEEP``, inherited by
joblib's and a local Ray's workers), else through the store: the parent run is
tagged with the sweep folder Hydra gives every job. Jobs that end without a run
of their own (skipped duplicates, invalid input) are recorded as tags on the
parent; everything else is a run of the store. No local file is involved.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_KIND,
    TAG_OUTCOME_PREFIX,
    TAG_PREFIX,
    TAG_SWEEP_ID,
)
from segexp.errors import EXIT_USER_ERROR, SegexpError
from segexp.jobs import publish
from segexp.jobs.job import code_version
from segexp.jobs.outcomes import JobOutcome, OpeningSweep, SweepContext
from segexp.jobs.summary import finish_sweep, open_sweep, sweep_outcomes
from segexp.tracking.store import Tracker, resolve_tracking_uri, tracker_for

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

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


LAST_SWEEP: SweepReport | None = None
_OPEN: OpeningSweep | None = None  # the parent run this process opened and has not ended
_OPEN_DIR: str | None = None  # its sweep folder


def sweep_is_open() -> bool:
    """A parent run was opened by this process and is not ended yet."""
    return _OPEN is not None


def reset() -> None:
    global LAST_SWEEP
    LAST_SWEEP = None


def new_sweep_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def sweep_context(cfg: DictConfig, sweep_dir: str) -> SweepContext | OpeningSweep | None:
    """The sweep a job of the multirun in ``sweep_dir`` belongs to.

    From the environment when the job's process inherited it, else the RUNNING
    parent run tagged with this sweep folder in the job's store (a worker on
    another machine, or a reused worker process). None: no segexp sweep is open.
    """
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


def _stop(message: str) -> None:
    print(f"segexp: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP, _OPEN, _OPEN_DIR
        LAST_SWEEP = None
        from segexp.data import load_customers

        try:
            # Only the data is checked here: swept groups may change features per job.
            table = load_customers(config.data)
            tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
        except SegexpError as exc:
            _stop(str(exc))
        sweep_id = new_sweep_id()
        sweep_dir = str(config.hydra.sweep.dir)
        parent_tags = {
            TAG_KIND: "sweep",
            TAG_SWEEP_ID: sweep_id,
            TAG_SWEEP_DIR: sweep_dir,
            TAG_PREFIX + "command": " ".join(sys.argv[1:]),
            TAG_DATA_FINGERPRINT: table.fingerprint,
            TAG_DATA_SOURCE: table.source,
            TAG_CODE_VERSION: code_version(),
        }
        opening = publish.store_future(
            open_sweep,
            tracking_uri,
            str(config.mlflow.experiment),
            f"sweep-{sweep_id}",
            parent_tags,
        )
        _OPEN = OpeningSweep(sweep_id, tracking_uri, opening)
        _OPEN_DIR = sweep_dir
        if not _runs_in_this_process(config):
            # Jobs in other processes find the sweep in their inherited environment.
            try:
                sweep = _OPEN.context()
            except SegexpError as exc:
                _stop(str(exc))
            os.environ[ENV_VAR] = json.dumps({**asdict(sweep), "sweep_dir": sweep_dir})
        log.info("sweep %s in %s", sweep_id, tracking_uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        opening = _take_open()
        if opening is None:
            return
        try:
            sweep = opening.context()
        except SegexpError as exc:  # the store refused the sweep: no parent run exists
            _stop(str(exc))
        publish.wait_all()
        outcomes = publish.store_call(sweep_outcomes, sweep.tracking_uri, sweep)
        publish.store_call(
            finish_sweep,
            sweep.tracking_uri,
            sweep.experiment_id,
            sweep.parent_run_id,
            sweep.sweep_id,
            outcomes,
            {"dpi": int(config.plots.dpi)},
        )
        LAST_SWEEP = SweepReport(sweep.sweep_id, sweep.parent_run_id, outcomes)
        _print_summary(LAST_SWEEP)


def _take_open() -> OpeningSweep | None:
    """The sweep this process opened, now closing: it is no longer offered to jobs."""
    global _OPEN
    os.environ.pop(ENV_VAR, None)
    opening, _OPEN = _OPEN, None
    return opening


def end_unfinished_sweep(reason: str = "the sweep stopped before its end") -> None:
    """End the parent run of a sweep whose sweeper or launcher raised (Hydra then skips
    on_multirun_end): FAILED with the reason, never left RUNNING."""
    opening = _take_open()
    if opening is None:
        return
    try:
        sweep = opening.context()
    except Exception:  # the parent run was never created: nothing to end
        return
    publish.wait_all()
    publish.store_call(
        Tracker.fail_run,
        sweep.tracking_uri,
        sweep.parent_run_id,
        f"{reason}; see the command's error output",
    )


def _print_summary(report: SweepReport) -> None:
    counts = {s: report.count(s) for s in ("finished", "skipped", "failed", "invalid")}
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(
        f"segexp: sweep {report.sweep_id}: {len(report.outcomes)} jobs: {line}; "
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
