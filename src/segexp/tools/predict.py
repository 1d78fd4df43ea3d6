"""``segexp-predict``: assign segments to new customers with a registered model; every row
comes back scored or rejected with its reason (docs/promote-predict.md)."""

from __future__ import annotations

import csv
import gzip
import sys
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from omegaconf import DictConfig

from segexp.data import read_table_file
from segexp.data.export import FORMULA_PREFIX, formula_counts, write_table
from segexp.data.messages import closest
from segexp.data.read import (
    DEFAULT_MISSING_VALUES,
    TextLayout,
    clean_text,
    file_format,
    holds_character,
    not_a_file,
    parse_delimited,
    parse_error,
    text_layout,
)
from segexp.errors import ConfigError, DataError
from segexp.model.assign import SEGMENT_COLUMN, SEGMENT_NAME_COLUMN
from segexp.tools.outputs import TABLE_FORMATS, check_output, staged, table_format
from segexp.tracking.models import SegmentModel, champion_version, load_model
from segexp.tracking.store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

ROW_COLUMN = "row"
REASON_COLUMN = "reason"
EMPTY_ROW = "empty row (a blank line or only delimiters)"
_ROWS_SHOWN = 5


@dataclass
class PredictionResult:
    """What one prediction wrote."""

    output: Path
    model_uri: str
    rows: int
    scored: int
    rejected: int
    rejects: Path | None
    formulas: dict[str, int] = field(default_factory=dict)  # formula-looking cells per column

    def summary(self) -> str:
        where = f" -> {self.rejects}" if self.rejects is not None else ""
        return (
            f"{self.scored} of {self.rows} customers scored with {self.model_uri} -> "
            f"{self.output}; {self.rejected} rejected{where}"
        )


@dataclass
class InputCells:
    """A customer file's cells as the file has them, with each row's file row."""

    cells: pa.Table  # text input: strings exactly as in the file; Parquet: typed columns
    rows: np.ndarray
    problems: dict[int, str]  # position -> why the row is not a record (empty, ragged)
    text: bool  # the cells are the text of a delimited file


def _ragged_cells(path: Path, layout: TextLayout) -> tuple[pa.Table, dict[int, str]]:
    """Every row as text when some rows have another field count than the header (pyarrow
    refuses those): they are padded or cut, the extra fields named in their reason."""
    opener = gzip.open if layout.gzipped else open
    with opener(path, "rt", encoding=layout.encoding, newline="") as handle:
        records = list(csv.reader(handle, delimiter=layout.delimiter, quotechar=layout.quotechar))
    width, problems = len(layout.names), {}
    for i, fields in enumerate(records[1:]):
        if len(fields) == width:
            continue
        extra = ", ".join(repr(f) for f in fields[width:][:3])
        reason = f"the row has {len(fields)} fields, the header {width}"
        blank = len(fields) <= 1 and not "".join(fields).strip()
        problems[i] = EMPTY_ROW if blank else reason + (f" (extra: {extra})" if extra else "")
        records[i + 1] = (fields + [""] * width)[:width]
    columns = [pa.array(cells, pa.string()) for cells in zip(*records[1:], strict=True)]
    return pa.Table.from_arrays(columns, names=layout.names), problems


def _read_text_cells(path: Path, fmt: str, reading: dict[str, Any]) -> InputCells:
    where = f"input={path}"
    layout = text_layout(path, fmt, reading, where=where, rows="customer", keys="")
    gzipped, names, delimiter = layout.gzipped, layout.names, layout.delimiter
    options = {
        "quoted": gzipped or holds_character(path, layout.quotechar),
        "encoding": layout.encoding,
        "delimiter": delimiter,
        "quotechar": layout.quotechar,
        "missing": [],  # every cell as the file has it: nothing is read as missing here
        "decimal": ".",
        "text_columns": names,
    }
    problems: dict[int, str] = {}
    try:
        table = parse_delimited(path, gzipped, names, options, where=where, key="encoding")
    except pa.ArrowInvalid as exc:
        if "columns, got" not in str(exc):
            raise parse_error(path, delimiter, str(exc)) from exc
        table, problems = _ragged_cells(path, layout)
    except (OSError, EOFError) as exc:
        raise DataError(
            f"input={path}: cannot read the file ({' '.join(str(exc).split())}); check the "
            "file (a truncated or corrupt .gz?) and its access rights"
        ) from exc
    table = table.rename_columns([n.lstrip("\ufeff") for n in table.column_names])
    for i in np.flatnonzero(_empty_rows(table)):
        problems.setdefault(int(i), EMPTY_ROW)
    return InputCells(table, np.arange(2, table.num_rows + 2), problems, text=True)


def _empty_rows(table: pa.Table) -> np.ndarray:
    """Rows whose every cell is empty or spaces (a blank line, or only delimiters)."""
    empty = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)
        if not (empty := empty & blank.to_numpy(zero_copy_only=False)).any():
            break
    return empty


