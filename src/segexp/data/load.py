"""Loading customer tables: files or built-in samples, canonical names, checks with clear errors.

The data config (``conf/data/*.yaml``) declares what the file is (``kind``:
a customer table, or a transaction log turned into one row per customer by
:mod:`segexp.rfm`), where it is, how to read it (delimiter, encoding, quoting;
detected when not set) and what its columns mean: the canonical id, numeric,
categorical and date columns, and header aliases. Loading maps whatever header
variant the file uses (``Genre``/``Gender``, ``Annual Income (k$)``,
snake_case ...) onto the canonical names, keeps ids as text (zero padding is
part of an id), refuses data it cannot use with a one-line ``DataError``
(file, column, first rows, fix) and fingerprints the resulting table so every
run records exactly which data it saw.

Row numbers in messages are file rows with the header as row 1 (text files);
Parquet rows count from 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segexp.contract import IMPUTE_CHOICES
from segexp.data.messages import (
    closest,
    column_label,
    examples,
    names_of,
    normalize_header,
    plain,
    row_numbers,
)
from segexp.data.read import (
    DEFAULT_MISSING_VALUES,
    as_text,
    detect_delimiter,
    read_table_file,
)
from segexp.data.schema import (
    AUTO,
    UNIQUE_IN_EVERY_ROW,
    Schema,
    derive_columns,
    infer_schema,
)
from segexp.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_MISSING_VALUES",
    "CustomerTable",
    "as_text",
    "closest",
    "detect_delimiter",
    "normalize_header",
    "read_table_file",
    "row_numbers",
]


@dataclass(frozen=True)
class CustomerTable:
    """A loaded customer table with canonical column names and its provenance.

    ``file_rows`` maps each frame row to its row in the file (for messages);
    ``notes`` are counts a run logs as metrics (e.g. rows removed by the RFM
    rules), ``tags`` are text a run logs as tags (e.g. the RFM reference date).
    """

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
        skip = {self.id_column, self.label_column}
        return [
            str(c)
            for c in self.frame.columns
            if c not in skip
            and pd.api.types.is_numeric_dtype(self.frame[c])
            and not pd.api.types.is_bool_dtype(self.frame[c])
        ]

    @property
    def categorical(self) -> list[str]:
        """The table's categorical columns (codes included), per its schema."""
        return self.schema.categorical if self.schema is not None else []

    def column_named(self, name: str) -> str:
        """The table's column for a name given as the file's own header or the canonical name."""
        if name in self.frame.columns:
            return name
        by_header = {header: canonical for canonical, header in self.headers.items()}
        return by_header.get(name, name)


# --- small helpers shared by the checks -------------------------------------------------------


