"""``engine=spark``: one job's run fitted, scored and profiled by Spark, logged as any run.

``segexp.jobs.job`` hands a job here when ``engine.name`` is ``spark``:
``validate_inputs`` (config, pyspark and Java, the table read by Spark, the
feature columns) before any run exists, then ``build_request`` (fit, score,
profile, stage the run's files) in place of its own. The run carries the same
contract as an engine=sklearn run:

- params of the job (``algo``, ``k``, ``scaler``, ``features``, ...), plus ``engine``,
  ``engine.master`` and the ``spark.*`` settings the algorithm was fitted with;
- metrics ``silhouette`` (Spark's, on squared Euclidean distances: tag
  ``segexp.silhouette_space=squared_euclidean``), ``inertia``,
  ``calinski_harabasz``, ``davies_bouldin``, ``n_clusters``, ``noise_fraction``,
  ``min_segment_share``, ``max_segment_share``, ``n_customers``, ``fit_seconds``,
  ``ari``/``nmi`` with a label column, ``bic``/``aic`` for gmm; ``stability`` and
  the ``ref_*`` scores are not computed (``segexp.undefined.*`` tags say so);
- artifacts ``config.yaml``, ``schema.json``, ``assignments.parquet`` (Spark's
  Parquet folder: id, features, segment of every customer; promote validates
  against it), ``profile.csv``/``.md``,
  ``segments.json``, ``model/pipeline.skops`` (scikit-learn steps predicting as
  the Spark model, ``segexp.model.centroids``) with ``model/meta.json``,
  ``spark-model/`` (the Spark ``PipelineModel`` as Spark saves it), and the plots,
  drawn from a seeded sample of at most ``engine.sample_rows`` customers.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sklearn
import yaml
from omegaconf import DictConfig, OmegaConf

from segexp.contract import (
    ASSIGNMENTS_PARQUET,
    CONFIG_FILE,
    MODEL_DIR,
    MODEL_META_FILE,
    PIPELINE_FILE,
    TAG_PREFIX,
    TAG_UNDEFINED_PREFIX,
    VERSION,
)
from segexp.engines import spark_data, spark_fit, spark_scores
from segexp.engines.catalog import SPARK_SCALERS
from segexp.engines.spark_session import get_session
from segexp.errors import ConfigError, DataError
from segexp.model import storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segexp.model.spec import JobSpec
    from segexp.tracking.publish import PublishRequest

SPARK_MODEL_DIR = "spark-model"
TAG_ENGINE = TAG_PREFIX + "engine"
NOT_COMPUTED = {
    "stability": "engine=spark does not refit resamples; use engine=sklearn for stability",
    "ref_silhouette": "engine=spark scores the run's own space only",
    "ref_calinski_harabasz": "engine=spark scores the run's own space only",
    "ref_davies_bouldin": "engine=spark scores the run's own space only",
}


@dataclass
class SparkJobData:
    """What ``validate_inputs`` found: the table as Spark reads it, ready to fit."""

    data: spark_data.SparkTable
    frame: DataFrame  # every usable row, feature columns as doubles
    dropped_rows: int
    scaler: str

    @property
    def source(self) -> str:
        return self.data.head.source

    @property
    def fingerprint(self) -> str:
        return self.data.fingerprint


def session_for(cfg: DictConfig):
    engine = cfg.engine
    return get_session(
        str(engine.master), str(engine.driver_memory), int(engine.get("shuffle_partitions", 8))
    )


def validate_inputs(cfg: DictConfig, choices: dict[str, str] | None = None, *, show: bool = True):
    """(spec, SparkJobData): the checks of ``segexp.jobs.job.validate_inputs`` on Spark's
    reading of the table (the config itself was checked by ``check_job_config``)."""
    from segexp.data.features import resolve_features
    from segexp.model.pipeline import check_preprocess_config, split_feature_kinds
    from segexp.model.spec import describe_job, show_schema

    spec = describe_job(cfg, choices)
    scaler = SPARK_SCALERS[str(cfg.scaler._target_)]
    data = spark_data.read_table(session_for(cfg), cfg.data)
    listed = cfg.features.columns
    listed = OmegaConf.to_container(listed, resolve=True) if OmegaConf.is_list(listed) else listed
    spec.features, spec.columns = resolve_features(
        listed if isinstance(listed, list) else str(listed), spec.features, data.head
    )
    if show:
        show_schema(data.head)
    from segexp.data.load import check_feature_columns

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
    frame, dropped = spark_data.numeric_features(data, spec.columns, cfg.data, options.impute)
    n_rows = data.n_rows - dropped
    if spec.k > n_rows:
        raise DataError(
            f"{data.head.source}: {n_rows} customers is fewer than k={spec.k}; "
            f"lower k to at most {n_rows} or load more customers"
        )
    return spec, SparkJobData(data, frame, dropped, scaler)


def build_request(
    cfg: DictConfig,
    spec: JobSpec,
    job: Any,
    tags: dict[str, str],
    tracking_uri: str,
    experiment_id: str = "",
    parent_run_id: str | None = None,
) -> PublishRequest:
    """Fit, score and stage the run with Spark; what is left to publish (as the job's own
    ``build_request``: a failure becomes a FAILED run that says why, not a raise).
    ``job`` is what ``validate_inputs`` returned: a ``SparkJobData``."""
    assert isinstance(job, SparkJobData), type(job)
    from segexp.tracking import staging
    from segexp.tracking.publish import PublishRequest
    from segexp.tracking.store import RunRecord

    params = spec.params(job.source)
    if job.data.head.schema is not None:
        params.update(job.data.head.schema.params())
    params.update({"engine": "spark", "engine.master": str(cfg.engine.master)})
    tags = {**tags, TAG_ENGINE: "spark", TAG_PREFIX + "silhouette_space": "squared_euclidean"}
    if job.data.path is not None:
        tags[TAG_PREFIX + "data_fingerprint_method"] = spark_data.FINGERPRINT_METHOD
    record = RunRecord(
        run_name=f"{spec.run_name}-spark", params=params, tags=tags, datasets=[_dataset(job)]
    )
    request = PublishRequest(tracking_uri, experiment_id, parent_run_id, record)
    folder = staging.mkdtemp("segexp-run-")
    record.artifact_dir = str(folder)
    frame = job.frame.persist()
    try:
        request.figures = _fit_and_stage(cfg, spec, job, frame, record, folder)
    except Exception as exc:  # the fit failed: the run ends FAILED and says why
        record.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    finally:
        frame.unpersist()
    return request


def _dataset(job: SparkJobData) -> dict[str, str]:
    from segexp.model.spec import dataset_of

    dataset = dataset_of(job.data.head)
    width = len(job.data.frame.columns)
    dataset["profile"] = json.dumps(
        {"num_rows": job.data.n_rows, "num_elements": job.data.n_rows * width}
    )
    return dataset


def _fit_and_stage(cfg, spec, job: SparkJobData, frame, record, folder: Path):
    from segexp.engines.spark_profile import spark_profile
    from segexp.insight.profiles import segment_names, write_profile_files
    from segexp.model.assign import training_non_negative

    head = job.data.head
    settings = spark_fit.spark_settings(spec.target, spec.hyperparams, spec.k, spec.seed)
    fitted = spark_fit.fit(
        frame,
        spec.columns,
        job.scaler,
        spec.target,
        settings,
        head.frame,
        folder / SPARK_MODEL_DIR,
    )
    record.params.update({f"spark.{k}": v for k, v in settings.items()})
    assigned = fitted.assigned.persist()
    try:
        scores = spark_scores.score_assigned(
            assigned, spark_fit.FEATURES_COLUMN, spark_fit.SEGMENT_COLUMN, len(spec.columns)
        )
        sizes = _sizes(assigned)
        n_customers = int(sum(sizes.values()))
        metrics = dict(scores.values)
        metrics.update(fit_seconds=fitted.fit_seconds, n_customers=float(n_customers))
        if spec.impute == "drop":
            metrics["rows_dropped"] = float(job.dropped_rows)
        metrics.update(
            spark_scores.gmm_criteria(fitted.log_likelihood, spec.k, len(spec.columns), n_customers)
        )
        undefined = {**scores.undefined, **NOT_COMPUTED}
        if head.label_column is not None and cfg.evaluation.get("ground_truth", True):
            metrics.update(_ground_truth(assigned, head.label_column))
        record.metrics = metrics
        record.tags.update({TAG_UNDEFINED_PREFIX + k: v for k, v in undefined.items()})
        record.tags.update({TAG_PREFIX + k: v for k, v in scores.notes.items()})

        _write_config(folder, cfg, head)
        keep = [c for c in (head.id_column,) if c] + list(spec.columns)
        _write_assignments(assigned, keep, folder)
        profile = spark_profile(
            assigned,
            head.frame,
            spec.columns,
            cfg.naming,
            categorical_columns=head.categorical,
        )
        write_profile_files(folder, profile, make_plots=False)
        model_dir = folder / MODEL_DIR
        model_dir.mkdir()
        storage.save(fitted.pipeline, model_dir / PIPELINE_FILE)
        meta = {
            "input_columns": list(spec.columns),
            "numeric_columns": list(spec.columns),
            "categorical_columns": [],
            "input_dtypes": {c: "float64" for c in spec.columns},
            "id_column": head.id_column,
            "segments": sorted(sizes),
            "has_noise": False,
            "algorithm": fitted.algorithm,
            "engine": "spark",
            "sklearn_version": sklearn.__version__,
            "segexp_version": VERSION,
            "non_negative": [c for c in training_non_negative(cfg.data, head) if c in spec.columns],
            "segment_names": {str(s): n for s, n in segment_names(profile).items()},
        }
        (model_dir / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
        head.frame[list(spec.columns)].head(5).to_csv(model_dir / "input_example.csv", index=False)
        return _figures(cfg, spec, assigned, profile, scores, n_customers)
    finally:
        assigned.unpersist()


def _sizes(assigned) -> dict[int, int]:
    """Customers per segment."""
    rows = assigned.groupBy(spark_fit.SEGMENT_COLUMN).count().collect()
    return {int(r[0]): int(r[1]) for r in rows}


def _ground_truth(assigned, label_column: str) -> dict[str, float]:
    """ARI and NMI against the label column, from Spark's contingency counts."""
    from pyspark.sql import functions as F
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    counts = spark_data.to_pandas(
        assigned.where(F.col(spark_data.quoted(label_column)).isNotNull())
        .groupBy(F.col(spark_data.quoted(label_column)).cast("string").alias("t"), "segment")
        .count()
    )
    repeats = counts["count"].to_numpy(dtype=int)
    truth = np.repeat(counts["t"].to_numpy(dtype=str), repeats)
    predicted = np.repeat(counts["segment"].to_numpy(dtype=int), repeats)
    return {
        "ari": float(adjusted_rand_score(truth, predicted)),
        "nmi": float(normalized_mutual_info_score(truth, predicted)),
    }


