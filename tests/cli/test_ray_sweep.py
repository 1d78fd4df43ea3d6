"""A sweep on Ray (Hydra's Ray launcher, a local Ray) logging to a real ``mlflow server``.

The Ray workers are given an empty ``SEGEXP_SWEEP``, as workers on other machines
would have none: each job finds its sweep through the tracking server.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import mlflow_server, run_cli
from mlflow.tracking import MlflowClient

pytest.importorskip("ray")
pytest.importorskip("hydra_plugins.hydra_ray_launcher")

pytestmark = [pytest.mark.server, pytest.mark.slow]

RAY = [
    "hydra/launcher=ray",
    "+hydra.launcher.ray.init.num_cpus=2",
    "+hydra.launcher.ray.init.include_dashboard=false",
    # workers on another machine inherit nothing from the command
    '+hydra.launcher.ray.init.runtime_env={env_vars:{SEGEXP_SWEEP:""}}',
]


@pytest.fixture
def ray_env(tmp_path):
    """Ray's session files (in a short folder: its socket paths must stay under 108
    bytes) and its auth token go to folders of this test, not /tmp/ray or ~/.ray."""
    short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    (tmp_path / "home").mkdir()
    yield {"RAY_TMPDIR": str(short), "HOME": str(tmp_path / "home")}
    shutil.rmtree(short, ignore_errors=True)


def test_a_ray_sweep_logs_every_job_under_one_parent_through_the_server(tmp_path, ray_env):
    work = tmp_path / "work"
    work.mkdir()
    with mlflow_server(tmp_path) as uri:
        args = ["-m", "algo=kmeans,gmm", "k=3", *RAY, f"mlflow.tracking_uri={uri}"]
        result = run_cli(args, cwd=work, env=ray_env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("segexp-customers")
        runs = client.search_runs([experiment.experiment_id])
        (parent,) = [r for r in runs if r.data.tags["segexp.kind"] == "sweep"]
        jobs = [r for r in runs if r.data.tags["segexp.kind"] == "job"]
        assert sorted(r.info.run_name for r in jobs) == [
            "gmm-k3-standard-income_spending",
            "kmeans-k3-standard-income_spending",
        ]
        assert all(r.info.status == "FINISHED" for r in runs)
        assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
        sweep_ids = {r.data.tags["segexp.sweep_id"] for r in jobs}
        assert sweep_ids == {parent.data.tags["segexp.sweep_id"]}
        assert parent.data.metrics["jobs_finished"] == 2 and parent.data.metrics["jobs_failed"] == 0
        # the jobs ran and logged in Ray's worker processes, one CPU (and thread) each
        assert parent.data.tags["segexp.internal.pid"] not in {
            r.data.tags["segexp.internal.pid"] for r in jobs
        }
        assert {r.data.tags["segexp.fit_threads"] for r in jobs} == {"1"}
        parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"multirun.yaml", "leaderboard.csv"} <= parent_files
        job_files = {a.path for a in client.list_artifacts(jobs[0].info.run_id)}
        assert {"assignments.csv", "config.yaml", "model", "plots"} <= job_files
    # nothing under multirun/ (nor anywhere beside the command): it is all on the server
    assert list(work.rglob("*")) == []
    assert "Traceback" not in result.stderr


def test_a_ray_cluster_with_a_local_store_is_refused_before_anything_is_written(tmp_path, ray_env):
    work = tmp_path / "work"
    work.mkdir()
    store = f"sqlite:///{work / 'mlflow.db'}"
    args = ["-m", "k=3,4", *RAY, "hydra.launcher.ray.init.address=10.0.0.1:6379"]
    result = run_cli([*args, f"mlflow.tracking_uri={store}"], cwd=work, env=ray_env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"segexp: error: mlflow.tracking_uri={store}: the jobs of a Ray cluster")
    assert "hydra.launcher.ray.init.address=10.0.0.1:6379" in line
    assert "mlflow.tracking_uri=http://" in line
    assert list(work.rglob("*")) == []
