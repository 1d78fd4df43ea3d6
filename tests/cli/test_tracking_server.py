"""A sweep logs to a real `mlflow server` on 127.0.0.1 by one override."""

import pytest
from conftest import mlflow_server, run_cli
from mlflow.tracking import MlflowClient


@pytest.mark.server
@pytest.mark.slow
def test_sweep_logs_to_a_remote_tracking_server(tmp_path):
    with mlflow_server(tmp_path) as uri:
        work = tmp_path / "work"
        work.mkdir()
        result = run_cli(["-m", "k=3..4", f"mlflow.tracking_uri={uri}"], cwd=work)
        assert result.returncode == 0, result.stderr
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("segexp-customers")
        runs = client.search_runs([experiment.experiment_id])
        parents = [r for r in runs if r.data.tags["segexp.kind"] == "sweep"]
        children = [r for r in runs if r.data.tags["segexp.kind"] == "job"]
        assert len(parents) == 1 and len(children) == 2
        assert all(r.info.status == "FINISHED" for r in runs)
        assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
        files = {a.path for a in client.list_artifacts(children[0].info.run_id)}
        assert {"assignments.csv", "config.yaml", "model", "plots"} <= files
        assert "leaderboard.csv" in {a.path for a in client.list_artifacts(parents[0].info.run_id)}
        # nothing was written to a local store beside the command
        assert not (work / "mlflow.db").exists() and not (work / "mlruns").exists()
