"""Every preprocessing choice is part of a run's identity (issue 21.4): a sweep over
``preprocess.log1p=false,true`` gives each job its own run name, params and config key,
skips only the jobs that really repeat one (an algorithm that ignores k), and chooses k
per (algo, scaler, preprocess, features) group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("log-sweep")
    rng = np.random.default_rng(0)
    n = 440  # skewed money columns: what log1p is for
    frame = pd.DataFrame(
        {
            "cust": [f"c{i}" for i in range(n)],
            "fresh": rng.lognormal(8, 1, n).round(2),
            "grocery": rng.lognormal(7, 1, n).round(2),
        }
    )
    frame.to_csv(folder / "wholesale.csv", index=False)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    args = ["-m", "algo=kmeans,hdbscan", "k=2..4", "preprocess.log1p=false,true"]
    args += ["features=all_numeric", "plots.enabled=false", "evaluation.stability.n_resamples=0"]
    done = run_cli(
        [*args, f"data.path={folder / 'wholesale.csv'}", f"mlflow.tracking_uri={store}"], cwd=folder
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    jobs = client.search_runs(experiments, "tags.`segexp.kind` = 'job'")
    (parent,) = client.search_runs(experiments, "tags.`segexp.kind` = 'sweep'")
    return {"jobs": jobs, "parent": parent, "client": client, "stdout": done.stdout}


def test_log_and_plain_runs_have_distinct_names_params_and_keys(sweep):
    names = [r.info.run_name for r in sweep["jobs"]]
    assert len(names) == len(set(names)) == 8  # 6 k-means + 2 HDBSCAN (k is not its own)
    assert "kmeans-k2-standard-log-all_numeric" in names
    assert "kmeans-k2-standard-all_numeric" in names
    logged = {r.info.run_name: r.data.params for r in sweep["jobs"]}
    assert logged["kmeans-k2-standard-log-all_numeric"]["log1p"] == "all"
    assert logged["kmeans-k2-standard-log-all_numeric"]["preprocess"] == "log"
    assert logged["kmeans-k2-standard-all_numeric"]["log1p"] == "none"
    keys = {r.data.tags["segexp.config_key"] for r in sweep["jobs"]}
    assert len(keys) == 8


def test_only_repeats_of_a_configuration_are_skipped(sweep):
    skipped = [line for line in sweep["stdout"].splitlines() if "SKIPPED" in line]
    assert len(skipped) == 4  # HDBSCAN at k=3 and k=4, plain and log: repeats of k=2
    assert all("hdbscan" in line for line in skipped)
    hdbscan = [r.info.run_name for r in sweep["jobs"] if r.info.run_name.startswith("hdbscan")]
    assert sum("-log-" in name for name in hdbscan) == 1


def test_k_is_chosen_per_preprocessing(sweep):
    metrics = sweep["parent"].data.metrics
    assert "recommended_k.kmeans-standard-log-all_numeric.silhouette" in metrics
    assert "recommended_k.kmeans-standard-all_numeric.silhouette" in metrics
    folder = sweep["client"].download_artifacts(sweep["parent"].info.run_id, "k_selection.csv")
    table = pd.read_csv(folder)
    assert sorted(table["preprocess"]) == ["log", "none"]
