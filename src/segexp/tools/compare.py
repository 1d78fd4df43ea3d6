"""``segexp-compare``: a ranked leaderboard of one sweep or of a whole experiment.
Exit codes: 0 shown, 1 nothing to rank, 2 bad input or config (an incomplete latest sweep too)."""

from __future__ import annotations

import difflib
import re
import shutil
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, ListConfig

from segexp.contract import TAG_ERROR, TAG_KIND, TAG_OUTCOME_PREFIX, TAG_SWEEP_ID
from segexp.data.export import csv_text
from segexp.errors import (
    EXIT_USER_ERROR,
    ConfigError,
    EmptyLeaderboardError,
    SegexpError,
    TrackingError,
)
from segexp.model.selection import DEFAULT_MAX_NOISE_FRACTION, DEFAULT_MIN_SEGMENT_SHARE
from segexp.tools.outputs import check_output, check_suffix, write_text_atomically
from segexp.tracking.leaderboard import (
    LEFT_OUT_COLUMN,
    LeaderboardFilters,
    build_leaderboard,
    candidates,
    display_columns,
    format_markdown,
    format_table,
    larger_is_better,
    left_out_summary,
    printed_width,
    runs_to_frame,
    select_best,
)
from segexp.tracking.store import (
    TAG_ENDED_BY,
    TAG_JOBS_PLANNED,
    Tracker,
    resolve_tracking_uri,
    sqlite_path,
    sweep_job_runs,
)

SUFFIX_FORMATS = {".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".txt": "table"}
# Scores computed in each run's own space: not comparable across scalers or feature sets.
OWN_SPACE_METRICS = ("silhouette", "calinski_harabasz", "davies_bouldin", "inertia")
# Fitting a table to the terminal: columns hidden first to last ("algo." stands for every
# hyperparameter); never the rank, run name, ranked metric, asked-for columns or run id.
HIDE_FIRST_TO_LAST = (
    "suggested_eps", "bic", "calinski_harabasz", "davies_bouldin", "noise_fraction",
    "min_segment_share", "nmi", "ari", "features", "scaler", "algo.", "algo", "k", "status",
    "ref_silhouette", "stability", "n_clusters",
)  # fmt: skip
SHORT_RUN_ID = 8
SWEEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # 20261207-052208-9d8500, or a run id


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, ListConfig | list | tuple):
        return tuple(str(v) for v in value)
    if isinstance(value, str | int):
        return tuple(part.strip() for part in str(value).split(",") if part.strip())
    raise ConfigError(f"{where}: expected a name or a list of names like [a,b]; got {value!r}")


def filters_from_config(cfg: DictConfig) -> LeaderboardFilters:
    """``filter.*`` as LeaderboardFilters (types and ranges: the schema's, checked first)."""
    section = cfg.get("filter") or {}
    k_min, k_max = section.get("k_min"), section.get("k_max")
    if k_min is not None and k_max is not None and k_min > k_max:
        raise ConfigError(
            f"filter.k_min={k_min} is larger than filter.k_max={k_max}; no k can pass"
        )
    status = section.get("status")
    share = section.get("min_segment_share", DEFAULT_MIN_SEGMENT_SHARE)
    return LeaderboardFilters(
        **{
            key: _names(section.get(key), f"filter.{key}") for key in ("algo", "features", "scaler")
        },
        min_segment_share=None if share is None else float(share),
        min_stability=section.get("min_stability"),
        k_min=k_min,
        k_max=k_max,
        status=None if status is None else str(status).upper(),
        max_noise_fraction=max_noise_fraction_from(section),
    )


def max_noise_fraction_from(section: Mapping[str, Any]) -> float | None:
    """``filter.max_noise_fraction`` (range: the schema's): absent, the default; null, no limit."""
    value = section.get("max_noise_fraction", DEFAULT_MAX_NOISE_FRACTION)
    return None if value is None else float(value)


