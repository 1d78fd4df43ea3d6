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

import csv
import difflib
import gzip
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segexp.contract import IMPUTE_CHOICES
from segexp.errors import ConfigError, DataError

DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A")
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
_FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")
_FIRST_ROWS_SHOWN = 5
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_TAB_SUFFIXES = {".tsv", ".tab"}


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


# --- small helpers shared by the checks -------------------------------------------------------


def normalize_header(name: str) -> str:
    """Match headers ignoring case and punctuation: 'Annual Income (k$)' ~ 'annualincomek'."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Stable short hash of a table's columns and values (order-sensitive)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def row_numbers(
    mask: pd.Series | np.ndarray,
    file_rows: np.ndarray | None = None,
    limit: int = _FIRST_ROWS_SHOWN,
) -> str:
    """The first flagged rows, for messages: 'row 7' or 'rows 3, 7, 9 (+4 more)'.

    Without ``file_rows`` the rows are counted as in a file whose header is row 1.
    """
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


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _examples(values: pd.Series, limit: int = 3) -> str:
    return ", ".join(repr(v) for v in values.head(limit).tolist())


def _cfg_list(data_cfg: Mapping[str, Any], key: str) -> list[str]:
    value = data_cfg.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# --- reading files ----------------------------------------------------------------------------


def detect_delimiter(text: str, quotechar: str = '"') -> str:
    """The candidate delimiter that splits the first lines into the most consistent columns."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", (0.0, 0)
    for delimiter in _CANDIDATE_DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter, quotechar=quotechar)]
        if not widths or widths[0] < 2:
            continue
        score = (sum(w == widths[0] for w in widths) / len(widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if "\x00" in sample:
        return True
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\f")
    return control > 0.05 * max(len(sample), 1)


def decode_bytes(raw: bytes, path: Path, encoding: str | None) -> str:
    """Text of a file: the configured encoding, else its BOM, else utf-8, cp1252, latin-1."""
    if raw[:4] == b"PK\x03\x04":
        raise DataError(
            f"{path}: unreadable as text: this is a zip archive (an Excel .xlsx workbook?); "
            "save it as CSV (UTF-8) or Parquet and set data.path to that file"
        )
    if encoding:
        try:
            text = raw.decode(encoding)
        except LookupError as exc:
            raise ConfigError(
                f"data.encoding: unknown encoding '{encoding}'; use e.g. utf-8, cp1252, "
                "latin-1, utf-16"
            ) from exc
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: unreadable encoding: byte {exc.start} is not valid {encoding} "
                f"({exc.reason}); set data.encoding to the file's encoding (e.g. cp1252, "
                "latin-1, utf-16) or re-save the file as UTF-8"
            ) from exc
    elif raw.startswith(b"\xef\xbb\xbf"):
        text = raw.decode("utf-8-sig", errors="replace")
    elif raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = raw.decode("utf-16", errors="replace")
    else:
        for candidate in _FALLBACK_ENCODINGS:
            try:
                text = raw.decode(candidate)
                break
            except UnicodeDecodeError:
                continue
    text = text.lstrip("\ufeff")
    if _looks_binary(text):
        tried = encoding or "utf-8, cp1252, latin-1"
        raise DataError(
            f"{path}: unreadable encoding: the content is not text in {tried} (binary "
            "bytes found); set data.encoding to the file's encoding (e.g. utf-16) or export "
            "the data as CSV (UTF-8) or Parquet"
        )
    return text


def _file_format(path: Path, configured: str | None) -> str:
    if configured:
        fmt = str(configured).lower()
        if fmt not in ("csv", "tsv", "parquet"):
            raise ConfigError(f"data.format: allowed values are csv, tsv, parquet; got '{fmt}'")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _PARQUET_SUFFIXES:
        return "parquet"
    return "tsv" if last in _TAB_SUFFIXES else "csv"


def as_text(values: pd.Series, missing_values: Sequence[str] = ("",)) -> pd.Series:
    """Stripped text as an object column with NaN for missing cells (what scikit-learn expects)."""
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(set(missing_values) | {""})).astype(object)
    return text.where(text.notna(), np.nan)


