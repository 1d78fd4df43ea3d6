"""Customer tables: canonical column names (``data.aliases``), text ids, checks with one-line
errors, and a fingerprint of the data a run saw."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segexp.data.messages import (
    closest,
    column_label,
    examples,
    names_of,
    normalize_header,
    plain,
    row_numbers,
)
from segexp.data.read import as_text
from segexp.data.schema import AUTO, UNIQUE_IN_EVERY_ROW, Schema, derive_columns, infer_schema
from segexp.errors import ConfigError, DataError

__all__ = ["CustomerTable", "closest"]

# Numbers a distance can be computed with: beyond this, squares overflow float64.
LARGEST_VALUE = 1e150


@dataclass(frozen=True)
class CustomerTable:
    """A loaded table with canonical names; ``notes`` and ``tags``: what a run logs as metrics
    and tags (RFM rule counts, reference dates); ``file_rows``: each row's file row."""

    frame: pd.DataFrame
    source: str
    fingerprint: str
    id_column: str | None
    label_column: str | None
    notes: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    file_rows: np.ndarray | None = None
    schema: Schema | None = None
    headers: dict[str, str] = field(default_factory=dict)  # canonical name -> file header
    default_features: str | None = None  # the features option a plain run uses

    @property
    def numeric(self) -> list[str]:
        """The table's numeric columns (the schema's, else every numeric-typed one)."""
        if self.schema is not None:
            return self.schema.numeric
        skip = {self.id_column, self.label_column}  # select_dtypes' numbers leave out bools
        return [str(c) for c in self.frame.select_dtypes("number").columns if c not in skip]

    @property
    def categorical(self) -> list[str]:
        return self.schema.categorical if self.schema is not None else []

    def column_named(self, name: str) -> str:
        """The column a name means: the canonical name, or the file's own header."""
        if name in self.frame.columns:
            return name
        return {header: canonical for canonical, header in self.headers.items()}.get(name, name)


def _column_parts(values: pd.Series) -> list[Any]:
    """A column's values as buffers that depend only on the values and their kind (numbers by
    their bits, dates as nanoseconds, text as UTF-8 bytes and lengths), without copies."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return [b"date", values.astype("datetime64[ns]").to_numpy().view(np.int64)]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float if values.hasnans else None, na_value=np.nan)
        if numbers.dtype.kind == "f" and np.isnan(numbers).any():
            numbers = np.where(np.isnan(numbers), np.nan, numbers)  # one bit pattern for NaN
        return [numbers.dtype.str.encode(), np.ascontiguousarray(numbers)]
    text = pa.array(values.astype("str"), from_pandas=True, type=pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.null_count:
        text = pc.fill_null(text, "\x00")
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    body = memoryview(buffers[2])[first:last] if buffers[2] is not None else b""
    return [b"text", offsets - first if first else offsets, body]


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Short hash of a table's columns and values (order-sensitive): a CSV and a Parquet copy
    of a table agree."""
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    for column in frame.columns:
        for part in _column_parts(frame[column]):
            view = memoryview(part).cast("B")
            digest.update(len(view).to_bytes(8, "little"))
            digest.update(view)
    return digest.hexdigest()[:16]


def canonical_headers(
    columns: Sequence[str], aliases: Mapping[str, Sequence[str]], source: str = "data"
) -> dict[str, str]:
    """{file header: canonical name} for every header that is a variant of a canonical name."""
    lookup: dict[str, str] = {}
    for name, variants in aliases.items():
        for variant in [name, *(variants or [])]:
            lookup.setdefault(normalize_header(variant), name)
    renames: dict[str, str] = {}
    for column in columns:
        canonical = lookup.get(normalize_header(column))
        if canonical in renames.values():
            first = next(k for k, v in renames.items() if v == canonical)
            raise DataError(
                f"{source}: columns '{first}' and '{column}' both name '{canonical}' "
                "(see data.aliases); remove one of them or rename it in the file"
            )
        if canonical is not None:
            renames[str(column)] = canonical
    return renames