def output_format(cfg: DictConfig) -> str:
    """``format``, else the output file's suffix, else 'table'; the two must agree."""
    fmt = cfg.get("format")
    output = cfg.get("output")
    if not output:
        return str(fmt or "table")
    path = Path(str(output)).expanduser()
    implied = SUFFIX_FORMATS[check_suffix(path, "output", list(SUFFIX_FORMATS))]
    if fmt is not None and fmt != implied:
        raise ConfigError(
            f"format={fmt}: output={path} names a {implied} file; give the output a "
            f"{fmt} suffix ({', '.join(k for k, v in SUFFIX_FORMATS.items() if v == fmt)}) "
            "or leave format unset"
        )
    return implied


def existing_store(configured_uri: str | None) -> str:
    """The resolved tracking URI; a missing local SQLite file is an error, not a new store."""
    uri = resolve_tracking_uri(configured_uri)
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        raise TrackingError(
            f"no MLflow store at {db} (mlflow.tracking_uri={uri}); run a sweep first "
            "(python -m segexp -m k=2..10) or set mlflow.tracking_uri to the store of your runs"
        )
    return uri


def get_run(client: Any, run_id: str) -> Run:
    """The run, or TrackingError saying where run ids are found."""
    try:
        return client.get_run(str(run_id))
    except MlflowException as exc:
        raise TrackingError(
            f"run_id={run_id}: no run '{run_id}' in {client.tracking_uri}; copy a run id from "
            "python -m segexp.compare, a sweep's leaderboard.csv or the MLflow UI, and check "
            "mlflow.tracking_uri"
        ) from exc


def better(metric: str, direction: str = "auto") -> str:
    """'larger is better' or 'smaller is better', as every ranking says it."""
    return f"{'larger' if larger_is_better(metric, direction) else 'smaller'} is better"


def rank_one(
    frame: pd.DataFrame, metric: str, filters: LeaderboardFilters, direction: str = "auto"
) -> tuple[pd.Series, int, str]:
    """(rank 1 as ``select_best`` picks it, how many runs were ranked, '; <runs left out>')."""
    best = select_best(frame, metric, filters, direction, prefix="filter.")
    board = build_leaderboard(frame, metric, filters, direction)
    left_out = left_out_summary(board, filters, "filter.")
    ranked = int(candidates(board)[0][metric].notna().sum())
    return best, ranked, f"; {left_out}" if left_out else ""