def _clean_text_cells(frame: pd.DataFrame, missing_values: Sequence[str]) -> pd.DataFrame:
    """Strip text cells; declared missing markers and blank cells become NaN."""
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(
            frame[column]
        ):
            frame[column] = as_text(frame[column], missing_values)
    return frame


def _read_text(
    path: Path,
    fmt: str,
    data_cfg: Mapping[str, Any],
) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read the file ({exc}); check the file and its access rights"
        ) from exc
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a header row and one row per record")
    text = decode_bytes(raw, path, data_cfg.get("encoding"))
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected a header row and one row per record")
    quotechar = str(data_cfg.get("quotechar") or '"')
    delimiter = data_cfg.get("delimiter")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if not delimiter:
        delimiter = "\t" if fmt == "tsv" else detect_delimiter(text, quotechar)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=str(delimiter),
            quotechar=quotechar,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file has no header row; expected column names") from exc
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split()).removeprefix("Error tokenizing data. C error: ")
        raise DataError(
            f"{path}: cannot parse as delimited text with delimiter {delimiter!r}: {detail}; "
            "check data.delimiter and data.quotechar, or quote fields that contain the delimiter"
        ) from exc
    repeated = [c for c in frame.columns if re.fullmatch(r"(.+)\.\d+", str(c))]
    repeated = [c for c in repeated if str(c).rsplit(".", 1)[0] in frame.columns]
    if repeated:
        name = str(repeated[0]).rsplit(".", 1)[0]
        raise DataError(
            f"{path}: the header names column '{name}' more than once; give every column its "
            "own name"
        )
    frame = _clean_text_cells(frame, _cfg_list(data_cfg, "missing_values") or [""])
    frame.index = np.arange(2, len(frame) + 2)  # file rows; the header is row 1
    return frame[frame.notna().any(axis=1)]