def _column_parts(values: pd.Series) -> list[Any]:
    """A column's values as buffers that depend only on the values and their kind: numbers
    by their float64/int64 bits, dates as nanoseconds, text by its UTF-8 bytes and lengths
    (buffers, not copies: hashing a million rows must not double the table's memory)."""
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
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[
        text.offset : text.offset + len(text) + 1
    ]
    data = text.buffers()[2]
    first, last = int(offsets[0]), int(offsets[-1])
    body = memoryview(data)[first:last] if data is not None else b""
    return [b"text", offsets - first if first else offsets, body]


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Stable short hash of a table's columns and values (order-sensitive).

    It depends on values, not on how they were stored: a CSV and a Parquet copy of a
    table agree (dates hash at one resolution, text whatever its pandas dtype).
    """
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    for column in frame.columns:
        for part in _column_parts(frame[column]):
            view = memoryview(part).cast("B")
            digest.update(len(view).to_bytes(8, "little"))
            digest.update(view)
    return digest.hexdigest()[:16]


def _cfg_list(data_cfg: Mapping[str, Any], key: str) -> list[str]:
    return names_of(data_cfg.get(key))


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
        if canonical is None:
            continue
        if canonical in renames.values():
            first = next(k for k, v in renames.items() if v == canonical)
            raise DataError(
                f"{source}: columns '{first}' and '{column}' both name '{canonical}' "
                "(see data.aliases); remove one of them or rename it in the file"
            )
        renames[str(column)] = canonical
    return renames


def canonicalize_columns(
    frame: pd.DataFrame, aliases: Mapping[str, Sequence[str]], source: str = "data"
) -> pd.DataFrame:
    """Rename header variants to canonical names; unknown columns are kept as they are."""
    return frame.rename(columns=canonical_headers(list(frame.columns), aliases, source))


# --- checks on the loaded table ---------------------------------------------------------------


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
        if pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype(float)
        if pd.api.types.is_numeric_dtype(frame[column]):
            if pd.api.types.is_extension_array_dtype(frame[column]):
                frame[column] = _plain_numeric(frame[column])
            continue
        text = frame[column].astype("string").str.strip()
        cleaned = text.str.replace(decimal, ".", regex=False) if decimal != "." else text
        values = pd.to_numeric(cleaned, errors="coerce")
        bad = values.isna() & text.notna()
        if bad.any():
            hint = (
                "; the file uses decimal commas? set data.decimal=','"
                if decimal == "." and text[bad].str.contains(r"^-?\d+,\d+$", regex=True).any()
                else ""
            )
            raise DataError(
                f"{source}: column {column_label(column, headers)} must be numeric but has text in "
                f"{row_numbers(bad, file_rows)} ({examples(text[bad])}); fix or blank those "
                f"cells{hint}"
            )
        frame[column] = _plain_numeric(values)
    return frame


def parse_dates(
    values: pd.Series,
    column: str,
    source: str,
    file_rows: np.ndarray | None,
    date_format: str | None,
    dayfirst: bool,
    config_key: str,
    headers: dict[str, str] | None = None,
) -> pd.Series:
    """Dates from text: the configured format, else ISO 8601, else the format pandas infers."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise DataError(  # pandas would read 20 as 1970-01-01 00:00:00.000000020
            f"{source}: column {column_label(column, headers)} is listed as dates but holds "
            f"numbers ({examples(values.dropna())}); dates are text such as 2024-03-01: "
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
            f"{source}: column {column_label(column, headers)} is empty in "
            f"{row_numbers(blank, file_rows)}; every row needs a date: fill those cells or "
            "remove the rows"
        )
    bad = parsed.isna().to_numpy()
    if bad.any():
        shown = values[bad]
        raise DataError(
            f"{source}: column {column_label(column, headers)} has values that do not parse "
            f"as dates in {row_numbers(bad, file_rows)} ({examples(shown)}); use ISO dates "
            f"(2024-03-01 12:30) or set {config_key} (e.g. '%d/%m/%Y %H:%M', or 'mixed')"
        )
    return parsed


def check_ids(
    frame: pd.DataFrame,
    id_column: str,
    source: str,
    file_rows: np.ndarray | None,
    headers: dict[str, str] | None = None,
):
    """Every customer has exactly one row and an id."""
    ids = frame[id_column]
    if ids.is_unique and not ids.hasnans:
        return
    blank = ids.isna().to_numpy()
    if blank.any():
        raise DataError(
            f"{source}: id column {column_label(id_column, headers)} is empty in "
            f"{row_numbers(blank, file_rows)}; "
            "every customer needs an id: fill them, or set data.id_column=null to use row numbers"
        )
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        groups = []
        for value, positions in list(
            pd.Series(np.arange(len(ids)))[repeated].groupby(ids[repeated].to_numpy(), sort=False)
        )[:3]:
            rows = ", ".join(
                str(int(file_rows[p] if file_rows is not None else p + 2)) for p in positions[:3]
            )
            groups.append(f"'{value}' in rows {rows}")
        n_ids = int(ids[repeated].nunique())
        more = f" (+{n_ids - len(groups)} more repeated ids)" if n_ids > len(groups) else ""
        raise DataError(
            f"{source}: duplicate customer ids in column {column_label(id_column, headers)}: "
            f"{'; '.join(groups)}{more}; "
            "each customer must appear once: remove the repeated rows, or set data.id_column "
            "to a unique column (for a transaction log use data.kind=transactions)"
        )


