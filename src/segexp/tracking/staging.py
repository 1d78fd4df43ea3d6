"""Where segexp stages files (customer tables, run artifacts) before they reach MLflow.

Every staged folder lives under one root per user, ``<temp dir>/segexp-<uid>/``
(mode 0700), inside a folder of the process that made it:
``<root>/<pid>-<start time>/``, which holds a marker file (``.segexp-staging``)
written when segexp creates it. A process removes its own folder when it ends
normally (and each staged folder as soon as its run is logged); a process that
is killed (SIGKILL, a crash) leaves its folder behind, and the next segexp
command removes every marked folder whose process is gone (``sweep``). So a
crash never leaves customer data in the temp folder for longer than until the
next command, and a folder segexp did not make (``SEGEXP_STAGING_DIR`` may be a
folder of the user's, holding ``2023-sales/``) is never removed: no marker, no
removal, whatever its name.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from segexp.tracking.liveness import is_alive, process_start

ROOT_ENV = "SEGEXP_STAGING_DIR"  # another root (tests, a bigger disk)
MARKER = ".segexp-staging"  # in every folder segexp made: the only ones sweep removes
_PROCESS_FOLDER = re.compile(r"(\d+)-(\d+)")


def root() -> Path:
    """The user's staging root, created 0700 and refused when someone else owns it."""
    configured = os.environ.get(ROOT_ENV)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / f"segexp-{uid}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = base.lstat()
    if stat.S_ISLNK(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise OSError(f"{base}: the staging folder is not this user's own folder")
    return base


def _name(pid: int) -> str:
    return f"{pid}-{process_start(pid) or 0}"


def process_dir() -> Path:
    """This process's staging folder (created on first use, removed at exit)."""
    folder = _registered_folder(os.getpid())
    if not folder.is_dir():
        folder.mkdir(mode=0o700, exist_ok=True)
        _mark(folder)
    return folder


@functools.cache
def _registered_folder(pid: int) -> Path:
    """The folder of process ``pid`` (a forked child has its own), removed at its exit."""
    folder = root() / _name(pid)
    atexit.register(_remove, folder, pid)
    return folder


def mkdtemp(prefix: str) -> Path:
    """A new folder for one staged thing (a run's files, a DataFrame), in this process's folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=process_dir()))


def _mark(folder: Path) -> None:
    """Write the marker that makes ``folder`` segexp's; refuse a folder of someone else's."""
    marker = folder / MARKER
    if not marker.is_file():
        if any(folder.iterdir()):
            raise OSError(f"{folder}: exists and is not a segexp staging folder; move it away")
        marker.write_text(f"segexp staging folder of process {folder.name}; removed when it ends\n")


def _is_segexp_folder(entry: Path) -> bool:
    """A folder (not a link) named <pid>-<start> that holds segexp's marker file."""
    return (
        _PROCESS_FOLDER.fullmatch(entry.name) is not None
        and not entry.is_symlink()
        and entry.is_dir()
        and (entry / MARKER).is_file()
        and not (entry / MARKER).is_symlink()
    )


def _remove(folder: Path, pid: int) -> None:
    if os.getpid() == pid:  # not from a forked child that inherited the exit hook
        shutil.rmtree(folder, ignore_errors=True)


def sweep() -> list[Path]:
    """Remove segexp's folders (marked) of processes that are gone; any other folder under
    the root is left alone."""
    removed: list[Path] = []
    try:
        entries = list(root().iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _is_segexp_folder(entry):
            continue
        pid_text, _, start = entry.name.partition("-")
        if is_alive(int(pid_text), "" if start == "0" else start):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