def read_table_file(path: str | Path, data_cfg: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read CSV/TSV (any common delimiter/encoding) or Parquet; the index holds file rows."""
    data_cfg = dict(data_cfg or {})
    data_cfg.setdefault("missing_values", list(DEFAULT_MISSING_VALUES))
    path = Path(path).expanduser()
    if not path.exists():
        near = (
            closest(path.name, [p.name for p in path.parent.glob("*")])
            if path.parent.is_dir()
            else ""
        )
        raise DataError(
            f"{path}: file not found{near}; set data.path to an existing CSV, TSV or Parquet file"
        )
    if path.is_dir():
        raise DataError(f"{path}: is a folder; set data.path to a CSV, TSV or Parquet file")
    fmt = _file_format(path, data_cfg.get("format"))
    if fmt != "parquet":
        return _read_text(path, fmt, data_cfg)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a Parquet table")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        detail = " ".join(str(exc).split())
        raise DataError(
            f"{path}: cannot read as Parquet ({detail}); check the file or set data.format=csv"
        ) from exc
    frame = _clean_text_cells(frame, data_cfg["missing_values"])
    frame.index = np.arange(1, len(frame) + 1)
    return frame


def canonicalize_columns(
    frame: pd.DataFrame, aliases: Mapping[str, Sequence[str]], source: str = "data"
) -> pd.DataFrame:
    """Rename header variants to canonical names; unknown columns are kept as they are."""
    lookup: dict[str, str] = {}
    for name, variants in aliases.items():
        for variant in [name, *(variants or [])]:
            lookup.setdefault(normalize_header(variant), name)
    renames: dict[str, str] = {}
    for column in frame.columns:
        canonical = lookup.get(normalize_header(column))
        if canonical is None:
            continue
        if canonical in renames.values():
            first = next(k for k, v in renames.items() if v == canonical)
            raise DataError(
                f"{source}: columns '{first}' and '{column}' both name '{canonical}' "
                "(see data.aliases); remove one of them or rename it in the file"
            )
        renames[column] = canonical
    return frame.rename(columns=renames)


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
                f"{source}: column '{column}' must be numeric but has text in "
                f"{row_numbers(bad, file_rows)} ({_examples(text[bad])}); fix or blank those "
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
) -> pd.Series:
    """Dates from text: the configured format, else ISO 8601, else the format pandas infers."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif date_format:
        parsed = pd.to_datetime(values, errors="coerce", format=date_format, dayfirst=dayfirst)
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if parsed.isna().sum() > values.isna().sum():
            inferred = pd.to_datetime(values, errors="coerce", dayfirst=dayfirst)
            if inferred.isna().sum() < parsed.isna().sum():
                parsed = inferred
    blank = values.isna().to_numpy()
    if blank.any():
        raise DataError(
            f"{source}: column '{column}' is empty in {row_numbers(blank, file_rows)}; "
            "every row needs a date: fill those cells or remove the rows"
        )
    bad = parsed.isna().to_numpy()
    if bad.any():
        shown = values[bad]
        raise DataError(
            f"{source}: column '{column}' has values that do not parse as dates in "
            f"{row_numbers(bad, file_rows)} ({_examples(shown)}); use ISO dates "
            f"(2024-03-01 12:30) or set {config_key} (e.g. '%d/%m/%Y %H:%M', or 'mixed')"
        )
    return parsed


def check_ids(frame: pd.DataFrame, id_column: str, source: str, file_rows: np.ndarray | None):
    """Every customer has exactly one row and an id."""
    ids = frame[id_column]
    blank = ids.isna().to_numpy()
    if blank.any():
        raise DataError(
            f"{source}: id column '{id_column}' is empty in {row_numbers(blank, file_rows)}; "
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
            f"{source}: duplicate customer ids in column '{id_column}': {'; '.join(groups)}{more}; "
            "each customer must appear once: remove the repeated rows, or set data.id_column "
            "to a unique column (for a transaction log use data.kind=transactions)"
        )


def check_non_negative(
    frame: pd.DataFrame, columns: Sequence[str], source: str, file_rows: np.ndarray | None
) -> None:
    """Columns that cannot be negative (age, income, ...) have no negative values."""
    for column in columns:
        negative = (frame[column] < 0).fillna(False).to_numpy()
        if negative.any():
            raise DataError(
                f"{source}: column '{column}' cannot be negative but is in "
                f"{row_numbers(negative, file_rows)} ({_examples(frame[column][negative])}); "
                f"fix those cells, or remove '{column}' from data.non_negative if negatives "
                "are valid"
            )


# --- loading ----------------------------------------------------------------------------------


def load_customer_table(
    frame: pd.DataFrame, data_cfg: Mapping[str, Any], source: str, file_rows: np.ndarray | None
) -> CustomerTable:
    id_column = data_cfg.get("id_column") or None
    numeric = _cfg_list(data_cfg, "numeric")
    categorical = _cfg_list(data_cfg, "categorical")
    dates = _cfg_list(data_cfg, "dates")
    if id_column:
        require_columns(frame, [id_column], "data.id_column", source)
    require_columns(frame, numeric, "data.numeric", source)
    require_columns(frame, categorical, "data.categorical", source)
    require_columns(frame, dates, "data.dates", source)
    non_negative = _cfg_list(data_cfg, "non_negative")
    require_columns(frame, non_negative, "data.non_negative", source)
    if id_column:
        ids = frame[id_column]
        if pd.api.types.is_float_dtype(ids) and (ids.dropna() % 1 == 0).all():
            ids = ids.astype("Int64")  # Parquet/pandas stored whole-number ids as floats
        frame[id_column] = as_text(ids)
        check_ids(frame, id_column, source, file_rows)
    frame = to_numeric_columns(
        frame, numeric, source, file_rows, str(data_cfg.get("decimal") or ".")
    )
    check_non_negative(frame, non_negative, source, file_rows)
    for column in dates:
        frame[column] = parse_dates(
            frame[column],
            column,
            source,
            file_rows,
            data_cfg.get("date_format"),
            bool(data_cfg.get("dayfirst", False)),
            "data.date_format",
        )
    label_column = data_cfg.get("label_column")
    if label_column not in frame.columns:
        label_column = None
    return CustomerTable(
        frame=frame,
        source=source,
        fingerprint=fingerprint_frame(frame),
        id_column=id_column,
        label_column=label_column,
        file_rows=file_rows,
    )


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
                f"{table.source}: feature '{column}' is constant ({_plain(values.iloc[0])!r} "
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
