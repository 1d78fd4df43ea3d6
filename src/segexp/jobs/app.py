"""The Hydra app behind ``segexp``: the task and its signals. Light (Hydra, OmegaConf):
``--help`` and usage errors answer before pandas, scikit-learn or MLflow load."""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import hydra
from omegaconf import DictConfig

CONFIG_NAME = "config"
CONFIG_PATH = "pkg://segexp.conf"


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def task(cfg: DictConfig) -> float:
    """One job, logged; the objective a sweeper reads."""
    # pandas, scikit-learn and MLflow (about 1.5 s) load once Hydra has composed a config
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
        if frame is not None and frame.f_code.co_filename == weakref.__file__:
            # Python drops what a weakref callback (a GC pass) raises: deliver it again after
            threading.Timer(0.05, _thread.interrupt_main, (signum,)).start()
            return
        for number in stops:
            signal.signal(number, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    saved = {number: signal.signal(number, stop) for number in stops}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
