"""Reading CSV/TSV (dialect and encoding from the file's head) or Parquet exactly: columns
are typed whole, so a zero-padded or 20-digit id stays text; ``inf`` is an error, not a value."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import mmap
import re
import stat
from collections.abc import Mapping, Sequence
from contextlib import suppress
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from segexp.data.messages import closest, examples, names_of, row_numbers
from segexp.errors import ConfigError, DataError

# what exports write for an empty cell (Excel's pivot tables write "(blank)")
DEFAULT_MISSING_VALUES = (
    *("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A"),
    *("(blank)", "-", "?"),
)
_FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")
HEAD_BYTES = 1 << 20  # what detection reads of a file, whatever its size
_BLOCK_BYTES = 1 << 20  # pyarrow's parse block; a longer row retries with one block
_ZERO_PADDED = r"^[+-]?0[0-9]"
_WHOLE_NUMBER = r"^[+-]?[0-9]+$"
_DECIMAL_COMMA = re.compile(r"^[+-]?[0-9]+,[0-9]+$")
_DECIMAL_POINT = re.compile(r"^[+-]?[0-9]*\.[0-9]+$")
_DECIMAL_ROWS = 2000  # rows of the head that decide the decimal mark
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # control characters text does not hold


def file_format(path: Path, configured: str | None) -> str:
    """csv, tsv or parquet: the configured format, else the file's suffix."""
    fmt = str(configured or "").lower()
    if fmt and fmt not in ("csv", "tsv", "parquet"):
        raise ConfigError(f"data.format: allowed values are csv, tsv, parquet; got '{fmt}'")
    last = next((s.lower() for s in reversed(path.suffixes) if s.lower() != ".gz"), "")
    by_suffix = {".parquet": "parquet", ".pq": "parquet", ".tsv": "tsv", ".tab": "tsv"}
    return fmt or by_suffix.get(last, "csv")


def _rows(lines: Any, delimiter: str, quotechar: str, limit: int) -> list[list[str]]:
    """The first rows of delimited text, fields of any size ([] when it does not parse)."""
    previous = csv.field_size_limit(2**31 - 1)  # the csv module refuses fields over 128 KiB
    try:
        reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar)
        return list(islice(reader, limit))
    except csv.Error:
        return []
    finally:
        csv.field_size_limit(previous)


def detect_delimiter(text: str, quotechar: str = '"') -> str:
    """The candidate delimiter that splits the first lines into the most consistent columns."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", (0.0, 0)
    for delimiter in (",", ";", "\t", "|"):
        widths = [len(row) for row in _rows(lines, delimiter, quotechar, len(lines))]
        if widths and widths[0] >= 2:
            score = (sum(w == widths[0] for w in widths) / len(widths), widths[0])
            if score > best_score:
                best, best_score = delimiter, score
    return best


def detect_encoding(
    head: bytes, path: Path, encoding: str | None, whole: bool, key: str = "data.encoding"
) -> tuple[str, str]:
    """(encoding, decoded head): the configured one, else the BOM's, else utf-8, cp1252, latin-1
    (``key``: the config key that sets it, for messages)."""
    if head[:4] == b"PK\x03\x04":
        raise DataError(
            f"{path}: unreadable as text: this is a zip archive (an Excel .xlsx workbook?); "
            "save it as CSV (UTF-8) or Parquet and set data.path to that file"
        )
    cut = head.rfind(b"\n")  # a cut head may split a character: decode whole lines only
    sample = head if whole or cut <= 0 else head[: cut + 1]
    if encoding:
        try:
            chosen, text = encoding, sample.decode(encoding)
        except LookupError as exc:
            raise ConfigError(
                f"{key}: unknown encoding '{encoding}'; use e.g. utf-8, cp1252, latin-1, utf-16"
            ) from exc
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: unreadable encoding: byte {exc.start} is not valid {encoding} "
                f"({exc.reason}); set {key} to the file's encoding (e.g. cp1252, "
                "latin-1, utf-16) or re-save the file as UTF-8"
            ) from exc
    elif head.startswith(b"\xef\xbb\xbf"):
        chosen, text = "utf-8", sample[3:].decode("utf-8", errors="replace")
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        chosen, text = "utf-16", head.decode("utf-16", errors="replace")
    else:
        for chosen in _FALLBACK_ENCODINGS:  # latin-1 decodes any bytes
            with suppress(UnicodeDecodeError):
                text = sample.decode(chosen)
                break
    text = text.lstrip("\ufeff")
    start = text[:65536]
    if "\x00" in start or len(_CONTROL.findall(start)) > 0.05 * max(len(start), 1):
        raise DataError(
            f"{path}: unreadable encoding: the content is not text in "
            f"{encoding or 'utf-8, cp1252, latin-1'} (binary bytes found); set {key} to the "
            "file's encoding (e.g. utf-16) or export the data as CSV (UTF-8) or Parquet"
        )
    return chosen, text


def _read_head(path: Path) -> tuple[bytes, bool, bool]:
    """(first HEAD_BYTES of the content, whether that is all of it, whether it is gzip)."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            head = handle.read(HEAD_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read the file ({exc}); check the file and its access rights"
        ) from exc
    return head[:HEAD_BYTES], len(head) <= HEAD_BYTES, gzipped


