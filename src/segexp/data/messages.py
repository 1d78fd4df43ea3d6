"""Wording shared by every data message: header matching, row lists, close names, examples."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

FIRST_ROWS_SHOWN = 5


def normalize_header(name: str) -> str:
    """Match headers ignoring case and punctuation: 'Annual Income (k$)' ~ 'annualincomek'."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def row_numbers(
    mask: pd.Series | np.ndarray,
    file_rows: np.ndarray | None = None,
    limit: int = FIRST_ROWS_SHOWN,
) -> str:
    """The first flagged rows: 'row 7' or 'rows 3, 7, 9 (+4 more)' (without ``file_rows``,
    counted as in a file whose header is row 1)."""
    positions = np.asarray(mask, dtype=bool).nonzero()[0]
    shown = positions[:limit]
    numbers = file_rows[shown] if file_rows is not None else shown + 2
    text = ", ".join(str(int(n)) for n in numbers)
    more = len(positions) - len(shown)
    word = "row" if len(positions) == 1 else "rows"
    return f"{word} {text} (+{more} more)" if more > 0 else f"{word} {text}"


def closest(name: str, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' when a close choice exists, else ''."""
    choices = [str(c) for c in choices]
    match = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    if not match:
        by_norm = {normalize_header(c): c for c in choices}
        found = difflib.get_close_matches(normalize_header(name), list(by_norm), n=1, cutoff=0.5)
        match = [by_norm[m] for m in found]
    return f" (did you mean '{match[0]}'?)" if match else ""


def plain(value: Any) -> Any:
    """A NumPy scalar as its Python value, so messages read 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value


def names_of(value: Any) -> list[str]:
    """A config value naming columns as a list: None -> [], one name -> [name]."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [str(value)]
    return [str(v) for v in value]


def column_label(column: str, headers: dict[str, str] | None = None) -> str:
    """``'annual_income' (file header 'Annual Income (k$)')``: the file's own header when it
    reads differently."""
    header = (headers or {}).get(column)
    if not header or normalize_header(header) == normalize_header(column):
        return f"'{column}'"
    return f"'{column}' (file header '{header}')"


def examples(values: pd.Series, limit: int = 3) -> str:
    """The first few values, quoted, for messages."""
    return ", ".join(repr(v) for v in values.head(limit).tolist())
