"""The Hydra application behind ``python -m segexp`` (imported after the writer starts)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from segexp import callbacks, writer
from segexp.errors import EXIT_USER_ERROR
from segexp.records import describe_outcome
from segexp.runner import DirectSink, WriterSink, run_segmentation
from segexp.sweep_state import current_sweep_state
from segexp.tracking import resolve_tracking_uri

log = logging.getLogger("segexp")
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
_single_run_outcomes: list[dict] = []


def _report(outcome: dict, single: bool = False) -> None:
    """One line per job; a single run's user error is the one-line ``segexp: error:``."""
    if outcome["status"] == "queued":
        return
    if single and outcome["status"] == "invalid":
        print(f"segexp: error: {outcome['message']}", file=sys.stderr)
    elif single and outcome["status"] == "failed":
        print(f"segexp: run failed: {describe_outcome(outcome)}", file=sys.stderr)
    else:
        line = describe_outcome(outcome)
        (log.error if outcome["status"] in ("failed", "invalid") else log.info)(line)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _task(cfg: DictConfig) -> None:
    try:
        _run_job(cfg)
    except writer.WriterGone:
        # Nothing more can be logged. SystemExit passes through Hydra (which would treat an
        # exception as one failed job and go on); run() prints why and exits 1.
        raise SystemExit(1) from None


def _run_job(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    client = writer.ACTIVE
    if hydra_cfg.mode == RunMode.MULTIRUN:
        job_num = int(hydra_cfg.job.num)
        sweep = current_sweep_state(str(hydra_cfg.sweep.dir))
        in_writer_mode = sweep is not None and sweep.parent_run_id is None and client is not None
        sink = WriterSink(client) if in_writer_mode else None
        outcome = run_segmentation(cfg, sweep=sweep, job_num=job_num, sink=sink).as_dict()
        if sweep is not None and outcome["status"] != "queued":
            sweep.record_outcome(job_num, outcome)
    else:
        if client is not None:
            client.send(
                "open", resolve_tracking_uri(cfg.mlflow.tracking_uri), cfg.mlflow.experiment
            )
            sink = WriterSink(client)
        else:
            sink = DirectSink(resolve_tracking_uri(cfg.mlflow.tracking_uri), cfg.mlflow.experiment)
        outcome = run_segmentation(cfg, sink=sink).as_dict()
        if outcome["status"] == "queued":  # the writer logs it and prints its line
            outcome = client.wait_for("outcome")[1]
            _single_run_outcomes.append(outcome)
            if outcome["status"] != "finished":
                _report(outcome, single=True)
            return
        _single_run_outcomes.append(outcome)
        _report(outcome, single=True)
        return
    _report(outcome)


def _exit_code(statuses: list[str]) -> int:
    if "failed" in statuses:
        return 1
    if "invalid" in statuses:
        return EXIT_USER_ERROR
    return 0


def run(args: list[str]) -> int:
    """Run Hydra on ``args``; return the process exit code."""
    sys.argv = [sys.argv[0], *args]
    _single_run_outcomes.clear()
    callbacks.LAST_SWEEP = None
    try:
        _task()
    except SystemExit as exc:
        if writer.failure():
            print(f"segexp: error: {writer.failure()}", file=sys.stderr)
            return 1
        code = exc.code if isinstance(exc.code, int) else 1
        ran_nothing = not _single_run_outcomes and callbacks.LAST_SWEEP is None
        # Hydra exits 1 on a config it cannot compose (unknown group option, bad override).
        return EXIT_USER_ERROR if code == 1 and ran_nothing else code
    if callbacks.LAST_SWEEP is not None:
        return _exit_code([o["status"] for o in callbacks.LAST_SWEEP.outcomes])
    return _exit_code([o["status"] for o in _single_run_outcomes])
