"""``segexp-promote``: register a run's segmentation, validate it through the registry and
point an alias at it (docs/promote-predict.md); exit 3: validation failed."""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from segexp.contract import (
    CONFIG_FILE,
    LEGACY_PIPELINE_FILE,
    MODEL_DIR,
    MODEL_META_FILE,
    PIPELINE_FILE,
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_KIND,
    TAG_PREFIX,
    VERSION,
)
from segexp.data.export import unescape_formulas
from segexp.errors import (
    ConfigError,
    EmptyLeaderboardError,
    SegexpError,
    TrackingError,
    ValidationFailed,
)
from segexp.insight.report import render_html
from segexp.model import storage
from segexp.model.assign import (
    ASSIGN_BY_PREDICT,
    SEGMENT_COLUMN,
    SegmentAssigner,
    segment_names_from,
)
from segexp.model.storage import TRUST_PICKLE_ENV, pickle_trusted
from segexp.tools.compare import (
    better,
    check_metric,
    existing_store,
    filters_from_config,
    get_run,
    load_runs,
    rank_one,
)
from segexp.tools.outputs import check_suffix, write_text_atomically
from segexp.tools.report import (
    REPORT_ARTIFACT_DIR,
    REPORT_FILE,
    REPORT_SUFFIXES,
    collect_report_data,
    download_artifact,
)
from segexp.tracking.assignments import download_assignments
from segexp.tracking.models import load_model, save_segment_model
from segexp.tracking.stored_config import load_stored_config

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SEGMENTS_FILE = "segments.json"
INPUT_EXAMPLE_FILE = "input_example.csv"
TAG_SOURCE_RUN = TAG_PREFIX + "source_run_id"
TAG_VALIDATION = TAG_PREFIX + "validation"
TAG_SEGMENT_NAMES = TAG_PREFIX + "segment_names"
TAG_REPORT = TAG_PREFIX + "report"
_ALIAS = re.compile(r"(?!(latest|v\d+)$)[\w-]+", re.IGNORECASE)  # MLflow reserves the others


@dataclass
class RunModel:
    """A run's segmentation turned into an assigner, with the customers it was fitted on."""

    run: Run
    assigner: SegmentAssigner
    training: pd.DataFrame  # its assignments: id, feature columns, segment
    input_example: pd.DataFrame


@dataclass
class PromotionResult:
    """What a promotion did (or, in a dry run, would do)."""

    run_id: str
    run_name: str
    selection: str
    registered_model: str
    alias: str
    assignment: str
    agreement: float
    required_agreement: float
    n_customers: int
    previous_version: str | None
    version: str | None = None
    dry_run: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    report_path: Path | None = None  # the local copy, only with report.output=
    report_uri: str | None = None  # kept with the model version
    report_error: str | None = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.registered_model}@{self.alias}"

    def summary(self) -> str:
        shown = ", ".join(
            f"{k}={self.metrics[k]:.4g}"
            for k in ("silhouette", "n_clusters", "noise_fraction")
            if k in self.metrics
        )
        before = f"version {self.previous_version}" if self.previous_version else "no version"
        check = (
            f"{self.agreement:.2%} of {self.n_customers} training customers reproduced "
            f"(required {self.required_agreement:.0%}, assignment: {self.assignment})"
        )
        lines = [f"run {self.run_name} ({self.run_id}), {self.selection}; {shown}"]
        if (noise := self.metrics.get("noise_fraction", 0.0)) > 0:
            lines.append(
                f"note: {noise:.1%} of its training customers are not assigned to any "
                "segment (segment -1)"
            )
        if self.dry_run:
            lines += [
                f"dry run: would register it as a new version of '{self.registered_model}' "
                f"and point alias '{self.alias}' at it (now: {before}); nothing was changed",
                f"local check: {check}",
            ]
        else:
            lines += [
                f"registered '{self.registered_model}' version {self.version}; "
                f"alias '{self.alias}' -> version {self.version} (was: {before})",
                f"validated through models:/{self.registered_model}/{self.version}: {check}",
                f"use it: python -m segexp.predict input=<customers.csv> output=<segments.csv> "
                f"model={self.model_uri}",
            ]
            if self.report_uri is not None:
                local = f"; a copy: {self.report_path}" if self.report_path else ""
                lines.append(
                    f"report for marketing: kept with version {self.version} as "
                    f"{self.report_uri}{local}"
                )
            if self.report_error is not None:
                lines.append(f"warning: the report was not written: {self.report_error}")
        return "\n".join(lines)


