"""The HTML report of one segmentation: one self-contained page for marketing.

``render_html(ReportData)`` lays out the data overview, the comparison that led
to the choice (the sweep's leaderboard and k plots), the segments (scatter,
profile heatmap, snake plot, sizes), each segment's profile and suggested
actions, and where the report comes from. Images are embedded as data URIs, so
the file opens anywhere without a network; a print stylesheet keeps it readable
on paper. Gathering the data from MLflow is :mod:`segexp.tools.report`'s job.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import segexp
from segexp.contract import (
    TAG_CODE_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_SWEEP_ID,
)
from segexp.insight import plots

SECTIONS = {
    "overview": "Data overview",
    "comparison": "How this segmentation was chosen",
    "segments": "Segments",
    "profiles": "Segment profiles and actions",
    "provenance": "Where this report comes from",
}
_LEADERBOARD_ROWS = 15
_LEADERBOARD_COLUMNS = [
    "rank",
    "run_name",
    "algo",
    "k",
    "scaler",
    "features",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "min_segment_share",
    "noise_fraction",
    "n_clusters",
    "status",
    "left_out",
]
NOISE_ID = -1  # segment -1: customers the algorithm left out of every segment (not a segment)


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
    left_out: str = ""  # '2 runs left out: more than 10% of customers not assigned (...)'


_CSS = """
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #d9dee5; --accent: #2f6fae; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0; background: #f5f7fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 12px; padding-bottom: 4px;
  border-bottom: 2px solid var(--accent); }