def check_non_negative(
    frame: pd.DataFrame,
    columns: Sequence[str],
    source: str,
    file_rows: np.ndarray | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Columns that cannot be negative (age, income, ...) have no negative values."""
    for column in columns:
        negative = (frame[column] < 0).fillna(False).to_numpy()
        if negative.any():
            raise DataError(
                f"{source}: column {column_label(column, headers)} cannot be negative but is in "
                f"{row_numbers(negative, file_rows)} ({examples(frame[column][negative])}); "
                f"fix those cells, or remove '{column}' from data.non_negative if negatives "
                "are valid"
            )


# --- loading ----------------------------------------------------------------------------------


# Numbers a distance can be computed with: beyond this, squares overflow float64.
LARGEST_VALUE = 1e150


def check_magnitude(
    frame: pd.DataFrame,
    columns: Sequence[str],
    source: str,
    file_rows: np.ndarray | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Numeric columns hold numbers a scaler and a distance can square (|x| < 1e150)."""
    for column in columns:
        if not pd.api.types.is_float_dtype(frame[column]):
            continue  # whole numbers (int64) are far below the limit
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)
        huge = np.abs(np.nan_to_num(values, nan=0.0)) >= LARGEST_VALUE
        if huge.any():
            shown = pd.Series(values[huge][:3])
            raise DataError(
                f"{source}: column {column_label(column, headers)} has values too large to "
                f"compute with (at least 1e150) in {row_numbers(huge, file_rows)} "
                f"({examples(shown)}); fix those cells, or blank them to treat them as missing"
            )


def _canonical_settings(data_cfg: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """The data config with column names given as file headers mapped to canonical names."""
    by_header = {header: canonical for canonical, header in headers.items()}

    def name(value: Any) -> Any:
        return by_header.get(value, value) if isinstance(value, str) else value

    settings = dict(data_cfg)
    for key in ("id_column", "label_column"):
        settings[key] = name(settings.get(key, AUTO))
    for key in ("numeric", "categorical", "dates", "non_negative"):
        value = settings.get(key, AUTO)
        if value is not None and not isinstance(value, str):
            settings[key] = [name(str(v)) for v in value]
    return settings


def _require_explicit(frame: pd.DataFrame, settings: Mapping[str, Any], source: str) -> None:
    for key in ("id_column", "label_column"):
        value = settings.get(key)
        if value and value != AUTO:
            require_columns(frame, [str(value)], f"data.{key}", source)
    for key in ("numeric", "categorical", "dates", "non_negative"):
        value = settings.get(key)
        if value != AUTO:
            require_columns(frame, _cfg_list(settings, key), f"data.{key}", source)


def _non_negative(settings: Mapping[str, Any], numeric: Sequence[str]) -> list[str]:
    """data.non_negative; auto: the numeric columns segexp knows by name (data.aliases)."""
    value = settings.get("non_negative", AUTO)
    if value == AUTO:
        known = set((settings.get("aliases") or {}).keys())
        return [c for c in numeric if c in known]
    return _cfg_list(settings, "non_negative")


def load_customer_table(
    frame: pd.DataFrame,
    data_cfg: Mapping[str, Any],
    source: str,
    file_rows: np.ndarray | None,
    headers: Mapping[str, str] | None = None,
    derive: bool = True,
) -> CustomerTable:
    """Roles from the schema, then every check on the columns that have them; then the
    numbers dates and birth years give (``data.derive``; ``derive=False``: none)."""
    headers = dict(headers or {})
    settings = _canonical_settings(data_cfg, headers)
    _require_explicit(frame, settings, source)
    schema = infer_schema(frame, settings)
    id_column = schema.id_column
    if id_column:
        frame[id_column] = as_text(frame[id_column])
        role = schema.role(id_column)
        if role is None or role.reason != UNIQUE_IN_EVERY_ROW:  # inference checked it already
            check_ids(frame, id_column, source, file_rows, headers)
    numeric = schema.numeric
    decimal = str(settings.get("decimal") or frame.attrs.get("decimal", "."))
    frame = to_numeric_columns(frame, numeric, source, file_rows, decimal, headers)
    check_magnitude(frame, numeric, source, file_rows, headers)
    non_negative = _non_negative(settings, numeric)
    check_non_negative(frame, non_negative, source, file_rows, headers)
    for column in schema.dates:
        role = schema.role(column)
        frame[column] = parse_dates(
            frame[column],
            column,
            source,
            file_rows,
            (role.date_format if role and role.date_format else None)
            or settings.get("date_format"),
            bool(settings.get("dayfirst", False)),
            "data.date_format",
            headers,
        )
    frame, schema, reference = (
        derive_columns(frame, schema, settings.get("derive"), _explicit_list(settings, "numeric"))
        if derive
        else (frame, schema, None)
    )
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


def _explicit_list(settings: Mapping[str, Any], key: str) -> bool:
    value = settings.get(key, AUTO)
    return value is not None and value != AUTO


# --- checks of the feature columns a run uses -------------------------------------------------


def check_feature_columns(table: CustomerTable, columns: Sequence[str], config_key: str) -> None:
    """Every requested feature column exists and can be a feature."""
    frame = table.frame
    available = [c for c in frame.columns if c not in {table.id_column, table.label_column}]
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                f"{table.source}: feature '{column}' (from {config_key}) is not a column"
                f"{closest(column, available)}; available: {', '.join(map(str, available))}"
            )
        if column in (table.id_column, table.label_column):
            role = "id" if column == table.id_column else "known-segment label"
            raise DataError(
                f"{table.source}: feature '{column}' (from {config_key}) is the {role} column; "
                f"choose features among: {', '.join(map(str, available))}"
            )
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            raise DataError(
                f"{table.source}: feature '{column}' (from {config_key}) holds dates; derive a "
                "number from it first (e.g. days since signup) or use data.kind=transactions"
            )


