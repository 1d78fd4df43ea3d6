"""One sweep job: load data, fit one segmentation, score it, log it as one MLflow run.

``run_segmentation(cfg)`` is a plain function: the Hydra entry point calls it
for every job and tests call it directly with a composed config. It never
raises for a job's own failure: input mistakes come back as ``invalid`` (no
run is created), algorithm failures as ``failed`` (the run ends FAILED with the
error in a tag), so a sweep goes on and reports failures at its end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import yaml
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import ThreadpoolController

import segexp
from segexp.contract import (
    ASSIGNMENTS_FILE,
    CONFIG_FILE,
    MODEL_DIR,
    MODEL_META_FILE,
    PIPELINE_FILE,
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_KIND,
    TAG_PREFIX,
    TAG_SWEEP_ID,
    TAG_UNDEFINED_PREFIX,
)
from segexp.data import CustomerTable, load_customers, validate_feature_table
from segexp.errors import ConfigError, DataError, SegexpError
from segexp.evaluation import evaluate_run, evaluation_settings
from segexp.metrics import mixture_criteria, score_segmentation
from segexp.pipeline import (
    NOISE_LABEL,
    algorithm_params,
    algorithm_uses,
    check_preprocess_config,
    fit_segmentation,
    split_feature_kinds,
)
from segexp.profiles import (
    SegmentProfile,
    compute_profile,
    segment_names,
    write_profile_files,
)
from segexp.records import ArtifactTask, RunRecord, log_record, render_staged, stage_tasks
from segexp.sweep_state import SweepState
from segexp.tracking import resolve_tracking_uri

log = logging.getLogger("segexp")

PROJECT_DIR = Path(__file__).resolve().parents[2]
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available


@dataclass
class JobSpec:
    """What a job config asks for, named the way params and run names show it."""

    algo: str
    scaler: str
    features: str
    columns: list[str]
    uses_k: bool
    k: int
    seed: int
    impute: str
    outliers: str
    hyperparams: dict[str, Any]
    target: str

    @property
    def run_name(self) -> str:
        parts = [self.algo]
        if self.uses_k:
            parts.append(f"k{self.k}")
        else:
            parts.extend(
                f"{name}{value}"
                for name, value in self.hyperparams.items()
                if isinstance(value, int | float | str) and not isinstance(value, bool)
            )
        parts.extend([self.scaler, self.features])
        return "-".join(str(p) for p in parts)

    def params(self, data_source: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "algo": self.algo,
            "scaler": self.scaler,
            "features": self.features,
            "feature_columns": ",".join(self.columns),
            "seed": self.seed,
            "impute": self.impute,
            "outliers": self.outliers,
            "data": data_source,
        }
        if self.uses_k:
            out["k"] = self.k
        out.update({f"algo.{name}": value for name, value in self.hyperparams.items()})
        return out

    def config_key(self, fingerprint: str) -> str:
        """Hash of what determines the result; k is left out when the algorithm ignores it."""
        payload = asdict(self)
        if not self.uses_k:
            payload.pop("k")
        payload["data"] = fingerprint
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()[:20]


@dataclass
class JobOutcome:
    """How one job ended: finished | failed | invalid (no run) | skipped | queued (writer)."""

    status: str
    run_name: str
    run_id: str | None = None
    message: str = ""
    job_num: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class DirectSink:
    """Logs each record in this process (tests, joblib workers, SEGEXP_WRITER=0)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str | None = None,
        experiment_id: str | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self._tracker = None

    def prepare(self) -> None:
        """Open the store and experiment; raises TrackingError for a user mistake."""
        from segexp.tracking import Tracker

        if self._tracker is None:
            self._tracker = Tracker(self.tracking_uri)
        if self.experiment_id is None:
            self.experiment_id = self._tracker.experiment_id(self.experiment)

    def submit(self, record: RunRecord) -> JobOutcome:
        self.prepare()
        outcome = log_record(self._tracker, record, self.experiment_id, self.parent_run_id)
        return JobOutcome(**outcome)


class WriterSink:
    """Hands each record to the writer process; the outcome arrives later."""

    pending: list[str] = []  # staged folders handed to the writer, in job order

    def __init__(self, client) -> None:
        self.client = client

    @classmethod
    def help_render(cls, client, min_backlog: int = 3) -> int:
        """Render queued plots from the back while the writer works from the front.

        Not where the writer has a render helper (segexp.render_helper): it already
        draws from the back, and this process would first have to import matplotlib.
        """
        backlog = len(cls.pending) - len(client.poll())
        rendered = 0
        if backlog >= min_backlog and not client.has_render_helper:
            from segexp.gc_tuning import quiet_imports

            with quiet_imports():
                import matplotlib

                matplotlib.use("Agg")
                import segexp.plots  # noqa: F401
                import segexp.profiles  # noqa: F401
            for folder in reversed(cls.pending):
                if Path(folder).exists() and render_staged(Path(folder)):
                    rendered += 1
        cls.pending = []
        return rendered

    def prepare(self) -> None:
        for _, message in self.client.take("error"):
            from segexp.errors import TrackingError

            raise TrackingError(message)

    def submit(self, record: RunRecord) -> JobOutcome:
        self.client.send("log", record)
        if record.staged_dir:
            WriterSink.pending.append(record.staged_dir)
            self.client.offer_render(record.staged_dir)
        return JobOutcome("queued", record.run_name, job_num=record.job_num)


