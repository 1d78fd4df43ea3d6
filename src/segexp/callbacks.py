"""Hydra Callback that makes a multirun one MLflow parent run with the jobs under it.

on_multirun_start: checks the data once (a user mistake stops the sweep with
exit code 2 before anything is written), opens the parent run (through the
writer process when there is one) and writes the sweep state the jobs read.
on_multirun_end: collects every job's outcome, has the parent's leaderboard
and k plots logged, ends the parent, and prints the failures.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from segexp import writer
from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_KIND,
    TAG_PREFIX,
    TAG_SWEEP_ID,
)
from segexp.errors import EXIT_USER_ERROR, SegexpError
from segexp.sweep_state import ENV_VAR, SweepState
from segexp.tracking import resolve_tracking_uri

log = logging.getLogger("segexp")


@dataclass
class SweepReport:
    """The outcome of the last multirun in this process, for the summary and exit code."""

    sweep_id: str
    parent_run_id: str | None
    outcomes: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o["status"] == status)


LAST_SWEEP: SweepReport | None = None


def new_sweep_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _summary_options(config: DictConfig) -> dict[str, Any]:
    return {"dpi": int(config.plots.dpi)}


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.state: SweepState | None = None
        self.tracker = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except writer.WriterGone:
            raise SystemExit(1) from None  # Hydra only warns about a callback's exception

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._end(config)
        except writer.WriterGone:
            raise SystemExit(1) from None

    def _start(self, config: DictConfig) -> None:
        global LAST_SWEEP
        LAST_SWEEP = None
        from segexp.data import load_customers
        from segexp.runner import code_version

        try:
            # Only the data is checked here: swept groups may change features per job.
            table = load_customers(config.data)
        except SegexpError as exc:
            print(f"segexp: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
        sweep_id = new_sweep_id()
        parent_name = f"sweep-{sweep_id}"
        parent_tags = {
            TAG_KIND: "sweep",
            TAG_SWEEP_ID: sweep_id,
            TAG_PREFIX + "command": " ".join(sys.argv[1:]),
            TAG_DATA_FINGERPRINT: table.fingerprint,
            TAG_DATA_SOURCE: table.source,
            TAG_CODE_VERSION: code_version(),
        }
        state_dir = str(Path(str(config.hydra.sweep.dir)).resolve() / ".segexp")
        client = writer.ACTIVE
        if client is not None and _runs_in_this_process(config):
            client.send("open", tracking_uri, config.mlflow.experiment)
            client.send("parent", parent_name, parent_tags)
            self.state = SweepState(sweep_id=sweep_id, state_dir=state_dir)
        else:
            from segexp.tracking import Tracker

            self.tracker = Tracker(tracking_uri)
            try:
                experiment_id = self.tracker.experiment_id(config.mlflow.experiment)
            except SegexpError as exc:
                print(f"segexp: error: {exc}", file=sys.stderr)
                sys.exit(EXIT_USER_ERROR)
            parent_run_id = self.tracker.start_run(experiment_id, parent_name, parent_tags)
            self.state = SweepState(sweep_id, state_dir, tracking_uri, experiment_id, parent_run_id)
            log.info("sweep %s: parent run %s in %s", sweep_id, parent_run_id, tracking_uri)
        os.environ[ENV_VAR] = str(self.state.save())

    def _end(self, config: DictConfig) -> None:
        global LAST_SWEEP
        os.environ.pop(ENV_VAR, None)
        if self.state is None:
            return
        local = self.state.outcomes()  # jobs that ended without a run, or logged in-process
        if self.tracker is None:
            from segexp.runner import WriterSink

            client = writer.ACTIVE
            WriterSink.help_render(client)
            client.send("summarize", self.state.sweep_id, local, _summary_options(config))
            _, outcomes, parent_run_id = client.wait_for("summary")
            errors = client.take("error")
            if errors:
                print(f"segexp: error: {errors[0][1]}", file=sys.stderr)
        else:
            from segexp.sweep_summary import finish_sweep

            outcomes, parent_run_id = local, self.state.parent_run_id
            finish_sweep(
                self.tracker,
                self.state.experiment_id,
                parent_run_id,
                self.state.sweep_id,
                outcomes,
                _summary_options(config),
            )
        LAST_SWEEP = SweepReport(self.state.sweep_id, parent_run_id, outcomes)
        _print_summary(LAST_SWEEP)


def _runs_in_this_process(config: DictConfig) -> bool:
    target = str(config.hydra.launcher.get("_target_", ""))
    return target.endswith(("BasicLauncher", "SegexpLauncher"))


def _print_summary(report: SweepReport) -> None:
    counts = {s: report.count(s) for s in ("finished", "skipped", "failed", "invalid")}
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(
        f"segexp: sweep {report.sweep_id}: {len(report.outcomes)} jobs: {line}; "
        f"parent run {report.parent_run_id}"
    )
    for o in report.outcomes:
        if o["status"] == "skipped":
            print(f"segexp: #{o['job_num']} skipped: {o['message']}")
    problems = [o for o in report.outcomes if o["status"] in ("failed", "invalid")]
    if problems:
        print(f"segexp: {len(problems)} failed jobs:", file=sys.stderr)
        for o in problems:
            print(
                f"  #{o['job_num']} {o['run_name']}: {o['status']}: {o['message']}", file=sys.stderr
            )