def check_empty_and_constant(table: CustomerTable, columns: Sequence[str], config_key: str):
    """A feature that is blank everywhere or has one value cannot separate customers."""
    for column in columns:
        values = table.frame[column].dropna()
        if values.empty:
            raise DataError(
                f"{table.source}: feature '{column}' is empty in every row; fill the column or "
                f"remove '{column}' from {config_key}"
            )
        if values.nunique() == 1 and len(table.frame) > 1:
            raise DataError(
                f"{table.source}: feature '{column}' is constant ({plain(values.iloc[0])!r} "
                f"in every filled row), so it cannot separate customers; remove it from "
                f"{config_key}"
            )


def check_missing(
    frame: pd.DataFrame,
    columns: Sequence[str],
    source: str,
    impute: str,
    file_rows: np.ndarray | None = None,
) -> None:
    """With ``impute=none`` a blank feature cell is an error naming columns, counts and rows."""
    if impute not in IMPUTE_CHOICES:
        raise ConfigError(
            f"preprocess.impute: allowed values are {', '.join(IMPUTE_CHOICES)}; got '{impute}'"
        )
    if impute != "none":
        return
    missing = frame[list(columns)].isna()
    counts = missing.sum()
    counts = counts[counts > 0]
    if len(counts):
        where = "; ".join(
            f"'{c}' ({n} missing, {row_numbers(missing[c], file_rows, limit=3)})"
            for c, n in counts.items()
        )
        raise DataError(
            f"{source}: missing values in feature columns: {where}; fill the cells or set "
            "preprocess.impute to drop, median, mean, most_frequent or knn"
        )


def validate_feature_table(
    table: CustomerTable, columns: Sequence[str], *, impute: str, config_key: str
) -> None:
    """All checks of the feature columns a run needs, before any run is created."""
    check_feature_columns(table, columns, config_key)
    check_empty_and_constant(table, columns, config_key)
    check_missing(table.frame, columns, table.source, impute, table.file_rows)
