"""Range shorthand: ``k=3..8`` and ``k=2..10:2`` become Hydra list sweeps before Hydra reads
the command line (it would take ``3..8`` as a string); other arguments pass untouched."""

from __future__ import annotations

import re
from collections.abc import Sequence

from segexp.errors import RangeSyntaxError

_OVERRIDE = re.compile(r"^(?P<key>[+~]{0,2}[A-Za-z_][\w.@/-]*)=(?P<value>.*)$", re.S)
_RANGE = re.compile(r"^\s*(?P<start>[+-]?\d+)\.\.(?P<stop>[+-]?\d+)(?::(?P<step>\d+))?\s*$")


def _looks_like_range(item: str) -> bool:
    """A value element that holds ``..`` and no path separator is meant as a range."""
    return ".." in item and "/" not in item and "\\" not in item and item.strip() != ".."


def _bounds(match: re.Match[str]) -> tuple[int, int, int]:
    return int(match["start"]), int(match["stop"]), int(match["step"] or 1)


def _expand_item(key: str, item: str) -> list[str]:
    match = _RANGE.match(item)
    if match is None:
        raise RangeSyntaxError(
            f"bad range for '{key}': '{item}'; allowed: inclusive integer ranges A..B or "
            f"A..B:STEP (e.g. {key}=3..8 or {key}=2..10:2); for other values use Hydra "
            f"syntax ({key}=0.3,0.4 or {key}='range(0,10)')"
        )
    start, stop, step = _bounds(match)
    if step < 1:
        raise RangeSyntaxError(
            f"bad range for '{key}': '{item}'; STEP must be a positive integer, got {step}"
        )
    if stop < start:
        raise RangeSyntaxError(
            f"bad range for '{key}': '{item}' runs backwards; write the smaller bound first "
            f"({key}={stop}..{start})"
        )
    return [str(v) for v in range(start, stop + 1, step)]


def range_size(item: str) -> int:
    """How many values a range element (``3..8``, ``2..10:2``) stands for; 1 for any other."""
    match = _RANGE.match(item)
    if match is None or not _looks_like_range(item):
        return 1
    start, stop, step = _bounds(match)
    return max(1, (stop - start) // max(step, 1) + 1)


def expand_override(arg: str) -> str:
    """Expand every range element of one ``key=value`` argument; leave others alone."""
    match = _OVERRIDE.match(arg)
    if match is None or arg.startswith("-") or not _looks_like_range(match["value"]):
        return arg
    key, value = match["key"], match["value"]
    if any(ch in value for ch in "()[]{}'\""):
        return arg  # Hydra grammar (functions, lists, quoted strings): not ours to touch
    items: list[str] = []
    for element in value.split(","):
        items.extend(_expand_item(key, element) if _looks_like_range(element) else [element])
    return f"{key}={','.join(items)}"


def expand_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with range shorthand expanded; a range without ``-m`` is refused here (Hydra
    would answer in its own grammar's words)."""
    multirun = any(arg in ("-m", "--multirun") for arg in argv)
    expanded = []
    for arg in argv:
        new = expand_override(arg)
        key, _, value = new.partition("=")
        if new != arg and not multirun and "," in value:
            raise RangeSyntaxError(
                f"{arg}: a range runs one job per value, which is a sweep: add -m "
                f"(segexp -m {arg}); a single run takes one value ({key}={value.split(',')[0]})"
            )
        expanded.append(new)
    return expanded
