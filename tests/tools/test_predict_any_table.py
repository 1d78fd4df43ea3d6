"""A segmentation of any table is promoted and assigns new customers, coded categories too."""

from __future__ import annotations

import pandas as pd
import tables
from conftest import CONF_DIR, compose_config
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from segexp.jobs.job import run_job
from segexp.tools.predict import predict
from segexp.tools.promote import promote


def tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def test_wholesale_with_coded_channel_is_promoted_and_predicts_its_own_rows(tmp_path, store):
    path = tables.wholesale(tmp_path)
    outcome = run_job(
        compose_config(
            [
                f"mlflow.tracking_uri={store}",
                f"data.path={path}",
                "features.columns=[Channel,Fresh,Milk,Grocery]",
                "k=4",
                "plots.enabled=false",
            ]
        )
    )
    assert outcome.status == "finished", outcome.message
    client = MlflowClient(store)
    run = client.get_run(outcome.run_id)
    assert run.data.params["schema.categorical"] == "Channel,Region"
    promote(tool_config("promote", [f"mlflow.tracking_uri={store}", f"run_id={outcome.run_id}"]))
    output = tmp_path / "scored.csv"
    predict(
        tool_config(
            "predict",
            [f"mlflow.tracking_uri={store}", f"input={path}", f"output={output}"],
        )
    )
    scored = pd.read_csv(output)
    local = client.download_artifacts(outcome.run_id, "assignments.csv", str(tmp_path))
    training = pd.read_csv(local)
    assert len(scored) == len(training) == len(pd.read_csv(path))
    # a code read as text ('1') in the new file is the category typed 1 in training
    assert scored["segment"].tolist() == training["segment"].tolist()


def test_derived_tenure_and_age_are_derived_again_when_scoring(tmp_path, store):
    """A model on tenure (from Dt_Customer) and age (from Year_Birth) scores a table that has
    only their sources, as training derived them (its reference date): the training file
    itself gets the training segments back."""
    path = tables.marketing_campaign(tmp_path)
    overrides = [f"mlflow.tracking_uri={store}", f"data.path={path}", "k=3"]
    outcome = run_job(
        compose_config([*overrides, "plots.enabled=false", "preprocess.impute=median"])
    )
    assert outcome.status == "finished", outcome.message
    client = MlflowClient(store)
    features = client.get_run(outcome.run_id).data.params["feature_columns"].split(",")
    assert {"age", "tenure"} <= set(features)
    promote(tool_config("promote", [f"mlflow.tracking_uri={store}", f"run_id={outcome.run_id}"]))
    output = tmp_path / "scored.csv"
    predict(
        tool_config(
            "predict", [f"mlflow.tracking_uri={store}", f"input={path}", f"output={output}"]
        )
    )
    scored = pd.read_csv(output)
    assert "age" not in scored.columns and "tenure" not in scored.columns  # the input's own
    local = client.download_artifacts(outcome.run_id, "assignments.csv", str(tmp_path))
    training = pd.read_csv(local)
    assert len(scored) == len(training)
    by_id = scored.set_index("ID")["segment"]
    assert by_id.loc[training["ID"]].tolist() == training["segment"].tolist()