def _read_parquet_cells(path: Path) -> InputCells:
    if path.stat().st_size == 0:
        raise DataError(f"input={path}: the file is empty; expected a Parquet table")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise DataError(
            f"input={path}: cannot read as Parquet ({' '.join(str(exc).split())}); check the file"
        ) from exc
    table = table.select([n for n in table.column_names if not n.startswith("__index_level_")])
    return InputCells(table, np.arange(1, table.num_rows + 1), {}, text=False)


def read_cells(path: Path, reading: dict[str, Any]) -> InputCells:
    """The input file's cells as they are, with file rows and the rows that are not records."""
    if not path.exists():
        near = closest(path.name, [p.name for p in path.parent.glob("*")])
        raise DataError(
            f"input={path}: file not found{near}; set input= to an existing CSV, TSV or "
            "Parquet file"
        )
    if kind := not_a_file(path):
        raise DataError(f"input={path}: is {kind}; set input= to a CSV, TSV or Parquet file")
    fmt = file_format(path, None)
    found = _read_parquet_cells(path) if fmt == "parquet" else _read_text_cells(path, fmt, reading)
    if not found.cells.num_rows:
        raise DataError(
            f"input={path}: the file has a header but no rows; expected one row per customer"
        )
    return found


def scoring_frame(found: InputCells, path: Path) -> pd.DataFrame:
    """The cells as the model reads them: text stripped, missing markers blank (NaN),
    exactly as ``read_table_file(typed=False)`` reads them; the index holds file rows."""
    if not found.text:
        return read_table_file(path, {}, typed=False)
    missing = pa.array(sorted(set(DEFAULT_MISSING_VALUES) | {""}), pa.string())
    frame = pd.DataFrame(
        {
            str(i): clean_text(column, missing, markers_parsed=False).to_pandas()
            for i, column in enumerate(found.cells.columns)
        },
        copy=False,
    )
    frame.columns = [str(c) for c in found.cells.column_names]
    frame.index = found.rows
    return frame


