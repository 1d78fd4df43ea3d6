"""``segexp-report [run_id=<id>]``: one self-contained HTML report of a segmentation (a job
run, a sweep's rank 1, or the champion), read back from MLflow."""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from segexp.contract import (
    ASSIGNMENTS_FILE,
    ASSIGNMENTS_PARQUET,
    LEADERBOARD_FILE,
    TAG_KIND,
    TAG_SWEEP_ID,
)
from segexp.errors import ConfigError, EmptyLeaderboardError, TrackingError
from segexp.insight import plots, profiles
from segexp.insight.report import ReportData, render_html
from segexp.tools.compare import better, get_run, max_noise_fraction_from, rank_one
from segexp.tools.outputs import check_output, check_suffix, write_text_atomically
from segexp.tracking.assignments import download_assignments
from segexp.tracking.leaderboard import (
    LEFT_OUT_COLUMN,
    METRIC_DIRECTIONS,
    LeaderboardFilters,
    build_leaderboard,
    larger_is_better,
    left_out_summary,
    runs_to_frame,
)
from segexp.tracking.models import champion_version
from segexp.tracking.store import Tracker, resolve_tracking_uri, sweep_job_runs

REPORT_ARTIFACT_DIR = "report"
REPORT_FILE = "report.html"
REPORT_SUFFIXES = (".html", ".htm")
SCATTER_PNG = "plots/segments.png"
PARENT_RUN_TAG = "mlflow.parentRunId"


def _artifact_names(client, run_id: str, folder: str | None = None) -> set[str]:
    return {info.path for info in client.list_artifacts(run_id, folder)}


def download_artifact(client, run_id: str, path: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(folder)))


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _profile_from_assignments(
    client, run, names: set[str], folder: Path, naming_cfg: Any
) -> tuple[pd.DataFrame, dict, dict[str, bytes], str]:
    """Profile a run logged without segments.json from its assignments (ids unescaped)."""
    if not names & {ASSIGNMENTS_FILE, ASSIGNMENTS_PARQUET}:
        raise TrackingError(
            f"run_id={run.info.run_id}: the run has neither {profiles.SEGMENTS_JSON} nor "
            f"{ASSIGNMENTS_FILE}; it is not a segexp segmentation run (pass a job run id)"
        )
    assignments = download_assignments(client, run.info.run_id, folder, id_column="customer_id")
    features = [c for c in run.data.params.get("feature_columns", "").split(",") if c]
    features = features or [c for c in assignments.columns if c not in ("customer_id", "segment")]
    segments = assignments.pop("segment").to_numpy()
    profile = profiles.compute_profile(assignments, segments, features, naming_cfg)
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


def _comparison(
    client, parent_id: str, folder: Path, data: ReportData, filters: LeaderboardFilters
) -> None:
    """The sweep's leaderboard ranked again by the report's metric and noise rule, and this
    run's group over k re-plotted with the chosen k marked."""
    if LEADERBOARD_FILE not in _artifact_names(client, parent_id):
        data.notes.append(f"The sweep parent run {parent_id} has no {LEADERBOARD_FILE}.")
        return
    logged = pd.read_csv(download_artifact(client, parent_id, LEADERBOARD_FILE, folder))
    rule = LeaderboardFilters(status=None, max_noise_fraction=filters.max_noise_fraction)
    board = build_leaderboard(
        logged.drop(columns=["rank", LEFT_OUT_COLUMN], errors="ignore"), data.ranked_by, rule
    )
    data.leaderboard = board
    data.left_out = left_out_summary(board, filters, "filter.")
    params = data.params
    chosen_k = pd.to_numeric(params.get("k"), errors="coerce")
    if "k" not in board.columns or pd.isna(chosen_k):
        return
    same = board["k"].notna() & (board.get("status", "FINISHED") == "FINISHED")
    for key in ("algo", "scaler", "features"):
        if key in board.columns and key in params:
            same &= board[key].astype(str) == str(params[key])
    group = board[same].astype({"k": int})
    label = " / ".join(str(params.get(key, "")) for key in ("algo", "scaler", "features"))
    for metric, title in (("inertia", "elbow"), ("silhouette", "silhouette vs k")):
        rows = group[group[metric].notna()] if metric in group.columns else group.iloc[:0]
        if len(rows) >= 2 and group["k"].nunique() > 1:
            marks = {"chosen": int(chosen_k)}
            fig = plots.metric_vs_k(rows, metric, f"{title}: {label}", marks=marks)
            data.k_plots[title] = _png(fig)


def choose_from_sweep(
    client, parent, metric: str = "silhouette", filters: LeaderboardFilters | None = None
) -> tuple[str, str]:
    """(run id, how it was chosen): rank 1 of the sweep's job runs, as compare ranks them."""
    filters = filters if filters is not None else LeaderboardFilters()
    parent_id = parent.info.run_id
    sweep_id = parent.data.tags.get(TAG_SWEEP_ID, "")
    frame = runs_to_frame(sweep_job_runs(client, parent.info.experiment_id, sweep_id))
    where = f"run_id={parent_id} is the parent run of sweep {sweep_id or '?'}"
    if frame.empty:
        raise TrackingError(f"{where}, which has no job runs to report; pass a job run's id")
    try:
        best, ranked, left_out = rank_one(frame, metric, filters)
    except EmptyLeaderboardError as exc:
        raise TrackingError(
            f"{where}: no run of it can be chosen: {exc}; or pass one of its job runs "
            "with run_id=<id>"
        ) from exc
    selection = (
        f"Chosen from sweep {sweep_id} (parent run {parent_id}): {best['run_name']}, rank 1 of "
        f"{ranked} runs by {metric} ({better(metric)}){left_out}."
    )
    return str(best["run_id"]), selection


