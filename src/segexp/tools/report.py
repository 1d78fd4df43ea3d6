"""``python -m segexp.report run_id=<id>``: one self-contained HTML report of a segmentation.

For marketing: the data overview, the comparison that led to the choice (the
sweep's leaderboard and elbow / silhouette-vs-k with the chosen k marked), the
segments (scatter, profile heatmap, snake plot, sizes), each segment's name,
profile and suggested actions, and the run id and data fingerprint it came
from. Images are embedded as data URIs, so the file opens anywhere without a
network, and a print stylesheet keeps it readable on paper. The HTML is
written to ``output`` and logged to the run as ``report/report.html``.

Everything is read back from MLflow (the run's artifacts and its sweep
parent's); runs logged before profiles existed are profiled at report time
from their ``assignments.csv``, and the report says so.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from segexp.contract import (
    ASSIGNMENTS_FILE,
    LEADERBOARD_FILE,
    TAG_KIND,
    TAG_SWEEP_ID,
)
from segexp.errors import ConfigError, TrackingError
from segexp.insight import plots, profiles
from segexp.insight.report import ReportData, render_html
from segexp.tools.shell import hydra_tool
from segexp.tracking.store import Tracker, resolve_tracking_uri

log = logging.getLogger("segexp")

REPORT_ARTIFACT_DIR = "report"
REPORT_FILE = "report.html"
SCATTER_PNG = "plots/segments.png"
PARENT_RUN_TAG = "mlflow.parentRunId"


# --- reading the run ----------------------------------------------------------------------


def _artifact_names(client, run_id: str, folder: str | None = None) -> set[str]:
    return {info.path for info in client.list_artifacts(run_id, folder)}


def _download(client, run_id: str, path: str, folder: Path) -> Path:
    return Path(client.download_artifacts(run_id, path, str(folder)))


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _get_run(client, run_id: str, tracking_uri: str):
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(
            f"run_id={run_id}: no such run in {tracking_uri}; copy a job run id from the MLflow "
            "UI or the run_id column of a sweep's leaderboard.csv, and check mlflow.tracking_uri"
        ) from exc


def _profile_from_assignments(
    client, run, names: set[str], folder: Path, naming_cfg: Any
) -> tuple[pd.DataFrame, dict, dict[str, bytes], str]:
    """Profile a run logged without segments.json from its assignments.csv."""
    if ASSIGNMENTS_FILE not in names:
        raise TrackingError(
            f"run_id={run.info.run_id}: the run has neither {profiles.SEGMENTS_JSON} nor "
            f"{ASSIGNMENTS_FILE}; it is not a segexp segmentation run (pass a job run id)"
        )
    assignments = pd.read_csv(
        _download(client, run.info.run_id, ASSIGNMENTS_FILE, folder), dtype={"customer_id": str}
    )
    features = [c for c in run.data.params.get("feature_columns", "").split(",") if c]
    features = features or [c for c in assignments.columns if c not in ("customer_id", "segment")]
    profile = profiles.compute_profile(
        assignments.drop(columns=["segment"]),
        assignments["segment"].to_numpy(),
        features,
        naming_cfg,
    )
    images = {
        "heatmap": _png(profiles.profile_heatmap(profile)),
        "snake": _png(profiles.snake_plot(profile)),
    }
    note = (
        f"This run was logged without {profiles.SEGMENTS_JSON}: its segments were profiled and "
        f"named when this report was made, from {ASSIGNMENTS_FILE} (clustering features only) "
        "and the current naming config."
    )
    return profile.table, profiles.segments_document(profile), images, note


def _comparison(client, parent_id: str, folder: Path, params: dict[str, str], data: ReportData):
    """The sweep's leaderboard and this run's group over k, re-plotted with the chosen k marked."""
    if LEADERBOARD_FILE not in _artifact_names(client, parent_id):
        data.notes.append(f"The sweep parent run {parent_id} has no {LEADERBOARD_FILE}.")
        return
    board = pd.read_csv(_download(client, parent_id, LEADERBOARD_FILE, folder))
    data.leaderboard = board
    if "k" not in board.columns or "k" not in params:
        return
    chosen_k = int(params["k"])
    same = pd.Series(True, index=board.index)
    for key in ("algo", "scaler", "features"):
        if key in board.columns and key in params:
            same &= board[key].astype(str) == str(params[key])
    if "status" in board.columns:
        same &= board["status"] == "FINISHED"
    group = board[same & board["k"].notna()].copy()
    group["k"] = group["k"].astype(int)
    label = " / ".join(str(params.get(key, "")) for key in ("algo", "scaler", "features"))
    for metric, title in (("inertia", "elbow"), ("silhouette", "silhouette vs k")):
        if (
            metric in group.columns
            and group[metric].notna().sum() >= 2
            and group["k"].nunique() > 1
        ):
            rows = group[group[metric].notna()]
            fig = plots.metric_vs_k(rows, metric, f"{title}: {label}", marks={"chosen": chosen_k})
            data.k_plots[title] = _png(fig)


def collect_report_data(tracking_uri: str, run_id: str, naming_cfg: Any = None) -> ReportData:
    """Read the run, its artifacts and its sweep parent's comparison from MLflow."""
    tracker = Tracker(tracking_uri)
    client = tracker.client
    run = _get_run(client, run_id, tracking_uri)
    tags = dict(run.data.tags)
    if tags.get(TAG_KIND) == "sweep":
        best = tags.get("segexp.best_run_id")
        hint = f" such as its best run {best}" if best else ""
        raise TrackingError(
            f"run_id={run_id} is the parent run of sweep {tags.get(TAG_SWEEP_ID, '?')}; "
            f"pass one of its job runs{hint}"
        )
    if run.info.status != "FINISHED":
        raise TrackingError(
            f"run_id={run_id} ended {run.info.status}"
            + (f" ({tags['segexp.error'].splitlines()[0]})" if "segexp.error" in tags else "")
            + "; a report needs a FINISHED segmentation run"
        )
    names = _artifact_names(client, run_id)
    plot_names = _artifact_names(client, run_id, "plots") if "plots" in names else set()
    with tempfile.TemporaryDirectory(prefix="segexp-report-") as tmp:
        folder = Path(tmp)
        images: dict[str, bytes] = {}
        notes: list[str] = []
        if profiles.SEGMENTS_JSON in names and profiles.PROFILE_CSV in names:
            document = json.loads(
                _download(client, run_id, profiles.SEGMENTS_JSON, folder).read_text()
            )
            table = pd.read_csv(
                _download(client, run_id, profiles.PROFILE_CSV, folder), index_col="segment"
            )
            for key, path in (("heatmap", profiles.HEATMAP_PNG), ("snake", profiles.SNAKE_PNG)):
                if path in plot_names:
                    images[key] = _download(client, run_id, path, folder).read_bytes()
        else:
            table, document, images, note = _profile_from_assignments(
                client, run, names, folder, naming_cfg
            )
            notes.append(note)
        data = ReportData(
            run_id=run_id,
            run_name=run.info.run_name or run_id,
            experiment_id=run.info.experiment_id,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags=tags,
            start_time=run.info.start_time,
            table=table,
            document=document,
            images=images,
            notes=notes,
        )
        if SCATTER_PNG in plot_names:
            data.images["scatter"] = _download(client, run_id, SCATTER_PNG, folder).read_bytes()
        parent_id = tags.get(PARENT_RUN_TAG)
        if parent_id:
            parent = _get_run(client, parent_id, tracking_uri)
            if parent.data.tags.get(TAG_KIND) == "sweep":
                data.parent_run_id = parent_id
                _comparison(client, parent_id, folder, data.params, data)
    return data


