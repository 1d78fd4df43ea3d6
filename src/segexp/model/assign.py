"""The promoted segmentation, assigning new customers from the raw columns of a user's file
and naming each row training would have refused; clusterers without ``predict`` get an
extension: DBSCAN's nearest core within eps, any other a 5-nearest-neighbour vote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from segexp.contract import NOISE_LABEL
from segexp.data.load import (
    LARGEST_VALUE,
    canonical_headers,
    canonical_settings,
    non_negative_columns,
)
from segexp.data.messages import plain
from segexp.data.schema import derive_again
from segexp.errors import ConfigError, DataError

NOISE_NAME = "noise"
SEGMENT_COLUMN = "segment"
SEGMENT_NAME_COLUMN = "segment_name"
ASSIGN_BY_PREDICT = "predict"
ASSIGN_BY_NEAREST_CORE = "nearest_core"
ASSIGN_BY_NEAREST_NEIGHBOURS = "nearest_neighbours"
NEIGHBOURS = 5
_ROWS_SHOWN = 5


class NearestCoreAssigner:
    """DBSCAN's rule for a new point: the nearest core sample's segment within eps, else noise."""

    def __init__(self, cores: np.ndarray, core_labels: np.ndarray, eps: float, **metric) -> None:
        self.core_labels, self.eps = np.asarray(core_labels, dtype=int), float(eps)
        nearest = NearestNeighbors(n_neighbors=1, **metric)
        self.neighbours = nearest.fit(cores) if len(cores) else None

    def predict(self, transformed: np.ndarray) -> np.ndarray:
        labels = np.full(len(transformed), NOISE_LABEL, dtype=int)
        if self.neighbours is None or not len(transformed):
            return labels
        distance, index = self.neighbours.kneighbors(transformed, n_neighbors=1)
        near = distance[:, 0] <= self.eps
        labels[near] = self.core_labels[index[near, 0]]
        return labels


def build_extension(clusterer: Any, transformed: np.ndarray, labels: np.ndarray):
    """(method, estimator) that assigns new points for ``clusterer`` in its own feature space."""
    labels = np.asarray(labels, dtype=int)
    if hasattr(clusterer, "core_sample_indices_") and hasattr(clusterer, "eps"):
        if clusterer.metric == "precomputed":
            raise ConfigError(
                "algo.metric=precomputed: DBSCAN on a precomputed distance matrix cannot "
                "assign new customers (their distances are unknown); use a metric name"
            )
        metric = {"metric": clusterer.metric, "metric_params": clusterer.metric_params}
        metric.update({} if clusterer.p is None else {"p": clusterer.p})
        core_labels = np.asarray(clusterer.labels_)[clusterer.core_sample_indices_]
        cores = np.asarray(clusterer.components_, dtype=float)
        return ASSIGN_BY_NEAREST_CORE, NearestCoreAssigner(
            cores, core_labels, clusterer.eps, **metric
        )
    vote = KNeighborsClassifier(n_neighbors=min(NEIGHBOURS, len(labels)), weights="distance")
    return ASSIGN_BY_NEAREST_NEIGHBOURS, vote.fit(transformed, labels)


def segment_names_from(document: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None):
    """{segment id: name} from a run's ``segments.json`` ({"segments": [...]} or a bare list)."""
    entries = document.get("segments", []) if isinstance(document, Mapping) else document
    return {int(e["id"]): str(e["name"]) for e in entries or () if e.get("name") is not None}


