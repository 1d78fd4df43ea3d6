"""engine=spark: one job's table read, fitted, scored and profiled by Spark on every row (names
and column roles from its first rows by segexp's own rules), logged with the run contract of
any run (docs/scale.md#spark-engine lists what differs)."""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import yaml
from omegaconf import DictConfig, OmegaConf
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType, StringType, StructField, StructType
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples

from segexp import contract
from segexp.data import load_customers, looks_like_transactions
from segexp.data.export import write_table
from segexp.data.features import resolve_features
from segexp.data.load import (
    CustomerTable,
    canonical_headers,
    check_feature_columns,
    load_customer_table,
)
from segexp.data.read import detect_delimiter, file_format
from segexp.engines import spark_fit
from segexp.engines.catalog import SPARK_ALGORITHMS, SPARK_SCALERS
from segexp.engines.spark_fit import FEATURES_COLUMN, SEGMENT_COLUMN, col, to_pandas
from segexp.engines.spark_session import get_session
from segexp.errors import ConfigError, DataError
from segexp.insight.profiles import SegmentProfile, segment_names, write_profile_files
from segexp.model import storage
from segexp.model.assign import training_non_negative
from segexp.model.metrics import Scores
from segexp.model.pipeline import check_preprocess_config, split_feature_kinds
from segexp.model.spec import (
    SCHEMA_FILE,
    JobSpec,
    dataset_of,
    describe_job,
    resolved_config,
    show_schema,
)
from segexp.tracking import staging
from segexp.tracking.publish import PublishRequest, RunFigures
from segexp.tracking.store import RunRecord

