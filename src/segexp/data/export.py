"""The one way segexp writes CSV: text cells a spreadsheet may run as formulas are escaped.

OWASP "CSV injection": a cell whose first character is ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return may run as a formula when the file is opened in a spreadsheet.
Every CSV segexp writes (the tools' outputs, the sweep's leaderboard, EDA and profile
tables) goes through ``write_table`` or ``csv_text``, which prefix such cells (header
and index included) with a single quote, as OWASP recommends. A plain number
(``-3.5``, ``+12``, ``-1e5``) is a number, not a formula, and is left alone.
``segexp-predict`` alone keeps the input's cells unchanged unless
``escape_formulas=true`` (it counts them in a warning instead).

Here, below the tools and the tracking layer, so that every writer can use it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
FORMULA_PREFIX = "'"
_SEPARATORS = {"csv": ",", "tsv": "\t"}
HEADER = "header"  # the key of header cells in formula counts


def is_formula(value: object) -> bool:
    """A text cell a spreadsheet may run as a formula (plain numbers are not)."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_FIRST)
        and PLAIN_NUMBER.fullmatch(value) is None
    )


def _formula_mask(values: pd.Series) -> pd.Series | None:
    """True for the formula-looking cells of a text column; None for other columns."""
    if isinstance(values.dtype, pd.StringDtype):  # vectorised (Arrow) for plain text
        starts = values.str.startswith(FORMULA_FIRST).fillna(False).astype(bool)
        if not starts.any():
            return None
        return starts & ~values.str.fullmatch(PLAIN_NUMBER.pattern).fillna(False).astype(bool)
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
        mask = values.astype(object).map(is_formula).astype(bool)
        return mask if mask.any() else None
    return None


def _escape_labels(labels: pd.Index) -> pd.Index:
    return labels.map(lambda v: FORMULA_PREFIX + v if is_formula(v) else v)


def formula_counts(frame: pd.DataFrame) -> dict[str, int]:
    """{column: formula-looking cells} of the columns that have any (header cells last)."""
    counts: dict[str, int] = {}
    for i, name in enumerate(frame.columns):
        mask = _formula_mask(frame.iloc[:, i])
        if mask is not None:
            counts[str(name)] = counts.get(str(name), 0) + int(mask.sum())
    header = sum(map(is_formula, frame.columns))
    if header:
        counts[HEADER] = counts.get(HEADER, 0) + header
    return counts


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ' before every formula-looking cell, header and index included."""
    escaped = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        mask = _formula_mask(column)
        if mask is not None:
            text = column.astype(object)
            escaped.isetitem(i, text.where(~mask, FORMULA_PREFIX + text.astype(str)))
    escaped.columns = _escape_labels(frame.columns)
    escaped.index = _escape_labels(frame.index)
    return escaped


def csv_text(frame: pd.DataFrame, *, sep: str = ",", index: bool = False) -> str:
    """The frame as CSV text, formula-looking cells escaped."""
    return escape_formulas(frame).to_csv(index=index, sep=sep)


def write_table(
    frame: pd.DataFrame | pa.Table,
    path: str | Path,
    fmt: str,
    *,
    escape: bool = True,
    index: bool = False,
) -> None:
    """``frame`` into ``path`` as ``fmt`` (csv, tsv, parquet: pass the user's format when
    ``path`` is a temporary name); CSV/TSV cells formula-escaped unless ``escape=False``.
    An Arrow table keeps its column types in Parquet."""
    if fmt == "parquet":
        if isinstance(frame, pa.Table):
            pq.write_table(frame, path)
        else:
            frame.to_parquet(path, index=index)
        return
    if isinstance(frame, pa.Table):
        frame = frame.to_pandas()
    if escape:
        frame = escape_formulas(frame)
    frame.to_csv(path, index=index, sep=_SEPARATORS[fmt])
