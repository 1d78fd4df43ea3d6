"""The one way segexp writes CSV: text cells a spreadsheet may run as formulas are escaped.

A cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'`` (OWASP "CSV
injection"), header and index included; plain numbers (``-3.5``, ``+12``) are left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
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
        text = values.astype(object)
        # a vectorised first look; only cells that start like a formula are checked one by one
        starts = text.astype("string").str.startswith(FORMULA_FIRST).fillna(False).to_numpy(bool)
        if not starts.any():
            return None
        mask = np.zeros(len(text), dtype=bool)
        mask[starts] = [is_formula(v) for v in text.to_numpy()[starts]]
        return pd.Series(mask, index=values.index) if mask.any() else None
    return None


def formula_counts(frame: pd.DataFrame) -> dict[str, int]:
    """{column: formula-looking cells} of the columns that have any (header cells last)."""
    counts: dict[str, int] = {}
    for i, name in enumerate(frame.columns):
        mask = _formula_mask(frame.iloc[:, i])
        if mask is not None and mask.any():  # text such as '-5' starts like one, is a number
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
    for axis in ("columns", "index"):
        labels = getattr(frame, axis)
        if not pd.api.types.is_numeric_dtype(labels):  # row positions hold no formula
            escaped = escaped.set_axis(
                labels.map(lambda v: FORMULA_PREFIX + v if is_formula(v) else v), axis=axis
            )
    return escaped


def unescape_formulas(values: pd.Series) -> pd.Series:
    """A text column as it was before ``escape_formulas`` (segexp reading its own CSV back)."""
    if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
        return values
    text = values.astype(object)
    escaped = text.map(
        lambda v: isinstance(v, str) and v[:1] == FORMULA_PREFIX and is_formula(v[1:])
    )
    return text.where(~escaped.astype(bool), text.str[1:]) if escaped.any() else values


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
    """``frame`` into ``path`` as ``fmt`` (csv, tsv, parquet: ``path`` may be a temporary
    name); CSV/TSV cells formula-escaped unless ``escape=False``."""
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
