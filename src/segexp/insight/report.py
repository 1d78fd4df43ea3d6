"""The HTML report of one segmentation, for marketing: this module turns a run into plain
texts for ``templates/report.html.j2``, which Jinja2 autoescapes (nothing read from the store
or the data reaches the page as markup); images are data URIs, so the page needs no network.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
import pandas as pd

from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_SWEEP_ID,
    VERSION,
)
from segexp.insight import plots

SECTIONS = {
    "segments": "Segments",
    "figures": "Segments in pictures",
    "comparison": "How this segmentation was chosen",
    "overview": "The data behind the segments",
    "provenance": "Where this report comes from",
}
NOISE_ID = "-1"  # segment -1: customers the algorithm left out of every segment (not a segment)
_LEADERBOARD_ROWS = 15
# The leaderboard's columns after run_name and the ranked metric; the rest go in <details>.
_KEY_COLUMNS = "noise_fraction min_segment_share stability n_clusters algo k scaler features"
_HEADINGS = {
    "run_name": "run",
    "noise_fraction": "noise",
    "min_segment_share": "smallest segment",
    "n_clusters": "segments",
}
_COUNTS = ("rank", "k", "n_clusters")
_MINUTE = "%Y-%m-%d %H:%M UTC"


@dataclass
class ReportData:
    """Everything the HTML shows, gathered from MLflow before any HTML is written."""

    run_id: str
    run_name: str
    experiment_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    start_time: int | None
    table: pd.DataFrame  # profile.csv: one row per segment
    document: dict[str, Any]  # segments.json
    images: dict[str, bytes] = field(default_factory=dict)  # scatter, heatmap, snake
    notes: list[str] = field(default_factory=list)
    leaderboard: pd.DataFrame | None = None
    k_plots: dict[str, bytes] = field(default_factory=dict)
    parent_run_id: str | None = None
    selection: str | None = None  # how this run was chosen (the champion, a sweep's rank 1)
    ranked_by: str = "silhouette"  # the metric the leaderboard is ranked by
    ranked_larger: bool = True  # whether a larger ranked_by is better
    left_out: str = ""  # '2 runs left out: more than 10% of customers not assigned (...)'


def _float(value: Any) -> float | None:
    """The number in a value that may be anything in a tampered store; None if there is none."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _num(value: Any, digits: int = 3) -> str:
    number = _float(value)
    if number is None:
        return "n/a" if value is None or isinstance(value, float) else str(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{number:.0f}"


def _text(value: Any, spec: str) -> str:
    """A number formatted by ``spec``; anything else (a tampered store) as it is."""
    number = _float(value)
    return str(value) if number is None else format(number, spec)


def _color(segment: Any) -> str:
    number = _float(segment)
    return plots.segment_color(int(number)) if number is not None else "#999999"


def _png(png: bytes | None) -> str | None:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None


def _column_heading(data: ReportData, column: str) -> str:
    return column if column in data.document.get("feature_columns", []) else f"{column}*"


def _apart(data: ReportData, row: pd.Series) -> list[str]:
    """Up to three columns where the segment differs most from all customers, with numbers."""
    found = []
    for column in data.document.get("profiled_columns", []):
        level = str(row.get(f"{column}_level", ""))
        diff, ratio = _float(row.get(f"{column}_std_diff")), _float(row.get(f"{column}_ratio"))
        if diff is not None and level not in ("", "mid", "average", "nan"):
            times = f", {ratio:.2f}× the average" if ratio is not None else ""
            found.append((-abs(diff), f"{column} {level}: {diff:+.2f} sd{times}"))
    return [text for _, text in sorted(found)[:3]] or ["close to all customers on every column"]


def _split_shares(data: ReportData, row: pd.Series, column: str) -> str:
    """'Female 56%, Male 44%': by the base's values in segments.json, so ``Channel`` and
    ``Channel_type`` never mix."""
    values = data.document.get("base", {}).get("shares", {}).get(column, {})
    return _shares({v: row[f"{column}_{v}_share"] for v in values if f"{column}_{v}_share" in row})


def _shares(shares: dict[Any, Any]) -> str:
    return ", ".join(f"{value} {_text(share, '.0%')}" for value, share in shares.items())


def _numbers(data: ReportData, row: pd.Series) -> list[list[str]]:
    """One segment's statistics, one row per profiled column."""
    base = data.document.get("base", {}).get("columns", {})
    table = []
    for c in data.document.get("profiled_columns", []):
        stat = {s: _num(row.get(f"{c}_{s}"), 1) for s in ("mean", "median", "q1", "q3")}
        diff, ratio = _float(row.get(f"{c}_std_diff")), row.get(f"{c}_ratio")
        signed = "n/a" if diff is None else f"{diff:+.2f}"
        times = _num(ratio) if _float(ratio) is None else f"{_float(ratio):.2f}×"
        everyone, level = _num(base.get(c, {}).get("mean"), 1), str(row.get(f"{c}_level", ""))
        cells = [stat["mean"], stat["median"], f"{stat['q1']} – {stat['q3']}", everyone, signed]
        cells += [times, level]
        table.append([_column_heading(data, c), *cells])
    return table


def _segments(data: ReportData) -> list[dict[str, Any]]:
    """Each segment of segments.json (noise is not one): its card and its numbers."""
    rows = {str(segment): row for segment, row in data.table.iterrows()}
    segments = []
    for seg in data.document.get("segments", []):
        if str(seg.get("id")) == NOISE_ID:
            continue
        row = rows.get(str(seg.get("id")), pd.Series(dtype=object))
        splits = data.document.get("split_columns", []) if not row.empty else []
        segments.append(
            {
                "id": str(seg.get("id")),
                "name": str(seg.get("name", "")),
                "color": _color(seg.get("id")),
                "size": _text(seg.get("size"), ",.0f"),
                "share": _text(seg.get("share"), ".1%"),
                "bar": min(max(100 * (_float(seg.get("share")) or 0.0), 0.0), 100.0),
                "description": str(seg.get("description", "")),
                "apart": _apart(data, row),
                "actions": [str(a) for a in seg.get("actions", [])],
                "table": _numbers(data, row) if not row.empty else [],
                "splits": [f"{c}: {_split_shares(data, row, c)}" for c in splits],
            }
        )
    return segments


def _overview(data: ReportData) -> dict[str, Any]:
    base, columns = data.document.get("base", {}), data.document.get("profiled_columns", [])
    stats = ("mean", "std", "min", "q1", "median", "q3", "max")
    return {
        "features": ", ".join(map(str, data.document.get("feature_columns", []))),
        "columns": [
            [_column_heading(data, c)]
            + [_num(base.get("columns", {}).get(c, {}).get(s), 1) for s in stats]
            for c in columns
        ],
        "starred": any(c not in data.document.get("feature_columns", []) for c in columns),
        "splits": [f"{column}: {_shares(v)}" for column, v in base.get("shares", {}).items()],
    }


def _cell(board: pd.DataFrame, column: str, value: Any) -> dict[str, Any]:
    numeric = column in _COUNTS or pd.api.types.is_numeric_dtype(board[column])
    digits = 0 if column in _COUNTS else 1 if "calinski" in column else 3
    text = "" if pd.isna(value) else _num(value, digits) if numeric else str(value)
    return {"text": text, "numeric": numeric, "name": column == "run_name"}


def _leaderboard(data: ReportData, board: pd.DataFrame) -> dict[str, Any]:
    """The sweep's runs: the columns that matter, the rest in a details block."""
    is_this = board.get("run_id", pd.Series(None, board.index)).astype(str) == data.run_id
    shown = board[is_this | board.index.isin(board.index[:_LEADERBOARD_ROWS])]  # this run too
    constant = [
        c
        for c in ("algo", "scaler", "features", "status")
        if c in board.columns and board[c].nunique(dropna=False) == 1 and len(board) > 1
    ]
    wanted = dict.fromkeys(["rank", "run_name", data.ranked_by, *_KEY_COLUMNS.split()])
    key = [c for c in wanted if c in board.columns and c not in constant]
    rest = [c for c in board.columns if c not in (*key, *constant, "left_out", "start_time")]
    rows = []
    for index, row in shown.iterrows():
        chosen = bool(is_this.loc[index])
        reason = "" if pd.isna(row.get("left_out")) else str(row.get("left_out"))
        rows.append(
            {
                "css": "chosen" if chosen else "left-out" if reason else "",
                "chosen": chosen,
                "left_out": reason,
                "cells": [_cell(board, c, row[c]) for c in key],
                "more": [_cell(board, c, row[c]) for c in ["run_name", *rest]],
            }
        )
    direction = "higher" if data.ranked_larger else "lower"
    ranked_by = f"{data.ranked_by} ({direction} is better)" if data.ranked_by in board else "rank"
    others = set(board["algo"].dropna().astype(str)) if "algo" in board.columns else set()
    return {
        "sweep_id": data.tags.get(TAG_SWEEP_ID, ""),
        "ranked_by": ranked_by,
        "more": len(board) - len(shown),
        "shared": "; ".join(f"{c} {board[c].iloc[0]}" for c in constant),
        "columns": [_HEADINGS.get(c, c) for c in key],
        "rest": ["run_name", *rest],
        "rows": rows,
        "other_algos": ", ".join(sorted(others - {str(data.params.get("algo"))})),
    }


def render(template: str, **values: Any) -> str:
    """A template of ``templates/``: HTML ones autoescaped (values are plain text), others not."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("segexp.insight", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(template).render(**values)


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no external resources)."""
    board = data.leaderboard
    return render(
        "report.html.j2",
        title=f"Customer segments: {data.run_name}",
        data=data,
        n_customers=_text(data.document.get("base", {}).get("size", ""), ",.0f"),
        tags={
            "source": data.tags.get(TAG_DATA_SOURCE),
            "fingerprint": data.tags.get(TAG_DATA_FINGERPRINT),
            "sweep": data.tags.get(TAG_SWEEP_ID),
            "code": data.tags.get(TAG_CODE_VERSION),
        },
        sections=SECTIONS,
        segments=_segments(data),
        noise=str(data.document.get("not_assigned", {}).get("text") or ""),
        noise_color=_color(NOISE_ID),
        pictures={key: _png(data.images.get(key)) for key in ("scatter", "heatmap", "snake")},
        leaderboard=None if board is None or board.empty else _leaderboard(data, board),
        k_plots={title: _png(png) for title, png in data.k_plots.items()},
        scores={metric: _num(value) for metric, value in data.metrics.items()},
        noise_fraction=_float(data.metrics.get("noise_fraction")) or 0.0,
        overview=_overview(data),
        started=datetime.fromtimestamp(data.start_time / 1000, tz=UTC).strftime(_MINUTE)
        if data.start_time
        else "",
        made=datetime.now(tz=UTC).strftime(_MINUTE),
        version=VERSION,
    )
