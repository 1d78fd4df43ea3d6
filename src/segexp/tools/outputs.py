"""Output files of the tools: checked before any work (one ConfigError naming the key), then
written to a temporary name and renamed, so readers see the old file or the whole new one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from segexp.errors import ConfigError

# The formats a table output takes from its name (the user's path decides, nothing else).
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ('a folder', ...), else None."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def check_suffix(path: Path, key: str, suffixes: Sequence[str]) -> str:
    """The suffix of ``path`` among ``suffixes`` (any case); ConfigError listing them."""
    name = path.name.lower()
    found = next((s for s in sorted(suffixes, key=len, reverse=True) if name.endswith(s)), "")
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
    """The output path, after refusing what would go wrong when it is written."""
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
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # missing folders come later
        folder = folder.parent
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


@contextmanager
def staged(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it when the block ends without error
    (write it in the format of ``path``, never of the temporary name ``….tmp``)."""
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
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # mkstemp's 0600 -> the usual file mode
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> Path:
    """``text`` into ``path``, replacing it in one step."""
    with staged(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path).expanduser()


def table_format(path: str | Path, key: str) -> str:
    """csv, tsv or parquet, from the user's file name; ConfigError for another suffix."""
    return TABLE_FORMATS[check_suffix(Path(path), key, list(TABLE_FORMATS))]