def detect_decimal(text: str, delimiter: str, quotechar: str) -> str:
    """',' when the delimiter is not a comma and the head writes numbers 1,5, none 1.5."""
    if delimiter == ",":
        return "."
    rows = _rows(io.StringIO(text), delimiter, quotechar, _DECIMAL_ROWS)
    cells = [c.strip() for row in rows for c in row]
    comma = any(_DECIMAL_COMMA.match(c) for c in cells)
    return "," if comma and not any(_DECIMAL_POINT.match(c) for c in cells) else "."


def _parse_options(options: dict[str, Any], handler: Any, keep_empty: bool):
    return pa_csv.ParseOptions(
        delimiter=options["delimiter"],
        quote_char=options["quotechar"],
        newlines_in_values=options["quoted"],
        ignore_empty_lines=not keep_empty,
        invalid_row_handler=handler,
    )


def _number_columns(text: str, names: list[str], options: dict[str, Any]) -> list[str]:
    """Columns pyarrow types as numbers (or blanks) in the head: read as text and typed on
    the whole column (``_numbers``). All columns when the head does not parse on its own."""
    try:
        head = pa_csv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pa_csv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=_parse_options(options, lambda _: "skip", keep_empty=False),
            convert_options=pa_csv.ConvertOptions(
                null_values=options["missing"],
                strings_can_be_null=True,
                decimal_point=options["decimal"],
            ),
        )
    except pa.ArrowInvalid:
        return list(names)
    return [
        name
        for name, kind in zip(head.column_names, head.schema.types, strict=True)
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
    ]


def _parse(
    path: Path, gzipped: bool, names: list[str], options: dict[str, Any], handler=None
) -> pa.Table:
    """The file as an Arrow table (blank lines kept as empty rows: row numbers stay file rows)."""
    block = options.pop("block_size", _BLOCK_BYTES)
    stream = pa.input_stream(str(path), compression="gzip" if gzipped else None)
    try:
        return pa_csv.read_csv(
            stream,
            read_options=pa_csv.ReadOptions(
                block_size=block, encoding=options["encoding"], use_threads=handler is None
            ),
            parse_options=_parse_options(options, handler, keep_empty=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in options["text_columns"]},
                strings_can_be_null=True,
                null_values=options["missing"],
                quoted_strings_can_be_null=True,
                decimal_point=options["decimal"],
            ),
        )
    finally:
        stream.close()


def _ragged_row(path: Path, gzipped: bool, names: list[str], options: dict[str, Any]) -> str:
    """'line 7 has 6 fields, expected 5': the first row whose field count is off."""
    found: list[Any] = []

    def first_bad(row: Any) -> str:
        found.append(row)
        return "error" if len(found) > 1 else "skip"

    with suppress(pa.ArrowInvalid):
        _parse(path, gzipped, names, dict(options), handler=first_bad)
    if not found:
        return ""
    row = found[0]
    where = f"line {row.number}" if row.number is not None else "a row"
    return f"{where} has {row.actual_columns} fields, expected {row.expected_columns}"


def holds_character(path: Path, character: str) -> bool:
    """Whether the file holds the character at all: without quotes no field holds a line
    break, and pyarrow parses faster when told so."""
    if path.stat().st_size == 0:
        return False
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(character.encode()) >= 0


def parse_error(path: Path, delimiter: str, detail: str) -> DataError:
    """The one-line error of a file pyarrow could not parse with this delimiter."""
    detail = " ".join(detail.split()).removeprefix("CSV parse error: ")
    detail = re.sub(r": .{40,}$", "", detail)  # pyarrow appends the whole offending row
    return DataError(
        f"{path}: cannot parse as delimited text with delimiter {delimiter!r}: {detail}; "
        "check data.delimiter and data.quotechar, or quote fields that contain the delimiter"
    )