SPARK_MODEL_DIR = "spark-model"
HEAD_ROWS = 5000
FINGERPRINT_METHOD = "sha256 of the file's bytes"
_OWN_SPACE = "engine=spark scores the run's own space only"
NOT_COMPUTED = {
    "stability": "engine=spark does not refit resamples; use engine=sklearn for stability",
    **{f"ref_{name}": _OWN_SPACE for name in ("silhouette", "calinski_harabasz", "davies_bouldin")},
}


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


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes; of a Parquet folder's part files, in name order (Spark's
    _SUCCESS and .crc files say nothing about the rows)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir() and file.name.startswith((".", "_")):
            continue
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
    encoding = str(data_cfg.get("encoding") or "utf-8")
    delimiter = data_cfg.get("delimiter")
    if not delimiter:
        with path.open("rb") as handle:
            start = handle.read(1 << 16).decode(encoding, "replace")
        delimiter = "\t" if fmt == "tsv" else detect_delimiter(start.lstrip("\ufeff"))
    return spark.read.csv(
        str(path),
        header=True,
        inferSchema=schema is None,
        schema=schema,
        sep=str(delimiter),
        encoding=encoding,
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
    for column in [c for c in columns if c not in numeric]:
        text = F.trim(col(column).cast("string"))
        blank = text.isNull() | (text == "") | text.isin(missing_words)
        bad = ~blank & text.try_cast("double").isNull()
        converted[column] = F.when(~blank, text.try_cast("double"))
        checks += [F.count_if(bad), F.first(F.when(bad, col(column)), True)]
    frame = frame.withColumns({c: converted.get(c, col(c).cast("double")) for c in columns})
    non_negative = [c for c in training_non_negative(data_cfg, data.head) if c in columns]
    checks += [F.count_if(col(c).isNull() | F.isnan(col(c))) for c in columns]
    checks += [F.min(col(c)) for c in non_negative]
    found = list(frame.agg(*checks).first() or ())
    for column in converted:
        n_bad, example, found = found[0], found[1], found[2:]
        if n_bad:
            raise DataError(
                f"{source}: column '{column}' has {n_bad} cells that are not numbers (e.g. "
                f"{example!r}); fix them, list them in data.missing_values, "
                "or leave the column out of features.columns"
            )
    missing = dict(zip(columns, found[: len(columns)], strict=True))
    for column, low in zip(non_negative, found[len(columns) :], strict=True):
        if low is not None and low < 0:
            raise DataError(
                f"{source}: column '{column}' has negative values (min {low:g}); it cannot be "
                "negative (data.non_negative): fix those cells or set data.non_negative"
            )
    if not any(missing.values()):
        return replace(data, frame=frame)
    if impute != "drop":
        shown = ", ".join(f"{c} ({n})" for c, n in missing.items() if n)
        raise DataError(
            f"{source}: feature columns have missing values: {shown}; engine=spark takes "
            "preprocess.impute=drop (rows with a missing feature are left out), or use "
            "engine=sklearn to impute them"
        )
    frame = frame.na.drop(subset=list(columns))
    return replace(data, frame=frame, dropped_rows=data.n_rows - frame.count())


def validate_inputs(
    cfg: DictConfig, choices: dict[str, str] | None = None, *, show: bool = True
) -> tuple[JobSpec, SparkTable]:
    """The checks of ``segexp.jobs.job.validate_inputs`` on the table Spark read."""
    spec = describe_job(cfg, choices)
    engine = cfg.engine
    partitions = int(engine.get("shuffle_partitions", 8))
    session = get_session(str(engine.master), str(engine.driver_memory), partitions)
    data = read_table(session, cfg.data)
    listed = cfg.features.columns
    listed = OmegaConf.to_container(listed, resolve=True) if OmegaConf.is_list(listed) else listed
    spec.features, spec.columns = resolve_features(
        listed if isinstance(listed, list) else str(listed), spec.features, data.head
    )
    if show:
        show_schema(data.head)
    check_feature_columns(data.head, spec.columns, "features.columns")
    _, categorical = split_feature_kinds(spec.columns, data.head.categorical, data.head.frame)
    if categorical:
        raise ConfigError(
            f"features.columns: engine=spark clusters numeric columns; {', '.join(categorical)} "
            "is categorical: leave it out, or use engine=sklearn (one-hot, or algo=kprototypes)"
        )
    options = check_preprocess_config(cfg.preprocess, data.head.frame, spec.columns)
    logs = options.log1p or options.log1p_all
    if options.outliers != "none" or logs or options.impute not in ("none", "drop"):
        raise ConfigError(
            "preprocess: engine=spark takes preprocess.impute=none or drop, no outliers and no "
            f"log1p; got impute={options.impute}, outliers={options.outliers}, "
            f"log1p={'true' if options.log1p_all else list(options.log1p)}; use engine=sklearn "
            "for that preprocessing"
        )
    data = numeric_features(data, spec.columns, cfg.data, options.impute)
    spec.check_customers(data.n_rows - data.dropped_rows, data.source)
    return spec, data


def build_request(
    cfg: DictConfig,
    spec: JobSpec,
    job: SparkTable,
    tags: dict[str, str],
    tracking_uri: str,
    experiment_id: str = "",
    parent_run_id: str | None = None,
) -> PublishRequest:
    """Fit, score and stage the run with Spark (``job``: what ``validate_inputs`` read); a
    failure becomes a FAILED run that says why, not a raise."""
    params = spec.params(job.source)
    params.update(job.head.schema.params() if job.head.schema is not None else {})
    params.update({"engine": "spark", "engine.master": str(cfg.engine.master)})
    tags = {**tags, contract.TAG_PREFIX + "engine": "spark"}
    if job.path is not None:
        tags[contract.TAG_PREFIX + "data_fingerprint_method"] = FINGERPRINT_METHOD
    dataset = dataset_of(job.head)
    elements = job.n_rows * len(job.frame.columns)
    dataset["profile"] = json.dumps({"num_rows": job.n_rows, "num_elements": elements})
    record = RunRecord(f"{spec.run_name}-spark", params, tags=tags, datasets=[dataset])
    request = PublishRequest(tracking_uri, experiment_id, parent_run_id, record)
    folder = staging.mkdtemp("segexp-run-")
    record.artifact_dir = str(folder)
    try:
        request.figures = _fit_and_stage(cfg, spec, job, record, folder)
    except Exception as exc:  # the fit failed: the run ends FAILED and says why
        record.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    return request


def _fit_and_stage(
    cfg: DictConfig, spec: JobSpec, job: SparkTable, record: RunRecord, folder: Path
) -> RunFigures | None:
    head, columns = job.head, list(spec.columns)
    settings = spark_fit.spark_settings(spec.target, spec.hyperparams, spec.k, spec.seed)
    scaler = SPARK_SCALERS[str(cfg.scaler._target_)]
    record.params.update({f"spark.{k}": v for k, v in settings.items()})
    frame = job.frame.persist()
    spark_dir = folder / SPARK_MODEL_DIR
    fitted = spark_fit.fit(frame, columns, scaler, spec.target, settings, head.frame, spark_dir)
    assigned = fitted.assigned.persist()
    try:
        scores = spark_fit.score(assigned)
        metrics = {**scores.values, "fit_seconds": fitted.fit_seconds}
        if spec.impute == "drop":
            metrics["rows_dropped"] = float(job.dropped_rows)
        n_customers = metrics["n_customers"]
        likelihood = fitted.log_likelihood
        metrics.update(spark_fit.gmm_criteria(likelihood, spec.k, len(columns), n_customers))
        if head.label_column is not None and cfg.evaluation.get("ground_truth", True):
            metrics.update(_ground_truth(assigned, head.label_column))
        record.metrics = metrics
        undefined = {**scores.undefined, **NOT_COMPUTED}
        record.tags.update({contract.TAG_UNDEFINED_PREFIX + k: v for k, v in undefined.items()})
        record.tags.update({contract.TAG_PREFIX + k: v for k, v in scores.notes.items()})
        config = yaml.safe_dump(resolved_config(cfg), sort_keys=False)
        (folder / contract.CONFIG_FILE).write_text(config)
        if head.schema is not None:
            (folder / SCHEMA_FILE).write_text(json.dumps(head.schema.records(), indent=2))
        keep = [c for c in (head.id_column,) if c] + columns
        _write_assignments(assigned, keep, folder / contract.ASSIGNMENTS_PARQUET)
        labels = cfg.data.get("value_labels")
        profile = spark_fit.spark_profile(
            assigned, head.frame, columns, cfg.naming, head.categorical, labels
        )
        write_profile_files(folder, profile, make_plots=False)
        model_dir = folder / contract.MODEL_DIR
        model_dir.mkdir()
        storage.save(fitted.pipeline, model_dir / contract.PIPELINE_FILE)
        meta = {
            "input_columns": columns,
            "numeric_columns": columns,
            "categorical_columns": [],
            "input_dtypes": dict.fromkeys(columns, "float64"),
            "id_column": head.id_column,
            "segments": profile.segments,
            "has_noise": False,
            "algorithm": SPARK_ALGORITHMS[spec.target],
            "engine": "spark",
            "sklearn_version": sklearn.__version__,
            "segexp_version": contract.VERSION,
            "non_negative": [c for c in training_non_negative(cfg.data, head) if c in columns],
            "segment_names": {str(s): n for s, n in segment_names(profile).items()},
        }
        (model_dir / contract.MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
        write_table(head.frame[columns].head(5), model_dir / "input_example.csv", "csv")
        return _figures(cfg, spec, assigned, profile, scores, int(n_customers))
    finally:
        assigned.unpersist()
        frame.unpersist()


def _ground_truth(assigned: DataFrame, label_column: str) -> dict[str, float]:
    """ARI and NMI against the label column, from Spark's contingency counts."""
    label = col(label_column)
    pairs = assigned.where(label.isNotNull()).groupBy(label.cast("string"), SEGMENT_COLUMN)
    counts = to_pandas(pairs.count().toDF("t", "s", "n"))
    truth, predicted = (np.repeat(counts[c].to_numpy(), counts["n"]) for c in ("t", "s"))
    return {
        "ari": float(adjusted_rand_score(truth, predicted)),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
    }


def _write_assignments(assigned: DataFrame, keep: list[str], parquet: Path) -> None:
    """Spark's Parquet folder of id, features and segment, without Spark's _SUCCESS and .crc
    side files; promote, rerun and the Python API read it (segexp.tracking.assignments)."""
    rows = assigned.select(*[col(c) for c in keep], F.col(SEGMENT_COLUMN).cast("long"))
    rows.write.mode("overwrite").parquet(str(parquet))
    for path in parquet.rglob("*"):
        if path.is_file() and (path.name == "_SUCCESS" or path.name.endswith(".crc")):
            path.unlink()


def _figures(
    cfg: DictConfig,
    spec: JobSpec,
    assigned: DataFrame,
    profile: SegmentProfile,
    scores: Scores,
    total: int,
) -> RunFigures | None:
    """The run's figures from a seeded sample of at most engine.sample_rows customers."""
    if not cfg.plots.enabled:
        return None
    limit = int(cfg.engine.sample_rows)
    fraction = 1.0 if total <= limit else 1.2 * limit / total
    sample = to_pandas(
        assigned.sample(False, fraction, seed=spec.seed)
        .select(
            *[col(c) for c in spec.columns],
            vector_to_array(F.col(FEATURES_COLUMN)).alias("segexp_x"),
            F.col(SEGMENT_COLUMN).cast("long").alias("segexp_segment"),
        )
        .limit(limit)
    )
    transformed = np.stack(sample["segexp_x"].to_numpy()) if len(sample) else np.empty((0, 0))
    labels = sample["segexp_segment"].to_numpy(dtype=int)
    per_customer = silhouette_labels = None
    reason = scores.undefined.get("silhouette", "")
    shown = min(len(labels), int(cfg.metrics.silhouette_max_rows))
    if not reason and 2 <= len(np.unique(labels[:shown])) < shown:
        # the diagram in the metric's own space: squared Euclidean, as Spark's silhouette
        per_customer = silhouette_samples(transformed[:shown], labels[:shown], metric="sqeuclidean")
        silhouette_labels = labels[:shown]
    elif not reason:
        reason = "the plotted sample holds fewer than 2 segments"
    return RunFigures(
        title=spec.run_name,
        dpi=int(cfg.plots.dpi),
        features=sample[list(spec.columns)],
        transformed=transformed,
        labels=labels,
        silhouette_per_customer=per_customer,
        silhouette_labels=silhouette_labels,
        silhouette_reason=reason,
        profile=profile,
    )
