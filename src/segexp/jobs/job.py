"""One job: load data, fit one segmentation, score it, log it as one MLflow run.

``run_job`` never raises for the job's own failure (``invalid``: no run; ``failed``: the run
ends FAILED), so a sweep goes on; the run reaches MLflow only through
``segexp.tracking.store.log_run``, and a store that refuses it raises ``StoreWriteError``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import yaml
from omegaconf import DictConfig, OmegaConf
from sklearn.neighbors import KDTree, NearestNeighbors

from segexp.contract import (
    CONFIG_FILE,
    MODEL_DIR,
    MODEL_META_FILE,
    NOISE_LABEL,
    PIPELINE_FILE,
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_FIT_THREADS,
    TAG_JOB_NUM,
    TAG_KIND,
    TAG_PREFIX,
    TAG_SWEEP_ID,
    TAG_UNDEFINED_PREFIX,
    VERSION,
)
from segexp.data import CustomerTable, load_customers, validate_feature_table
from segexp.data.export import write_table
from segexp.data.features import resolve_features
from segexp.data.schema import derivations
from segexp.engines import engine_for
from segexp.errors import ConfigError, SegexpError
from segexp.insight.profiles import (
    SegmentProfile,
    compute_profile,
    segment_names,
    write_profile_files,
)
from segexp.jobs.outcomes import JobOutcome, SweepContext
from segexp.jobs.threads import thread_policy
from segexp.jobs.validation import check_job_config
from segexp.model import storage
from segexp.model.assign import training_non_negative
from segexp.model.evaluation import evaluate_run
from segexp.model.metrics import mixture_criteria, score_fitted
from segexp.model.pipeline import (
    build_prepare_step,
    build_scaler,
    check_preprocess_config,
    fit_segmentation,
    split_feature_kinds,
)
from segexp.model.spec import (
    SCHEMA_FILE,
    TAG_CONFIG_KEY,
    JobSpec,
    dataset_of,
    describe_job,
    resolved_config,
    show_schema,
)
from segexp.tracking import staging
from segexp.tracking.assignments import write_assignments
from segexp.tracking.publish import PublishRequest, RunFigures, publish
from segexp.tracking.store import RunRecord, find_run_name, resolve_tracking_uri, tracker_for

log = logging.getLogger("segexp")

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available
# Density algorithms that hold every customer's neighbours within a radius: the radius key.
DENSITY_RADIUS = {"sklearn.cluster.DBSCAN": "eps"}
# DBSCAN's bytes per neighbour entry (an 8-byte index plus the tree query's buffers: 13.2-13.9
# measured by benchmarks/dbscan_memory.py at 10k-40k customers) and per customer.
BYTES_PER_NEIGHBOUR = 13.0
BYTES_PER_ROW = 200.0
SAMPLE_ROWS = 2000


def neighbour_memory_mb(
    X, radius: float, params: dict | None = None, seed: int = 0
) -> tuple[float, float]:
    """(estimated MB of the neighbourhood lists, mean neighbours per customer): neighbours
    counted for a seeded sample of at most ``SAMPLE_ROWS`` customers, scaled to all."""
    params = params or {}
    X = np.asarray(X, dtype=float)
    n = len(X)
    if n == 0:
        return 0.0, 0.0
    sample = X[np.random.default_rng(seed).choice(n, size=min(SAMPLE_ROWS, n), replace=False)]
    metric, p = params.get("metric", "euclidean"), params.get("p")
    if metric in ("euclidean", "l2", "minkowski") and (metric != "minkowski" or p in (None, 2)):
        counts = KDTree(X).query_radius(sample, r=radius, count_only=True)
    else:
        model = NearestNeighbors(
            radius=radius,
            metric=metric,
            p=2 if p is None else p,
            metric_params=params.get("metric_params"),
        ).fit(X)
        counts = np.diff(model.radius_neighbors_graph(sample, mode="connectivity").indptr)
    mean = float(np.mean(counts))
    return (mean * n * BYTES_PER_NEIGHBOUR + n * BYTES_PER_ROW) / 2**20, mean


def _check_size_limits(cfg: DictConfig, spec: JobSpec, table: CustomerTable) -> None:
    n_rows = len(table.frame)
    spec.check_customers(n_rows, table.source)
    limit = int(cfg.limits.max_rows_quadratic)
    quadratic = {"sklearn.cluster.AgglomerativeClustering", "sklearn.cluster.SpectralClustering"}
    if (
        spec.target in quadratic
        and spec.hyperparams.get("affinity") != "nearest_neighbors"
        and n_rows > limit
    ):
        raise ConfigError(
            f"algo={spec.algo}: memory grows with the square of the customer count and "
            f"{n_rows} customers exceed limits.max_rows_quadratic={limit}; use algo=kmeans, "
            f"algo=minibatch_kmeans or algo=gmm, or raise limits.max_rows_quadratic"
        )
    _check_neighbour_memory(cfg, spec, table)


def _fitted_space(cfg: DictConfig, spec: JobSpec, table: CustomerTable) -> np.ndarray:
    """The rows as the clusterer will see them (preprocessing and scaler fitted here)."""
    options = check_preprocess_config(cfg.preprocess, table.frame, spec.columns)
    features = table.frame[list(spec.columns)]
    if options.impute == "drop":
        features = features[features.notna().all(axis=1)]
    numeric, categorical = split_feature_kinds(spec.columns, table.categorical, features)
    encoded = np.asarray(
        build_prepare_step(numeric, categorical, options).fit_transform(features), dtype=float
    )
    return np.asarray(build_scaler(cfg.scaler).fit_transform(encoded), dtype=float)


def _check_neighbour_memory(cfg: DictConfig, spec: JobSpec, table: CustomerTable) -> None:
    """Density algorithms (DBSCAN) hold every customer's neighbours within the radius:
    refuse a run whose estimated lists exceed limits.max_neighbour_memory_mb."""
    radius_key = DENSITY_RADIUS.get(spec.target)
    if radius_key is None:
        return
    radius = spec.hyperparams.get(radius_key)
    limit = float(cfg.limits.get("max_neighbour_memory_mb", 2048))
    n_rows = len(table.frame)
    # Nothing to estimate while even every customer next to every other fits the limit.
    if (
        not isinstance(radius, int | float)
        or n_rows * n_rows * BYTES_PER_NEIGHBOUR / 2**20 <= limit
    ):
        return
    X = _fitted_space(cfg, spec, table)
    estimate, mean = neighbour_memory_mb(X, float(radius), spec.hyperparams, seed=spec.seed)
    if estimate > limit:
        raise ConfigError(
            f"algo={spec.algo}: its neighbourhood lists would take about {estimate:,.0f} MB "
            f"({len(X)} customers x {mean:,.0f} neighbours within {radius_key}={radius}, "
            f"counted on a seeded sample), more than limits.max_neighbour_memory_mb="
            f"{limit:g}; use a smaller algo.{radius_key}, algo=hdbscan (density without "
            f"the lists), algo=kmeans, algo=gmm or algo=birch, or raise "
            f"limits.max_neighbour_memory_mb"
        )


def validate_inputs(
    cfg: DictConfig,
    choices: dict[str, str] | None = None,
    *,
    show: bool = True,
    checked: bool = False,
):
    """Everything checkable before a run exists: config values (unless ``checked``
    already) and the data itself (``show``: print the table's column roles)."""
    if not checked:
        check_job_config(cfg)
    engine = engine_for(cfg)
    if engine is not None:  # engine=spark: Spark reads and checks the table
        return engine.validate_inputs(cfg, choices, show=show)
    spec = describe_job(cfg, choices)
    table = load_customers(cfg.data)
    listed = cfg.features.columns
    listed = OmegaConf.to_container(listed, resolve=True) if OmegaConf.is_list(listed) else listed
    spec.features, spec.columns = resolve_features(
        listed if isinstance(listed, list) else str(listed), spec.features, table
    )
    if show:
        show_schema(table)
    validate_feature_table(table, spec.columns, impute=spec.impute, config_key="features.columns")
    check_preprocess_config(cfg.preprocess, table.frame, spec.columns)
    _check_size_limits(cfg, spec, table)
    return spec, table


@lru_cache(maxsize=1)
def code_version() -> str:
    """segexp version plus the git commit of the checkout it runs from, when there is one."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"{VERSION}+{commit}"


def _stage_artifacts(
    folder: Path, cfg: DictConfig, spec: JobSpec, table: CustomerTable, fitted
) -> SegmentProfile:
    """The run's tables and model files; its figures are drawn when it is published."""
    (folder / CONFIG_FILE).write_text(
        yaml.dump(resolved_config(cfg), Dumper=_YAML_DUMPER, sort_keys=False)
    )
    if table.schema is not None:
        (folder / SCHEMA_FILE).write_text(json.dumps(table.schema.records(), indent=2))
    rows = table.frame.iloc[fitted.kept_rows]
    keep = [c for c in (table.id_column,) if c] + spec.columns
    assignments = rows[keep].copy()
    assignments["segment"] = fitted.labels
    write_assignments(assignments, folder, int(cfg.artifacts.assignments_parquet_above_rows))

    model_dir = folder / MODEL_DIR
    model_dir.mkdir()
    storage.save(fitted.pipeline, model_dir / PIPELINE_FILE)  # skops: loads without running code
    numeric, categorical = split_feature_kinds(spec.columns, table.categorical, rows)
    meta = {
        "input_columns": spec.columns,
        "numeric_columns": numeric,
        "categorical_columns": categorical,
        "input_dtypes": {c: str(rows[c].dtype) for c in spec.columns},
        "id_column": table.id_column,
        "segments": sorted(int(s) for s in np.unique(fitted.labels) if s != NOISE_LABEL),
        "has_noise": bool((fitted.labels == NOISE_LABEL).any()),
        "algorithm": spec.target,
        "sklearn_version": sklearn.__version__,
        "segexp_version": VERSION,
        # columns training required non-negative (data.non_negative): predict refuses
        # negatives there too; absent in older runs (no such check)
        "non_negative": [c for c in training_non_negative(cfg.data, table) if c in spec.columns],
        "derived": {
            c: how
            for c, how in (derivations(table.schema) if table.schema else {}).items()
            if c in spec.columns
        },
    }
    profile = compute_profile(
        rows,
        fitted.labels,
        spec.columns,
        cfg.naming,
        categorical_columns=table.categorical,
        value_labels=cfg.data.get("value_labels"),
    )
    write_profile_files(folder, profile, make_plots=False)
    names = segment_names(profile)
    meta["segment_names"] = {str(segment): name for segment, name in names.items()}
    (model_dir / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
    write_table(rows[spec.columns].head(5), model_dir / "input_example.csv", "csv")
    return profile


def _figures(cfg: DictConfig, spec: JobSpec, fitted, scores, evaluation, profile):
    """What the run's figures are drawn from; None with plots.enabled=false."""
    if not cfg.plots.enabled:
        return None
    n_rows, shown = len(fitted.labels), int(cfg.plots.max_points)
    sample: Any = slice(None)
    if n_rows > shown:  # a seeded sample for the scatter (sent to the pool, drawn there)
        sample = np.sort(np.random.default_rng(spec.seed).choice(n_rows, shown, replace=False))
    return RunFigures(
        title=spec.run_name,
        dpi=int(cfg.plots.dpi),
        features=fitted.features.iloc[sample],
        transformed=fitted.transformed[sample],
        labels=fitted.labels[sample],
        total=n_rows if n_rows > shown else None,
        silhouette_per_customer=scores.silhouette_per_customer,
        silhouette_labels=scores.silhouette_labels,
        silhouette_reason=scores.undefined.get("silhouette", ""),
        profile=profile,
        k_distance=next(iter(evaluation.plot_inputs.values()), None),
    )


def _record_metrics_and_tags(record: RunRecord, spec, table, fitted, scores, evaluation) -> None:
    metrics = dict(scores.values)
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["n_customers"] = float(len(fitted.labels))
    if spec.impute == "drop":
        metrics["rows_dropped"] = float(fitted.dropped_rows)
    metrics.update(table.notes)  # rfm.* rule counts of a transaction log
    metrics.update(fitted.notes)  # outlier_cells_clipped
    metrics.update(evaluation.values)
    metrics.update(mixture_criteria(fitted.pipeline[-1], fitted.transformed))
    undefined = {**scores.undefined, **evaluation.undefined}
    record.tags.update({TAG_UNDEFINED_PREFIX + k: v for k, v in undefined.items()})
    record.tags.update({TAG_PREFIX + k: v for k, v in evaluation.notes.items()})
    record.tags.update({TAG_PREFIX + k: v for k, v in scores.notes.items()})
    record.tags.update({TAG_PREFIX + k: v for k, v in table.tags.items()})
    if fitted.warnings:
        record.tags[TAG_PREFIX + "warnings"] = " | ".join(fitted.warnings)
        for warning in fitted.warnings:
            log.warning("%s: %s", spec.run_name, warning)
    record.metrics = metrics


def build_request(
    cfg: DictConfig,
    spec: JobSpec,
    table: CustomerTable,
    tags: dict[str, str],
    tracking_uri: str,
    experiment_id: str = "",
    parent_run_id: str | None = None,
) -> PublishRequest:
    """Fit, score and write the run's files; what is left to publish. A failed fit is a
    record that ends its run FAILED and says why, not a raise."""
    engine = engine_for(cfg)
    if engine is not None:  # engine=spark: fitted, scored and staged by segexp.engines.spark
        return engine.build_request(
            cfg, spec, table, tags, tracking_uri, experiment_id, parent_run_id
        )
    params = spec.params(table.source)
    if table.schema is not None:
        params.update(table.schema.params())
    record = RunRecord(
        run_name=spec.run_name, params=params, tags=tags, datasets=[dataset_of(table)]
    )
    request = PublishRequest(tracking_uri, experiment_id, parent_run_id, record)
    folder = staging.mkdtemp("segexp-run-")  # swept by the next command if this one is killed
    record.artifact_dir = str(folder)
    try:
        policy = thread_policy(cfg.limits)
        with policy.limit(len(table.frame)) as threads:
            record.tags[TAG_FIT_THREADS] = str(threads)
            fitted = fit_segmentation(
                table.frame, spec.columns, table.categorical, cfg.preprocess, cfg.scaler, cfg.algo
            )
            max_rows = int(cfg.metrics.silhouette_max_rows)
            scores = score_fitted(fitted, silhouette_max_rows=max_rows, seed=spec.seed)
            evaluation = evaluate_run(
                table,
                fitted,
                cfg,
                title=spec.run_name,
                figures=False,
                limit=policy.limit,
                fit_scores=scores,
            )
        _record_metrics_and_tags(record, spec, table, fitted, scores, evaluation)
        profile = _stage_artifacts(folder, cfg, spec, table, fitted)
        request.figures = _figures(cfg, spec, fitted, scores, evaluation, profile)
    except Exception as exc:  # the algorithm failed: the run ends FAILED and says why
        record.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    return request


def run_job(
    cfg: DictConfig,
    *,
    sweep: SweepContext | None = None,
    job_num: int | None = None,
    choices: dict[str, str] | None = None,
    checked: bool = False,
) -> JobOutcome:
    """Run one job end to end, logged before it returns; never raises for the job's own
    failure (``checked``: its config was checked already). Raises ``StoreWriteError``
    when the store refused the run."""
    started = int(time.time() * 1000)  # the run's start in the UI: the job's, not its logging's
    label = f"job #{job_num}" if job_num is not None else "run"
    checked = checked or (sweep is not None and sweep.configs_checked)
    try:
        spec, table = validate_inputs(cfg, choices, show=job_num in (None, 0), checked=checked)
        if sweep is None:
            tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
            experiment_id = tracker_for(tracking_uri).experiment_id(str(cfg.mlflow.experiment))
            parent_run_id = None
        else:
            tracking_uri, experiment_id = sweep.tracking_uri, sweep.experiment_id
            parent_run_id = sweep.parent_run_id
    except SegexpError as exc:
        return JobOutcome("invalid", run_name=label, message=str(exc), job_num=job_num)

    tags = {
        TAG_DATA_FINGERPRINT: table.fingerprint,
        TAG_DATA_SOURCE: table.source,
        TAG_CODE_VERSION: code_version(),
        TAG_KIND: "job",
        TAG_CONFIG_KEY: spec.config_key(table.fingerprint),
    }
    if sweep is not None:
        tags[TAG_SWEEP_ID] = sweep.sweep_id
        if not spec.uses_k:
            earlier = _same_configuration(sweep, tags[TAG_CONFIG_KEY])
            if earlier is not None:
                message = (
                    f"{spec.algo} does not use k: {label} (k={spec.k}) is the same "
                    f"configuration as {earlier}; fitted and logged once"
                )
                return JobOutcome("skipped", spec.run_name, message=message, job_num=job_num)
    if job_num is not None:
        tags[TAG_JOB_NUM] = str(job_num)
    request = build_request(cfg, spec, table, tags, tracking_uri, experiment_id, parent_run_id)
    request.record.started = started
    metrics = request.record.metrics
    run_id, error = publish(request)
    if error is not None:
        return JobOutcome("failed", spec.run_name, run_id, error.splitlines()[0], job_num, metrics)
    return JobOutcome(
        "finished", spec.run_name, run_id, "", job_num, dict(metrics), experiment_id=experiment_id
    )


def _same_configuration(sweep: SweepContext, config_key: str) -> str | None:
    """An earlier run of this sweep with the same configuration (any worker), if any."""
    return find_run_name(
        tracker_for(sweep.tracking_uri),
        [sweep.experiment_id],
        f"tags.`{TAG_SWEEP_ID}` = '{sweep.sweep_id}' and tags.`{TAG_CONFIG_KEY}` = '{config_key}'",
    )
