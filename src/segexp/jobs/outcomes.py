"""How jobs ended, as plain data: what a sweep's summary and its exit code are made of.

Kept apart from the job itself so the publishing workers, which summarise a
sweep, need neither scikit-learn nor Hydra.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import asdict, dataclass, field

SUMMARY_METRICS = ("n_clusters", "silhouette", "inertia")


@dataclass
class JobOutcome:
    """How one job ended: finished | failed | invalid (no run) | skipped (an earlier job's twin)."""

    status: str
    run_name: str
    run_id: str | None = None
    message: str = ""
    job_num: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SweepContext:
    """What the jobs of one multirun share: the store, experiment and parent run."""

    sweep_id: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


class OpeningSweep:
    """A sweep whose parent run is being created in the publishing pool.

    The sweep id and store are known at once; the experiment and parent run ids
    are waited for on first use, so the command's first jobs fit while the pool
    finishes starting. ``context()`` is the resolved ``SweepContext``.
    """

    def __init__(self, sweep_id: str, tracking_uri: str, opening: Future) -> None:
        self.sweep_id = sweep_id
        self.tracking_uri = tracking_uri
        self._opening = opening

    def context(self) -> SweepContext:
        experiment_id, parent_run_id = self._opening.result()
        return SweepContext(self.sweep_id, self.tracking_uri, experiment_id, parent_run_id)

    @property
    def experiment_id(self) -> str:
        return self.context().experiment_id

    @property
    def parent_run_id(self) -> str:
        return self.context().parent_run_id


def describe_outcome(outcome: JobOutcome) -> str:
    """One log line per job."""
    num = outcome.job_num
    head = f"[{outcome.run_name}]" if num is None else f"[#{num} {outcome.run_name}]"
    if outcome.status == "finished":
        shown = ", ".join(
            f"{k}={outcome.metrics[k]:.4g}" for k in SUMMARY_METRICS if k in outcome.metrics
        )
        run = f" (run {outcome.run_id})" if outcome.run_id else ""  # None: still publishing
        return f"{head} FINISHED {shown}{run}"
    return f"{head} {outcome.status.upper()}: {outcome.message}"