def require_columns(
    frame: pd.DataFrame, columns: Sequence[str], config_key: str, source: str
) -> None:
    """Every column a config key names exists, with the closest header suggested when not."""
    available = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"{source}: {config_key} names column '{column}', which the data does not have"
                f"{closest(column, available)}; columns: {', '.join(available)}; fix the name "
                f"or add the file's header for it to data.aliases.{column}"
            )


def _plain_numeric(values: pd.Series) -> pd.Series:
    """NumPy int64 when every value is a whole number, else float64 with NaN (no pd.NA)."""
    floats = values.to_numpy(dtype=float, na_value=np.nan)
    if not np.isnan(floats).any() and np.all(floats == np.round(floats)):
        return pd.Series(floats.astype(np.int64), index=values.index)
    return pd.Series(floats, index=values.index)


def to_numeric_columns(
    frame: pd.DataFrame,
    columns: Sequence[str],
    source: str,
    file_rows: np.ndarray | None,
    decimal: str = ".",
    headers: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Numeric columns from text; a non-number cell is an error naming the column and rows."""
    for column in columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            frame[column] = values.astype(float)
            continue
        if pd.api.types.is_numeric_dtype(values):
            if pd.api.types.is_extension_array_dtype(values):
                frame[column] = _plain_numeric(values)
            continue
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text.str.replace(decimal, ".", regex=False), errors="coerce")
        bad = numbers.isna() & text.notna()
        if bad.any():
            commas = text[bad].str.contains(r"^-?\d+,\d+$", regex=True).any()
            hint = "; the file uses decimal commas? set data.decimal=','" if commas else ""
            raise DataError(
                f"{source}: column {column_label(column, headers)} must be numeric but has text in "
                f"{row_numbers(bad, file_rows)} ({examples(text[bad])}); fix or blank those "
                f"cells{hint if decimal == '.' else ''}"
            )
        frame[column] = _plain_numeric(numbers)
    return frame


def parse_dates(
    values: pd.Series,
    column: str,
    source: str,
    file_rows: np.ndarray | None,
    date_format: str | None,
    dayfirst: bool,
    config_key: str = "data.date_format",
    headers: dict[str, str] | None = None,
) -> pd.Series:
    """Dates from text: the configured format, else ISO 8601, else the format pandas infers."""
    label = column_label(column, headers)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise DataError(  # pandas would read 20 as 1970-01-01 00:00:00.000000020
            f"{source}: column {label} is listed as dates but holds numbers "
            f"({examples(values.dropna())}); dates are text such as 2024-03-01: "
            "remove the column from data.dates"
        )
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif date_format:
        try:
            parsed = pd.to_datetime(values, errors="coerce", format=date_format, dayfirst=dayfirst)
        except ValueError as exc:  # the format itself: "'Q' is a bad directive in '%Q'"
            raise ConfigError(
                f"{config_key}: a strptime format such as '%d/%m/%Y %H:%M' or 'mixed'; got "
                f"{date_format!r} ({exc})"
            ) from None
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if parsed.isna().sum() > values.isna().sum():
            inferred = pd.to_datetime(values, errors="coerce", dayfirst=dayfirst)
            if inferred.isna().sum() < parsed.isna().sum():
                parsed = inferred
    blank = values.isna().to_numpy()
    if blank.any():
        raise DataError(
            f"{source}: column {label} is empty in {row_numbers(blank, file_rows)}; every row "
            "needs a date: fill those cells or remove the rows"
        )
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataError(
            f"{source}: column {label} has values that do not parse as dates in "
            f"{row_numbers(bad, file_rows)} ({examples(values[bad])}); use ISO dates "
            f"(2024-03-01 12:30) or set {config_key} (e.g. '%d/%m/%Y %H:%M', or 'mixed')"
        )
    return parsed


def check_ids(
    frame: pd.DataFrame,
    id_column: str,
    source: str,
    file_rows: np.ndarray | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Every customer has exactly one row and an id."""
    ids, label = frame[id_column], column_label(id_column, headers)
    blank = ids.isna().to_numpy()
    if blank.any():
        raise DataError(
            f"{source}: id column {label} is empty in {row_numbers(blank, file_rows)}; every "
            "customer needs an id: fill them, or set data.id_column=null to use row numbers"
        )
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    rows = file_rows if file_rows is not None else np.arange(2, len(ids) + 2)
    by_id = pd.Series(rows[repeated]).groupby(ids[repeated].to_numpy(), sort=False)
    groups = [
        f"'{value}' in rows {', '.join(str(int(r)) for r in found.iloc[:3])}"
        for value, found in list(by_id)[:3]
    ]
    n_ids = int(ids[repeated].nunique())
    more = f" (+{n_ids - len(groups)} more repeated ids)" if n_ids > len(groups) else ""
    raise DataError(
        f"{source}: duplicate customer ids in column {label}: {'; '.join(groups)}{more}; "
        "each customer must appear once: remove the repeated rows, or set data.id_column "
        "to a unique column (for a transaction log use data.kind=transactions)"
    )


def _check_numbers(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    non_negative: Sequence[str],
    source: str,
    file_rows: np.ndarray | None,
    headers: dict[str, str],
) -> None:
    """Numbers a scaler and a distance can square (|x| < 1e150); no negative value in the
    columns that cannot be negative (age, income, ...)."""
    for column in numeric:
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        huge = np.abs(np.nan_to_num(values, nan=0.0)) >= LARGEST_VALUE
        if huge.any():
            raise DataError(
                f"{source}: column {column_label(column, headers)} has values too large to "
                f"compute with (at least 1e150) in {row_numbers(huge, file_rows)} "
                f"({examples(pd.Series(values[huge][:3]))}); fix those cells, or blank them to "
                "treat them as missing"
            )
    for column in non_negative:
        negative = (frame[column] < 0).fillna(False).to_numpy()
        if negative.any():
            raise DataError(
                f"{source}: column {column_label(column, headers)} cannot be negative but is in "
                f"{row_numbers(negative, file_rows)} ({examples(frame[column][negative])}); "
                f"fix those cells, or remove '{column}' from data.non_negative if negatives "
                "are valid"
            )


_NAME_KEYS = ("id_column", "label_column")
_LIST_KEYS = ("numeric", "categorical", "dates", "non_negative")


def canonical_settings(data_cfg: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """The data config with column names given as file headers mapped to canonical names."""
    by_header = {header: canonical for canonical, header in headers.items()}
    settings = dict(data_cfg)
    for key in _NAME_KEYS:
        value = settings.get(key, AUTO)
        settings[key] = by_header.get(value, value) if isinstance(value, str) else value
    for key in _LIST_KEYS:
        value = settings.get(key, AUTO)
        if value is not None and not isinstance(value, str):
            settings[key] = [by_header.get(str(v), str(v)) for v in value]
    return settings


def non_negative_columns(settings: Mapping[str, Any], numeric: Sequence[str]) -> list[str]:
    """data.non_negative; auto: the numeric columns segexp knows by name (data.aliases)."""
    if settings.get("non_negative", AUTO) == AUTO:
        known = set((settings.get("aliases") or {}).keys())
        return [c for c in numeric if c in known]
    return names_of(settings.get("non_negative"))


def load_customer_table(
    frame: pd.DataFrame,
    data_cfg: Mapping[str, Any],
    source: str,
    file_rows: np.ndarray | None,
    headers: Mapping[str, str] | None = None,
    derive: bool = True,
) -> CustomerTable:
    """Roles from the schema, every check on the columns that have them, then the numbers
    dates and birth years give (``data.derive``; ``derive=False``: none)."""
    headers = dict(headers or {})
    settings = canonical_settings(data_cfg, headers)
    for key in (*_NAME_KEYS, *_LIST_KEYS):
        if settings.get(key) and settings[key] != AUTO:
            require_columns(frame, names_of(settings[key]), f"data.{key}", source)
    schema = infer_schema(frame, settings)
    id_column = schema.id_column
    if id_column:
        frame[id_column] = as_text(frame[id_column])
        if getattr(schema.role(id_column), "reason", "") != UNIQUE_IN_EVERY_ROW:  # else checked
            check_ids(frame, id_column, source, file_rows, headers)
    numeric = schema.numeric
    decimal = str(settings.get("decimal") or frame.attrs.get("decimal", "."))
    frame = to_numeric_columns(frame, numeric, source, file_rows, decimal, headers)
    _check_numbers(
        frame, numeric, non_negative_columns(settings, numeric), source, file_rows, headers
    )
    dayfirst = bool(settings.get("dayfirst", False))
    for role in (c for c in schema.columns if c.role == "date"):
        fmt, column = role.date_format or settings.get("date_format"), role.column
        frame[column] = parse_dates(
            frame[column], column, source, file_rows, fmt, dayfirst, headers=headers
        )
    reference = None
    if derive:
        listed = settings.get("numeric", AUTO) not in (None, AUTO)
        frame, schema, reference = derive_columns(frame, schema, settings.get("derive"), listed)
    default_features = settings.get("default_features")
    return CustomerTable(
        frame=frame,
        source=source,
        fingerprint=fingerprint_frame(frame),
        id_column=id_column,
        label_column=schema.label_column,
        file_rows=file_rows,
        schema=schema,
        headers=headers,
        default_features=str(default_features) if default_features else None,
        tags={"data.derive.reference_date": reference} if reference else {},
    )


def check_feature_columns(table: CustomerTable, columns: Sequence[str], config_key: str) -> None:
    """Every requested feature column exists and can be a feature."""
    frame, keys = table.frame, (table.id_column, table.label_column)
    available = ", ".join(str(c) for c in frame.columns if c not in keys)
    for column in columns:
        role = table.schema.role(column) if table.schema is not None else None
        if column not in frame.columns:
            found = closest(column, [c for c in frame.columns if c not in keys])
            problem = f"is not a column{found}; available: {available}"
        elif column in keys:
            kind = "id" if column == table.id_column else "known-segment label"
            problem = f"is the {kind} column; choose features among: {available}"
        elif role is not None and role.role == "excluded" and "text" in role.reason:
            problem = (
                f"is not a number or a category: the table's schema left it out ({role.reason}); "
                "write its numbers plainly (15000, not $15,000 or 15k) or choose other features "
                "(features=all_numeric or features.columns=[...])"
            )
        elif pd.api.types.is_datetime64_any_dtype(frame[column]):
            problem = (
                "holds dates; derive a number from it first (e.g. days since signup) or use "
                "data.kind=transactions"
            )
        else:
            continue
        raise DataError(f"{table.source}: feature '{column}' (from {config_key}) {problem}")


def validate_feature_table(
    table: CustomerTable, columns: Sequence[str], *, impute: str, config_key: str
) -> None:
    """All checks of the feature columns before any run exists: usable, not empty or constant,
    and (``impute=none``; its choices are the config check's) without blank cells."""
    check_feature_columns(table, columns, config_key)
    source = table.source
    for column in columns:
        values = table.frame[column].dropna()
        if values.empty:
            raise DataError(
                f"{source}: feature '{column}' is empty in every row; fill the column or "
                f"remove '{column}' from {config_key}"
            )
        if values.nunique() == 1 and len(table.frame) > 1:
            raise DataError(
                f"{source}: feature '{column}' is constant ({plain(values.iloc[0])!r} "
                f"in every filled row), so it cannot separate customers; remove it from "
                f"{config_key}"
            )
    if impute != "none":
        return
    missing = table.frame[list(columns)].isna()
    counts = missing.sum()
    if counts.any():
        where = "; ".join(
            f"'{c}' ({n} missing, {row_numbers(missing[c], table.file_rows, limit=3)})"
            for c, n in counts[counts > 0].items()
        )
        raise DataError(
            f"{source}: missing values in feature columns: {where}; fill the cells or set "
            "preprocess.impute to drop, median, mean, most_frequent or knn"
        )
