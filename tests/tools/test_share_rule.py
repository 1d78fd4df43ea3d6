"""No outlier splits (issue 21.1): the share rule on a bulk-plus-outliers table.

``segexp -m algo=kmeans k=2..5 preprocess=default,clip_iqr`` on 439 ordinary customers
and one 40x customer: every k-means run on the raw columns isolates that customer (k=2:
439/1, silhouette 0.99), and so do the clipped runs at k=4 and 5 (the customer sits
alone at the clipping bound); clipped k=2 and k=3 do not. The sweep's best run, its recommended
k, compare and promote ``best=`` must not choose a run with a segment under
``filter.min_segment_share`` (2 %), and say why the others are left out.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import run_cli
from mlflow.tracking import MlflowClient

from tests import tables

pytestmark = pytest.mark.slow
SHARE = 0.02
LEFT_OUT = "6 runs left out: a segment under 2% of customers (filter.min_segment_share=0.02)"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, _template_store):
    folder = tmp_path_factory.mktemp("bulk-sweep")
    shutil.copy(_template_store, folder / "mlflow.db")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    data = tables.bulk_plus_outliers(folder)
    args = ["-m", "algo=kmeans", "k=2..5", "preprocess=default,clip_iqr", "plots.enabled=false"]
    done = run_cli([*args, f"data.path={data}", f"mlflow.tracking_uri={store}"], cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "tags.`segexp.kind` = 'sweep'")
    jobs = client.search_runs(experiments, "tags.`segexp.kind` = 'job'")
    return {
        "store": store,
        "folder": folder,
        "client": client,
        "parent": parent,
        "stdout": done.stdout,
        "metrics": {r.info.run_id: r.data.metrics for r in jobs},
    }


def _tool(sweep, module: str, *args: str):
    return run_cli(
        [*args, f"mlflow.tracking_uri={sweep['store']}"],
        cwd=sweep["folder"],
        env={"COLUMNS": "1000"},
        module=f"segexp.{module}",
    )


def test_raw_runs_isolate_one_customer_and_have_the_best_silhouette(sweep):
    metrics = sweep["metrics"]
    small = {r for r, m in metrics.items() if m["min_segment_share"] < SHARE}
    assert len(metrics) == 8 and len(small) == 6
    assert all(metrics[r]["min_segment_share"] == pytest.approx(1 / 440) for r in small)
    assert max(metrics, key=lambda r: metrics[r]["silhouette"]) in small  # the 439/1 split


def test_the_sweep_chooses_no_outlier_split(sweep, tmp_path):
    parent, metrics = sweep["parent"], sweep["metrics"]
    best = parent.data.tags["segexp.best_run_id"]
    fair = {r: m for r, m in metrics.items() if m["min_segment_share"] >= SHARE}
    assert best == max(fair, key=lambda r: fair[r]["silhouette"])
    board = pd.read_csv(
        sweep["client"].download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path))
    )
    assert board["run_id"].iloc[0] == best and board["rank"].iloc[:2].tolist() == [1, 2]
    out = board.iloc[2:]
    assert out["rank"].isna().all() and set(out["run_id"]) == set(metrics) - set(fair)
    assert set(out["left_out"]) == {"a segment under 2% of customers (min_segment_share=0.02)"}
    assert f"\n  {LEFT_OUT}\n" in sweep["stdout"]  # the best-runs table says why
    assert metrics[best]["min_segment_share"] >= SHARE


def test_k_selection_leaves_outlier_splits_out(sweep, tmp_path):
    parent = sweep["parent"]
    path = sweep["client"].download_artifacts(parent.info.run_id, "k_selection.csv", str(tmp_path))
    table = pd.read_csv(path)
    # one k-selection group per preprocessing: the raw runs all isolate the customer (no
    # k), the clipped group's k comes from its 2 fair runs
    rows = {row["preprocess"]: row for row in table.to_dict("records")}
    assert set(rows) == {"none", "clip"}
    best = sweep["metrics"][parent.data.tags["segexp.best_run_id"]]["n_clusters"]
    assert rows["clip"]["silhouette"] == best
    assert pd.isna(rows["none"]["silhouette"]) and "under 2%" in rows["none"]["undefined"]


def test_compare_shows_why_runs_are_left_out(sweep):
    done = _tool(sweep, "compare")
    assert done.returncode == 0, done.stderr
    heading = done.stdout.splitlines()[0]
    assert "2 runs (filter.status=FINISHED), showing 2" in heading
    assert LEFT_OUT in heading and "filter.min_segment_share=0 ranks them too" in heading
    every = _tool(sweep, "compare", "filter.min_segment_share=0")
    assert every.returncode == 0
    assert "8 runs (filter.status=FINISHED filter.min_segment_share=0)" in every.stdout


def test_promote_best_and_a_small_run_id(sweep):
    metrics = sweep["metrics"]
    done = _tool(sweep, "promote", "best=silhouette", "dry_run=true")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sweep["parent"].data.tags["segexp.best_run_id"] in done.stdout
    assert LEFT_OUT in done.stdout

    small = next(r for r, m in metrics.items() if m["min_segment_share"] < SHARE)
    refused = _tool(sweep, "promote", f"run_id={small}", "dry_run=true")
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("segexp: error: run_id: run kmeans-k")
    assert "a segment of 0.23% of the customers, under filter.min_segment_share=0.02" in line
    assert "allow_small_segments=true" in line
    allowed = _tool(
        sweep, "promote", f"run_id={small}", "dry_run=true", "allow_small_segments=true"
    )
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_a_single_run_under_the_minimum_share_warns_in_one_line(sweep):
    data = tables.bulk_plus_outliers(sweep["folder"])
    done = run_cli(
        ["algo=kmeans", "k=2", "plots.enabled=false", f"data.path={data}"]
        + [f"mlflow.tracking_uri={sweep['store']}"],
        cwd=sweep["folder"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("segexp: warning:")]
    assert len(warnings) == 1, done.stderr
    assert "under 2% (filter.min_segment_share)" in warnings[0]
    assert "allow_small_segments=true" in warnings[0]


def test_a_sweep_of_outlier_splits_only_says_why_and_what_to_try(tmp_path, _template_store):
    shutil.copy(_template_store, tmp_path / "mlflow.db")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = tables.bulk_plus_outliers(tmp_path)
    args = ["-m", "algo=kmeans", "k=2,3", "plots.enabled=false", f"data.path={data}"]
    done = run_cli([*args, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout
    assert f"Nothing to rank by silhouette: 2 runs left out: {LEFT_OUT[17:]}." in said
    assert "preprocess.log1p=true and preprocess=clip_iqr,winsorize" in said
    assert "segexp-compare sweep_id=" in said
    assert "segexp-promote" not in said  # best= would find no run to take