h3 { font-size: 1.1em; margin: 0 0 6px; }
.lead { color: var(--muted); margin: 0 0 12px; }
nav { font-size: .9em; margin: 8px 0 0; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: .9em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.chosen td { background: #fff4d6; font-weight: 600; }
tr.left-out td { color: var(--muted); }
.scroll { overflow-x: auto; }
.nowrap { white-space: nowrap; }
.scroll table { font-size: .82em; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(400px, 1fr));
  gap: 16px; align-items: start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: .85em; color: var(--muted); }
.bar { background: #e3e8ee; height: 10px; min-width: 80px; border-radius: 2px; }
.bar span { display: block; height: 10px; border-radius: 2px; }
td.num { white-space: nowrap; }
.cards { display: grid; grid-template-columns: 1fr; gap: 16px; }
.card { border: 1px solid var(--line); border-left: 6px solid var(--swatch, var(--accent));
  border-radius: 4px; padding: 12px 14px; }
.card-body { display: grid; grid-template-columns: minmax(0, 3fr) minmax(220px, 2fr);
  gap: 20px; }
.card ul { margin: 4px 0 0; padding-left: 20px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  margin-right: 6px; vertical-align: baseline; }
.note { background: #fff8e1; border: 1px solid #f0d68a; padding: 8px 12px; border-radius: 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
@media (max-width: 800px) { main { padding: 12px; } .card-body { display: block; } }
@page { size: A4; margin: 14mm; }
@media print {
  body { background: #fff; font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; }
  .scroll { overflow: visible; }
  .card, figure, tr, .note { break-inside: avoid; }
  .cards, .card-body { display: block; }
  .card { margin-bottom: 10px; }
  .figures { grid-template-columns: 1fr 1fr; gap: 8px; }
  figure img { max-height: 100mm; }
  tr.chosen td, th, .bar, .bar span, .card, .swatch {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _e(value) if value is not None else ""
    if np.isnan(number):
        return "n/a"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{number:.0f}"


def _img(png: bytes | None, alt: str, caption: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _facts(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows if v not in (None, ""))
    return f'<dl class="facts">{items}</dl>'


def _html_table(header: list[str], rows: list[list[str]], numeric: set[int], classes=None) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        css = f' class="{classes[r]}"' if classes and classes[r] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _segments(data: ReportData) -> list[dict[str, Any]]:
    """The segments of segments.json, without segment -1 (noise is not a segment)."""
    return [s for s in data.document.get("segments", []) if int(s["id"]) != NOISE_ID]


def _not_assigned(data: ReportData) -> dict[str, Any] | None:
    """Segment -1's entry (size and share), when the run left customers unassigned."""
    return next((s for s in data.document.get("segments", []) if int(s["id"]) == NOISE_ID), None)


def not_assigned_text(entry: dict[str, Any]) -> str:
    """'Not assigned: 29 customers (14.5%)' (the label, whatever older runs named noise)."""
    size = int(entry["size"])
    return f"Not assigned: {size} customer{'' if size == 1 else 's'} ({float(entry['share']):.1%})"


def _column_heading(data: ReportData, column: str) -> str:
    return column if column in data.document.get("feature_columns", []) else f"{column}*"


def _overview_html(data: ReportData) -> str:
    base = data.document.get("base", {})
    columns = data.document.get("profiled_columns", [])
    rows = []
    for column in columns:
        stats = base.get("columns", {}).get(column, {})
        rows.append(
            [_e(_column_heading(data, column))]
            + [_num(stats.get(s), 1) for s in ("mean", "std", "min", "q1", "median", "q3", "max")]
        )
    table = _html_table(
        ["Column", "Mean", "Std", "Min", "Q1", "Median", "Q3", "Max"], rows, set(range(1, 8))
    )
    shares = base.get("shares", {})
    split_text = "".join(
        f"<p>{_e(column)}: "
        + ", ".join(f"{_e(v)} {share:.0%}" for v, share in values.items())
        + "</p>"
        for column, values in shares.items()
    )
    features = data.document.get("feature_columns", [])
    starred = any(c not in features for c in columns)
    facts = _facts(
        [
            ("Customers segmented", base.get("size")),
            ("Data source", data.tags.get(TAG_DATA_SOURCE)),
            ("Data fingerprint", data.tags.get(TAG_DATA_FINGERPRINT)),
            ("Clustering features", ", ".join(features)),
            ("Algorithm", data.params.get("algo")),
            ("Scaler", data.params.get("scaler")),
            ("Missing values", data.params.get("impute")),
        ]
    )
    footnote = (
        '<p class="lead">* describes the customers but was not a clustering feature.</p>'
        if starred
        else ""
    )
    return facts + table + footnote + split_text


def _comparison_html(data: ReportData) -> str:
    metrics = data.metrics
    quality = ", ".join(
        f"{name} {_num(metrics[name])}"
        for name in ("silhouette", "calinski_harabasz", "davies_bouldin", "min_segment_share")
        if name in metrics
    )
    noise = metrics.get("noise_fraction", 0.0)
    intro = (
        f"<p>This run: <strong>{_e(data.run_name)}</strong>"
        + (f" with k = {_e(data.params['k'])}" if "k" in data.params else "")
        + (f"; {quality}" if quality else "")
        + (f"; {noise:.1%} of the customers not assigned to a segment" if noise > 0 else "")
        + ".</p>"
        + (
            f'<p class="chosen-by"><strong>{_e(data.selection)}</strong></p>'
            if data.selection
            else ""
        )
    )
    if data.parent_run_id is None:
        return intro + (
            "<p>This run was not part of a sweep, so no comparison was recorded. Run a sweep "
            "(for example <code>python -m segexp -m k=3..8</code>) to compare candidates.</p>"
        )
    if data.leaderboard is None or data.leaderboard.empty:
        return intro + f"<p>The sweep (parent run {_e(data.parent_run_id)}) has no leaderboard.</p>"
    board = data.leaderboard
    is_this = board["run_id"].astype(str) == data.run_id if "run_id" in board.columns else None
    shown = board.head(_LEADERBOARD_ROWS)
    if is_this is not None and is_this.any() and not is_this.head(_LEADERBOARD_ROWS).any():
        shown = pd.concat([shown, board[is_this]])
    left_out = (
        board["left_out"].fillna("").astype(str) != ""
        if "left_out" in board.columns
        else pd.Series(False, index=board.index)
    )
    columns = [c for c in _LEADERBOARD_COLUMNS if c in board.columns]
    constant = [
        c
        for c in ("algo", "scaler", "features", "status")
        if c in columns and board[c].nunique(dropna=False) == 1 and len(board) > 1
    ]
    quiet = [c for c in ("noise_fraction",) if c in columns and not (board[c].fillna(0) > 0).any()]
    quiet += ["left_out"] if "left_out" in columns and not left_out.any() else []
    columns = [c for c in columns if c not in constant and c not in quiet]
    shared = "; ".join(f"{c} {board[c].iloc[0]}" for c in constant)
    numeric = {i for i, c in enumerate(columns) if pd.api.types.is_numeric_dtype(board[c])}
    rows, classes = [], []
    for index, row in shown.iterrows():
        chosen = is_this is not None and bool(is_this.loc[index])
        cells = []
        for c in columns:
            value = row[c]
            if c in ("rank", "k", "n_clusters"):
                text = "" if pd.isna(value) else _num(value, 0)
            elif pd.api.types.is_numeric_dtype(board[c]):
                text = "" if pd.isna(value) else _num(value, 1 if c == "calinski_harabasz" else 3)
            else:
                text = _e(value)
            if c == "run_name":
                text = f'<span class="nowrap">{text}{" &#9664; chosen" if chosen else ""}</span>'

            cells.append(text)
        rows.append(cells)
        classes.append("chosen" if chosen else "left-out" if bool(left_out.loc[index]) else "")
    ranked_by = (
        f"{data.ranked_by} ({'higher' if _higher_is_better(data.ranked_by) else 'lower'} is better)"
        if data.ranked_by in board.columns
        else "rank"
    )
    more = len(board) - len(shown)
    table = _html_table(columns, rows, numeric, classes)
    plots_html = "".join(
        _img(png, f"{title} with the chosen k marked", f"{title.capitalize()}: chosen k marked")
        for title, png in data.k_plots.items()
    )
    return (
        intro
        + f"<p>Leaderboard of sweep {_e(data.tags.get(TAG_SWEEP_ID, ''))} ranked by "
        + f"{ranked_by}; the chosen run is highlighted"
        + (f" ({more} more runs not shown)" if more > 0 else "")
        + (f". Every run: {_e(shared)}" if shared else "")
        + ".</p>"
        + (
            f"<p>{_e(data.left_out)}: scores leave those customers out, so they are listed "
            "last, without a rank, and are not chosen.</p>"
            if data.left_out
            else ""
        )
        + f'<div class="scroll">{table}</div>'
        + (f'<div class="figures">{plots_html}</div>' if plots_html else "")
    )


def _higher_is_better(metric: str) -> bool:
    from segexp.tracking.leaderboard import METRIC_DIRECTIONS

    return METRIC_DIRECTIONS.get(metric, True)


def _segments_html(data: ReportData) -> str:
    rows = []
    noise = _not_assigned(data)
    for seg in _segments(data) + ([noise] if noise else []):
        color = plots.segment_color(int(seg["id"]))
        bar = (
            f'<div class="bar"><span style="width:{100 * seg["share"]:.1f}%;'
            f'background:{color}"></span></div>'
        )
        if seg is noise:  # a count and a share, never a name with a profile sentence
            label, profile = "Not assigned", "not a segment: left out by the algorithm"
        else:
            label, profile = f"<strong>{_e(seg['name'])}</strong>", _e(seg.get("description", ""))
        rows.append(
            [
                f'<span class="swatch" style="background:{color}"></span>{seg["id"]}',
                label,
                profile,
                str(seg["size"]),
                f"{seg['share']:.1%}",
                bar,
            ]
        )
    table = _html_table(["#", "Name", "Profile", "Customers", "Share", ""], rows, {3, 4})
    figures = (
        _img(data.images.get("scatter"), "customers coloured by segment", "Customers by segment")
        + _img(
            data.images.get("heatmap"),
            "profile heatmap: standardized difference of each segment from all customers",
            "Profile heatmap: difference from all customers, in standard deviations",
        )
        + _img(
            data.images.get("snake"),
            "snake plot of standardized segment means",
            "Snake plot: each segment's standardized means",
        )
    )
    return table + f'<div class="figures">{figures}</div>'


def _split_shares(data: ReportData, row: pd.Series, column: str) -> dict[str, float]:
    """Value -> share of a split column in one segment's row of profile.csv.

    The values come from the base shares in segments.json, so ``Channel`` and
    ``Channel_type`` never mix; older documents without them fall back to the
    column-name prefix.
    """
    values = list(data.document.get("base", {}).get("shares", {}).get(column, {}))
    prefix = f"{column}_"
    if not values:
        values = [
            name[len(prefix) : -len("_share")]
            for name in data.table.columns
            if name.startswith(prefix) and name.endswith("_share")
        ]
    return {v: float(row[f"{prefix}{v}_share"]) for v in values if f"{prefix}{v}_share" in row}


def _card_html(data: ReportData, seg: dict[str, Any]) -> str:
    segment = int(seg["id"])
    row = data.table.loc[segment]
    base = data.document.get("base", {}).get("columns", {})
    stat_rows = []
    for column in data.document.get("profiled_columns", []):
        ratio = row.get(f"{column}_ratio")
        stat_rows.append(
            [
                _e(_column_heading(data, column)),
                _num(row.get(f"{column}_mean"), 1),
                _num(row.get(f"{column}_median"), 1),
                f"{_num(row.get(f'{column}_q1'), 1)} – {_num(row.get(f'{column}_q3'), 1)}",
                _num(base.get(column, {}).get("mean"), 1),
                "n/a"
                if pd.isna(row.get(f"{column}_std_diff"))
                else f"{float(row[f'{column}_std_diff']):+.2f}",
                "n/a" if pd.isna(ratio) else f"{float(ratio):.2f}×",
                _e(row.get(f"{column}_level", "")),
            ]
        )
    table = _html_table(
        ["Column", "Mean", "Median", "Q1 – Q3", "All customers", "Diff (sd)", "Ratio", "Level"],
        stat_rows,
        {1, 2, 3, 4, 5, 6},
    )
    splits = []
    for column in data.document.get("split_columns", []):
        parts = [
            f"{_e(value)} {share:.0%}" for value, share in _split_shares(data, row, column).items()
        ]
        splits.append(f"<p>{_e(column)}: {', '.join(parts)}</p>")
    actions = "".join(f"<li>{_e(a)}</li>" for a in seg.get("actions", []))
    archetype = f" · archetype <code>{_e(seg['archetype'])}</code>" if seg.get("archetype") else ""
    color = plots.segment_color(segment)
    return (
        f'<article class="card" style="--swatch:{color}" id="segment-{segment}">'
        f"<h3>{segment} · {_e(seg['name'])}</h3>"
        f'<p class="lead">{_e(seg.get("description", ""))} · {seg["size"]} customers '
        f"({seg['share']:.1%}){archetype}</p>"
        f'<div class="card-body"><div>{table}{"".join(splits)}</div>'
        f"<div><p><strong>Suggested actions</strong></p><ul>{actions}</ul></div></div>"
        "</article>"
    )


def _provenance_html(data: ReportData) -> str:
    started = (
        datetime.fromtimestamp(data.start_time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        if data.start_time
        else ""
    )
    return _facts(
        [
            ("Run id", data.run_id),
            ("Run name", data.run_name),
            ("Experiment id", data.experiment_id),
            ("Data fingerprint", data.tags.get(TAG_DATA_FINGERPRINT, "not recorded")),
            ("Data source", data.tags.get(TAG_DATA_SOURCE)),
            ("Sweep", data.tags.get(TAG_SWEEP_ID)),
            ("Sweep parent run id", data.parent_run_id),
            ("Code version", data.tags.get(TAG_CODE_VERSION)),
            ("Run started", started),
            ("Report made", datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")),
            ("Report tool", f"segexp {segexp.__version__}"),
        ]
    )


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document (no external resources)."""
    segments = _segments(data)
    n_named = len(segments)
    noise = _not_assigned(data)
    unassigned = (
        f'<p class="lead">{_e(not_assigned_text(noise))}: left out of every segment by the '
        "algorithm; not a segment, so no profile or actions.</p>"
        if noise
        else ""
    )
    title = f"Customer segments: {data.run_name}"
    nav = "".join(f'<a href="#{key}">{_e(text)}</a>' for key, text in SECTIONS.items())
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in data.notes)
    bodies = {
        "overview": _overview_html(data),
        "comparison": _comparison_html(data),
        "segments": _segments_html(data),
        "profiles": '<div class="cards">'
        + "".join(_card_html(data, s) for s in segments)
        + "</div>"
        + unassigned,
        "provenance": _provenance_html(data),
    }
    sections = "".join(
        f'<section id="{key}"><h2>{_e(SECTIONS[key])}</h2>{body}</section>'
        for key, body in bodies.items()
    )
    base_size = data.document.get("base", {}).get("size", "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{_e(title)}</h1>"
        f'<p class="lead">{n_named} segments of {base_size} customers'
        + (f" · {_e(not_assigned_text(noise))}" if noise else "")
        + " · run "
        f"<code>{_e(data.run_id)}</code> · data fingerprint "
        f"<code>{_e(data.tags.get(TAG_DATA_FINGERPRINT, 'not recorded'))}</code></p>"
        f"<nav>{nav}</nav></header>{notes}{sections}</main></body></html>\n"
    )