def _choices(cfg: DictConfig, choices: dict[str, str] | None) -> dict[str, str]:
    if choices is not None:
        return dict(choices)
    try:
        from hydra.core.hydra_config import HydraConfig

        return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}
    except ValueError:  # not inside a Hydra job: name parts after their classes
        return {
            "algo": str(cfg.algo._target_).rsplit(".", 1)[-1].lower(),
            "scaler": str(cfg.scaler._target_).rsplit(".", 1)[-1].lower(),
            "features": "custom",
        }


def describe_job(cfg: DictConfig, choices: dict[str, str] | None = None) -> JobSpec:
    """Validate the job's config keys and name its parts; ConfigError on bad values."""
    named = _choices(cfg, choices)
    if "_target_" not in cfg.algo:
        raise ConfigError("algo: the algo config needs a _target_ (a scikit-learn class path)")
    columns = list(OmegaConf.to_container(cfg.features.columns, resolve=True))
    if not columns:
        raise ConfigError("features.columns: list at least one column; got an empty list")
    uses_k = algorithm_uses(cfg.algo, "k")
    k = cfg.get("k")
    if uses_k and (not isinstance(k, int) or isinstance(k, bool) or k < 2):
        raise ConfigError(f"k: the number of segments must be an integer >= 2; got {k!r}")
    return JobSpec(
        algo=named.get("algo", "algo"),
        scaler=named.get("scaler", "scaler"),
        features=named.get("features", "features"),
        columns=[str(c) for c in columns],
        uses_k=uses_k,
        k=int(k) if isinstance(k, int) else 0,
        seed=int(cfg.seed),
        impute=str(cfg.preprocess.impute),
        outliers=str(cfg.preprocess.get("outliers", "none")),
        hyperparams=algorithm_params(cfg.algo),
        target=str(cfg.algo._target_),
    )


def _check_size_limits(cfg: DictConfig, spec: JobSpec, table: CustomerTable) -> None:
    n_rows = len(table.frame)
    if spec.uses_k and n_rows < spec.k:
        raise DataError(
            f"{table.source}: {n_rows} customers is fewer than k={spec.k}; "
            f"lower k to at most {n_rows} or load more customers"
        )
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


def validate_inputs(cfg: DictConfig, choices: dict[str, str] | None = None):
    """Everything checkable before a run exists: config values and the data itself."""
    spec = describe_job(cfg, choices)
    table = load_customers(cfg.data)
    validate_feature_table(table, spec.columns, impute=spec.impute, config_key="features.columns")
    check_preprocess_config(cfg.preprocess, table.frame, spec.columns)
    evaluation_settings(cfg)
    _check_size_limits(cfg, spec, table)
    return spec, table


