"""Output files of the tools (predict, report, compare, sample): checked first, written whole.

``check_output(path, key, overwrite, suffixes)`` runs before a tool does any work: a
name whose suffix the tool cannot write is refused (the format comes from the user's
path, never from a temporary name); a path that is not a regular file (a folder, a
symbolic link such as ``/dev/stdout``, a device such as ``/dev/null``, a named pipe, a
socket) is refused even with ``overwrite=true``, because replacing it would swap it for
a regular file; an existing file is refused unless ``overwrite=true``; a path through a
file, or a folder segexp cannot write in, is refused too. Each refusal is one
``ConfigError`` line naming the key, the file and what to do (exit 2). Missing folders
are created only when the file is written, so a command that fails leaves nothing
behind.

``staged(path)`` / ``write_atomically(path, write)`` write through a temporary file in
the same folder, then ``os.replace``: readers see the old file or the whole new one,
and a failure leaves no half-written file. The replace checks again that it replaces
a regular file only.

Tables are written with ``segexp.data.export.write_table`` in the format of the
user's name (``table_format``), CSV cells formula-escaped there.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from segexp.data.export import FORMULA_PREFIX
from segexp.errors import ConfigError

# The formats a table output takes from its name (the user's path decides, nothing else).
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def flag(cfg: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A true/false option; ConfigError naming the key for anything else."""
    value = cfg.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{key}: allowed values are true or false; got {value!r}")


# --- where an output may go -------------------------------------------------------------------


def _existing_folder(folder: Path) -> Path:
    """The nearest existing folder on the way to ``folder`` (created later when missing)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ('a folder', 'a symbolic
    link', ...); None for a regular file or nothing at all."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def suffix_of(path: Path, suffixes: Sequence[str]) -> str:
    """The suffix of ``path`` among ``suffixes`` (case-insensitive); '' when none."""
    name = path.name.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if name.endswith(s)), "")


def check_suffix(path: Path, key: str, suffixes: Sequence[str]) -> str:
    """The suffix of ``path`` when the tool writes it; ConfigError listing the others."""
    found = suffix_of(path, suffixes)
    if not found:
        raise ConfigError(
            f"{key}={path}: unsupported file type ({path.suffix or 'no suffix'}); the format "
            f"follows the file name, allowed: {', '.join(suffixes)}"
        )
    return found


def check_output(
    path: str | Path,
    key: str,
    overwrite: bool,
    suffixes: Sequence[str] | None = None,
    overwrite_key: str = "overwrite=true",
) -> Path:
    """The output path, after refusing what would go wrong when it is written
    (``suffixes``: the ones the tool writes; ``overwrite_key``: how the user says replace)."""
    path = Path(path).expanduser()
    what = not_a_regular_file(path)
    if what == "a folder":
        raise ConfigError(
            f"{key}={path}: is a folder; give a file name in it, e.g. {key}={path / 'out.csv'}"
        )
    if what is not None:
        raise ConfigError(
            f"{key}={path}: is {what}, not a regular file; segexp replaces only regular "
            f"files ({overwrite_key} too); choose a file path"
        )
    if suffixes is not None:
        check_suffix(path, key, suffixes)
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{key}={path}: the file already exists; set {overwrite_key} to replace it, "
            "or choose another path"
        )
    folder = _existing_folder(path.parent)
    if not folder.is_dir():
        raise ConfigError(
            f"{key}={path}: {folder} is a file, not a folder; choose a path in a folder"
        )
    try:  # the only sure test of write access (root, read-only mounts, ACLs)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".segexp-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{key}={path}: cannot write in {folder} ({exc.strerror or exc}); "
            "choose a writable folder"
        ) from exc
    return path


# --- writing whole ----------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it replaces ``path`` when the block ends
    without an error, and is removed otherwise (missing folders are created here).

    Write it in the format of ``path``, never of the temporary name (``….tmp``)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        what = not_a_regular_file(path)  # it may have appeared since check_output
        if what is not None:
            raise ConfigError(
                f"{path}: is {what}, not a regular file; segexp replaces only regular files"
            )
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 -> the usual file mode
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary path)``, then the temporary file replaces ``path`` in one step."""
    with staged(path) as temporary:
        write(temporary)
    return Path(path).expanduser()


def write_text_atomically(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    def write(temporary: Path) -> None:
        temporary.write_text(text, encoding=encoding)

    return write_atomically(path, write)


def table_format(path: str | Path, key: str) -> str:
    """csv, tsv or parquet, from the user's file name; ConfigError for another suffix."""
    return TABLE_FORMATS[check_suffix(Path(path), key, list(TABLE_FORMATS))]


def formula_line(counts: Mapping[str, int], files: str, escaped: bool) -> str:
    """The one stderr line about formula-looking cells ('' when there are none)."""
    if not counts:
        return ""
    total = sum(counts.values())
    columns = ", ".join(f"{name} ({n})" for name, n in counts.items())
    cells = "cell" if total == 1 else "cells"
    if escaped:
        return (
            f"segexp: note: escaped {total} formula-looking {cells} in {files} with a leading "
            f"{FORMULA_PREFIX} (columns: {columns})"
        )
    return (
        f"segexp: warning: {total} {cells} in {files} start with =, +, -, @, tab or CR and may "
        f"run as formulas when opened in a spreadsheet (columns: {columns}); set "
        "escape_formulas=true to prefix them with '"
    )
