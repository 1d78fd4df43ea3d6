"""The command's publishing workers dying mid-sweep: every run is still logged, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]
NAMES = {f"{a}-k{k}-standard-income_spending" for a in ("kmeans", "gmm") for k in range(2, 10)}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _pool_workers(main_pid: int) -> list[int]:
    """The publishing workers: children of the forkserver the command started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = [w for server in _children(main_pid) for w in _children(server)]
        if len(workers) >= 2:
            return workers
        time.sleep(0.05)
    return []


def test_killed_publishing_workers_lose_no_run(tmp_path, store):
    process = subprocess.Popen(
        [sys.executable, "-m", "segexp", "-m", "algo=kmeans,gmm", "k=2..9"]
        + [f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # a line per fitted job
            if "#3 " in line and "FINISHED" in line:
                break
        workers = _pool_workers(process.pid)
        assert len(workers) == 2, workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    finished = [
        r for r in runs if r.data.tags.get("segexp.kind") == "job" and r.info.status == "FINISHED"
    ]
    assert {r.info.run_name for r in finished} == NAMES and len(finished) == 16
    for run in finished:
        plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
        assert plots == {
            "plots/segments.png",
            "plots/silhouette.png",
            "plots/profile_heatmap.png",
            "plots/snake.png",
        }, run.info.run_name
    (parent,) = [r for r in runs if r.data.tags.get("segexp.kind") == "sweep"]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["jobs_finished"] == 16 and parent.data.metrics["jobs_failed"] == 0
    for run in runs:  # a run cut off mid-publishing is ended, not left RUNNING
        assert run.info.status != "RUNNING", run.info.run_name