def _sweeps(tracker: Tracker, experiment_id: str, where: str = "", most: int = 1) -> list[Run]:
    """The experiment's sweep parent runs (``where``: more of the filter), latest first."""
    return tracker.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_KIND}` = 'sweep'{where}",
        order_by=["attributes.start_time DESC"],
        max_results=most,
    )


def find_sweep(tracker: Tracker, experiment_id: str, sweep_id: str | None) -> Run | None:
    """Parent run of the named sweep (sweep id or run id), else of the latest; None if none."""
    if sweep_id is None:
        return next(iter(_sweeps(tracker, experiment_id)), None)
    if not SWEEP_ID.fullmatch(sweep_id):  # it goes into an MLflow filter, which has no escapes
        ids = [
            r.data.tags.get(TAG_SWEEP_ID, r.info.run_id)
            for r in _sweeps(tracker, experiment_id, most=3)
        ]
        raise ConfigError(
            f"sweep_id={sweep_id}: not a sweep id; allowed: a sweep id such as "
            "20261207-052208-9d8500 or its parent run's id (letters, digits, '-', '_', '.')"
            + (f"; latest sweeps here: {', '.join(ids)}" if ids else "; this experiment has none")
        )
    runs = _sweeps(tracker, experiment_id, f" and tags.`{TAG_SWEEP_ID}` = '{sweep_id}'")
    if runs:
        return runs[0]
    try:
        run = tracker.client.get_run(str(sweep_id))
    except Exception:  # MlflowException for an unknown or malformed run id
        return None
    is_sweep = run.data.tags.get(TAG_KIND) == "sweep"
    return run if is_sweep and run.info.experiment_id == experiment_id else None


def load_runs(
    cfg: DictConfig, *, refuse_latest_incomplete: bool = True
) -> tuple[pd.DataFrame, str]:
    """The job runs to rank and where they come from; an incomplete sweep's reason is in
    ``frame.attrs["incomplete"]`` (as the latest sweep: refused, unless allowed)."""
    uri = existing_store(cfg.mlflow.tracking_uri)
    tracker = Tracker(uri)
    experiment_id = tracker.experiment_id(str(cfg.mlflow.experiment), create=False)
    experiment = f"experiment '{cfg.mlflow.experiment}'"
    if cfg.get("scope", "sweep") == "experiment":
        return runs_to_frame(sweep_job_runs(tracker.client, experiment_id, None)), experiment
    sweep_id = cfg.get("sweep_id")
    parent = find_sweep(tracker, experiment_id, None if sweep_id is None else str(sweep_id))
    if parent is None and sweep_id is not None:
        raise TrackingError(
            f"sweep_id={sweep_id}: no sweep with this id or parent run id in {experiment} "
            f"({uri}); leave sweep_id unset for the latest sweep"
        )
    if parent is None:
        raise EmptyLeaderboardError(
            f"{experiment} ({uri}) has no sweep; run one (python -m segexp -m k=2..10) "
            "or rank every run with scope=experiment"
        )
    found = parent.data.tags.get(TAG_SWEEP_ID, "")
    runs = sweep_job_runs(tracker.client, experiment_id, found)
    frame = runs_to_frame(runs)
    where = f"sweep {found} (parent run {parent.info.run_id})"
    reason = incomplete_reason(parent, len(runs))
    if reason is not None:
        frame.attrs["incomplete"] = reason
        if sweep_id is None and refuse_latest_incomplete and not cfg.get("allow_incomplete"):
            latest = _latest_complete(tracker, experiment_id)
            instead = (
                f"sweep_id={latest} (the latest complete sweep)" if latest else "sweep_id=<id>"
            )
            raise TrackingError(
                f"the latest sweep of {experiment}, {where}, is incomplete: {reason}; "
                f"rank it anyway with allow_incomplete=true (or sweep_id={found}), or rank a "
                f"complete one with {instead}"
            )
    return frame, where


def incomplete_reason(parent: Run, job_runs: int) -> str | None:
    """Why a sweep's parent run says the sweep did not run to its end (None: it did):
    KILLED, still RUNNING, FAILED, or fewer jobs ran than ``segexp.jobs_planned``."""
    tags = parent.data.tags
    status = parent.info.status
    parts = []
    if status == "KILLED":
        by = tags.get(TAG_ENDED_BY)
        parts.append(f"its parent run ended KILLED ({TAG_ENDED_BY}={by})" if by else "KILLED")
    elif status == "RUNNING":
        parts.append("its parent run is still RUNNING (the sweep is running, or was lost)")
    elif status == "FAILED":
        error = tags.get(TAG_ERROR, "").splitlines()
        parts.append("its parent run ended FAILED" + (f" ({error[0][:200]})" if error else ""))
    planned = tags.get(TAG_JOBS_PLANNED, "")
    if planned.isdigit():
        done = job_runs + sum(1 for key in tags if key.startswith(TAG_OUTCOME_PREFIX))
        if done < int(planned):
            parts.append(f"{done} of {planned} planned jobs ran")
    return "; ".join(parts) or None


def _latest_complete(tracker: Tracker, experiment_id: str) -> str | None:
    """The sweep id of the experiment's latest FINISHED sweep (its parent), if any."""
    for run in _sweeps(tracker, experiment_id, " and attributes.status = 'FINISHED'", 20):
        jobs = sweep_job_runs(tracker.client, experiment_id, run.data.tags.get(TAG_SWEEP_ID, ""))
        if incomplete_reason(run, len(jobs)) is None:
            return run.data.tags.get(TAG_SWEEP_ID)
    return None


def check_metric(frame: pd.DataFrame, metric: str, where: str) -> None:
    """ConfigError when no run logged ``metric``, listing the metrics that exist."""
    if metric in frame.columns and frame[metric].notna().any():
        return
    logged = sorted(
        c
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c].dtype) and c != "k" and frame[c].notna().any()
    )
    match = difflib.get_close_matches(metric, logged, n=1)
    hint = f" (did you mean '{match[0]}'?)" if match else ""
    raise ConfigError(
        f"metric={metric}: no run of {where} logged it; logged metrics: "
        f"{', '.join(logged) or 'none'}{hint}"
    )


def check_columns(frame: pd.DataFrame, wanted: Sequence[str]) -> None:
    """ConfigError naming the first asked-for column the leaderboard does not have."""
    available = [str(c) for c in frame.columns]
    if missing := [c for c in wanted if c not in available]:
        match = difflib.get_close_matches(missing[0], available, n=1)
        hint = f" (did you mean {match[0]}?)" if match else ""
        raise ConfigError(
            f"columns: no leaderboard column {missing[0]!r}{hint}; available: "
            f"{', '.join(available)}"
        )


def render(ranked: pd.DataFrame, columns: Sequence[str], fmt: str) -> str:
    """The leaderboard as text: aligned table, CSV (all columns, shown ones first) or Markdown."""
    if fmt == "csv":
        rest = [c for c in ranked.columns if c not in columns]
        return csv_text(ranked[list(columns) + rest])  # run names may start with =
    if fmt == "markdown":
        return format_markdown(ranked[list(columns)]) + "\n"
    return format_table(ranked[list(columns)]) + "\n"


def table_width(cfg: DictConfig, out: TextIO) -> int | None:
    """``width``, else the terminal's (``COLUMNS`` first) on standard output; None: no limit
    (``wide=true`` or no terminal)."""
    if cfg.get("wide", False):
        return None
    if cfg.get("width") is not None:
        return int(cfg.width)
    if out is not sys.stdout:
        return None
    columns = shutil.get_terminal_size(fallback=(0, 0)).columns
    return columns if columns > 0 else None


def fit_table(
    ranked: pd.DataFrame, columns: Sequence[str], width: int | None, keep: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """The aligned table within ``width`` columns, and the columns hidden to fit it: run
    ids shortened, columns hidden in HIDE_FIRST_TO_LAST order, then run names cut."""
    table = ranked[list(columns)].copy()
    if width is None:
        return format_table(table), []
    if "run_id" in table.columns:
        table["run_id"] = table["run_id"].astype(str).str[:SHORT_RUN_ID]
    kept = {"rank", "run_name", "run_id", *keep}

    def hide_order(column: str) -> int:  # "algo." stands for every hyperparameter column
        key = "algo." if column.startswith("algo.") else column
        return HIDE_FIRST_TO_LAST.index(key) if key in HIDE_FIRST_TO_LAST else -1

    order = sorted((c for c in table.columns if c not in kept), key=hide_order)
    hidden: list[str] = []
    for name in order:
        if printed_width(table) <= width:
            break
        table = table.drop(columns=name)
        hidden.append(name)
    return format_table(table, max_width=width), hidden


def _wrap(text: str, width: int | None) -> str:
    if width is None:
        return text
    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def run_compare(cfg: DictConfig, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print (or write) the leaderboard the config asks for; return the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    output, metric, direction = (
        cfg.get("output"),
        str(cfg.metric),
        str(cfg.get("direction", "auto")),
    )
    try:
        if output:  # an existing file is refused before any work
            check_output(str(output), "output", bool(cfg.get("overwrite")), list(SUFFIX_FORMATS))
        width = table_width(cfg, out)
        better(metric, direction)  # a bad direction is refused before any work
        filters = filters_from_config(cfg)
        fmt = output_format(cfg)
        frame, where = load_runs(cfg)
        if frame.empty:
            raise EmptyLeaderboardError(f"{where} has no job runs")
        check_metric(frame, metric, where)
        board = build_leaderboard(frame, metric, filters, direction)
        ranked = candidates(board)[0].drop(columns=LEFT_OUT_COLUMN, errors="ignore")
        left_out = noise_note(board, filters)
        if ranked.empty:
            raise EmptyLeaderboardError(
                f"none of the {len(frame)} runs of {where} passes the filters "
                f"({filters.describe('filter.')})" + (f"; {left_out}" if left_out else "")
            )
        extra = [str(c) for c in (cfg.get("columns") or [])]
        check_columns(ranked, extra)
    except SegexpError as exc:
        what = "nothing to rank" if isinstance(exc, EmptyLeaderboardError) else "error"
        print(f"segexp: {what}: {exc}", file=err)
        return exc.exit_code
    shown = ranked if cfg.get("top") is None else ranked.head(cfg.top)
    columns = display_columns(shown, metric, extra)
    spaces = [c for c in ("scaler", "preprocess", "features") if c in shown.columns]
    groups = len(shown[spaces].drop_duplicates())
    if metric in OWN_SPACE_METRICS and groups > 1:
        fair = "ref_silhouette" if metric == "inertia" else f"ref_{metric}"
        note = (
            f"segexp: note: these runs use {groups} {'/'.join(spaces)} combinations "
            f"(each a different transform of the data) and {metric} is measured in each run's "
            f"own space; rank by metric={fair} to compare them fairly (it scores every run's "
            "segments in one reference space: the table's numeric columns, standardized)"
        )
        print(_wrap(note, width), file=err)
    if fmt == "table" and not output:
        text, hidden = fit_table(shown, columns, width, keep=[metric, *extra])
        text += "\n"
        if hidden:
            why = (
                f"({len(hidden)} columns hidden to fit {width} columns: {', '.join(hidden)}; "
                "wide=true shows every column and full run ids)"
            )
            text += _wrap(why, width) + "\n"
    else:
        text = render(shown, columns, fmt)
    heading = (
        f"{where}: {len(ranked)} runs ({filters.describe('filter.')}), showing {len(shown)}, "
        f"ranked by {metric} ({better(metric, direction)})" + (f"; {left_out}" if left_out else "")
    )
    incomplete = frame.attrs.get("incomplete")
    if incomplete:
        heading = f"INCOMPLETE {heading}"
        note = (
            f"segexp: note: {where} is incomplete: {incomplete}; its leaderboard ranks only "
            "the jobs that ran, and promote best= refuses it without allow_incomplete=true"
        )
        print(_wrap(note, width), file=err)
    if output:
        path = Path(str(output)).expanduser()
        try:
            write_text_atomically(path, text)  # whole or not at all
        except OSError as exc:
            print(f"segexp: error: output={output}: cannot write the file ({exc})", file=err)
            return EXIT_USER_ERROR
        print(
            f"segexp: wrote {fmt} leaderboard of {len(shown)} runs to {path}; {heading}", file=out
        )
        return 0
    if fmt == "table":
        print(_wrap(heading, width), file=out)
    elif left_out:  # CSV/Markdown on standard output stay parseable: the note goes to stderr
        print(f"segexp: note: {left_out}", file=err)
    out.write(text)
    return 0


def noise_note(board: pd.DataFrame, filters: LeaderboardFilters) -> str:
    """How many runs the ranking left out and why, with the key that keeps them ('' if none)."""
    return left_out_summary(
        board,
        filters,
        "filter.",
        noise_hint="; filter.max_noise_fraction=1.0 ranks them too",
        share_hint="; filter.min_segment_share=0 ranks them too",
    )
