"""Hydra Callback that makes a multirun one MLflow parent run with the jobs under it.

on_multirun_start: checks the inputs once (a user mistake stops the sweep with
exit code 2 before anything is written), opens the parent run and writes the
sweep state the jobs read. on_multirun_end: collects every job's outcome,
logs the leaderboard and the per-group k plots to the parent, ends it, and
prints the failures.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from segexp import sweep_summary
from segexp.errors import EXIT_USER_ERROR, SegexpError
from segexp.sweep_state import ENV_VAR, SweepState
from segexp.tracking import TAG_PREFIX, Tracker, resolve_tracking_uri

log = logging.getLogger("segexp")


@dataclass
class SweepReport:
    """The outcome of the last multirun in this process, for the exit code."""

    outcomes: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o["status"] == status)


LAST_SWEEP: SweepReport | None = None


def new_sweep_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.state: SweepState | None = None
        self.tracker: Tracker | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        LAST_SWEEP = None
        from segexp.data import load_customers
        from segexp.runner import code_version

        try:
            # Only the data is checked here: swept groups may change features per job.
            table = load_customers(config.data)
            tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
            self.tracker = Tracker(tracking_uri)
            experiment_id = self.tracker.experiment_id(config.mlflow.experiment)
        except SegexpError as exc:
            print(f"segexp: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        sweep_id = new_sweep_id()
        parent_run_id = self.tracker.start_run(
            experiment_id,
            f"sweep-{sweep_id}",
            tags={
                f"{TAG_PREFIX}kind": "sweep",
                f"{TAG_PREFIX}sweep_id": sweep_id,
                f"{TAG_PREFIX}command": " ".join(sys.argv[1:]),
                f"{TAG_PREFIX}data_fingerprint": table.fingerprint,
                f"{TAG_PREFIX}data_source": table.source,
                f"{TAG_PREFIX}code_version": code_version(),
            },
        )
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.state = SweepState(
            sweep_id=sweep_id,
            tracking_uri=tracking_uri,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            state_dir=str(sweep_dir / ".segexp"),
        )
        os.environ[ENV_VAR] = str(self.state.save())
        log.info("sweep %s: parent run %s in %s", sweep_id, parent_run_id, tracking_uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        os.environ.pop(ENV_VAR, None)
        if self.state is None or self.tracker is None:
            return
        outcomes = self.state.outcomes()
        LAST_SWEEP = SweepReport(outcomes)
        with tempfile.TemporaryDirectory(prefix="segexp-sweep-") as tmp:
            metrics, tags = sweep_summary.summarize_sweep(
                self.tracker, self.state, outcomes, Path(tmp), config
            )
            self.tracker.log(self.state.parent_run_id, metrics=metrics, tags=tags, artifact_dir=tmp)
        finished = LAST_SWEEP.count("finished")
        self.tracker.end_run(self.state.parent_run_id, "FINISHED" if finished else "FAILED")
        _print_summary(LAST_SWEEP, self.state)


def _print_summary(report: SweepReport, state: SweepState) -> None:
    counts = {s: report.count(s) for s in ("finished", "skipped", "failed", "invalid")}
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(
        f"segexp: sweep {state.sweep_id}: {len(report.outcomes)} jobs: {line}; "
        f"parent run {state.parent_run_id}"
    )
    problems = [o for o in report.outcomes if o["status"] in ("failed", "invalid")]
    if problems:
        print("segexp: failed jobs:", file=sys.stderr)
        for o in problems:
            print(
                f"  #{o['job_num']} {o['run_name']}: {o['status']}: {o['message']}", file=sys.stderr
            )
