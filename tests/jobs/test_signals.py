"""A stop signal ends the command with 128 + its number, whatever the code it interrupted did
with the stop (a library's clean-up error, Hydra's own exit 1 after reporting it)."""

from __future__ import annotations

import os
import signal

import pytest

from segexp.jobs.signals import STOPPED_ENV, stop_signals


def _stopped_then(follow_up: BaseException) -> BaseException:
    """SIGTERM inside the block; the interrupted code then raises ``follow_up`` instead."""
    with pytest.raises(SystemExit) as ended, stop_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # let the handler run here, not later
        except SystemExit:
            raise follow_up from None
    return ended.value


@pytest.mark.parametrize("follow_up", [SystemExit(1), RuntimeError("half-built node")])
def test_what_the_interrupted_code_raised_ends_as_the_stop(follow_up):
    assert _stopped_then(follow_up).code == 128 + signal.SIGTERM
    assert STOPPED_ENV not in os.environ
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_exit_without_a_stop_keeps_its_code():
    with pytest.raises(SystemExit) as ended, stop_signals():
        raise SystemExit(1)
    assert ended.value.code == 1
