"""segexp.rerun: a logged run re-created from its config.yaml assigns the same segments."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from segexp.data.samples import generate_mall_sample
from segexp.errors import DataChanged, RerunFailed, TrackingError
from segexp.jobs.job import run_job
from segexp.tools.rerun import TAG_RERUN_OF, rerun


def rerun_with(store: str, run_id: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("rerun", overrides=[f"mlflow.tracking_uri={store}", f"run_id={run_id}"])
    return rerun(cfg)


def make_run(make_config, store: str, *overrides: str) -> str:
    outcome = run_job(
        make_config([f"mlflow.tracking_uri={store}", "plots.enabled=false", *overrides])
    )
    assert outcome.status == "finished", outcome.message
    return outcome.run_id


def assignments(store: str, run_id: str) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="assignments.csv", tracking_uri=store
    )
    return pd.read_csv(path, dtype=str)


@pytest.mark.parametrize("algo", ["gmm", "dbscan"])
def test_rerun_reproduces_the_run(make_config, store, algo):
    source = make_run(make_config, store, f"algo={algo}")
    result = rerun_with(store, source)
    assert result.source_run_id == source and result.new_run_id != source
    client = MlflowClient(store)
    new, old = client.get_run(result.new_run_id), client.get_run(source)
    assert new.data.tags[TAG_RERUN_OF] == source
    assert new.data.params == old.data.params
    # a name apart from the original's, a top-level run of the same experiment
    assert new.info.run_name == f"{old.info.run_name}-rerun"
    assert new.info.experiment_id == old.info.experiment_id
    assert "mlflow.parentRunId" not in new.data.tags
    pd.testing.assert_frame_equal(assignments(store, result.new_run_id), assignments(store, source))


def test_rerun_reports_changed_data(make_config, store, tmp_path):
    data = tmp_path / "customers.csv"
    generate_mall_sample(60, seed=3).to_csv(data, index=False)
    source = make_run(make_config, store, f"data.path={data}", "k=3")
    frame = pd.read_csv(data, dtype=str)
    frame.loc[0, "annual_income"] = "999"
    frame.to_csv(data, index=False)
    with pytest.raises(DataChanged) as error:
        rerun_with(store, source)
    old = MlflowClient(store).get_run(source).data.tags["segexp.data_fingerprint"]
    message = str(error.value)
    assert f"data changed since run {source}: fingerprint {old} then" in message
    assert "not comparable" in message
    assert error.value.exit_code == 3


def test_rerun_names_customers_whose_segment_differs(make_config, store, tmp_path):
    source = make_run(make_config, store, "algo=kmeans")
    recorded = assignments(store, source)
    recorded.loc[[0, 1], "segment"] = "99"
    recorded.to_csv(tmp_path / "assignments.csv", index=False)
    MlflowClient(store).log_artifact(source, str(tmp_path / "assignments.csv"))
    with pytest.raises(RerunFailed) as error:
        rerun_with(store, source)
    message = str(error.value)
    first = recorded.loc[0, "customer_id"]
    assert "assigns different segments to 2 of 200 customers" in message
    assert f"customer_id={first}: segment 99 -> " in message
    assert np.all(assignments(store, source)["segment"].head(2) == "99")


def test_rerun_of_an_unknown_run(store):
    with pytest.raises(TrackingError, match="no run 'feedbeef'"):
        rerun_with(store, "feedbeef")
