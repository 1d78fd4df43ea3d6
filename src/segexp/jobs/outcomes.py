"""How jobs ended, as plain data: what a sweep's summary and its exit code are made of.

Kept apart from the job itself so the publishing workers, which summarise a
sweep, need neither scikit-learn nor Hydra.
"""

from __future__ import annotations

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
