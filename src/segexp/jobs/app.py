"""The Hydra app behind ``segexp`` (``segexp.__main__`` runs it): the task and its signals.

This module stays light (Hydra, OmegaConf): the job's modules load inside the task,
once Hydra has composed a config, so ``--help`` and a usage error answer without
pandas, scikit-learn or MLflow. The configs are the package's own
(``pkg://segexp.conf``), with the user's ``conf/`` folder in front of them (see
``hydra_plugins.segexp_sweep.user_conf``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import hydra
from omegaconf import DictConfig

CONFIG_NAME = "config"
CONFIG_PATH = "pkg://segexp.conf"


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def task(cfg: DictConfig) -> float:
    """One job, logged; the objective a sweeper reads (``segexp.jobs.task.run_task``)."""
    # pandas, scikit-learn and MLflow (about 1.5 s here) load only now that Hydra has
    # composed a config: --help and usage errors never wait for them.
    from segexp.jobs.task import run_task

    return run_task(cfg)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """The first SIGINT/SIGTERM stops the command where it is (SystemExit 128 + signal);
    those that follow while it ends its runs are ignored, so the store is left tidy."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        for number in stops:
            signal.signal(number, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    saved = {number: signal.signal(number, stop) for number in stops}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
