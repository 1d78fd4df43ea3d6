"""The user contract of ``python -m segexp``: real subprocesses, a real store, MlflowClient."""

import os
from pathlib import Path

import pytest
from conftest import RUN_METRICS, run_cli
from mlflow.tracking import MlflowClient

MISSION = ["-m", "algo=kmeans,gmm", "k=3..8"]
RUN_ARTIFACTS = {
    "config.yaml",
    "assignments.csv",
    "profile.csv",
    "model/pipeline.skops",
    "model/meta.json",
    "plots/segments.png",
    "plots/silhouette.png",
    "plots/profile_heatmap.png",
    "plots/snake.png",
}


def _artifact_paths(client, run_id, path=None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _runs(store):
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000) if experiments else []
    parents = [r for r in runs if r.data.tags.get("segexp.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("segexp.kind") == "job"]
    return client, parents, children


@pytest.mark.slow
def test_mission_sweep_yields_twelve_finished_children_under_one_parent(tmp_path, store):
    result = run_cli([*MISSION, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 jobs: 12 finished" in result.stdout
    client, parents, children = _runs(store)
    assert len(parents) == 1 and len(children) == 12
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    sweep_id = parent.data.tags["segexp.sweep_id"]
    names = sorted(r.info.run_name for r in children)
    assert names == sorted(
        f"{a}-k{k}-standard-income_spending" for a in ("kmeans", "gmm") for k in range(3, 9)
    )
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["segexp.sweep_id"] == sweep_id
        assert (
            run.data.tags["segexp.data_fingerprint"] == parent.data.tags["segexp.data_fingerprint"]
        )
        assert {"algo", "k", "scaler", "features", "seed"} <= set(run.data.params)
        assert set(RUN_METRICS) <= set(run.data.metrics)
        if run.data.params["algo"] == "gmm":
            assert {"bic", "aic"} <= set(run.data.metrics)
        assert _artifact_paths(client, run.info.run_id) >= RUN_ARTIFACTS
    parent_files = _artifact_paths(client, parent.info.run_id)
    assert "leaderboard.csv" in parent_files
    for algo in ("kmeans", "gmm"):
        assert f"plots/elbow-{algo}-standard-income_spending.png" in parent_files
        assert f"plots/silhouette_vs_k-{algo}-standard-income_spending.png" in parent_files
    assert parent.data.metrics["jobs_finished"] == 12
    # nothing of the store scattered into Hydra's output folders
    assert not list((tmp_path / "multirun").rglob("mlflow.db"))
    assert not list((tmp_path / "multirun").rglob("mlruns"))


def test_default_store_is_sqlite_and_mlruns_in_the_working_folder(tmp_path):
    result = run_cli(["k=4"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlflow.db").exists()
    client, _, children = _runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(children) == 1
    artifact_uri = children[0].info.artifact_uri
    assert artifact_uri.startswith((tmp_path / "mlruns").as_uri())
    assert (tmp_path / "mlruns").is_dir()


def test_mlflow_tracking_uri_environment_variable_is_honoured(tmp_path, store):
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli(["k=4"], cwd=work, env={"MLFLOW_TRACKING_URI": store})
    assert result.returncode == 0, result.stderr
    assert not (work / "mlflow.db").exists()
    assert len(_runs(store)[2]) == 1


@pytest.mark.slow
def test_failing_job_fails_alone_and_the_command_exits_nonzero(tmp_path, store):
    # Values the config checks accept but the fit refuses: two starting centres for k=3.
    centres = "+algo.init=[[0.0,0.0],[1.0,1.0]]"
    result = run_cli(
        ["-m", "k=2,3", centres, "algo.n_init=1", f"mlflow.tracking_uri={store}"], cwd=tmp_path
    )
    assert result.returncode == 1
    assert "1 failed jobs" in result.stderr and "#1" in result.stderr
    assert "Traceback" not in result.stderr
    _, parents, children = _runs(store)
    statuses = sorted(r.info.status for r in children)
    assert statuses == ["FAILED", "FINISHED"]
    failed = next(r for r in children if r.info.status == "FAILED")
    assert "initial centers" in failed.data.tags["segexp.error"]
    assert parents[0].data.metrics["jobs_failed"] == 1


@pytest.mark.slow
def test_dbscan_in_a_k_sweep_is_fitted_and_logged_once(tmp_path, store):
    result = run_cli(["-m", "algo=dbscan", "k=3..8", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dbscan does not use k" in result.stdout
    assert "6 jobs: 1 finished, 5 skipped" in result.stdout
    _, _, children = _runs(store)
    assert len(children) == 1
    assert "k" not in children[0].data.params
    assert children[0].info.run_name == "dbscan-eps0.3-min_samples5-standard-income_spending"


@pytest.mark.slow
def test_joblib_launcher_two_workers_loses_no_run(tmp_path, store):
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "algo=kmeans,gmm",
        "k=2..7",
        "scaler=standard,minmax",
        "plots.enabled=false",
        "limits.single_thread_below_rows=0",  # threads from the worker count, at any size
        f"mlflow.tracking_uri={store}",
    ]
    result = run_cli(args, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    _, parents, children = _runs(store)
    assert len(parents) == 1 and len(children) == 24
    assert all(r.info.status == "FINISHED" for r in children)
    # two workers share the cores: each fit gets half of them
    per_worker = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert {r.data.tags["segexp.fit_threads"] for r in children} == {per_worker}
    keys = {(r.data.params["algo"], r.data.params["k"], r.data.params["scaler"]) for r in children}
    assert len(keys) == 24
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert parents[0].data.metrics["jobs_finished"] == 24


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-m", "k=8..3"], "runs backwards"),
        (["-m", "k=a..b"], "inclusive integer ranges"),
        (["-m", "k=3.."], "inclusive integer ranges"),
    ],
)
def test_malformed_range_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and lines[0].startswith("segexp: error:")
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_data_file_exits_2_and_creates_no_run(tmp_path, store):
    result = run_cli(["data.path=nowhere.csv", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere.csv: file not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert _runs(store)[2] == []


def test_unknown_config_option_exits_2(tmp_path, store):
    result = run_cli(["algo=nosuchalgo", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 2
    assert "nosuchalgo" in result.stderr


def test_sweep_logs_every_artifact_of_every_run(tmp_path, store):
    result = run_cli(["-m", "algo=kmeans", "k=2..7", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    client, parents, children = _runs(store)
    assert len(parents) == 1 and len(children) == 6
    for run in children:
        assert run.info.status == "FINISHED"
        files = _artifact_paths(client, run.info.run_id)
        assert files >= RUN_ARTIFACTS | {"plots/profile_heatmap.png", "plots/snake.png"}


def test_readme_main_command_matches_the_mission():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "pip install . && segexp -m algo=kmeans,gmm k=3..8" in readme
    assert "python -m segexp -m algo=kmeans,gmm k=3..8" in readme


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]])
def test_sweep_into_a_deleted_experiment_stops_with_one_line(tmp_path, store, launcher):
    client = MlflowClient(tracking_uri=store)
    client.delete_experiment(client.create_experiment("segexp-customers"))
    result = run_cli(["-m", "k=3,4", *launcher, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segexp: error: experiment")
    assert "is deleted" in lines[0]
    assert (
        client.search_runs([e.experiment_id for e in client.search_experiments(view_type=3)]) == []
    )
