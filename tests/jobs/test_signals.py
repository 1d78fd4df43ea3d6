"""A stop signal ends the command with 128 + its number, whatever the code it interrupted did
with the stop (a library's clean-up error, Hydra's own exit 1 after reporting it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

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


_HYDRA_APP = """
import os, signal
import hydra
from segexp.jobs.signals import stop_signals

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)
    except SystemExit:  # a library's state half-built by the stop, as OmegaConf mid-merge
        raise RuntimeError("half-built node") from None

with stop_signals():
    app()
"""


def test_hydra_does_not_print_what_a_stop_broke(tmp_path):
    """A real @hydra.main app: Hydra would print the broken library's error with its
    'Set the environment variable HYDRA_FULL_ERROR=1' line and exit 1; the command ends
    stopped, silently."""
    script = tmp_path / "app.py"
    script.write_text(_HYDRA_APP)
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    done = subprocess.run(
        [sys.executable, str(script), "hydra.run.dir=.", "hydra.output_subdir=null"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "half-built node" not in done.stderr + done.stdout
    assert "HYDRA_FULL_ERROR" not in done.stderr + done.stdout