def collect_report_data(
    tracking_uri: str,
    run_id: str,
    naming_cfg: Any = None,
    *,
    metric: str = "silhouette",
    filters: LeaderboardFilters | None = None,
    selection: str | None = None,
) -> ReportData:
    """Read the run (a sweep parent's: its chosen run), its artifacts and its sweep's
    comparison from MLflow; ``selection`` says how the run was chosen."""
    client = Tracker(tracking_uri).client
    filters = filters if filters is not None else LeaderboardFilters()
    run = get_run(client, run_id)
    if run.data.tags.get(TAG_KIND) == "sweep":
        run_id, selection = choose_from_sweep(client, run, metric, filters)
        run = get_run(client, run_id)
    tags = dict(run.data.tags)
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
                download_artifact(client, run_id, profiles.SEGMENTS_JSON, folder).read_text()
            )
            table = pd.read_csv(
                download_artifact(client, run_id, profiles.PROFILE_CSV, folder), index_col="segment"
            )
        else:
            table, document, images, note = _profile_from_assignments(
                client, run, names, folder, naming_cfg
            )
            notes.append(note)
        shown = {"heatmap": profiles.HEATMAP_PNG, "snake": profiles.SNAKE_PNG}
        for key, path in {**shown, "scatter": SCATTER_PNG}.items():
            if path in plot_names and key not in images:
                images[key] = download_artifact(client, run_id, path, folder).read_bytes()
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
            selection=selection,
            ranked_by=metric,
            ranked_larger=larger_is_better(metric),
        )
        parent_id = tags.get(PARENT_RUN_TAG)
        if parent_id:
            parent = get_run(client, parent_id)
            if parent.data.tags.get(TAG_KIND) == "sweep":
                data.parent_run_id = parent_id
                _comparison(client, parent_id, folder, data, filters)
    return data


@dataclass
class ReportWritten:
    path: Path
    run_id: str
    logged: bool
    selection: str | None = None

    def summary(self) -> str:
        logged = f" (logged to run {self.run_id})" if self.logged else ""
        text = f"segexp: report written to {self.path}{logged}"
        return text + (f"\nsegexp: {self.selection}" if self.selection else "")


def write_report(
    tracking_uri: str,
    run_id: str,
    output_path: str | Path | None = None,
    *,
    log_to_mlflow: bool = True,
    naming_cfg: Any = None,
    metric: str = "silhouette",
    filters: LeaderboardFilters | None = None,
    selection: str | None = None,
    overwrite: bool = True,
) -> ReportWritten:
    """Write the report of ``run_id`` to ``output_path`` (None: report-<run id>.html), whole
    or not at all, and log it as report/report.html."""
    if output_path:  # the page is HTML: the name must say so
        check_suffix(Path(output_path), "output", REPORT_SUFFIXES)
    tracking_uri = resolve_tracking_uri(tracking_uri)
    data = collect_report_data(
        tracking_uri, run_id, naming_cfg, metric=metric, filters=filters, selection=selection
    )
    output = Path(output_path or f"report-{data.run_id}.html").expanduser()
    if not overwrite:
        check_output(output, "output", overwrite=False)
    document = render_html(data)
    try:
        write_text_atomically(output, document)
    except OSError as exc:
        raise ConfigError(
            f"output={output}: cannot write the report there ({exc.strerror or exc}); "
            "choose a writable path"
        ) from exc
    if log_to_mlflow:
        artifact = f"{REPORT_ARTIFACT_DIR}/{REPORT_FILE}"
        Tracker(tracking_uri).client.log_text(data.run_id, document, artifact)
    return ReportWritten(output.resolve(), data.run_id, log_to_mlflow, data.selection)


def report_from_config(cfg: DictConfig) -> ReportWritten:
    """The command line's report: ``run_id``, else the champion's run."""
    overwrite = bool(cfg.get("overwrite"))
    if cfg.get("output"):  # before any work; the default name is known once the run is
        check_output(str(cfg.output), "output", overwrite, REPORT_SUFFIXES)
    given = None if OmegaConf.is_missing(cfg, "run_id") else cfg.get("run_id")
    run_id = str(given or "").strip()
    selection = None
    if not run_id:
        name, alias = str(cfg.registry.name), str(cfg.registry.alias)
        version = champion_version(cfg.mlflow.tracking_uri, name, alias, "run_id=...")
        run_id = str(version.run_id or version.tags.get("segexp.source_run_id", ""))
        selection = f"This run is the {alias}: models:/{name}@{alias} (version {version.version})."
    metric = str(cfg.get("metric") or "silhouette")
    if metric not in METRIC_DIRECTIONS:
        raise ConfigError(
            f"metric={metric}: the report ranks by a metric of known direction: "
            f"{', '.join(METRIC_DIRECTIONS)}"
        )
    noise = max_noise_fraction_from(cfg.get("filter") or {})
    return write_report(
        cfg.mlflow.tracking_uri,
        run_id,
        cfg.get("output") or None,
        log_to_mlflow=bool(cfg.get("log_to_mlflow", True)),
        naming_cfg=cfg.get("naming"),
        metric=metric,
        filters=LeaderboardFilters(max_noise_fraction=noise),
        selection=selection,
        overwrite=overwrite,
    )
