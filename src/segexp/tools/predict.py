"""``python -m segexp.predict``: assign segments to new customers with a registered model.

Reads a customer table (CSV/TSV/Parquet, the same loader as runs), scores it
with any MLflow model URI (default: the champion, ``models:/customer-segments@champion``;
without one, a one-line error says how to promote one) and
writes every input row, unchanged, with ``segment`` (and ``segment_name`` when
the model knows the names). A segexp model maps header variants
(``Annual Income (k$)``), ignores extra columns and names missing ones.

Rows that cannot be scored (a blank cell the model does not impute, text in a
numeric column, an infinite number) are an error naming their file rows, or,
with ``rejects=<file>``, are written there with the reason while every other
row is scored.

Exit codes: 0 every row scored (or, with ``rejects=``, every other row scored
and the bad ones written to the rejects file), 2 bad input or configuration
(missing file or column, bad rows without ``rejects=``, unknown model), 1
unexpected failure.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from omegaconf import DictConfig

from segexp.data import read_table_file
from segexp.errors import ConfigError, DataError
from segexp.model.assign import SEGMENT_COLUMN, SEGMENT_NAME_COLUMN
from segexp.tools.shell import hydra_tool
from segexp.tracking.models import SegmentModel, load_model
from segexp.tracking.store import resolve_tracking_uri

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

ROW_COLUMN = "row"
REASON_COLUMN = "reason"
_ROWS_SHOWN = 5


@dataclass
class PredictionResult:
    """What one prediction wrote."""

    output: Path
    model_uri: str
    rows: int
    scored: int
    rejected: int
    rejects: Path | None

    def summary(self) -> str:
        text = (
            f"{self.scored} of {self.rows} customers scored with {self.model_uri} -> {self.output}"
        )
        if self.rejects is not None:
            text += f"; {self.rejected} rejected -> {self.rejects}"
        return text


def _segment_assigner(model: PyFuncModel):
    """The SegmentAssigner inside a segexp model, or None for any other MLflow model."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # not a python_function model built from a PythonModel
        return None
    return inner.assigner if isinstance(inner, SegmentModel) else None


def _model_columns(model: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Only the columns the model's signature names (the model ignores the others anyway)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return frame
    named = set(schema.input_names())
    return frame[[c for c in frame.columns if c in named]]


def score_frame(
    model: PyFuncModel,
    frame: pd.DataFrame,
    *,
    source: str,
    keep_bad_rows: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored rows with segment [+ name], rejected rows with row number and reason).

    Rows are named by the frame's index: file rows (header = row 1) as
    ``read_table_file`` returns them. Without ``keep_bad_rows`` a bad row is a
    DataError naming the first rows and their reasons.
    """
    assigner = _segment_assigner(model)
    reasons = pd.Series("", index=frame.index, dtype=str)
    if assigner is not None:
        _, reasons = assigner.row_problems(frame)
    bad = (reasons != "").to_numpy()
    if bad.any() and not keep_bad_rows:
        positions = bad.nonzero()[0]
        shown = "; ".join(
            f"row {frame.index[i]}: {reasons.iloc[i]}" for i in positions[:_ROWS_SHOWN]
        )
        more = (
            f" (+{len(positions) - _ROWS_SHOWN} more rows)" if len(positions) > _ROWS_SHOWN else ""
        )
        raise DataError(
            f"{source}: {len(positions)} row(s) cannot be scored: {shown}{more}; fix those "
            "cells, or set rejects=<file> to score the other rows and write these there"
        )
    good = frame[~bad]
    scored = good.drop(columns=[SEGMENT_COLUMN, SEGMENT_NAME_COLUMN], errors="ignore").copy()
    if len(good):
        predicted = pd.DataFrame(model.predict(_model_columns(model, good)))
        if SEGMENT_COLUMN not in predicted.columns:  # a plain model: one column of labels
            predicted = predicted.iloc[:, :1].set_axis([SEGMENT_COLUMN], axis=1)
        for column in predicted.columns:
            scored[column] = predicted[column].to_numpy()
    else:
        scored[SEGMENT_COLUMN] = pd.Series(dtype="int64")
    rejected = frame[bad].copy()
    rejected.insert(0, ROW_COLUMN, frame.index[bad])
    rejected[REASON_COLUMN] = reasons[bad].to_numpy()
    return scored, rejected


def write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")


def model_uri_from(cfg: DictConfig) -> str:
    """``model``, or without one the champion (``models:/<registry.name>@<registry.alias>``);
    TrackingError with the way to choose one when no version has that alias."""
    if cfg.get("model"):
        return str(cfg.model)
    from segexp.tools.promote import champion_version  # loads the promotion machinery

    registry = cfg.get("registry") or {}
    name = str(registry.get("name") or "customer-segments")
    alias = str(registry.get("alias") or "champion")
    champion_version(cfg.mlflow.tracking_uri, name, alias, "model=<model URI>")
    return f"models:/{name}@{alias}"


def predict(cfg: DictConfig) -> PredictionResult:
    """Score ``cfg.input`` with ``cfg.model``; write ``cfg.output`` (and ``cfg.rejects``)."""
    if not cfg.get("input"):
        raise ConfigError("input: set input=<customers.csv> (CSV, TSV or Parquet); got nothing")
    if not cfg.get("output"):
        raise ConfigError("output: set output=<segments.csv> (where the scored rows go)")
    source = Path(str(cfg.input)).expanduser()
    output = Path(str(cfg.output)).expanduser()
    rejects = Path(str(cfg.rejects)).expanduser() if cfg.get("rejects") else None
    if output.resolve() == source.resolve() or (rejects and rejects.resolve() == source.resolve()):
        raise ConfigError(
            f"output/rejects: would overwrite the input {source}; choose another path"
        )
    reading = {k: cfg.get(k) for k in ("delimiter", "encoding") if cfg.get(k)}
    frame = read_table_file(source, reading, typed=False)
    model_uri = model_uri_from(cfg)
    model = load_model(model_uri, resolve_tracking_uri(cfg.mlflow.tracking_uri))
    try:
        scored, rejected = score_frame(
            model,
            frame,
            source=str(source),
            keep_bad_rows=rejects is not None,
        )
    except DataError as exc:
        message = str(exc)
        if message.startswith("customer input"):  # the model's own message: name the file
            message = f"{source}: {message}"
        raise DataError(message) from exc
    write_table(scored, output)
    if rejects is not None:
        write_table(rejected, rejects)
    return PredictionResult(output, model_uri, len(frame), len(scored), len(rejected), rejects)


main = hydra_tool("predict", predict)


if __name__ == "__main__":
    sys.exit(main())
