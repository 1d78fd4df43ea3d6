"""The customer table as Spark reads it, with its columns named as segexp names them.

Spark reads the file itself (``spark.read.csv(header, inferSchema)`` or
``spark.read.parquet``); segexp's own rules name and place the columns from the
table's first ``HEAD_ROWS`` rows: header variants mapped to the canonical names
(``data.aliases``, the same rule as the pandas reader), column roles (id, numeric,
categorical, label) from ``segexp.data.schema``, and the features of
``features.columns`` resolved as in every run (``default``, ``all_numeric`` or a
list). The whole table is then checked by Spark: each feature column must hold
numbers (cells listed in ``data.missing_values`` are missing), missing cells are
refused unless ``preprocess.impute=drop``, and negative values in the
``data.non_negative`` columns are refused, each with one line.

Without ``data.path`` the built-in sample is generated as in every run and handed
to Spark. A file's fingerprint is the SHA-256 of its bytes (every part file of a
Parquet folder, in name order), so a Spark run of a file never needs the table
in pandas; it is not the pandas reader's fingerprint of the same file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from segexp.data.load import (
    CustomerTable,
    _canonical_settings,
    _non_negative,
    canonical_headers,
    load_customer_table,
)
from segexp.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

HEAD_ROWS = 5000
PARQUET_SUFFIXES = (".parquet", ".pq")
FINGERPRINT_METHOD = "sha256 of the file's bytes"


@dataclass
class SparkTable:
    """The Spark DataFrame of every row and the segexp table of its first rows (roles)."""

    frame: DataFrame
    head: CustomerTable  # the first HEAD_ROWS rows: schema, id column, default features
    n_rows: int
    fingerprint: str
    path: Path | None


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()``, typed as the pandas DataFrame it is."""
    return cast("pd.DataFrame", frame.toPandas())


def quoted(column: str) -> str:
    """A column name for ``F.col`` whatever it holds (dots, spaces, backticks)."""
    return "`" + str(column).replace("`", "``") + "`"


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir() and file.name.startswith((".", "_")):
            continue  # Spark's _SUCCESS and .crc files say nothing about the rows
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def _format(path: Path, data_cfg: Mapping[str, Any]) -> str:
    configured = data_cfg.get("format")
    if configured:
        return str(configured).lower()
    if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    return "tsv" if path.suffix.lower() == ".tsv" else "csv"


def _read_file(
    spark: SparkSession, path: Path, data_cfg: Mapping[str, Any], schema: Any = None
) -> DataFrame:
    fmt = _format(path, data_cfg)
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    if fmt not in ("csv", "tsv"):
        raise ConfigError(f"data.format: csv, tsv or parquet with engine=spark; got {fmt!r}")
    delimiter = data_cfg.get("delimiter")
    if not delimiter:
        from segexp.data.read import detect_delimiter

        with path.open("rb") as handle:
            start = handle.read(1 << 16).decode(str(data_cfg.get("encoding") or "utf-8"), "replace")
        delimiter = "\t" if fmt == "tsv" else detect_delimiter(start.lstrip("\ufeff"))
    return spark.read.csv(
        str(path),
        header=True,
        inferSchema=schema is None,
        schema=schema,
        sep=str(delimiter),
        encoding=str(data_cfg.get("encoding") or "UTF-8"),
        quote=str(data_cfg.get("quotechar") or '"'),
        mode="PERMISSIVE",
    )


def read_table(spark: SparkSession, data_cfg: Mapping[str, Any]) -> SparkTable:
    """Read the configured data with Spark; roles and names from its first rows."""
    from segexp.data import load_customers, looks_like_transactions

    kind = str(data_cfg.get("kind") or "auto")
    if kind == "transactions":
        raise ConfigError(
            "data.kind=transactions: engine=spark reads customer tables (one row per "
            "customer); use engine=sklearn for a transaction log"
        )
    path_value = data_cfg.get("path")
    if path_value in (None, ""):
        table = load_customers(data_cfg)  # the built-in sample, generated in code
        frame = spark.createDataFrame(table.frame)
        return SparkTable(frame, table, len(table.frame), table.fingerprint, None)
    path = Path(str(path_value)).expanduser()
    source = str(data_cfg.get("source_name") or path)
    if not path.exists():
        raise DataError(f"data.path: {path} does not exist; set data.path to a CSV or Parquet file")
    frame = _read_file(spark, path, data_cfg)
    columns = [str(c) for c in frame.columns]
    if kind == "auto" and looks_like_transactions(columns, source):
        raise ConfigError(
            f"{source}: looks like a transaction log; engine=spark reads customer tables "
            "(one row per customer): use engine=sklearn for a transaction log"
        )
    aliases = dict(data_cfg.get("aliases") or {})
    renames = canonical_headers(columns, aliases, source)
    if 2 * len(renames) < len(aliases):
        renames = {}  # not a table of this vocabulary: its own headers are the names
    if renames:
        frame = frame.withColumnsRenamed(renames)
    head = to_pandas(frame.limit(HEAD_ROWS))
    if head.empty:
        raise DataError(
            f"{source}: the file has a header ({', '.join(columns)}) but no customer rows; "
            "add rows below the header"
        )
    headers = {canonical: header for header, canonical in renames.items()}
    # no derived columns (tenure, age): Spark's frame is the file's own columns
    table = load_customer_table(head, data_cfg, source, None, headers, derive=False)
    frame = _id_as_text(spark, path, data_cfg, frame, table.id_column, renames)
    return SparkTable(frame, table, frame.count(), file_fingerprint(path), path)