def open_client(configured_uri: str | None) -> MlflowClient:
    """Client (registry included) for the configured store, which must exist."""
    uri = existing_store(configured_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def require_job_run(run: Run, what: str, advice: str) -> None:
    """ConfigError when ``run_id`` names a sweep's (or EDA's) run instead of a job's."""
    kind = run.data.tags.get(TAG_KIND)
    if kind and kind != "job":
        raise ConfigError(
            f"run_id: run {run.info.run_name} ({run.info.run_id}) is a {kind} run, not "
            f"{what}; {advice}"
        )


def _check_promotable(run: Run, client: MlflowClient, min_share: float | None) -> None:
    """ConfigError for a run that is not a FINISHED segmentation, or (``min_share``) whose
    smallest segment is under the share rule's limit."""
    advice = "promote one of its job runs, or use best=<metric> sweep_id=<sweep id>"
    require_job_run(run, "a segmentation", advice)
    name = f"run {run.info.run_name} ({run.info.run_id})"
    if run.info.status != "FINISHED":
        raise ConfigError(
            f"run_id: {name} ended {run.info.status}; only FINISHED runs can be promoted"
        )
    pipeline_file(client, run)
    share = run.data.metrics.get("min_segment_share")
    if min_share and share is not None and share < min_share:
        raise ConfigError(
            f"run_id: {name} has a segment of {share:.2%} of the customers, under "
            f"filter.min_segment_share={min_share:g}: an outlier split, not a segmentation; "
            "promote another run (best=silhouette), or pass allow_small_segments=true to "
            "promote it anyway"
        )


def pipeline_file(client: MlflowClient, run: Run) -> str:
    """The run's stored pipeline (``model/pipeline.skops``), checked before anything is read;
    an older run's pickle runs code when loaded: refused unless ``SEGEXP_TRUST_PICKLE=1``."""
    run_id = run.info.run_id
    files = {a.path for a in client.list_artifacts(run_id, MODEL_DIR)}
    needed = f"{MODEL_DIR}/{PIPELINE_FILE}"
    if needed in files:
        return needed
    legacy = f"{MODEL_DIR}/{LEGACY_PIPELINE_FILE}"
    if legacy in files:
        if pickle_trusted():
            return legacy
        raise TrackingError(
            f"run {run_id}: {legacy} is a pickle (older segexp stored pipelines so) and there is "
            f"no {needed}; loading a pickle runs any code its author put in it, so segexp does "
            f"not load it: re-create the run with segexp-rerun run_id={run_id} (re-fits it from "
            "its stored config; the new run stores a skops pipeline) and promote the new run; "
            f"or, only if you trust everyone who can write this store, set {TRUST_PICKLE_ENV}=1"
        )
    raise TrackingError(
        f"run_id: run {run.info.run_name} ({run_id}) has no artifact {needed}; "
        "only runs logged by python -m segexp can be promoted"
    )


def select_best_run(cfg: DictConfig) -> tuple[str, str]:
    """(run id, how it was chosen): rank 1 of ``segexp-compare`` for the same config."""
    metric = str(cfg.best)
    direction = str(cfg.get("direction", "auto"))
    try:
        better(metric, direction)  # a bad direction is refused first
        filters = filters_from_config(cfg)
        frame, where = load_runs(cfg, refuse_latest_incomplete=False)
        incomplete = frame.attrs.get("incomplete")
        if incomplete and not cfg.get("allow_incomplete"):
            raise TrackingError(
                f"best={metric}: {where} is incomplete: {incomplete}; promote from a "
                "complete sweep (sweep_id=<id>), or pass allow_incomplete=true to promote "
                "its best run anyway"
            )
        if frame.empty:
            raise EmptyLeaderboardError(f"{where} has no job runs")
        check_metric(frame, metric, where)
        best, ranked, left_out = rank_one(frame, metric, filters, direction)
    except EmptyLeaderboardError as exc:
        raise TrackingError(f"best={metric}: nothing to promote: {exc}") from exc
    except SegexpError as exc:  # compare's messages name its metric= key; promote's is best=
        raise type(exc)(str(exc).replace(f"metric={metric}", f"best={metric}")) from exc
    selection = (
        f"rank 1 of {ranked} by {metric}={best[metric]:.4g} ({better(metric, direction)}) in "
        f"{where} ({filters.describe('filter.')}){left_out}"
    )
    return str(best["run_id"]), selection


def load_run_model(client: MlflowClient, run: Run, folder: Path) -> RunModel:
    """Build the run's assigner (pipeline + extension) from its artifacts, in ``folder``."""
    run_id = run.info.run_id
    stored = pipeline_file(client, run)  # checked first: nothing is read from a refused run
    root = {a.path for a in client.list_artifacts(run_id)}
    model_dir = download_artifact(client, run_id, MODEL_DIR, folder)
    meta = json.loads((model_dir / MODEL_META_FILE).read_text())
    training = download_assignments(client, run_id, folder, id_column=meta.get("id_column"))
    config = load_stored_config(
        download_artifact(client, run_id, CONFIG_FILE, folder), f"run {run_id}: {CONFIG_FILE}"
    )
    names: dict[int, str] = {}
    if SEGMENTS_FILE in root:
        entries = json.loads(download_artifact(client, run_id, SEGMENTS_FILE, folder).read_text())
        names = segment_names_from(entries)
    aliases = cast(  # data.aliases: canonical column name -> the header variants it accepts
        "dict[str, list[str]]",
        OmegaConf.to_container(config.data.aliases, resolve=True) if "data" in config else {},
    )
    impute = str(OmegaConf.select(config, "preprocess.impute", default="none"))
    local, what = model_dir.parent / stored, f"run {run_id}: {stored}"
    skops = stored.endswith(storage.SKOPS_SUFFIX)
    pipeline = storage.load(local, what) if skops else storage.load_pickle(local, what, "")
    assigner = SegmentAssigner.from_run(
        pipeline, meta, training, aliases=aliases, impute=impute, segment_names=names
    )
    example_file = model_dir / INPUT_EXAMPLE_FILE
    example = (
        pd.read_csv(example_file).apply(unescape_formulas) if example_file.exists() else training
    )
    return RunModel(run, assigner, training, example[assigner.input_columns].head(5))


def agreement_with(run_model: RunModel, predicted: ArrayLike) -> float:
    """The share of the run's training customers given their segment again."""
    expected = run_model.training[SEGMENT_COLUMN].to_numpy(dtype=int)
    predicted = np.asarray(predicted, dtype=int)
    if len(predicted) != len(expected):
        return 0.0
    return float(np.mean(predicted == expected)) if len(expected) else 1.0


def _check_names(name: str, alias: str) -> None:
    if not name or "/" in name or ":" in name:
        raise ConfigError(
            f"registry.name: '{name}' is not a registered-model name; use letters, digits, "
            "'-', '_' or '.', without '/' or ':'"
        )
    if not _ALIAS.fullmatch(alias):
        raise ConfigError(
            f"registry.alias: '{alias}' is not allowed; use letters, digits, '_' or '-', "
            "and not 'latest' or v<number> (reserved by MLflow)"
        )


def register_version(
    client: MlflowClient, run_model: RunModel, name: str, selection: str, folder: Path
) -> tuple[str, str]:
    """Log the model as a LoggedModel of the run and register a new version of it;
    (version, logged model id: where the version's files, its report included, are kept)."""
    run, assigner = run_model.run, run_model.assigner
    metadata = {
        "source_run_id": run.info.run_id,
        "data_fingerprint": run.data.tags.get(TAG_DATA_FINGERPRINT, "unknown"),
        "segexp_version": VERSION,
    }
    local = save_segment_model(
        folder / "segment_model", assigner, run_model.input_example, metadata
    )
    logged = client.create_logged_model(
        run.info.experiment_id,
        name=name,
        source_run_id=run.info.run_id,
        tags={TAG_SOURCE_RUN: run.info.run_id},
        model_type="segexp-segments",
    )
    client.log_model_artifacts(logged.model_id, str(local))
    fingerprint = metadata["data_fingerprint"]
    tags = {
        TAG_SOURCE_RUN: run.info.run_id,
        TAG_PREFIX + "source_run_name": run.info.run_name,
        TAG_DATA_FINGERPRINT: fingerprint,
        TAG_PREFIX + "algorithm": assigner.algorithm,
        TAG_PREFIX + "assignment": assigner.method,
        TAG_PREFIX + "selected_by": selection,
        TAG_CODE_VERSION: run.data.tags.get(TAG_CODE_VERSION, VERSION),
        **{f"metric.{k}": f"{v:.6g}" for k, v in sorted(run.data.metrics.items())},
    }
    names = {str(k): v for k, v in sorted(assigner.segment_names.items())}
    if names:
        tags[TAG_SEGMENT_NAMES] = json.dumps(names)
    metrics = run.data.metrics
    shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in ("silhouette", "n_clusters") if k in metrics)
    named = "; segments: " + ", ".join(f"{k}={v}" for k, v in names.items()) if names else ""
    client.finalize_logged_model(logged.model_id, "READY")
    try:
        client.create_registered_model(
            name,
            description=(
                "Customer segmentations promoted by segexp. Score new customers with "
                "python -m segexp.predict; the alias names the version in use."
            ),
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # a new version of a known model
            raise
    # The storage location, not models:/<model id>: resolving that URI inside the registry
    # store uses MLflow's global tracking URI, not this client's (an MLflow TODO).
    version = client.create_model_version(
        name,
        source=client.get_logged_model(logged.model_id).artifact_location,
        run_id=run.info.run_id,
        tags=tags,
        description=(
            f"Customer segmentation from run {run.info.run_name} ({run.info.run_id}): "
            f"{assigner.algorithm} on {', '.join(assigner.input_columns)} ({shown}); data "
            f"fingerprint {fingerprint}; new customers assigned by {assigner.method}{named}"
        ),
        model_id=logged.model_id,
    )
    return str(version.version), logged.model_id


def validate_version(client: MlflowClient, run_model: RunModel, name: str, version: str) -> float:
    """Agreement of ``models:/<name>/<version>`` with the run's training assignments."""
    uri = f"models:/{name}/{version}"
    try:
        model = load_model(uri, client.tracking_uri)
        predicted = model.predict(run_model.training[run_model.assigner.input_columns])
        if not isinstance(predicted, pd.DataFrame):
            raise TypeError(f"the model returned {type(predicted).__name__}, not a table")
        return agreement_with(run_model, predicted[SEGMENT_COLUMN])
    except Exception as exc:  # any failure to load or score is a failed validation
        client.set_model_version_tag(name, version, TAG_VALIDATION, f"failed: {exc}"[:4000])
        raise ValidationFailed(
            f"{uri} could not score its run's training customers ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}); alias not moved"
        ) from exc


def promote(cfg: DictConfig) -> PromotionResult:
    """Select, register, validate and alias one run; see the module docstring."""
    name, alias = str(cfg.registry.name), str(cfg.registry.alias)
    _check_names(name, alias)
    report_output = None
    if cfg.report.enabled and cfg.report.output:  # the page is HTML: checked before any work
        report_output = Path(str(cfg.report.output)).expanduser()
        check_suffix(report_output, "report.output", REPORT_SUFFIXES)
    if cfg.get("run_id") and cfg.get("best"):
        raise ConfigError(f"run_id={cfg.run_id} and best={cfg.best}: set one of them, not both")
    client = open_client(cfg.mlflow.tracking_uri)
    if cfg.get("run_id"):
        run_id, selection = str(cfg.run_id), "chosen by run_id"
    elif cfg.get("best"):
        run_id, selection = select_best_run(cfg)
    else:
        raise ConfigError(
            "promote needs run_id=<run id> or best=<metric> (e.g. best=silhouette); got neither"
        )
    run = get_run(client, run_id)
    by_choice = cfg.get("run_id") and not cfg.get("allow_small_segments")
    _check_promotable(
        run, client, filters_from_config(cfg).min_segment_share if by_choice else None
    )
    min_agreement = float(cfg.validation.min_agreement)
    if min_agreement == 0:  # the schema checks 0..1
        raise ConfigError("validation.min_agreement: must be in (0, 1]; got 0")
    previous = None  # the version the alias points at, if the model and alias exist
    with contextlib.suppress(MlflowException):
        previous = str(client.get_model_version_by_alias(name, alias).version)
    with tempfile.TemporaryDirectory(prefix="segexp-promote-") as tmp:
        folder = Path(tmp)
        run_model = load_run_model(client, run, folder)
        by_predict = run_model.assigner.method == ASSIGN_BY_PREDICT
        required = 1.0 if by_predict else min_agreement
        result = PromotionResult(
            run_id=run.info.run_id,
            run_name=run.info.run_name,
            selection=selection,
            registered_model=name,
            alias=alias,
            assignment=run_model.assigner.method,
            agreement=float("nan"),
            required_agreement=required,
            n_customers=len(run_model.training),
            previous_version=previous,
            dry_run=bool(cfg.dry_run),
            metrics=dict(run.data.metrics),
        )
        if result.dry_run:
            local = run_model.assigner.assign(run_model.training)
            result.agreement = agreement_with(run_model, local[SEGMENT_COLUMN])
            return result
        version, model_id = register_version(client, run_model, name, selection, folder)
        result.version = version
        result.agreement = validate_version(client, run_model, name, version)
    check = f"{result.agreement:.2%} of {result.n_customers} training customers reproduced"
    if result.agreement < required:
        client.set_model_version_tag(name, version, TAG_VALIDATION, f"failed: {check}")
        kept = f"version {previous}" if previous else "no version"
        raise ValidationFailed(
            f"models:/{name}/{version} reproduces {check} of run {run.info.run_id}, below the "
            f"required {required:.0%} ({result.assignment}); alias '{alias}' not moved (still "
            f"{kept}); version {version} is kept, tagged {TAG_VALIDATION}=failed"
        )
    client.set_model_version_tag(name, version, TAG_VALIDATION, f"passed: {check}")
    client.set_registered_model_alias(name, alias, version)
    if cfg.report.enabled:
        try:
            result.report_uri, result.report_path = keep_report(
                client, run.info.run_id, (name, version, model_id), report_output
            )
        except Exception as exc:  # the promotion stands; the report can be made again
            result.report_error = (
                f"{type(exc).__name__}: {exc}; write it with python -m segexp.report "
                f"run_id={run.info.run_id}"
            )
    return result


def keep_report(
    client: MlflowClient, run_id: str, version: tuple[str, str, str], output: Path | None
) -> tuple[str, Path | None]:
    """Keep the run's report with the model version (name, version, logged model id), named
    by its ``segexp.report`` tag, and copy it to ``output`` if given; (where kept, the copy)."""
    name, number, model_id = version
    document = render_html(collect_report_data(client.tracking_uri, run_id))
    with tempfile.TemporaryDirectory(prefix="segexp-report-") as tmp:
        staged = Path(tmp) / REPORT_FILE
        staged.write_text(document, encoding="utf-8")
        client.log_model_artifact(model_id, str(staged), REPORT_ARTIFACT_DIR)
    location = client.get_logged_model(model_id).artifact_location.rstrip("/")
    kept = f"{location}/{REPORT_ARTIFACT_DIR}/{REPORT_FILE}"
    client.set_model_version_tag(name, number, TAG_REPORT, kept)
    written = None
    if output is not None:
        written = write_text_atomically(output, document).resolve()
    return kept, written
