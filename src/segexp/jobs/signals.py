"""SIGINT and SIGTERM: the first stops the command where it is, as a SystemExit."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

STOPPED_ENV = "SEGEXP_STOPPED"  # the exit code of a stop signal this command received
HYDRA_FULL_ERROR = "HYDRA_FULL_ERROR"  # set: Hydra raises an error instead of printing it


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
        # Python drops an exception raised inside a GC callback: the next job boundary
        # raises it again (raise_if_stopped)
        os.environ[STOPPED_ENV] = str(128 + signum)
        # what the stop breaks (OmegaConf mid-merge while Hydra composes the next job) is
        # raised to the block's end, which ends the command stopped, not printed by Hydra
        os.environ[HYDRA_FULL_ERROR] = "1"
        raise SystemExit(128 + signum)

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, SystemExit) and os.environ.get(STOPPED_ENV):
            return  # lost in a GC callback: raised again at the job's end, nothing to print
        previous_hook(info)

    users_full_error = os.environ.get(HYDRA_FULL_ERROR)
    saved = {number: signal.signal(number, stop) for number in stops}
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    except (Exception, SystemExit) as exc:
        code = os.environ.get(STOPPED_ENV)
        # the stop broke a library's clean-up (an error in its finally block), which Hydra
        # may have reported and turned into its own exit: the command still ends stopped
        if code and not (isinstance(exc, SystemExit) and exc.code == int(code)):
            raise SystemExit(int(code)) from None
        raise
    finally:
        if os.environ.pop(STOPPED_ENV, None) and users_full_error is None:
            os.environ.pop(HYDRA_FULL_ERROR, None)
        sys.unraisablehook = previous_hook
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def raise_if_stopped() -> None:
    """Stop at a job's boundary if a stop signal's SystemExit was lost mid-job."""
    code = os.environ.get(STOPPED_ENV)
    if code:
        raise SystemExit(int(code))
