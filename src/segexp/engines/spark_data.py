"""The customer table as Spark reads it: names and column roles from its first rows by
segexp's own rules, the feature columns of every row checked by Spark (docs/scale.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType, StringType, StructField, StructType

from segexp.data import load_customers, looks_like_transactions
from segexp.data.load import CustomerTable, canonical_headers, load_customer_table
from segexp.data.read import detect_delimiter, file_format
from segexp.errors import ConfigError, DataError
from segexp.model.assign import training_non_negative

HEAD_ROWS = 5000
FINGERPRINT_METHOD = "sha256 of the file's bytes"


@dataclass
class SparkTable:
    """Every row as a Spark DataFrame, and segexp's table of its first rows (the roles)."""

    frame: DataFrame
    head: CustomerTable
    n_rows: int
    fingerprint: str
    path: Path | None
    source: str
    dropped_rows: int = 0  # rows with a missing feature, left out (preprocess.impute=drop)


def col(name: str) -> Column:
    """``F.col`` of a column whatever its name holds (dots, spaces, backticks)."""
    return F.col("`" + str(name).replace("`", "``") + "`")


def to_pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()``, typed as the pandas DataFrame it is."""
    return cast("pd.DataFrame", frame.toPandas())


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes; of a Parquet folder's part files, in name order."""
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
    return "parquet" if path.is_dir() and not configured else file_format(path, configured)


def _read_file(
    spark: SparkSession, path: Path, data_cfg: Mapping[str, Any], schema: Any = None
) -> DataFrame:
    fmt = _format(path, data_cfg)
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    delimiter = data_cfg.get("delimiter")
    if not delimiter:
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
    kind = str(data_cfg.get("kind") or "auto")
    if kind == "transactions":
        raise ConfigError(
            "data.kind=transactions: engine=spark reads customer tables (one row per "
            "customer); use engine=sklearn for a transaction log"
        )
    if data_cfg.get("path") in (None, ""):
        table = load_customers(data_cfg)  # the built-in sample, generated in code
        frame = spark.createDataFrame(table.frame)
        return SparkTable(frame, table, len(table.frame), table.fingerprint, None, table.source)
    path = Path(str(data_cfg["path"])).expanduser()
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
    ids = table.id_column
    if ids and _format(path, data_cfg) != "parquet" and frame.schema[ids].dataType != StringType():
        # ids are text (zero padding is part of an id): read again, that column a string
        fields = [
            StructField(headers.get(f.name, f.name), StringType() if f.name == ids else f.dataType)
            for f in frame.schema.fields
        ]
        frame = _read_file(spark, path, data_cfg, StructType(fields)).withColumnsRenamed(renames)
    return SparkTable(frame, table, frame.count(), file_fingerprint(path), path, source)


def numeric_features(
    data: SparkTable, columns: Sequence[str], data_cfg: Mapping[str, Any], impute: str
) -> SparkTable:
    """The table with every feature column as double (rows with a missing one dropped for
    impute=drop); DataError naming the column for text, missing cells and negatives."""
    frame, source = data.frame, data.source
    missing_words = [str(v).strip() for v in data_cfg.get("missing_values") or ()]
    numeric = {f.name for f in frame.schema.fields if isinstance(f.dataType, NumericType)}
    checks, converted = [], {}
    for column in columns:
        if column in numeric:
            converted[column] = col(column).cast("double")
            continue
        text = F.trim(col(column).cast("string"))
        blank = text.isNull() | (text == "") | text.isin(missing_words)
        number = text.try_cast("double")
        bad = ~blank & number.isNull()
        converted[column] = F.when(~blank, number)
        checks += [
            F.count_if(bad).alias(f"bad::{column}"),
            F.first(F.when(bad, col(column)), True).alias(f"ex::{column}"),
        ]
    frame = frame.withColumns(converted)
    non_negative = [c for c in training_non_negative(data_cfg, data.head) if c in columns]
    checks += [F.count_if(col(c).isNull() | F.isnan(col(c))).alias(f"na::{c}") for c in columns]
    checks += [F.min(col(c)).alias(f"min::{c}") for c in non_negative]
    found = frame.agg(*checks).first()
    counts = found.asDict() if found is not None else {}
    for column in columns:
        if n_bad := counts.get(f"bad::{column}"):
            raise DataError(
                f"{source}: column '{column}' has {n_bad} cells that are not numbers (e.g. "
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
    missing = {c: int(counts[f"na::{c}"]) for c in columns}
    if any(missing.values()) and impute != "drop":
        shown = ", ".join(f"{c} ({n})" for c, n in missing.items() if n)
        raise DataError(
            f"{source}: feature columns have missing values: {shown}; engine=spark takes "
            "preprocess.impute=drop (rows with a missing feature are left out), or use "
            "engine=sklearn to impute them"
        )
    if any(missing.values()):
        frame = frame.na.drop(subset=list(columns))
        return replace(data, frame=frame, dropped_rows=data.n_rows - frame.count())
    return replace(data, frame=frame)
