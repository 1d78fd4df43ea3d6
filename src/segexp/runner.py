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
import subprocess
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from omegaconf import DictConfig, OmegaConf

import segexp
from segexp import plots
from segexp.data import CustomerTable, load_customers, validate_feature_table
from segexp.errors import ConfigError, DataError, SegexpError
from segexp.metrics import mixture_criteria, score_segmentation
from segexp.pipeline import (
    NOISE_LABEL,
    algorithm_params,
    algorithm_uses,
    fit_segmentation,
    split_feature_kinds,
)
from segexp.sweep_state import SweepState
from segexp.tracking import TAG_PREFIX, Tracker, resolve_tracking_uri

log = logging.getLogger("segexp")

PROJECT_DIR = Path(__file__).resolve().parents[2]
MODEL_DIR = "model"
PIPELINE_FILE = "pipeline.joblib"
MODEL_META_FILE = "meta.json"
ASSIGNMENTS_FILE = "assignments.csv"


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
    """How one job ended; written to the sweep state and printed in the summary."""

    status: str  # finished | failed | invalid | skipped
    run_name: str
    run_id: str | None = None
    message: str = ""
    job_num: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


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


def _write_artifacts(
    folder: Path, cfg: DictConfig, spec: JobSpec, table: CustomerTable, fitted, scores
) -> None:
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
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
    (model_dir / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
    rows[spec.columns].head(5).to_csv(model_dir / "input_example.csv", index=False)

    profile = fitted.features.select_dtypes("number").groupby(fitted.labels).agg(["mean"])
    profile.columns = [c for c, _ in profile.columns]
    profile.insert(0, "size", pd.Series(fitted.labels).value_counts().sort_index())
    profile.rename_axis("segment").to_csv(folder / "profile.csv")

    if cfg.plots.enabled:
        dpi = int(cfg.plots.dpi)
        title = spec.run_name
        plots.save(
            plots.segments_scatter(fitted.features, fitted.transformed, fitted.labels, title),
            folder / "plots" / "segments.png",
            dpi,
        )
        plots.save(
            plots.silhouette_diagram(
                scores.silhouette_per_customer,
                scores.silhouette_labels,
                title,
                scores.undefined.get("silhouette", ""),
            ),
            folder / "plots" / "silhouette.png",
            dpi,
        )
        plots.save(
            plots.segment_profile_bars(fitted.features, fitted.labels, title),
            folder / "plots" / "profile.png",
            dpi,
        )


def _fit_and_log(
    tracker: Tracker, run_id: str, cfg: DictConfig, spec: JobSpec, table: CustomerTable
) -> dict[str, float]:
    fitted = fit_segmentation(
        table.frame, spec.columns, cfg.data.categorical or [], cfg.preprocess, cfg.scaler, cfg.algo
    )
    scores = score_segmentation(
        fitted.transformed,
        fitted.labels,
        silhouette_max_rows=int(cfg.metrics.silhouette_max_rows),
        seed=spec.seed,
    )
    metrics = dict(scores.values)
    metrics["fit_seconds"] = fitted.fit_seconds
    metrics["n_customers"] = float(len(fitted.labels))
    if spec.impute == "drop":
        metrics["rows_dropped"] = float(fitted.dropped_rows)
    metrics.update(mixture_criteria(fitted.pipeline[-1], fitted.transformed))
    tags = {f"{TAG_PREFIX}undefined.{name}": reason for name, reason in scores.undefined.items()}
    tags.update({f"{TAG_PREFIX}{name}": note for name, note in scores.notes.items()})
    with tempfile.TemporaryDirectory(prefix="segexp-") as tmp:
        _write_artifacts(Path(tmp), cfg, spec, table, fitted, scores)
        tracker.log(run_id, metrics=metrics, tags=tags, artifact_dir=tmp)
    tracker.end_run(run_id, "FINISHED")
    return metrics


def run_segmentation(
    cfg: DictConfig,
    *,
    sweep: SweepState | None = None,
    job_num: int | None = None,
    choices: dict[str, str] | None = None,
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

    tracking_uri = sweep.tracking_uri if sweep else resolve_tracking_uri(cfg.mlflow.tracking_uri)
    tracker = Tracker(tracking_uri)
    try:
        experiment_id = (
            sweep.experiment_id if sweep else tracker.experiment_id(cfg.mlflow.experiment)
        )
    except SegexpError as exc:
        return JobOutcome("invalid", spec.run_name, message=str(exc), job_num=job_num)
    tags = {
        f"{TAG_PREFIX}data_fingerprint": table.fingerprint,
        f"{TAG_PREFIX}data_source": table.source,
        f"{TAG_PREFIX}code_version": code_version(),
        f"{TAG_PREFIX}kind": "job",
    }
    if sweep is not None:
        tags[f"{TAG_PREFIX}sweep_id"] = sweep.sweep_id
    if job_num is not None:
        tags[f"{TAG_PREFIX}job_num"] = job_num
    run_id = tracker.start_run(
        experiment_id, spec.run_name, tags, parent_run_id=sweep.parent_run_id if sweep else None
    )
    try:
        tracker.log(run_id, params=spec.params(table.source))
        metrics = _fit_and_log(tracker, run_id, cfg, spec, table)
    except Exception as exc:  # the algorithm or the store failed: the run says so
        error = f"{type(exc).__name__}: {exc}"
        log.debug("job failed", exc_info=True)
        try:
            tracker.fail_run(run_id, error + "\n" + traceback.format_exc(limit=8))
        except Exception:  # the store itself is gone; the summary still reports the job
            log.debug("could not mark run failed", exc_info=True)
        return JobOutcome("failed", spec.run_name, run_id, error, job_num)
    return JobOutcome("finished", spec.run_name, run_id, job_num=job_num, metrics=metrics)


def describe_outcome(outcome: JobOutcome) -> str:
    """One log line per job."""
    head = (
        f"[{outcome.run_name}]"
        if outcome.job_num is None
        else f"[#{outcome.job_num} {outcome.run_name}]"
    )
    if outcome.status == "finished":
        shown = ", ".join(
            f"{k}={outcome.metrics[k]:.4g}"
            for k in ("n_clusters", "silhouette", "inertia")
            if k in outcome.metrics
        )
        return f"{head} FINISHED {shown} (run {outcome.run_id})"
    return f"{head} {outcome.status.upper()}: {outcome.message}"


def outcome_dict(outcome: JobOutcome) -> dict:
    return asdict(outcome)
