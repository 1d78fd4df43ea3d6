"""``python -m segexp``: one segmentation run, or a sweep with ``-m``.

Range shorthand (``k=3..8``) is expanded before Hydra reads the command line;
everything else is Hydra: config groups, overrides, ``-m``, launchers.
Exit codes: 0 all jobs finished (or were skipped as duplicates), 1 a job
failed, 2 bad input or configuration.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from segexp import callbacks
from segexp.errors import EXIT_USER_ERROR, SegexpError
from segexp.ranges import expand_argv
from segexp.runner import describe_outcome, outcome_dict, run_segmentation
from segexp.sweep_state import current_sweep_state

log = logging.getLogger("segexp")
_SINGLE_RUN_OUTCOMES: list = []


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
def _task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        job_num = int(hydra_cfg.job.num)
        sweep = current_sweep_state(str(hydra_cfg.sweep.dir))
        outcome = run_segmentation(cfg, sweep=sweep, job_num=job_num)
        if sweep is not None:
            sweep.record_outcome(job_num, outcome_dict(outcome))
    else:
        outcome = run_segmentation(cfg)
        _SINGLE_RUN_OUTCOMES.append(outcome)
    line = describe_outcome(outcome)
    if outcome.status in ("failed", "invalid"):
        log.error(line)
    else:
        log.info(line)


def _exit_code(statuses: list[str]) -> int:
    if "failed" in statuses:
        return 1
    if "invalid" in statuses:
        return EXIT_USER_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        args = expand_argv(args)
    except SegexpError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.argv = [sys.argv[0], *args]
    _SINGLE_RUN_OUTCOMES.clear()
    callbacks.LAST_SWEEP = None
    try:
        _task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        ran_nothing = not _SINGLE_RUN_OUTCOMES and callbacks.LAST_SWEEP is None
        # Hydra exits 1 on a config it cannot compose (unknown group option, bad override).
        return EXIT_USER_ERROR if code == 1 and ran_nothing else code
    if callbacks.LAST_SWEEP is not None:
        return _exit_code([o["status"] for o in callbacks.LAST_SWEEP.outcomes])
    return _exit_code([o.status for o in _SINGLE_RUN_OUTCOMES])


if __name__ == "__main__":
    sys.exit(main())