def clean_text(
    column: pa.ChunkedArray, missing: pa.Array, markers_parsed: bool = True
) -> pa.ChunkedArray:
    """Stripped text, declared missing markers and blanks as nulls. When the parser already
    read exact markers as nulls, the costly marker lookup runs only if stripping changed a cell."""
    stripped = pc.utf8_trim_whitespace(column)
    unchanged = pc.all(pc.equal(stripped, column)).as_py() is not False
    if markers_parsed and unchanged and not pc.any(pc.equal(stripped, "")).as_py():
        return stripped
    blank = pc.is_in(stripped, value_set=missing)
    return pc.if_else(blank, pa.scalar(None, pa.string()), stripped)


def _numbers(text: pa.ChunkedArray, decimal: str = ".") -> pa.ChunkedArray | None:
    """int64 or float64 when every filled cell is a number, else None (text, zero-padded
    digits anywhere in the column, whole numbers beyond int64: ids)."""
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    try:
        pc.cast(text.slice(0, 10_000).drop_null(), pa.float64())  # cheap refusal of text
    except _CAST_ERRORS:
        return None
    if text.null_count == len(text):
        return None
    # prefix tests first: they cost a fraction of the regex
    if any(pc.any(pc.starts_with(text, p)).as_py() for p in ("0", "-0", "+0")) and bool(
        pc.any(pc.match_substring_regex(text, _ZERO_PADDED)).as_py()
    ):
        return None
    try:
        return pc.cast(text, pa.int64())
    except _CAST_ERRORS:
        longest = pc.max(pc.utf8_length(text)).as_py() or 0
        if longest > 18 and pc.all(pc.match_substring_regex(text, _WHOLE_NUMBER)).as_py():
            return None
    try:
        return pc.cast(text, pa.float64())
    except _CAST_ERRORS:
        return None


def _frame(
    table: pa.Table,
    data_cfg: Mapping[str, Any],
    file_rows: np.ndarray,
    source: str,
    typed: bool,
    decimal: str = ".",
    markers_parsed: bool = True,
) -> pd.DataFrame:
    """The Arrow table as pandas: numbers typed (int64, float64 with NaN), text with NaN; inf
    is refused (``markers_parsed``: the CSV parser already read exact missing markers as nulls)."""
    missing = pa.array(sorted(set(_missing_values(data_cfg)) | {""}), pa.string())

    def series(name: str, column: pa.ChunkedArray) -> pd.Series:
        raw = None
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            numbers = _numbers(column, decimal) if typed else None  # clean numbers: no strip
            if numbers is None:
                column = clean_text(column, missing, markers_parsed)
                numbers = _numbers(column, decimal) if typed else None
            if numbers is None:
                return column.to_pandas()
            raw, column = column, numbers
        if pa.types.is_date(column.type):
            return column.cast(pa.timestamp("ns")).to_pandas()
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            return column.to_pandas()
        values = column.to_numpy(zero_copy_only=False)  # null cells: NaN in float64
        if values.dtype.kind in "iu":
            return pd.Series(values)
        values = values.astype(np.float64, copy=False)
        infinite = np.isinf(values)
        if infinite.any():
            first = np.flatnonzero(infinite)[:3]
            shown = raw.take(pa.array(first)).to_pylist() if raw is not None else values[first]
            raise DataError(
                f"{source}: column '{name}' has values beyond the float64 range in "
                f"{row_numbers(infinite, file_rows)} ({examples(pd.Series(shown))}); fix those "
                "cells, or list their text in data.missing_values to read them as missing"
            )
        return pd.Series(values)

    names = [str(c).lstrip("\ufeff") for c in table.column_names]
    pairs = zip(names, table.columns, strict=True)
    return pd.DataFrame({name: series(name, column) for name, column in pairs}, copy=False)


def _missing_values(data_cfg: Mapping[str, Any]) -> list[str]:
    value = data_cfg.get("missing_values")
    return list(DEFAULT_MISSING_VALUES) if value is None else names_of(value)


