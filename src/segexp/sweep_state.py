"""What the jobs of one multirun share: the parent run, the store, dedup markers, outcomes.

The sweep callback writes a small JSON file in the sweep folder when the
multirun starts; every job (in this process or in a joblib worker) reads it,
claims its configuration with an atomic marker file, and writes its outcome
there, so the callback can summarise a sweep whatever launcher ran it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_VAR = "SEGEXP_SWEEP_STATE"
STATE_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepState:
    """Known to every job. The ids are None when a writer process logs for the jobs."""

    sweep_id: str
    state_dir: str
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None

    def save(self) -> Path:
        path = Path(self.state_dir) / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> SweepState:
        return cls(**json.loads(Path(path).read_text()))

    def claim(self, config_key: str, job_label: str) -> str | None:
        """Atomically claim a job configuration; return the earlier claimant's label if taken."""
        markers = Path(self.state_dir) / "configs"
        markers.mkdir(parents=True, exist_ok=True)
        marker = markers / config_key
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return marker.read_text() or "an earlier job"
        with os.fdopen(fd, "w") as handle:
            handle.write(job_label)
        return None

    def record_outcome(self, job_num: int, outcome: dict) -> None:
        folder = Path(self.state_dir) / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{job_num}.json.tmp"
        tmp.write_text(json.dumps(outcome))
        tmp.replace(folder / f"{job_num}.json")

    def outcomes(self) -> list[dict]:
        folder = Path(self.state_dir) / "jobs"
        files = sorted(folder.glob("*.json"), key=lambda p: int(p.stem)) if folder.exists() else []
        return [json.loads(p.read_text()) for p in files]


def current_sweep_state(sweep_dir: str | None = None) -> SweepState | None:
    """The state of the multirun this process belongs to, if any."""
    path = os.environ.get(ENV_VAR)
    if path and Path(path).exists():
        return SweepState.load(path)
    if sweep_dir:
        candidate = Path(sweep_dir) / ".segexp" / STATE_FILE
        if candidate.exists():
            return SweepState.load(candidate)
    return None
