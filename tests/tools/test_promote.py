"""Promotion against a real registry in a temporary SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, run_cli
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from segexp.errors import ConfigError, TrackingError, ValidationFailed
from segexp.jobs.job import run_job
from segexp.model.assign import NOISE_LABEL
from segexp.tools.promote import TAG_REPORT, TAG_SOURCE_RUN, TAG_VALIDATION, promote
from segexp.tracking.models import load_model

NAME = "customer-segments"


def tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def make_run(make_config, store: str, *overrides: str) -> str:
    outcome = run_job(
        make_config([f"mlflow.tracking_uri={store}", "plots.enabled=false", *overrides])
    )
    assert outcome.status == "finished", outcome.message
    return outcome.run_id


def promote_with(store: str, *overrides: str):
    report = Path(store.removeprefix("sqlite:///")).parent / "report.html"
    return promote(
        tool_config(
            "promote", [f"mlflow.tracking_uri={store}", f"report.output={report}", *overrides]
        )
    )


def test_promotion_keeps_one_report_with_the_model_version(make_config, store, tmp_path):
    """One report per promotion: an artifact of the version's logged model (its location in
    the version's segexp.report tag), and the local copy report.output= asked for; nothing
    more is logged to the run."""
    run_id = make_run(make_config, store, "algo=kmeans")
    result = promote_with(store, f"run_id={run_id}")
    client = MlflowClient(store, registry_uri=store)
    version = client.get_model_version(NAME, result.version)
    kept = version.tags[TAG_REPORT]
    assert kept == result.report_uri
    assert kept.startswith(version.source)  # beside the model files of the version
    logged = mlflow.artifacts.download_artifacts(
        artifact_uri=kept, dst_path=str(tmp_path / "dl"), tracking_uri=store
    )
    html = Path(logged).read_text()
    assert run_id in html and "Careful high earners" in html
    assert result.report_path is not None and result.report_path.read_text() == html
    assert client.list_artifacts(run_id, "report") == []
    assert f"kept with version {result.version} as {kept}" in result.summary()


def test_promotion_writes_no_local_report_unless_asked(make_config, store, tmp_path):
    run_id = make_run(make_config, store, "algo=kmeans")
    work = tmp_path / "work"
    work.mkdir()
    done = run_cli(
        [f"run_id={run_id}", f"mlflow.tracking_uri={store}"], cwd=work, module="segexp.promote"
    )
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []
    version = MlflowClient(store, registry_uri=store).get_model_version(NAME, "1")
    assert version.tags[TAG_REPORT].endswith("/report/report.html")
    assert "report for marketing: kept with version 1" in done.stdout


def training_assignments(client: MlflowClient, run_id: str) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="assignments.csv", tracking_uri=client.tracking_uri
    )
    return pd.read_csv(path, dtype={"customer_id": str})


def test_promote_by_run_id_registers_tags_validates_and_sets_the_alias(make_config, store):
    run_id = make_run(make_config, store, "algo=kmeans")
    result = promote_with(store, f"run_id={run_id}")
    client = MlflowClient(store, registry_uri=store)
    version = client.get_model_version_by_alias(NAME, "champion")
    assert (result.version, str(version.version)) == ("1", "1")
    run = client.get_run(run_id)
    assert version.run_id == run_id
    assert version.tags[TAG_SOURCE_RUN] == run_id
    assert version.tags["segexp.data_fingerprint"] == run.data.tags["segexp.data_fingerprint"]
    assert float(version.tags["metric.silhouette"]) == pytest.approx(
        run.data.metrics["silhouette"], rel=1e-5
    )
    assert version.tags[TAG_VALIDATION].startswith("passed: 100.00% of 200")
    assert run_id in version.description
    assert result.agreement == 1.0 and result.required_agreement == 1.0

    training = training_assignments(client, run_id)
    model = load_model(f"models:/{NAME}@champion", store)
    predicted = model.predict(training.drop(columns=["segment"]))
    np.testing.assert_array_equal(predicted["segment"].to_numpy(), training["segment"].to_numpy())


def test_promote_best_follows_the_metric_direction_and_filters(make_config, store):
    runs = {k: make_run(make_config, store, "algo=kmeans", f"k={k}") for k in (3, 5, 7)}
    client = MlflowClient(store, registry_uri=store)
    metrics = {k: client.get_run(r).data.metrics for k, r in runs.items()}

    every_run = ("scope=experiment", "dry_run=true")
    best = promote_with(store, "best=silhouette", *every_run)
    assert best.run_id == runs[max(metrics, key=lambda k: metrics[k]["silhouette"])]
    lowest_db = promote_with(store, "best=davies_bouldin", *every_run)
    assert lowest_db.run_id == runs[min(metrics, key=lambda k: metrics[k]["davies_bouldin"])]
    only_small_k = promote_with(store, "best=silhouette", "filter.k_max=4", *every_run)
    assert only_small_k.run_id == runs[3]
    assert "filter.k_max=4" in only_small_k.selection

    promoted = promote_with(store, "best=silhouette", "scope=experiment")
    assert client.get_model_version_by_alias(NAME, "champion").run_id == best.run_id
    assert promoted.version == "1"


@pytest.mark.parametrize("algo", ["dbscan", "agglomerative"])
def test_extension_models_are_promoted_and_assign_new_customers(make_config, store, algo):
    run_id = make_run(make_config, store, f"algo={algo}")
    result = promote_with(store, f"run_id={run_id}", "registry.alias=production")
    assert result.required_agreement == 0.99 and result.agreement >= 0.99
    client = MlflowClient(store, registry_uri=store)
    assert str(client.get_model_version_by_alias(NAME, "production").version) == result.version

    model = load_model(f"models:/{NAME}@production", store)
    training = training_assignments(client, run_id)
    segments = training[training["segment"] != NOISE_LABEL]
    centres = segments.groupby("segment")[["annual_income", "spending_score"]].median()
    new = pd.DataFrame(
        {
            "Annual Income (k$)": [*centres["annual_income"], 900.0],
            "Spending Score (1-100)": [*centres["spending_score"], 900.0],
            "Email": "someone@example.com",
        }
    )
    assigned = model.predict(new)["segment"].tolist()
    assert assigned[:-1] == centres.index.tolist()
    if algo == "dbscan":
        assert assigned[-1] == NOISE_LABEL  # farther than eps from every core sample
    else:
        assert assigned[-1] in set(centres.index)


def test_failed_validation_leaves_the_previous_champion(make_config, store, tmp_path):
    first = make_run(make_config, store, "algo=kmeans", "k=4")
    promote_with(store, f"run_id={first}")
    second = make_run(make_config, store, "algo=kmeans", "k=6")
    client = MlflowClient(store, registry_uri=store)
    tampered = training_assignments(client, second)
    tampered["segment"] = np.roll(tampered["segment"].to_numpy(), 1)
    tampered.to_csv(tmp_path / "assignments.csv", index=False)
    client.log_artifact(second, str(tmp_path / "assignments.csv"))

    with pytest.raises(ValidationFailed) as error:
        promote_with(store, f"run_id={second}")
    message = str(error.value)
    assert f"models:/{NAME}/2 reproduces" in message
    assert "below the required 100%" in message
    assert "alias 'champion' not moved (still version 1)" in message
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert client.get_model_version(NAME, "2").tags[TAG_VALIDATION].startswith("failed")


def test_dry_run_changes_nothing(make_config, store):
    first = make_run(make_config, store, "algo=kmeans")
    client = MlflowClient(store, registry_uri=store)
    result = promote_with(store, f"run_id={first}", "dry_run=true")
    assert result.dry_run and result.version is None and result.agreement == 1.0
    assert "nothing was changed" in result.summary()
    assert client.search_registered_models() == []

    promote_with(store, f"run_id={first}")
    second = make_run(make_config, store, "algo=dbscan")
    promote_with(store, f"run_id={second}", "dry_run=true")
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == ["1"]
    assert client.get_model_version_by_alias(NAME, "champion").run_id == first


def test_segment_names_travel_to_the_version_and_the_predictions(make_config, store, tmp_path):
    run_id = make_run(make_config, store, "algo=kmeans")
    entries = [
        {"id": s, "name": f"Segment {s}", "archetype": None, "actions": []} for s in range(5)
    ]
    (tmp_path / "segments.json").write_text(json.dumps({"segments": entries, "base": {}}))
    client = MlflowClient(store, registry_uri=store)
    client.log_artifact(run_id, str(tmp_path / "segments.json"))
    promote_with(store, f"run_id={run_id}", "report.enabled=false")
    version = client.get_model_version(NAME, "1")
    assert json.loads(version.tags["segexp.segment_names"])["3"] == "Segment 3"
    training = training_assignments(client, run_id)
    predicted = load_model(f"models:/{NAME}@champion", store).predict(training)
    assert (predicted["segment_name"] == "Segment " + predicted["segment"].astype(str)).all()


@pytest.mark.parametrize(
    ("overrides", "error", "fragments"),
    [
        (["run_id=0123abcd"], TrackingError, ["no run '0123abcd'", "segexp.compare"]),
        (["best=happiness"], ConfigError, ["best=happiness", "no known ranking direction"]),
        (
            ["best=silhouette", "scope=experiment", "filter.algo=gmm"],
            TrackingError,
            ["nothing to promote", "algo=gmm", "relax the filters"],
        ),
        (["best=silhouette"], TrackingError, ["has no sweep", "scope=experiment"]),
        ([], ConfigError, ["run_id=<run id> or best=<metric>"]),
        (["run_id=abc", "best=silhouette"], ConfigError, ["set one of them, not both"]),
        (["run_id=abc", "registry.alias=v3"], ConfigError, ["registry.alias: 'v3'", "reserved"]),
    ],
)
def test_promote_input_errors(make_config, store, overrides, error, fragments):
    make_run(make_config, store, "algo=kmeans")
    with pytest.raises(error) as raised:
        promote_with(store, *overrides)
    for fragment in fragments:
        assert fragment in str(raised.value)


@pytest.mark.slow
def test_promote_cli_prints_the_version_and_sets_the_alias(make_config, store, tmp_path):
    run_id = make_run(make_config, store, "algo=agglomerative")
    done = run_cli(
        [f"run_id={run_id}", f"mlflow.tracking_uri={store}"], tmp_path, module="segexp.promote"
    )
    assert done.returncode == 0, done.stderr
    assert "registered 'customer-segments' version 1; alias 'champion' -> version 1" in done.stdout
    assert "assignment: nearest_neighbours" in done.stdout
    client = MlflowClient(store, registry_uri=store)
    assert client.get_model_version_by_alias(NAME, "champion").run_id == run_id