def _filled_rows(table: pa.Table) -> pa.Array | None:
    """Rows with at least one filled cell (blank cells count as empty); None: all are."""
    empty = None
    for column in table.columns:
        blank = pc.is_null(column)
        if pa.types.is_string(column.type):
            blank = pc.or_kleene(blank, pc.equal(pc.utf8_trim_whitespace(column), ""))
        empty = blank if empty is None else pc.and_(empty, blank)
        if not pc.any(empty).as_py():
            return None
    return pc.invert(empty).combine_chunks() if empty is not None else None


def _undecodable(path: Path, gzipped: bool, encoding: str, where: str, key: str) -> DataError:
    """The error for the first byte the encoding cannot read: its offset, line and key
    (an error path: the whole content is decoded once)."""
    found = "a byte"
    with (gzip.open if gzipped else open)(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        found = f"byte {exc.start} (line {line})"
    hint = "latin-1" if codecs.lookup(encoding).name == "cp1252" else "cp1252"
    return DataError(
        f"{where}: unreadable encoding: {found} is not valid {encoding}, though the start of "
        f"the file is; set {key}={hint} if the file was saved in that encoding, or re-save it "
        "as UTF-8"
    )


def parse_delimited(
    path: Path,
    gzipped: bool,
    names: list[str],
    options: dict[str, Any],
    where: str = "",
    key: str = "data.encoding",
) -> pa.Table:
    """Parse, retrying with one block for rows longer than a block. Bytes the encoding cannot
    read after a head it could are an error (``where``: the file, ``key``: the encoding's key)."""
    cause: Exception | None = None
    try:
        try:
            table = _parse(path, gzipped, names, dict(options))
        except pa.ArrowInvalid as exc:
            if "straddle" not in str(exc):
                raise
            size = min(path.stat().st_size * (20 if gzipped else 1), 2**31 - 1)
            table = _parse(path, gzipped, names, {**options, "block_size": size})
    except pa.ArrowInvalid as exc:
        if "invalid UTF8" not in str(exc):
            raise
        cause = exc
    except UnicodeDecodeError as exc:  # a Python codec (cp1252, ...) transcoding for pyarrow
        cause = exc
    else:  # pyarrow types a column of bytes that are not UTF-8 as binary
        if not any(pa.types.is_binary(t) for t in table.schema.types):
            return table
    raise _undecodable(path, gzipped, options["encoding"], where or str(path), key) from cause


class TextLayout(NamedTuple):
    """How a delimited text file is written: compression, encoding, dialect, header."""

    gzipped: bool
    encoding: str
    text: str  # the decoded head of the file
    delimiter: str
    quotechar: str
    names: list[str]


def text_layout(
    path: Path,
    fmt: str,
    settings: Mapping[str, Any],
    where: str = "",
    rows: str = "record",
    keys: str = "data.",
) -> TextLayout:
    """The file's encoding, delimiter and header, or the error of an empty or headless file
    (``where``: the file in messages; ``rows``: what a row is; ``keys``: the config prefix)."""
    where = where or str(path)
    empty = f"{where}: the file is empty; expected a header row and one row per {rows}"
    head, whole, gzipped = _read_head(path)
    encoding, text = detect_encoding(head, path, settings.get("encoding"), whole, f"{keys}encoding")
    if not text.strip():
        raise DataError(empty)
    quotechar = str(settings.get("quotechar") or '"')
    configured = settings.get("delimiter")
    delimiter = "\t" if configured in ("\\t", "tab") or (fmt == "tsv" and not configured) else None
    delimiter = str(delimiter or configured or detect_delimiter(text, quotechar))
    header = _rows(io.StringIO(text), delimiter, quotechar, 1)
    names = header[0] if header else []
    if configured and len(names) == 1 and fmt != "tsv":
        found = detect_delimiter(text, quotechar)  # the configured one split nothing
        if found != delimiter and found in names[0]:
            raise DataError(
                f"{where}: with {keys}delimiter={delimiter!r} the file is one column "
                f"({names[0][:60]!r}); its lines are split by {found!r}: set "
                f"{keys}delimiter={found!r}, or leave it unset (found from the file)"
            )
    if not [n for n in names if n.strip()]:
        raise DataError(f"{where}: the file has no header row; expected column names")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(
            f"{where}: the header names column '{repeated[0]}' more than once; give every "
            "column its own name"
        )
    return TextLayout(gzipped, encoding, text, delimiter, quotechar, names)


def _read_text(
    path: Path, fmt: str, data_cfg: Mapping[str, Any], typed: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    layout = text_layout(path, fmt, data_cfg)
    gzipped, delimiter, names = layout.gzipped, layout.delimiter, layout.names
    decimal = str(
        data_cfg.get("decimal") or detect_decimal(layout.text, delimiter, layout.quotechar)
    )
    options: dict[str, Any] = {
        "quoted": gzipped or holds_character(path, layout.quotechar),
        "encoding": layout.encoding,
        "delimiter": delimiter,
        "quotechar": layout.quotechar,
        "missing": _missing_values(data_cfg),
        "decimal": decimal,
    }
    # every column as text (tools that check cells themselves), else those of numbers
    options["text_columns"] = _number_columns(layout.text, names, options) if typed else names
    try:
        table = parse_delimited(path, gzipped, names, options)
    except pa.ArrowInvalid as exc:
        detail = str(exc)
        if "columns, got" in detail:
            detail = _ragged_row(path, gzipped, names, options) or detail
        raise parse_error(path, delimiter, detail) from exc
    except (OSError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read the file ({' '.join(str(exc).split())}); check the file "
            "(a truncated or corrupt .gz?) and its access rights"
        ) from exc
    file_rows = np.arange(2, table.num_rows + 2)
    filled = _filled_rows(table)
    if filled is not None:  # blank and delimiter-only lines are not records
        table, file_rows = table.filter(filled), file_rows[filled.to_numpy(zero_copy_only=False)]
    frame = _frame(table, data_cfg, file_rows, str(path), typed, decimal)
    frame.attrs["decimal"] = decimal  # for the checks of text cells in numbers
    return frame, file_rows


def _read_parquet(path: Path, data_cfg: Mapping[str, Any]) -> tuple[pd.DataFrame, np.ndarray]:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; expected a Parquet table")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise DataError(
            f"{path}: cannot read as Parquet ({' '.join(str(exc).split())}); check the file "
            "or set data.format=csv"
        ) from exc
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name.startswith("__index_level_"):
            continue
        if pa.types.is_nested(column.type):
            raise DataError(
                f"{path}: column {name!r} holds {column.type} values, not one value per "
                "customer; write its parts as columns of their own, or leave it out of the file"
            )
        is_dictionary = pa.types.is_dictionary(column.type)
        columns[name] = column.cast(column.type.value_type) if is_dictionary else column
    file_rows = np.arange(1, table.num_rows + 1)
    # Parquet columns carry their types: text stays text, whatever it looks like
    frame = _frame(pa.table(columns), data_cfg, file_rows, str(path), False, markers_parsed=False)
    return frame, file_rows


def not_a_file(path: Path) -> str:
    """'' for a regular file, else what the path is (reading a named pipe would block)."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a folder"
    kind = "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"{'a named pipe (FIFO)' if stat.S_ISFIFO(mode) else kind}, not a regular file"


def read_table_file(
    path: str | Path, data_cfg: Mapping[str, Any] | None = None, *, typed: bool = True
) -> pd.DataFrame:
    """Read CSV/TSV or Parquet, the index holding file rows (``typed=False``: every text cell
    stays text, for tools that check and write back cells themselves)."""
    frame, file_rows = read_table(path, data_cfg, typed=typed)
    frame.index = file_rows
    return frame


def read_table(
    path: str | Path, data_cfg: Mapping[str, Any] | None = None, *, typed: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """(the table with a plain 0..n-1 index, each row's file row), as ``read_table_file``."""
    data_cfg = dict(data_cfg or {})
    path = Path(path).expanduser()
    if not path.exists():
        folder = path.parent
        near = closest(path.name, [p.name for p in folder.glob("*")]) if folder.is_dir() else ""
        raise DataError(
            f"{path}: file not found{near}; set data.path to an existing CSV, TSV or Parquet file"
        )
    kind = not_a_file(path)
    if kind:
        raise DataError(f"{path}: is {kind}; set data.path to a CSV, TSV or Parquet file")
    fmt = file_format(path, data_cfg.get("format"))
    if fmt == "parquet":
        return _read_parquet(path, data_cfg)
    return _read_text(path, fmt, data_cfg, typed)


def as_text(values: pd.Series, missing_values: Sequence[str] = ("",)) -> pd.Series:
    """Stripped text, NaN for missing cells; whole numbers held as floats read 12346."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    text = values.astype("str").str.strip()  # pandas' text dtype: missing cells are NaN
    blank = text.isin(set(missing_values) | {""})
    return text.mask(blank) if blank.any() else text