@lru_cache(maxsize=1)
def code_version() -> str:
    """segexp version plus the git commit of the checkout it runs from, when there is one."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"{segexp.__version__}+{commit}"


def resolved_config(cfg: DictConfig) -> dict:
    """The job's config with interpolations resolved, without Hydra's own ``hydra`` node."""
    return {
        str(key): OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in cfg
        if key != "hydra"
    }


def _stage_artifacts(
    folder: Path, cfg: DictConfig, spec: JobSpec, table: CustomerTable, fitted
) -> SegmentProfile:
    """Files the job writes itself (cheap); plots are deferred artifact tasks."""
    (folder / CONFIG_FILE).write_text(
        yaml.dump(resolved_config(cfg), Dumper=_YAML_DUMPER, sort_keys=False)
    )
    rows = table.frame.iloc[fitted.kept_rows]
    keep = [c for c in (table.id_column,) if c] + spec.columns
    assignments = rows[keep].copy()
    assignments["segment"] = fitted.labels
    assignments.to_csv(folder / ASSIGNMENTS_FILE, index=False)

    model_dir = folder / MODEL_DIR
    model_dir.mkdir()
    joblib.dump(fitted.pipeline, model_dir / PIPELINE_FILE)
    numeric, categorical = split_feature_kinds(spec.columns, cfg.data.categorical or [], rows)
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
        "segexp_version": segexp.__version__,
    }
    profile = compute_profile(rows, fitted.labels, spec.columns, cfg.naming)
    write_profile_files(folder, profile, make_plots=False)
    names = segment_names(profile)
    meta["segment_names"] = {str(segment): name for segment, name in names.items()}
    (model_dir / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
    rows[spec.columns].head(5).to_csv(model_dir / "input_example.csv", index=False)
    return profile


def _plot_tasks(
    cfg: DictConfig, spec: JobSpec, fitted, scores, evaluation, profile
) -> list[ArtifactTask]:
    if not cfg.plots.enabled:
        return []
    dpi = int(cfg.plots.dpi)
    k_distance = [
        ArtifactTask("segexp.evaluation:save_k_distance_plot", {**inputs, "dpi": dpi})
        for inputs in evaluation.plot_inputs.values()
    ]
    return k_distance + [
        ArtifactTask("segexp.profiles:write_profile_plots", {"profile": profile, "dpi": dpi}),
        ArtifactTask(
            "segexp.plots:run_plots",
            {
                "features": fitted.features,
                "transformed": fitted.transformed,
                "labels": fitted.labels,
                "silhouette_per_customer": scores.silhouette_per_customer,
                "silhouette_labels": scores.silhouette_labels,
                "silhouette_reason": scores.undefined.get("silhouette", ""),
                "title": spec.run_name,
                "dpi": int(cfg.plots.dpi),
            },
        ),
    ]


_threadpools: tuple[int, ThreadpoolController] | None = None


def _threadpool_controller() -> ThreadpoolController:
    """One controller per set of loaded modules: building one scans every loaded library
    (about 4 ms); a new one is made when an import may have loaded another BLAS/OpenMP."""
    global _threadpools
    if _threadpools is None or _threadpools[0] != len(sys.modules):
        _threadpools = (len(sys.modules), ThreadpoolController())
    return _threadpools[1]


def _thread_limit(cfg: DictConfig, n_rows: int) -> int | None:
    """BLAS/OpenMP threads for one fit: 1 for small tables (see limits.threads)."""
    configured = cfg.limits.get("threads")
    if configured is not None:
        return int(configured)
    return 1 if n_rows < int(cfg.limits.single_thread_below_rows) else None


def _fit_and_score(cfg: DictConfig, spec: JobSpec, table: CustomerTable):
    fitted = fit_segmentation(
        table.frame, spec.columns, cfg.data.categorical or [], cfg.preprocess, cfg.scaler, cfg.algo
    )
    scores = score_segmentation(
        fitted.transformed,
        fitted.labels,
        silhouette_max_rows=int(cfg.metrics.silhouette_max_rows),
        seed=spec.seed,
    )
    return fitted, scores


def build_record(
    cfg: DictConfig, spec: JobSpec, table: CustomerTable, tags: dict, job_num: int | None
) -> RunRecord:
    """Fit, score and stage one job; an exception becomes a FAILED record, not a raise."""
    record = RunRecord(
        run_name=spec.run_name, params=spec.params(table.source), tags=tags, job_num=job_num
    )
    staged = Path(tempfile.mkdtemp(prefix="segexp-run-"))
    try:
        with _threadpool_controller().limit(limits=_thread_limit(cfg, len(table.frame))):
            fitted, scores = _fit_and_score(cfg, spec, table)
            evaluation = evaluate_run(table, fitted, cfg, title=spec.run_name, figures=False)

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
        profile = _stage_artifacts(staged, cfg, spec, table, fitted)
        record.metrics = metrics
        record.summary = {
            k: metrics[k] for k in ("n_clusters", "silhouette", "inertia") if k in metrics
        }
        stage_tasks(staged, _plot_tasks(cfg, spec, fitted, scores, evaluation, profile))
        record.staged_dir = str(staged)
    except Exception as exc:  # the algorithm failed: the run will end FAILED and say why
        shutil.rmtree(staged, ignore_errors=True)
        record.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    return record


def run_segmentation(
    cfg: DictConfig,
    *,
    sweep: SweepState | None = None,
    job_num: int | None = None,
    choices: dict[str, str] | None = None,
    sink=None,
) -> JobOutcome:
    """Run one job end to end and say how it ended; never raises for the job's own failure."""
    label = f"job #{job_num}" if job_num is not None else "run"
    try:
        spec, table = validate_inputs(cfg, choices)
    except SegexpError as exc:
        return JobOutcome("invalid", run_name=label, message=str(exc), job_num=job_num)

    if sweep is not None and not spec.uses_k:
        earlier = sweep.claim(spec.config_key(table.fingerprint), f"{label} (k={spec.k})")
        if earlier is not None:
            message = (
                f"{spec.algo} does not use k: {label} (k={spec.k}) is the same "
                f"configuration as {earlier}; fitted and logged once"
            )
            return JobOutcome("skipped", spec.run_name, message=message, job_num=job_num)

    if sink is None:
        if sweep is not None:
            sink = DirectSink(
                sweep.tracking_uri,
                experiment_id=sweep.experiment_id,
                parent_run_id=sweep.parent_run_id,
            )
        else:
            sink = DirectSink(resolve_tracking_uri(cfg.mlflow.tracking_uri), cfg.mlflow.experiment)
    try:
        sink.prepare()
    except SegexpError as exc:
        return JobOutcome("invalid", spec.run_name, message=str(exc), job_num=job_num)

    tags = {
        TAG_DATA_FINGERPRINT: table.fingerprint,
        TAG_DATA_SOURCE: table.source,
        TAG_CODE_VERSION: code_version(),
        TAG_KIND: "job",
    }
    if sweep is not None:
        tags[TAG_SWEEP_ID] = sweep.sweep_id
    if job_num is not None:
        tags[TAG_PREFIX + "job_num"] = str(job_num)
    return sink.submit(build_record(cfg, spec, table, tags, job_num))
