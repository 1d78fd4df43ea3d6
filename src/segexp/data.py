"""Loading customer tables: files or the built-in sample, canonical column names.

The data config (``conf/data/*.yaml``) declares the path, the canonical id,
numeric and categorical columns, and header aliases. Loading maps whatever
header variant the file uses (``Genre``/``Gender``, ``Annual Income (k$)``,
snake_case ...) onto the canonical names, keeps ids as text (zero padding is
part of an id), and fingerprints the resulting table so every run records
exactly which data it saw.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segexp.errors import DataError
from segexp.sample import generate_mall_sample

SAMPLE_SOURCE = "built-in sample"
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_FIRST_ROWS_SHOWN = 5


@dataclass(frozen=True)
class CustomerTable:
    """A loaded customer table with canonical column names and its provenance."""

    frame: pd.DataFrame
    source: str
    fingerprint: str
    id_column: str | None
    label_column: str | None


def normalize_header(name: str) -> str:
    """Match headers ignoring case and punctuation: 'Annual Income (k$)' ~ 'annualincomek'."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Stable short hash of a table's columns and values (order-sensitive)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def row_numbers(mask: pd.Series, limit: int = _FIRST_ROWS_SHOWN) -> str:
    """File row numbers (header = row 1) of the first flagged rows, for messages."""
    positions = [int(i) + 2 for i in mask.to_numpy().nonzero()[0][:limit]]
    more = int(mask.sum()) - len(positions)
    text = ", ".join(map(str, positions))
    return f"{text} (+{more} more)" if more > 0 else text


def closest(name: str, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' when a close choice exists, else ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if not match:
        by_norm = {normalize_header(c): c for c in choices}
        match = difflib.get_close_matches(normalize_header(name), list(by_norm), n=1, cutoff=0.5)
        match = [by_norm[m] for m in match]
    return f" (did you mean '{match[0]}'?)" if match else ""


def _sniff_delimiter(path: Path, text_sample: str) -> str:
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    try:
        return csv.Sniffer().sniff(text_sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _read_text_table(path: Path, delimiter: str | None, encoding: str | None) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a header row and customer rows")
    encodings = (encoding,) if encoding else _ENCODINGS
    last_error: Exception | None = None
    for enc in encodings:
        try:
            text = raw.decode(enc)
        except (UnicodeDecodeError, LookupError) as exc:
            last_error = exc
            continue
        sep = delimiter or _sniff_delimiter(path, text[:20000])
        try:
            return pd.read_csv(
                path, sep=sep, encoding=enc, dtype=str, keep_default_na=False, na_values=[""]
            )
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file has no header row; expected column names") from exc
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: cannot parse as delimited text ({exc})") from exc
    raise DataError(
        f"{path}: cannot decode the file with encodings {', '.join(encodings)} ({last_error}); "
        "set data.encoding to the file's encoding"
    )


def read_table_file(
    path: str | Path, delimiter: str | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Read CSV/TSV/text or Parquet into a frame of strings (CSV) or typed columns (Parquet)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: file not found; set data.path to an existing CSV, TSV or Parquet")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; set data.path to a CSV, TSV or Parquet file")
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"{path}: cannot read as Parquet ({exc})") from exc
    return _read_text_table(path, delimiter, encoding)


def canonicalize_columns(frame: pd.DataFrame, aliases: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Rename header variants to canonical names; unknown columns are kept as they are."""
    lookup: dict[str, str] = {}
    for canonical, variants in aliases.items():
        for variant in [canonical, *variants]:
            lookup.setdefault(normalize_header(variant), canonical)
    renames: dict[str, str] = {}
    for column in frame.columns:
        canonical = lookup.get(normalize_header(column))
        if canonical is None:
            continue
        if canonical in renames.values():
            first = next(k for k, v in renames.items() if v == canonical)
            raise DataError(
                f"columns '{first}' and '{column}' both name '{canonical}'; keep one of them"
            )
        renames[column] = canonical
    return frame.rename(columns=renames)


def _to_numeric(frame: pd.DataFrame, columns: Sequence[str], source: str) -> pd.DataFrame:
    for column in columns:
        if column not in frame.columns or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        text = frame[column].astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna() & (text != "")
        if bad.any():
            examples = ", ".join(repr(v) for v in text[bad].head(3))
            raise DataError(
                f"{source}: column '{column}' must be numeric but has text in rows "
                f"{row_numbers(bad)} ({examples}); fix or remove those cells"
            )
        frame[column] = values
    return frame


def load_customers(data_cfg: Mapping[str, Any]) -> CustomerTable:
    """Load the configured customer table with canonical names and numeric types."""
    path = data_cfg.get("path")
    aliases = dict(data_cfg.get("aliases") or {})
    if path in (None, ""):
        sample_cfg = data_cfg.get("sample") or {}
        frame = generate_mall_sample(
            n_customers=int(sample_cfg.get("n_customers", 200)),
            seed=int(sample_cfg.get("seed", 7)),
        )
        source = SAMPLE_SOURCE
    else:
        source = str(Path(str(path)).expanduser())
        frame = read_table_file(path, data_cfg.get("delimiter"), data_cfg.get("encoding"))
        frame = canonicalize_columns(frame, aliases)
        if frame.empty:
            raise DataError(f"{source}: the file has a header but no customer rows")
    id_column = data_cfg.get("id_column")
    if id_column and id_column in frame.columns:
        frame[id_column] = frame[id_column].astype("string").str.strip().astype(object)
    numeric = list(data_cfg.get("numeric") or [])
    frame = _to_numeric(frame, numeric, source)
    label_column = data_cfg.get("label_column")
    if label_column not in frame.columns:
        label_column = None
    return CustomerTable(
        frame=frame,
        source=source,
        fingerprint=fingerprint_frame(frame),
        id_column=id_column if id_column in frame.columns else None,
        label_column=label_column,
    )


def check_feature_columns(table: CustomerTable, columns: Sequence[str], config_key: str) -> None:
    """Every requested feature column exists, with a did-you-mean suggestion when not."""
    available = [c for c in table.frame.columns if c not in {table.id_column, table.label_column}]
    for column in columns:
        if column not in table.frame.columns:
            raise DataError(
                f"{table.source}: feature '{column}' (from {config_key}) is not a column; "
                f"available: {', '.join(map(str, available))}{closest(column, available)}"
            )


def check_missing(frame: pd.DataFrame, columns: Sequence[str], source: str, impute: str) -> None:
    """With ``impute=none`` a blank feature cell is an error naming columns and counts."""
    counts = frame[list(columns)].isna().sum()
    counts = counts[counts > 0]
    if impute == "none" and len(counts):
        where = ", ".join(f"'{c}' ({n} missing)" for c, n in counts.items())
        raise DataError(
            f"{source}: missing values in feature columns {where}; set preprocess.impute to "
            "one of drop, median, mean, most_frequent, knn, or fill the cells"
        )


def validate_feature_table(
    table: CustomerTable, columns: Sequence[str], *, impute: str, config_key: str
) -> None:
    """All checks of the feature columns a run needs, before any run is created."""
    check_feature_columns(table, columns, config_key)
    check_missing(table.frame, columns, table.source, impute)
