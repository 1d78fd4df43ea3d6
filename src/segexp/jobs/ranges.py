"""Range shorthand: ``key=A..B`` and ``key=A..B:STEP`` become Hydra sweeps.

Hydra reads ``k=3..8`` as the string ``'3..8'``. segexp expands inclusive
integer ranges into Hydra's list sweep (``k=3,4,5,6,7,8``) before Hydra parses
the command line; every other argument passes through untouched so all Hydra
syntax (``k=range(3,9)``, ``k=3,5,7``, ``hydra/launcher=joblib``) still works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from segexp.errors import RangeSyntaxError

_OVERRIDE = re.compile(r"^(?P<key>[+~]{0,2}[A-Za-z_][\w.@/-]*)=(?P<value>.*)$", re.S)
_RANGE = re.compile(r"^\s*(?P<start>[+-]?\d+)\.\.(?P<stop>[+-]?\d+)(?::(?P<step>\d+))?\s*$")


def _looks_like_range(item: str) -> bool:
    """A value element that holds ``..`` and no path separator is meant as a range."""
    if ".." not in item or "/" in item or "\\" in item:
        return False
    return item.strip() != ".."


def _expand_item(key: str, item: str) -> list[str]:
    match = _RANGE.match(item)
    if match is None:
        raise RangeSyntaxError(
            f"bad range for '{key}': '{item}'; allowed: inclusive integer ranges A..B or "
            f"A..B:STEP (e.g. {key}=3..8 or {key}=2..10:2); for other values use Hydra "
            f"syntax ({key}=0.3,0.4 or {key}='range(0,10)')"
        )
    start, stop = int(match["start"]), int(match["stop"])
    step = int(match["step"]) if match["step"] is not None else 1
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
    start, stop = int(match["start"]), int(match["stop"])
    step = int(match["step"]) if match["step"] is not None else 1
    return max(1, (stop - start) // max(step, 1) + 1)


def expand_override(arg: str) -> str:
    """Expand every range element of one ``key=value`` argument; leave others alone."""
    match = _OVERRIDE.match(arg)
    if match is None or arg.startswith("-"):
        return arg
    key, value = match["key"], match["value"]
    if not _looks_like_range(value):
        return arg
    if any(ch in value for ch in "()[]{}'\""):
        return arg  # Hydra grammar (functions, lists, quoted strings): not ours to touch
    items: list[str] = []
    for element in value.split(","):
        items.extend(_expand_item(key, element) if _looks_like_range(element) else [element])
    return f"{key}={','.join(items)}"


def expand_argv(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` with range shorthand expanded into Hydra sweep syntax.

    A range without ``-m`` is refused here: Hydra would see several values for a run
    that takes one and answer with its own grammar's words."""
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
