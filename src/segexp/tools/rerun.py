"""``segexp-rerun run_id=<id>``: re-create a logged run from its stored config and check it
assigns the same segments. Exit codes: 1 different segments, 3 the data changed."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, open_dict

from segexp.contract import ASSIGNMENTS_FILE, CONFIG_FILE, TAG_DATA_FINGERPRINT, TAG_PREFIX
from segexp.errors import ConfigError, DataChanged, RerunFailed, TrackingError
from segexp.jobs.job import run_job
from segexp.tools.compare import get_run
from segexp.tools.promote import open_client, require_job_run
from segexp.tools.report import download_artifact
from segexp.tracking.assignments import download_assignments
from segexp.tracking.stored_config import load_stored_config

TAG_RERUN_OF = TAG_PREFIX + "rerun_of"
RERUN_SUFFIX = "-rerun"
_SHOWN = 5


@dataclass
class RerunResult:
    source_run_id: str
    new_run_id: str
    fingerprint: str
    n_customers: int

    def summary(self) -> str:
        return (
            f"run {self.new_run_id} reproduces run {self.source_run_id}: same data "
            f"(fingerprint {self.fingerprint}) and identical assignments of "
            f"{self.n_customers} customers"
        )


def _missing(run_id: str, path: str) -> TrackingError:
    return TrackingError(
        f"run_id: run {run_id} has no artifact {path}; only runs logged by "
        "python -m segexp can be re-run"
    )


def _assignments(client, run_id: str, folder: Path) -> pd.DataFrame:
    """The run's assignments as text (CSV or Parquet, whichever it holds)."""
    try:
        return download_assignments(client, run_id, folder, as_text=True)
    except (MlflowException, OSError) as exc:
        raise _missing(run_id, ASSIGNMENTS_FILE) from exc


def stored_config(client, run: Run, folder: Path) -> DictConfig:
    """The run's config.yaml pointed at its store; algo values equal to the logged ``k``
    are linked to ``${k}`` again, so the re-run is named and logged like the original."""
    run_id = run.info.run_id
    try:
        path = download_artifact(client, run_id, CONFIG_FILE, folder)
    except (MlflowException, OSError) as exc:
        raise _missing(run_id, CONFIG_FILE) from exc
    cfg = load_stored_config(path, f"run {run_id}: {CONFIG_FILE}")  # before anything is built
    with open_dict(cfg):
        cfg.pop("hydra", None)
        cfg.mlflow.tracking_uri = client.tracking_uri
        k = run.data.params.get("k")
        if k is not None and "algo" in cfg:
            for key, value in cfg.algo.items():
                if not str(key).startswith("_") and str(value) == k and key != "k":
                    cfg.algo[key] = "${k}"
    return cfg


def compare_assignments(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """One line per customer whose row differs (tables read as text); empty when identical."""
    if list(before.columns) != list(after.columns) or len(before) != len(after):
        raise RerunFailed(
            f"the re-run's assignments.csv has {len(after)} rows and columns "
            f"{', '.join(after.columns)}; the original has {len(before)} rows and columns "
            f"{', '.join(before.columns)}"
        )
    different = (before.fillna("") != after.fillna("")).any(axis=1).to_numpy()
    key = before.columns[0]
    return [
        f"{key}={before.iloc[i][key]}: segment {before.iloc[i]['segment']} -> "
        f"{after.iloc[i]['segment']}"
        for i in different.nonzero()[0]
    ]


def rerun(cfg: DictConfig) -> RerunResult:
    """Re-run ``cfg.run_id`` from its stored config and check it reproduces."""
    if not cfg.get("run_id"):
        raise ConfigError("run_id: set run_id=<id of the run to re-create>; got nothing")
    client = open_client(cfg.mlflow.tracking_uri)
    source = get_run(client, str(cfg.run_id))
    source_id = source.info.run_id
    require_job_run(
        source, "a job", "re-run one of its job runs (segexp-compare lists them with their run_id)"
    )
    params = source.data.params
    choices: dict[str, str] = {
        key: params[key] for key in ("algo", "scaler", "features") if key in params
    }
    with tempfile.TemporaryDirectory(prefix="segexp-rerun-") as tmp:
        folder = Path(tmp)
        job_cfg = stored_config(client, source, folder / "source")
        outcome = run_job(job_cfg, choices=choices)
        if outcome.status == "invalid":
            raise ConfigError(f"re-run of {source_id}: {outcome.message}")
        if outcome.status != "finished" or outcome.run_id is None:
            raise RerunFailed(f"re-run of {source_id} {outcome.status}: {outcome.message}")
        # named and tagged as soon as it exists (run_job names runs by their config)
        client.update_run(outcome.run_id, name=f"{source.info.run_name}{RERUN_SUFFIX}")
        client.set_tag(outcome.run_id, TAG_RERUN_OF, source_id)
        new_run = client.get_run(outcome.run_id)
        then = source.data.tags.get(TAG_DATA_FINGERPRINT)
        now = new_run.data.tags.get(TAG_DATA_FINGERPRINT)
        if then != now:
            raise DataChanged(
                f"data changed since run {source_id}: fingerprint {then} then, {now} now "
                f"(source: {new_run.data.tags.get(TAG_PREFIX + 'data_source')}); new run "
                f"{outcome.run_id} is logged but its segments are not comparable; restore "
                "the original data to reproduce the run"
            )
        before = _assignments(client, source_id, folder / "before")
        after = _assignments(client, outcome.run_id, folder / "after")
    differences = compare_assignments(before, after)
    if differences:
        shown = "; ".join(differences[:_SHOWN])
        more = f" (+{len(differences) - _SHOWN} more)" if len(differences) > _SHOWN else ""
        raise RerunFailed(
            f"re-run {outcome.run_id} of run {source_id} on the same data (fingerprint {now}) "
            f"assigns different segments to {len(differences)} of {len(before)} customers: "
            f"{shown}{more}"
        )
    return RerunResult(source_id, outcome.run_id, str(now), len(before))
