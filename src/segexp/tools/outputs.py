"""Output files of the tools (predict, report, compare): checked first, written whole.

``check_output(path, key, overwrite)`` runs before a tool does any work: an
existing file is refused unless ``overwrite=true``; a folder in its place, a
path through a file, or a folder segexp cannot write in is refused too. Each
refusal is one ``ConfigError`` line naming the key, the file and what to do
(exit 2). Missing folders are created only when the file is written, so a
command that fails leaves nothing behind.

``write_atomically(path, write)`` writes through a temporary file in the same
folder, then ``os.replace``: readers see the old file or the whole new one,
and a failure leaves no half-written file (the temporary file is removed).

``formula_cells`` / ``escape_formulas`` implement the spreadsheet guard of the
text outputs (OWASP "CSV injection"): a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return may run as a formula when the file is
opened in a spreadsheet. A cell that is a plain number (``-3.5``, ``+12``,
``-1e5``) is a number, not a formula, and is left alone. Escaping prefixes a
single quote, as OWASP recommends.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segexp.errors import ConfigError

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
FORMULA_PREFIX = "'"


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


def _existing_folder(folder: Path) -> Path:
    """The nearest existing folder on the way to ``folder`` (created later when missing)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_output(path: str | Path, key: str, overwrite: bool) -> Path:
    """The output path, after refusing what would go wrong when it is written."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"{key}={path}: is a folder; give a file name in it, e.g. {key}={path / 'out.csv'}"
        )
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{key}={path}: the file already exists; set overwrite=true to replace it, "
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it replaces ``path`` when the block ends
    without an error, and is removed otherwise (missing folders are created here)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
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


def _is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def formula_cells(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """True for the cells a spreadsheet may run as a formula (plain numbers excluded)."""
    starts = pc.match_substring_regex(column, FORMULA_START)
    if not pc.any(starts).as_py():  # the usual case: no cell to look at twice
        return pc.fill_null(starts, False)
    number = pc.match_substring_regex(column, PLAIN_NUMBER)
    return pc.fill_null(pc.and_(starts, pc.invert(number)), False)


def count_formulas(table: pa.Table) -> dict[str, int]:
    """{column: formula-looking cells} of the text columns that have any."""
    counts = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if _is_text(column):
            found = pc.sum(formula_cells(column)).as_py() or 0
            if found:
                counts[name] = int(found)
    return counts


def escape_formulas(table: pa.Table, columns: list[str]) -> pa.Table:
    """The table with a ' before every formula-looking cell of ``columns``."""
    for name in columns:
        i = table.column_names.index(name)
        column = table.column(i)
        escaped = pc.binary_join_element_wise(FORMULA_PREFIX, column, "")
        table = table.set_column(i, name, pc.if_else(formula_cells(column), escaped, column))
    return table


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
