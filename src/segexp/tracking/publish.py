"""Publishing a job's run: draw its figures, log it (``store.log_run``), remove its folder;
a command prints a run's outcome from what ``publish`` returns, never before it is stored."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segexp.insight import plots
from segexp.insight.profiles import write_profile_plots
from segexp.tracking.store import RunRecord, log_run, tracker_for


@dataclass
class RunFigures:
    """What the figures of one run are drawn from."""

    title: str
    dpi: int
    features: pd.DataFrame
    transformed: np.ndarray
    labels: np.ndarray
    silhouette_per_customer: np.ndarray | None
    silhouette_labels: np.ndarray | None
    silhouette_reason: str
    profile: Any  # segexp.insight.profiles.SegmentProfile
    k_distance: dict[str, Any] | None = None
    total: int | None = None  # the run's customers, when the scatter shows a sample of them

    def draw(self, folder: Path) -> None:
        if self.k_distance is not None:
            plots.save_k_distance_plot(folder, **self.k_distance, dpi=self.dpi)
        write_profile_plots(folder, self.profile, dpi=self.dpi)
        drawn = ("profile", "k_distance")  # run_plots takes every other field by name
        plots.run_plots(
            folder, **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in drawn}
        )


@dataclass
class PublishRequest:
    """One run to log: where, what, and the figures still to draw into its folder."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None
    record: RunRecord
    figures: RunFigures | None = None


def publish(request: PublishRequest) -> tuple[str, str | None]:
    """Draw the figures, log the run, remove its folder; (run id, error or None).
    ``StoreWriteError``: the store refused the run (ended FAILED where it still answered)."""
    record = request.record
    folder = Path(record.artifact_dir) if record.artifact_dir else None
    try:
        if folder is not None and request.figures is not None and record.error is None:
            try:
                request.figures.draw(folder)
            except Exception as exc:  # a figure failed: the run says so instead of vanishing
                record.error = f"drawing the run's figures failed: {type(exc).__name__}: {exc}"
        tracker = tracker_for(request.tracking_uri)
        return log_run(tracker, request.experiment_id, record, request.parent_run_id)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def discard(request: PublishRequest) -> None:
    """Drop a run that will not be published (its files go)."""
    if request.record.artifact_dir:
        shutil.rmtree(request.record.artifact_dir, ignore_errors=True)
