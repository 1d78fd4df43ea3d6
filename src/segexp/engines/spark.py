"""engine=spark: one job's run read, fitted, scored and profiled by Spark, logged with the
run contract of any run (docs/scale.md#spark-engine lists what differs)."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
import sklearn
import yaml
from omegaconf import DictConfig, OmegaConf
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples

from segexp import contract
from segexp.data.export import write_table
from segexp.data.features import resolve_features
from segexp.data.load import check_feature_columns
from segexp.engines import spark_data, spark_fit
from segexp.engines.catalog import SPARK_ALGORITHMS, SPARK_SCALERS
from segexp.engines.spark_data import SparkTable, col, to_pandas
from segexp.engines.spark_profile import spark_profile
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
NOT_COMPUTED = {
    "stability": "engine=spark does not refit resamples; use engine=sklearn for stability",
    "ref_silhouette": "engine=spark scores the run's own space only",
    "ref_calinski_harabasz": "engine=spark scores the run's own space only",
    "ref_davies_bouldin": "engine=spark scores the run's own space only",
}


def validate_inputs(
    cfg: DictConfig, choices: dict[str, str] | None = None, *, show: bool = True
) -> tuple[JobSpec, SparkTable]:
    """The checks of ``segexp.jobs.job.validate_inputs`` on the table Spark read."""
    spec = describe_job(cfg, choices)
    engine = cfg.engine
    session = get_session(
        str(engine.master), str(engine.driver_memory), int(engine.get("shuffle_partitions", 8))
    )
    data = spark_data.read_table(session, cfg.data)
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
    data = spark_data.numeric_features(data, spec.columns, cfg.data, options.impute)
    n_rows = data.n_rows - data.dropped_rows
    if spec.k > n_rows:
        raise DataError(
            f"{data.source}: {n_rows} customers is fewer than k={spec.k}; "
            f"lower k to at most {n_rows} or load more customers"
        )
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
    if job.head.schema is not None:
        params.update(job.head.schema.params())
    params.update({"engine": "spark", "engine.master": str(cfg.engine.master)})
    tags = {**tags, contract.TAG_PREFIX + "engine": "spark"}
    if job.path is not None:
        tags[contract.TAG_PREFIX + "data_fingerprint_method"] = spark_data.FINGERPRINT_METHOD
    dataset = dataset_of(job.head)
    width = len(job.frame.columns)
    dataset["profile"] = json.dumps({"num_rows": job.n_rows, "num_elements": job.n_rows * width})
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
    head = job.head
    settings = spark_fit.spark_settings(spec.target, spec.hyperparams, spec.k, spec.seed)
    scaler = SPARK_SCALERS[str(cfg.scaler._target_)]
    record.params.update({f"spark.{k}": v for k, v in settings.items()})
    frame = job.frame.persist()
    fitted = spark_fit.fit(
        frame, spec.columns, scaler, spec.target, settings, head.frame, folder / SPARK_MODEL_DIR
    )
    assigned = fitted.assigned.persist()
    try:
        scores = spark_fit.score(assigned)
        metrics = {**scores.values, "fit_seconds": fitted.fit_seconds}
        if spec.impute == "drop":
            metrics["rows_dropped"] = float(job.dropped_rows)
        n_customers = metrics["n_customers"]
        metrics.update(
            spark_fit.gmm_criteria(fitted.log_likelihood, spec.k, len(spec.columns), n_customers)
        )
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
        keep = [c for c in (head.id_column,) if c] + list(spec.columns)
        _write_assignments(assigned, keep, folder / contract.ASSIGNMENTS_PARQUET)
        labels = cfg.data.get("value_labels")
        profile = spark_profile(
            assigned, head.frame, spec.columns, cfg.naming, head.categorical, labels
        )
        write_profile_files(folder, profile, make_plots=False)
        model_dir = folder / contract.MODEL_DIR
        model_dir.mkdir()
        storage.save(fitted.pipeline, model_dir / contract.PIPELINE_FILE)
        meta = {
            "input_columns": list(spec.columns),
            "numeric_columns": list(spec.columns),
            "categorical_columns": [],
            "input_dtypes": {c: "float64" for c in spec.columns},
            "id_column": head.id_column,
            "segments": profile.segments,
            "has_noise": False,
            "algorithm": SPARK_ALGORITHMS[spec.target],
            "engine": "spark",
            "sklearn_version": sklearn.__version__,
            "segexp_version": contract.VERSION,
            "non_negative": [c for c in training_non_negative(cfg.data, head) if c in spec.columns],
            "segment_names": {str(s): n for s, n in segment_names(profile).items()},
        }
        (model_dir / contract.MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
        write_table(head.frame[list(spec.columns)].head(5), model_dir / "input_example.csv", "csv")
        return _figures(cfg, spec, assigned, profile, scores, int(n_customers))
    finally:
        assigned.unpersist()
        frame.unpersist()


def _ground_truth(assigned: DataFrame, label_column: str) -> dict[str, float]:
    """ARI and NMI against the label column, from Spark's contingency counts."""
    label = col(label_column)
    pairs = assigned.where(label.isNotNull()).groupBy(
        label.cast("string").alias("t"), spark_fit.SEGMENT_COLUMN
    )
    counts = to_pandas(pairs.count())
    repeats = counts["count"].to_numpy(dtype=int)
    truth = np.repeat(counts["t"].to_numpy(dtype=str), repeats)
    predicted = np.repeat(counts[spark_fit.SEGMENT_COLUMN].to_numpy(dtype=int), repeats)
    return {
        "ari": float(adjusted_rand_score(truth, predicted)),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
    }


def _write_assignments(assigned: DataFrame, keep: list[str], parquet: Path) -> None:
    """Spark's Parquet folder of id, features and segment, without Spark's _SUCCESS and .crc
    side files; promote, rerun and the Python API read it (segexp.tracking.assignments)."""
    rows = assigned.select(*[col(c) for c in keep], F.col(spark_fit.SEGMENT_COLUMN).cast("long"))
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
            vector_to_array(F.col(spark_fit.FEATURES_COLUMN)).alias("segexp_x"),
            F.col(spark_fit.SEGMENT_COLUMN).cast("long").alias("segexp_segment"),
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