def _write_config(folder: Path, cfg: DictConfig, head) -> None:
    from segexp.model.spec import SCHEMA_FILE, resolved_config

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    (folder / CONFIG_FILE).write_text(
        yaml.dump(resolved_config(cfg), Dumper=dumper, sort_keys=False)
    )
    if head.schema is not None:
        (folder / SCHEMA_FILE).write_text(json.dumps(head.schema.records(), indent=2))


def _write_assignments(assigned, keep: list[str], folder: Path) -> None:
    """assignments.parquet (Spark's folder of part files): promote, rerun and the Python
    API read it (segexp.tracking.assignments)."""
    from pyspark.sql import functions as F

    columns = [F.col(spark_data.quoted(c)) for c in keep]
    rows = assigned.select(*columns, F.col(spark_fit.SEGMENT_COLUMN).cast("long"))
    parquet = folder / ASSIGNMENTS_PARQUET
    rows.write.mode("overwrite").parquet(str(parquet))
    _drop_spark_markers(parquet)


def _drop_spark_markers(folder: Path) -> None:
    """Spark's _SUCCESS and .crc side files: not part of the table."""
    for path in folder.rglob("*"):
        if path.is_file() and (path.name == "_SUCCESS" or path.name.endswith(".crc")):
            path.unlink()


def _figures(cfg, spec, assigned, profile, scores, total: int):
    """The run's figures from a seeded sample of at most engine.sample_rows customers."""
    if not cfg.plots.enabled:
        return None
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F
    from sklearn.metrics import silhouette_samples

    from segexp.tracking.publish import RunFigures

    limit = int(cfg.engine.sample_rows)
    chosen = assigned
    if total > limit:
        chosen = assigned.sample(False, min(1.0, 1.2 * limit / total), seed=spec.seed)
    sample = spark_data.to_pandas(
        chosen.select(
            *[F.col(spark_data.quoted(c)) for c in spec.columns],
            vector_to_array(F.col(spark_fit.FEATURES_COLUMN)).alias("segexp_x"),
            F.col(spark_fit.SEGMENT_COLUMN).cast("long").alias("segexp_segment"),
        ).limit(limit)
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
