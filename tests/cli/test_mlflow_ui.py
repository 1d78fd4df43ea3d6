"""What the MLflow UI shows: the runs table (not the GenAI views), each run's dataset, a URL
that opens a sweep's runs, checked in a real browser against a real `mlflow server`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tables
from conftest import compose_config, mlflow_server, run_cli
from mlflow.tracking import MlflowClient

from segexp.jobs.job import run_job
from segexp.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    VIEW_TAG_PREFIX,
    runs_url,
    save_sweep_view,
    sweep_runs_url,
)


def test_a_run_logs_its_table_as_a_dataset_whose_digest_is_the_fingerprint(tmp_path, store):
    path = tables.wholesale(tmp_path)
    outcome = run_job(
        compose_config([f"mlflow.tracking_uri={store}", f"data.path={path}", "plots.enabled=false"])
    )
    assert outcome.status == "finished", outcome.message
    client = MlflowClient(store)
    run = client.get_run(outcome.run_id)
    (entry,) = run.inputs.dataset_inputs
    assert entry.dataset.digest == run.data.tags["segexp.data_fingerprint"]
    assert entry.dataset.name == "wholesale.csv"
    assert entry.dataset.source_type == "local"
    assert json.loads(entry.dataset.source) == {"uri": str(path.resolve())}
    assert json.loads(entry.dataset.profile)["num_rows"] == 440
    columns = [c["name"] for c in json.loads(entry.dataset.schema)["mlflow_colspec"]]
    assert columns == ["Channel", "Region", *tables.WHOLESALE_SPEND]
    assert {t.key: t.value for t in entry.tags} == {"mlflow.data.context": "training"}
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_the_sweep_url_filters_its_job_runs_best_first_on_the_model_training_pages():
    url = sweep_runs_url("sqlite:///x.db", "7", "20261201-1200-abc", "silhouette")
    assert url.startswith(
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert "20261201-1200-abc" in url and "orderByKey=metrics.%60silhouette%60" in url
    assert runs_url("http://127.0.0.1:8080/", "3") == "http://127.0.0.1:8080/#/experiments/3/runs"
    # A saved view replaces the filter: MLflow's UI ignores a view when the URL has one.
    viewed = sweep_runs_url("sqlite:///x.db", "7", "S", view="segexp-S")
    assert viewed.endswith("runs?workflowType=machine_learning&viewStateShareKey=segexp-S")


def test_the_sweep_view_is_saved_on_the_experiment_with_the_columns_that_choose(tmp_path, store):
    client = MlflowClient(store)
    experiment = client.create_experiment("views")
    key = save_sweep_view(client, experiment, "S1", "davies_bouldin", False)
    state = json.loads(client.get_experiment(experiment).tags[VIEW_TAG_PREFIX + key])
    assert state["searchFilter"] == "tags.`segexp.sweep_id` = 'S1' and tags.`segexp.kind` = 'job'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`davies_bouldin`", True)
    assert state["selectedColumns"] == [
        "metrics.`davies_bouldin`",
        *(f"metrics.`{m}`" for m in ("noise_fraction", "min_segment_share", "stability")),
        "metrics.`n_clusters`",
        *(f"params.`{p}`" for p in ("algo", "k", "scaler", "features", "preprocess")),
    ]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def chromium() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")


@pytest.mark.browser
@pytest.mark.server
@pytest.mark.slow
def test_the_printed_url_opens_the_sweeps_runs_in_a_real_browser(tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("Chromium not found (/usr/bin/chromium or chromium on PATH)")
    with mlflow_server(tmp_path) as uri:
        result = run_cli(
            ["-m", "algo=kmeans,gmm", "k=3,4", "plots.enabled=false", f"mlflow.tracking_uri={uri}"],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        printed = [w for w in result.stdout.split() if w.startswith(f"{uri}/#/experiments/")]
        assert printed, result.stdout
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("segexp-customers")
        jobs = client.search_runs(
            [experiment.experiment_id], filter_string="tags.`segexp.kind` = 'job'"
        )
        assert len(jobs) == 4
        dom = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=2400,1000", "--virtual-time-budget=20000", "--dump-dom", printed[-1]],
            capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        assert dom.returncode == 0, dom.stderr[-2000:]
        for run in jobs:
            assert run.info.run_name in dom.stdout
        assert "viewing a shared view" in dom.stdout  # the sweep's saved view, not an error
        # the columns that choose a segmentation, without adding them by hand
        for column in ("silhouette", "noise_fraction", "min_segment_share", "stability"):
            assert f">{column}<" in dom.stdout, column
        for column in ("n_clusters", "algo", "scaler", "features", "preprocess"):
            assert f">{column}<" in dom.stdout, column
        # the model-training pages: no GenAI side bar (evaluation runs, judges, traces)
        assert "Model registry" in dom.stdout
        assert "Evaluation runs" not in dom.stdout and "Judges" not in dom.stdout
