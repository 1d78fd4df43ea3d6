"""A forked copy of the writer process that draws queued runs' plots, newest first.

The writer logs runs oldest first and draws each run's plots just before
logging it; plots are most of its work. Right after its imports (mlflow,
matplotlib) and before it opens the store or starts any thread, the writer
forks this helper, which costs a few milliseconds instead of a second
process's imports. The main process writes each staged folder's path to the
helper's pipe as soon as a job is fitted; the helper draws the newest folder
nobody has claimed (records.render_staged's atomic marker), so the two meet
in the middle and both cores draw at the end of a sweep while the main
process, done fitting, just waits.

Only where fork is safe and cheap (Linux); elsewhere the main process helps
render at the end of a sweep instead (runner.WriterSink.help_render). Set
``SEGEXP_RENDER_HELPER=0`` to turn it off.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

ENV_SWITCH = "SEGEXP_RENDER_HELPER"


def wanted() -> bool:
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and os.environ.get(ENV_SWITCH, "1") != "0"
    )


class RenderHelper:
    """The writer's handle on its forked helper."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._exited = False

    @classmethod
    def fork(cls, folders_fd: int, close_in_child: tuple[int, ...]) -> RenderHelper | None:
        """Fork the helper reading folder paths from ``folders_fd``; None if fork fails."""
        try:
            pid = os.fork()
        except OSError:
            os.close(folders_fd)
            return None
        if pid == 0:  # the helper: never touches the writer's pipes or the store
            code = 0
            try:
                for fd in close_in_child:
                    os.close(fd)
                _detach_output()
                _draw_until_closed(folders_fd)
            except BaseException:  # noqa: BLE001 - the writer draws whatever is left
                code = 1
            finally:
                os._exit(code)
        os.close(folders_fd)
        return cls(pid)

    def alive(self) -> bool:
        if self._exited:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done = self.pid
        self._exited = done == self.pid
        return not self._exited


def _detach_output() -> None:
    """Point stdout/stderr at /dev/null, so that whoever reads the command's output sees
    its end when the writer and main process are done, not when this helper is. A
    drawing error reaches the user through the writer (records' error marker)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _draw_until_closed(fd: int) -> None:
    """Read folder paths (one per line); draw the newest unclaimed one whenever idle."""
    from segexp.records import render_staged

    pending: list[str] = []
    partial = b""
    while True:
        readable = select.select([fd], [], [], 0 if pending else None)[0]
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:  # the main process is done: the writer draws anything left
                return
            *lines, partial = (partial + chunk).split(b"\n")
            pending.extend(line.decode() for line in lines if line)
            continue
        folder = Path(pending.pop())
        if folder.exists():
            render_staged(folder)
