"""Staged files before they reach MLflow: one marked folder per process, removed at its exit or,
once it is gone, by the next command, which never removes a folder it did not mark."""

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
# <pid>-<start>, or .<pid>-<start>.new while it is being made (not yet renamed)
_PROCESS_FOLDER = re.compile(r"(?P<dot>\.)?(?P<pid>\d+)-(?P<start>\d+)(?(dot)\.new)")


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


def process_dir() -> Path:
    """This process's staging folder (created and marked on first use, removed at exit)."""
    folder = _registered_folder(os.getpid())
    if not folder.is_dir():
        new = folder.with_name(f".{folder.name}.new")  # marked before it takes its name
        new.mkdir(mode=0o700, exist_ok=True)
        note = f"segexp staging folder of process {folder.name}; removed when it ends\n"
        (new / MARKER).write_text(note)
        try:
            new.rename(folder)  # atomic: a killed command never leaves an unmarked folder
        except OSError:
            shutil.rmtree(new, ignore_errors=True)
            raise OSError(
                f"{folder}: exists and is not a segexp staging folder; move it away"
            ) from None
    return folder


@functools.cache
def _registered_folder(pid: int) -> Path:
    """The folder of process ``pid`` (a forked child has its own), removed at its exit."""
    folder = root() / f"{pid}-{process_start(pid) or 0}"
    atexit.register(_remove, folder, pid)
    return folder


def _remove(folder: Path, pid: int) -> None:
    if os.getpid() == pid:  # not from a forked child that inherited the exit hook
        shutil.rmtree(folder, ignore_errors=True)


def mkdtemp(prefix: str) -> Path:
    """A new folder for one staged thing (a run's files, a DataFrame), in this process's folder."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=process_dir()))


def _left_behind(entry: Path) -> bool:
    """A folder (not a link) named <pid>-<start>, marked as segexp's, whose process is gone."""
    match = _PROCESS_FOLDER.fullmatch(entry.name)
    marker = entry / MARKER
    if not match or entry.is_symlink() or not entry.is_dir() or marker.is_symlink():
        return False
    pid, start = match["pid"], match["start"]
    return marker.is_file() and not is_alive(int(pid), "" if start == "0" else start)


def sweep() -> list[Path]:
    """Remove the marked folders of processes that are gone; nothing else under the root."""
    try:
        gone = [entry for entry in root().iterdir() if _left_behind(entry)]
    except OSError:
        return []
    for entry in gone:
        shutil.rmtree(entry, ignore_errors=True)
    return gone
