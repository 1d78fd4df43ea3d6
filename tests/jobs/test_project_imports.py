"""A project's own estimator: ``_target_: myalgo.TrimmedKMeans`` in its conf/algo/, with
myalgo.py beside conf/, runs without PYTHONPATH (issue 24.6); a wrong name says where
segexp looked."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli
from mlflow.tracking import MlflowClient

ESTIMATOR = '''from sklearn.cluster import KMeans


class TrimmedKMeans(KMeans):
    """The project's own k-means (here: k-means under another name)."""
'''


def _project(folder: Path, target: str) -> Path:
    (folder / "conf" / "algo").mkdir(parents=True)
    (folder / "conf" / "algo" / "trimmed.yaml").write_text(
        f"_target_: {target}\nn_clusters: ${{k}}\nrandom_state: ${{seed}}\n"
    )
    (folder / "myalgo.py").write_text(ESTIMATOR)
    elsewhere = folder / "elsewhere"  # not the project folder: python -m adds only the cwd
    elsewhere.mkdir()
    return elsewhere


def test_a_target_in_the_project_folder_is_imported(tmp_path, store):
    cwd = _project(tmp_path / "project", "myalgo.TrimmedKMeans")
    env = {"SEGEXP_CONF_DIR": str(tmp_path / "project" / "conf")}
    done = run_cli(["algo=trimmed", "k=3", f"mlflow.tracking_uri={store}"], cwd, env=env)
    assert done.returncode == 0, done.stderr
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "trimmed-k3-standard-income_spending"
    assert run.data.metrics["n_clusters"] == 3


def test_a_wrong_class_name_says_where_modules_are_imported_from(tmp_path, store):
    cwd = _project(tmp_path / "project", "myalgo.Trimmed")
    env = {"SEGEXP_CONF_DIR": str(tmp_path / "project" / "conf")}
    done = run_cli(["algo=trimmed", "k=3", f"mlflow.tracking_uri={store}"], cwd, env=env)
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("segexp: error: algo._target_:"), done.stderr
    assert "'myalgo.Trimmed', which cannot be imported" in line
    assert "has no attribute 'Trimmed'" in line
    assert f"modules are imported from {tmp_path / 'project'} (the folder holding conf/)" in line
    assert "PYTHONPATH" in line