def _segment_assigner(model: PyFuncModel):
    """The SegmentAssigner inside a segexp model, or None for any other MLflow model."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # not a python_function model built from a PythonModel
        return None
    return inner.assigner if isinstance(inner, SegmentModel) else None


def _model_columns(model: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Only the columns the model's signature names (the model ignores the others anyway)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return frame
    named = set(schema.input_names())
    return frame[[c for c in frame.columns if c in named]]


def row_reasons(
    model: PyFuncModel, frame: pd.DataFrame, problems: dict[int, str]
) -> tuple[pd.Series, pd.DataFrame | None]:
    """(reason per row, '' where it can be scored; a segexp model's checked features).

    Rows that are not records (``problems``) keep that reason alone."""
    assigner = _segment_assigner(model)
    features, reasons = None, pd.Series("", index=frame.index, dtype=object)
    if assigner is not None:
        features, reasons = assigner.row_problems(frame)
        reasons = reasons.astype(object)
    if problems:
        positions = np.fromiter(problems, dtype=np.int64)
        reasons.iloc[positions] = [problems[int(i)] for i in positions]
    return reasons, features


def bad_rows_error(source: str, frame: pd.DataFrame, reasons: pd.Series, bad: np.ndarray):
    positions = bad.nonzero()[0]
    shown = "; ".join(f"row {frame.index[i]}: {reasons.iloc[i]}" for i in positions[:_ROWS_SHOWN])
    more = f" (+{len(positions) - _ROWS_SHOWN} more rows)" if len(positions) > _ROWS_SHOWN else ""
    return DataError(
        f"{source}: {len(positions)} row(s) cannot be scored: {shown}{more}; fix those "
        "rows, or set rejects=<file> to score the other rows and write these there"
    )


def segments_of(
    model: PyFuncModel, frame: pd.DataFrame, features: pd.DataFrame | None
) -> pd.DataFrame:
    """segment (and segment_name) of rows already checked, in their order."""
    assigner = _segment_assigner(model)
    if assigner is not None and features is not None:
        # the model's own predict is assigner.assign = the same checks + assign_prepared
        predicted = assigner.assign_prepared(features)
    elif len(frame):
        predicted = pd.DataFrame(model.predict(_model_columns(model, frame)))
        if SEGMENT_COLUMN not in predicted.columns:  # a plain model: one column of labels
            predicted = predicted.iloc[:, :1].set_axis([SEGMENT_COLUMN], axis=1)
    else:
        predicted = pd.DataFrame({SEGMENT_COLUMN: pd.Series(dtype="int64")})
    return predicted.reset_index(drop=True)


def _as_arrow(values: pd.Series) -> pa.Array:
    if pd.api.types.is_integer_dtype(values):
        return pa.array(values.to_numpy(), pa.int64())
    return pa.Array.from_pandas(values.astype(object))  # NaN/None -> null


def check_new_columns(columns: list[str], source: Path, rejects: bool) -> None:
    """DataError when the input already has a column predict adds (``segment``,
    ``segment_name``; ``row``, ``reason`` in the rejects file): it would be lost or doubled."""
    added = [SEGMENT_COLUMN, SEGMENT_NAME_COLUMN] + ([ROW_COLUMN, REASON_COLUMN] if rejects else [])
    if taken := [name for name in added if name in columns]:
        raise DataError(
            f"input={source}: already has the column(s) {', '.join(taken)}, which predict "
            f"adds ({', '.join(added)}); nothing was written: rename or drop them in the input "
            "(a file scored before? score the original customer table)"
        )


def model_uri_from(cfg: DictConfig) -> str:
    """``model``, or without one the champion (``models:/<registry.name>@<registry.alias>``);
    TrackingError with the way to choose one when no version has that alias."""
    if cfg.get("model"):
        return str(cfg.model)
    name, alias = str(cfg.registry.name), str(cfg.registry.alias)
    champion_version(cfg.mlflow.tracking_uri, name, alias, "model=<model URI>")
    return f"models:/{name}@{alias}"


def predict(cfg: DictConfig) -> PredictionResult:
    """Score ``cfg.input`` with ``cfg.model``; write ``cfg.output`` (and ``cfg.rejects``)."""
    if not cfg.get("input"):
        raise ConfigError("input: set input=<customers.csv> (CSV, TSV or Parquet); got nothing")
    if not cfg.get("output"):
        raise ConfigError("output: set output=<segments.csv> (where the scored rows go)")
    overwrite = bool(cfg.get("overwrite"))
    escape = bool(cfg.get("escape_formulas"))
    source = Path(str(cfg.input)).expanduser()
    output = Path(str(cfg.output)).expanduser()
    rejects = Path(str(cfg.rejects)).expanduser() if cfg.get("rejects") else None
    if output.resolve() == source.resolve() or (rejects and rejects.resolve() == source.resolve()):
        raise ConfigError(
            f"output/rejects: would overwrite the input {source}; choose another path"
        )
    if rejects is not None and rejects.resolve() == output.resolve():
        raise ConfigError(f"rejects={rejects}: is the output file too; choose another path")
    check_output(output, "output", overwrite, list(TABLE_FORMATS))
    if rejects is not None:
        check_output(rejects, "rejects", overwrite, list(TABLE_FORMATS))
    reading = {k: cfg.get(k) for k in ("delimiter", "encoding") if cfg.get(k)}
    found = read_cells(source, reading)
    check_new_columns(found.cells.column_names, source, rejects is not None)
    frame = scoring_frame(found, source)
    model_uri = model_uri_from(cfg)
    model = load_model(model_uri, resolve_tracking_uri(cfg.mlflow.tracking_uri))
    try:
        reasons, features = row_reasons(model, frame, found.problems)
    except DataError as exc:
        message = str(exc)
        if message.startswith("customer input"):  # the model's own message: name the file
            message = f"{source}: {message}"
        raise DataError(message) from exc
    bad = (reasons != "").to_numpy()
    if bad.any() and rejects is None:
        raise bad_rows_error(str(source), frame, reasons, bad)
    good = ~bad
    predicted = segments_of(model, frame[good], features[good] if features is not None else None)
    kept = found.cells.filter(pa.array(good))
    for column in predicted.columns:
        kept = kept.append_column(str(column), _as_arrow(predicted[column]))
    tables = {output: kept}
    if rejects is not None:
        refused = found.cells.filter(pa.array(bad))
        refused = refused.add_column(0, ROW_COLUMN, pa.array(found.rows[bad], pa.int64()))
        refused = refused.append_column(REASON_COLUMN, pa.array(reasons[bad].tolist(), pa.string()))
        tables[rejects] = refused
    written: dict[Path, tuple[str, pa.Table | pd.DataFrame]] = {}
    counts: Counter[str] = Counter()
    for path, table in tables.items():
        fmt = table_format(path, "output" if path == output else "rejects")
        if fmt != "parquet":  # the spreadsheet guard concerns text files only
            table = table.to_pandas()
            counts.update(formula_counts(table))
        written[path] = (fmt, table)
    with ExitStack() as stack:  # both files are replaced only once both are written
        for path, (fmt, table) in written.items():
            write_table(table, stack.enter_context(staged(path)), fmt, escape=escape)
    if line := formula_line(counts, ", ".join(p.name for p in tables), escape):
        print(line, file=sys.stderr)
    return PredictionResult(
        output, model_uri, len(frame), int(good.sum()), int(bad.sum()), rejects, dict(counts)
    )


def formula_line(counts: Mapping[str, int], files: str, escaped: bool) -> str:
    """The one stderr line about formula-looking cells ('' when there are none)."""
    if not counts:
        return ""
    total = sum(counts.values())
    columns = ", ".join(f"{name} ({n})" for name, n in counts.items())
    cells = "cell" if total == 1 else "cells"
    if escaped:
        return (
            f"segexp: note: escaped {total} formula-looking {cells} in {files} with a leading "
            f"{FORMULA_PREFIX} (columns: {columns})"
        )
    return (
        f"segexp: warning: {total} {cells} in {files} start with =, +, -, @, tab or CR and may "
        f"run as formulas when opened in a spreadsheet (columns: {columns}); set "
        "escape_formulas=true to prefix them with '"
    )
