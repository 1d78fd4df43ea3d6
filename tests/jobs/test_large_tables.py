"""What keeps a large table's run bounded: a sampled scatter, Parquet assignments.

The thresholds are lowered here so that the 200-customer sample crosses them; the
10M-customer figures come from benchmarks/large_table.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_cli
from mlflow.tracking import MlflowClient

import segexp
from segexp.jobs.job import build_request, run_job, validate_inputs


def test_the_scatter_is_drawn_from_a_seeded_sample_of_plots_max_points(make_config, store):
    cfg = make_config([f"mlflow.tracking_uri={store}", "plots.max_points=120"])
    spec, table = validate_inputs(cfg)
    request = build_request(cfg, spec, table, {}, store)
    figures = request.figures
    assert figures is not None and figures.total == 200
    assert len(figures.labels) == len(figures.features) == len(figures.transformed) == 120
    assert figures.features.index.is_unique  # each customer at most once
    # the same customers each time (seeded by the run's seed), with their own segments
    again = build_request(cfg, spec, table, {}, store).figures
    assert again is not None and list(again.features.index) == list(figures.features.index)
    request.figures = None
    from segexp.tracking.publish import discard

    discard(request)


def test_within_plots_max_points_every_customer_is_drawn(make_config, store):
    cfg = make_config([f"mlflow.tracking_uri={store}"])
    spec, table = validate_inputs(cfg)
    request = build_request(cfg, spec, table, {}, store)
    assert request.figures is not None and request.figures.total is None
    assert len(request.figures.labels) == 200
    from segexp.tracking.publish import discard

    discard(request)


@pytest.fixture
def parquet_run(make_config, store):
    """A run whose assignments crossed artifacts.assignments_parquet_above_rows."""
    cfg = make_config(
        [f"mlflow.tracking_uri={store}", "artifacts.assignments_parquet_above_rows=150"]
    )
    outcome = run_job(cfg)
    assert outcome.status == "finished", outcome.message
    return outcome.run_id


def test_above_the_threshold_assignments_are_parquet(parquet_run, store, tmp_path):
    client = MlflowClient(tracking_uri=store)
    names = {a.path for a in client.list_artifacts(parquet_run)}
    assert "assignments.parquet" in names and "assignments.csv" not in names
    table = pd.read_parquet(
        client.download_artifacts(parquet_run, "assignments.parquet", str(tmp_path))
    )
    assert len(table) == 200 and list(table.columns)[-1] == "segment"
    assert table["customer_id"].str.len().eq(4).all()  # ids as the data has them: 0001


def test_a_parquet_run_is_promoted_and_reproduced(parquet_run, store, tmp_path):
    promoted = run_cli(
        [f"run_id={parquet_run}", f"mlflow.tracking_uri={store}"], tmp_path, module="segexp.promote"
    )
    assert promoted.returncode == 0, promoted.stderr
    # the model assigns its 200 training customers (read from the Parquet file) as the run did
    assert "100.00% of 200 training customers reproduced" in promoted.stdout
    rerun = run_cli(
        [f"run_id={parquet_run}", f"mlflow.tracking_uri={store}"], tmp_path, module="segexp.rerun"
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "identical assignments of 200 customers" in rerun.stdout


def test_the_python_api_reads_parquet_assignments(store):
    result = segexp.run(
        overrides=[f"mlflow.tracking_uri={store}", "artifacts.assignments_parquet_above_rows=150"]
    )
    assert len(result.labels) == 200 and result.labels.index.name == "customer_id"
    assert set(result.labels.unique()) == set(range(5))