def _id_as_text(spark, path: Path, data_cfg, frame, id_column: str | None, renames):
    """Ids are text (zero padding is part of an id): a CSV whose id column Spark typed as
    numbers is read again with that column as a string (the other types as inferred)."""
    from pyspark.sql.types import StringType, StructField, StructType

    if not id_column or _format(path, data_cfg) == "parquet":
        return frame
    if isinstance(frame.schema[id_column].dataType, StringType):
        return frame
    header = {canonical: original for original, canonical in renames.items()}
    fields = [
        StructField(header.get(f.name, f.name), StringType() if f.name == id_column else f.dataType)
        for f in frame.schema.fields
    ]
    again = _read_file(spark, path, data_cfg, schema=StructType(fields))
    return again.withColumnsRenamed(renames) if renames else again


def numeric_features(
    data: SparkTable,
    columns: Sequence[str],
    data_cfg: Mapping[str, Any],
    impute: str,
) -> tuple[DataFrame, int]:
    """(the frame with every feature column as double, rows dropped for impute=drop);
    DataError naming the column for text that is no number, missing cells, negatives."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    frame, source = data.frame, data.head.source
    missing_words = [str(v).strip() for v in data_cfg.get("missing_values") or ()]
    types = {f.name: f.dataType for f in frame.schema.fields}
    checks, converted = [], {}
    for column in columns:
        raw = F.col(quoted(column))
        if isinstance(types[column], NumericType):
            converted[column] = raw.cast("double")
            continue
        text = F.trim(raw.cast("string"))
        blank = text.isNull() | (text == "") | text.isin(missing_words)
        number = text.try_cast("double") if hasattr(text, "try_cast") else text.cast("double")
        converted[column] = F.when(blank, F.lit(None)).otherwise(number)
        checks.append(
            F.sum(F.when(~blank & number.isNull(), 1).otherwise(0)).alias(f"bad::{column}")
        )
        checks.append(F.first(F.when(~blank & number.isNull(), raw), True).alias(f"ex::{column}"))
    frame = frame.withColumns(converted)
    settings = _canonical_settings(data_cfg, data.head.headers)
    non_negative = [c for c in _non_negative(settings, data.head.numeric) if c in columns]
    for column in columns:
        value = F.col(quoted(column))
        checks.append(
            F.sum(F.when(value.isNull() | F.isnan(value), 1).otherwise(0)).alias(f"na::{column}")
        )
    for column in non_negative:
        checks.append(F.min(F.col(quoted(column))).alias(f"min::{column}"))
    found = frame.agg(*checks).first() if checks else None
    counts = found.asDict() if found is not None else {}
    for column in columns:
        bad = int(counts.get(f"bad::{column}") or 0)
        if bad:
            raise DataError(
                f"{source}: column '{column}' has {bad} cells that are not numbers (e.g. "
                f"{counts.get(f'ex::{column}')!r}); fix them, list them in data.missing_values, "
                "or leave the column out of features.columns"
            )
    for column in non_negative:
        low = counts.get(f"min::{column}")
        if low is not None and low < 0:
            raise DataError(
                f"{source}: column '{column}' has negative values (min {low:g}); it cannot be "
                "negative (data.non_negative): fix those cells or set data.non_negative"
            )
    missing = {c: int(counts.get(f"na::{c}") or 0) for c in columns}
    incomplete = sum(missing.values())
    if incomplete and impute != "drop":
        shown = ", ".join(f"{c} ({n})" for c, n in missing.items() if n)
        raise DataError(
            f"{source}: feature columns have missing values: {shown}; engine=spark takes "
            "preprocess.impute=drop (rows with a missing feature are left out), or use "
            "engine=sklearn to impute them"
        )
    if incomplete:
        before = data.n_rows
        frame = frame.na.drop(subset=list(columns))
        return frame, before - frame.count()
    return frame, 0