@dataclass
class SegmentAssigner:
    """A fitted pipeline plus what it takes to apply it to a user's customer table."""

    pipeline: Any
    input_columns: list[str]
    numeric_columns: list[str]
    categorical_columns: list[str]
    aliases: dict[str, list[str]]
    impute: str
    method: str
    extension: Any = None
    segment_names: dict[int, str] = field(default_factory=dict)
    algorithm: str = ""
    non_negative: tuple[str, ...] = ()  # data.non_negative's; a default: older assigners load
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)  # tenure, age: again

    @classmethod
    def from_run(
        cls,
        pipeline: Any,
        meta: Mapping[str, Any],
        training: pd.DataFrame,
        *,
        aliases: Mapping[str, Sequence[str]] | None = None,
        impute: str = "none",
        segment_names: Mapping[int, str] | None = None,
    ) -> SegmentAssigner:
        """From a run's pipeline, ``model/meta.json`` and ``assignments.csv`` (training rows)."""
        columns = [str(c) for c in meta["input_columns"]]
        numeric = [str(c) for c in meta.get("numeric_columns", columns)]
        assigner = cls(
            pipeline=pipeline,
            input_columns=columns,
            numeric_columns=numeric,
            categorical_columns=[c for c in columns if c not in numeric],
            aliases={c: [str(v) for v in (aliases or {}).get(c, [])] for c in columns},
            impute=str(impute),
            method=ASSIGN_BY_PREDICT,
            segment_names=dict(segment_names or {}),
            algorithm=str(meta.get("algorithm", type(pipeline[-1]).__name__)),
            non_negative=tuple(str(c) for c in meta.get("non_negative") or () if c in numeric),
            derived={str(k): dict(v) for k, v in (meta.get("derived") or {}).items()},
        )
        if not hasattr(pipeline[-1], "predict"):
            transformed = np.asarray(pipeline[:-1].transform(assigner.prepare(training)), float)
            labels = training[SEGMENT_COLUMN].to_numpy()
            assigner.method, assigner.extension = build_extension(pipeline[-1], transformed, labels)
        return assigner

    def accepted_headers(self, column: str) -> list[str]:
        return [column, *[v for v in self.aliases.get(column, []) if v != column]]

    def canonical(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The input with canonical feature names; DataError naming any missing column."""
        aliases = {c: self.aliases.get(c, []) for c in self.input_columns}
        renamed = frame.rename(
            columns=canonical_headers(list(frame.columns), aliases, "customer input")
        )
        renamed = derive_again(renamed, getattr(self, "derived", {}))  # older assigners: none
        missing = [c for c in self.input_columns if c not in renamed.columns]
        if missing:
            also = {c: ", ".join(map(repr, self.accepted_headers(c)[1:])) for c in missing}
            expected = "; ".join(
                f"'{c}' (also accepted: {also[c]})" if also[c] else f"'{c}'" for c in missing
            )
            received = ", ".join(repr(str(c)) for c in frame.columns) or "no columns"
            raise DataError(
                f"customer input is missing column(s) {expected}; received {received}; "
                "add the column(s) or rename the header(s)"
            )
        return renamed

    def row_problems(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """(features, numbers parsed; per row what training's checks refuse, '' where usable)."""
        renamed = self.canonical(frame)
        # feature -> the user's header for it (derived columns come after the table's own)
        headers = dict(zip(map(str, renamed.columns), map(str, frame.columns), strict=False))
        features = renamed[self.input_columns].copy()
        found: dict[int, list[str]] = {}
        for column in self.input_columns:
            values, header = features[column], headers.get(column, column)
            blank = values.isna().to_numpy()
            if column in self.numeric_columns:
                as_text = not is_numeric_dtype(values) or is_bool_dtype(values)
                cells = values.astype("string").str.strip() if as_text else values.astype(float)
                blank = (cells.isna() | (cells == "")).to_numpy()
                features[column] = pd.to_numeric(cells, errors="coerce").astype(float)
                numbers = features[column].to_numpy()
                infinite = np.isinf(numbers)
                with np.errstate(invalid="ignore"):
                    checks = [
                        (np.isnan(numbers) & ~blank, "is not a number"),
                        (infinite, "is not a finite number"),
                        (
                            (np.abs(numbers) >= LARGEST_VALUE) & ~infinite,
                            "is too large to compute with (at least 1e150)",
                        ),
                        ((numbers < 0) & (column in self.non_negative), "cannot be negative"),
                    ]
                for rows, what in checks:
                    for i in np.flatnonzero(rows):
                        cell = plain(cells.iloc[i])
                        found.setdefault(int(i), []).append(f"{header}: {cell!r} {what}")
            else:
                features[column] = values.astype(object).where(~blank, np.nan)
            if self.impute in ("none", "drop"):
                for i in np.flatnonzero(blank):
                    found.setdefault(int(i), []).append(f"{header} is missing")
        reasons = ["; ".join(found.get(row, ())) for row in range(len(features))]
        return features, pd.Series(reasons, index=frame.index, dtype=str)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Usable feature columns of every row, or DataError naming the unusable rows."""
        features, reasons = self.row_problems(frame)
        bad = np.flatnonzero(reasons.to_numpy() != "")
        if len(bad):
            shown = ", ".join(f"{i + 1} ({reasons.iloc[i]})" for i in bad[:_ROWS_SHOWN])
            more = f" (+{len(bad) - _ROWS_SHOWN} more)" if len(bad) > _ROWS_SHOWN else ""
            raise DataError(
                f"customer input rows {shown}{more} cannot be scored (rows counted from 1); "
                "fix those cells, or score the file with python -m segexp.predict rejects=<file>"
            )
        return features

    def assign_prepared(self, features: pd.DataFrame) -> pd.DataFrame:
        """Segment id (and name when known) of rows already checked by ``prepare``."""
        labels = np.empty(0, dtype=int)
        if len(features) and self.method == ASSIGN_BY_PREDICT:
            labels = np.asarray(self.pipeline.predict(features), dtype=int)
        elif len(features):
            transformed = np.asarray(self.pipeline[:-1].transform(features), dtype=float)
            labels = np.asarray(self.extension.predict(transformed), dtype=int)
        out = pd.DataFrame({SEGMENT_COLUMN: labels.astype("int64")}, index=features.index)
        if self.segment_names:
            names = {NOISE_LABEL: NOISE_NAME, **self.segment_names}
            out[SEGMENT_NAME_COLUMN] = [names.get(int(s), "") for s in labels]
        return out

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Segment of every row of a customer table; DataError on missing columns or bad rows."""
        return self.assign_prepared(self.prepare(frame))

    def describe(self) -> dict[str, Any]:
        """What a person or a tool needs to know about the model, stored beside it as JSON."""
        return {
            "input_columns": self.input_columns,
            "numeric_columns": self.numeric_columns,
            "categorical_columns": self.categorical_columns,
            "accepted_headers": {c: self.accepted_headers(c) for c in self.input_columns},
            "impute": self.impute,
            "assignment": self.method,
            "algorithm": self.algorithm,
            "non_negative": list(self.non_negative),
            "segment_names": {str(k): v for k, v in sorted(self.segment_names.items())},
        }


def training_non_negative(data_cfg: Mapping[str, Any], table: Any) -> list[str]:
    """The numeric columns the loader required non-negative for ``table``, stored for predict."""
    settings = canonical_settings(data_cfg, getattr(table, "headers", {}) or {})
    return [str(c) for c in non_negative_columns(settings, table.numeric)]