# --- entry points -------------------------------------------------------------------------


def build_report(
    tracking_uri: str,
    run_id: str,
    output_path: str | Path,
    *,
    log_to_mlflow: bool = True,
    naming_cfg: Any = None,
) -> Path:
    """Write the report of ``run_id`` to ``output_path``; log it as report/report.html."""
    tracking_uri = resolve_tracking_uri(tracking_uri)
    data = collect_report_data(tracking_uri, run_id, naming_cfg)
    document = render_html(data)
    output = Path(output_path).expanduser()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"output={output}: cannot write the report there ({exc.strerror or exc}); "
            "choose a writable path"
        ) from exc
    if log_to_mlflow:
        with tempfile.TemporaryDirectory(prefix="segexp-report-") as tmp:
            staged = Path(tmp) / REPORT_FILE
            staged.write_text(document, encoding="utf-8")
            Tracker(tracking_uri).client.log_artifact(run_id, str(staged), REPORT_ARTIFACT_DIR)
    return output.resolve()


def report_from_config(cfg: DictConfig) -> Path:
    """What the command line does with a composed conf/report.yaml."""
    if OmegaConf.is_missing(cfg, "run_id") or not str(cfg.run_id or "").strip():
        raise ConfigError(
            "run_id: give the MLflow run id of a segmentation job, e.g. "
            "python -m segexp.report run_id=<id>; copy it from the MLflow UI or a sweep's "
            "leaderboard.csv"
        )
    run_id = str(cfg.run_id).strip()
    output = cfg.get("output") or f"report-{run_id}.html"
    return build_report(
        resolve_tracking_uri(cfg.mlflow.tracking_uri),
        run_id,
        output,
        log_to_mlflow=bool(cfg.get("log_to_mlflow", True)),
        naming_cfg=cfg.get("naming"),
    )


@dataclass
class ReportWritten:
    path: Path
    run_id: str
    logged: bool

    def summary(self) -> str:
        logged = f" (logged to run {self.run_id})" if self.logged else ""
        return f"segexp: report written to {self.path}{logged}"


def _report_action(cfg: DictConfig) -> ReportWritten:
    path = report_from_config(cfg)
    return ReportWritten(path, str(cfg.run_id), bool(cfg.get("log_to_mlflow", True)))


main = hydra_tool("report", _report_action)


if __name__ == "__main__":
    sys.exit(main())
