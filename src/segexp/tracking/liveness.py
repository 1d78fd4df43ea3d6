"""Is the process that opened a run still alive? Only this host's runs are judged; a pid counts
with its start time (pids are reused; Linux's /proc), and a zombie counts as gone."""

from __future__ import annotations

import os
import socket

from segexp.contract import TAG_PREFIX

# Who logs a run, for ending runs of gone processes: bookkeeping, not for people to read.
TAG_HOST = TAG_PREFIX + "internal.host"
TAG_PID = TAG_PREFIX + "internal.pid"
TAG_PID_START = TAG_PREFIX + "internal.pid_start"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name; []: no such process; None: no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return [] if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start(pid: int) -> str:
    """The process's start time as the system counts it ('' where it cannot be read)."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Host, pid and start time of this process (or ``pid``), as run tags."""
    pid = os.getpid() if pid is None else pid
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(pid), TAG_PID_START: process_start(pid)}


def is_alive(pid: int, start: str = "") -> bool:
    """The process ``pid`` exists, is no zombie and (when ``start`` is known) started then."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, owned by someone else
        pass
    except OSError:  # no such process
        return False
    fields = _stat_fields(pid)
    if fields is None:  # no /proc: os.kill is all there is
        return True
    started = not start or len(fields) <= 19 or fields[19] == start  # pids are reused
    return bool(fields) and fields[0] != "Z" and started


def is_gone(tags: dict[str, str]) -> bool:
    """The run's tags name a process of this host that no longer runs (False when unsure)."""
    pid = tags.get(TAG_PID, "")
    mine = tags.get(TAG_HOST) == socket.gethostname() and pid.isdigit()
    return mine and not is_alive(int(pid), tags.get(TAG_PID_START, ""))
