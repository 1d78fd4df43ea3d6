"""engine=spark through the real CLI: the run contract, its numbers against scikit-learn and
numpy on the same data and labels, its model against Spark's labels, promote and predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import RUN_METRICS, run_cli
from mlflow.artifacts import download_artifacts
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segexp.model import storage
from segexp.model.metrics import within_cluster_sum_of_squares

from .conftest import ALGOS, N_CUSTOMERS, SPARK_ARGS, K, require_spark

require_spark()
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

FEATURES = ["annual_income", "spending_score"]  # features=default on the Mall columns
CONTRACT_METRICS = {*RUN_METRICS, "n_customers", "ari", "nmi"}
CONTRACT_FILES = {
    "assignments.parquet",
    "config.yaml",
    "schema.json",
    "profile.csv",
    "profile.md",
    "segments.json",
    "model",
    "plots",
    "spark-model",
}


def _artifact(store: str, run, path: str, folder: Path) -> Path:
    return Path(
        download_artifacts(
            run_id=run.info.run_id, artifact_path=path, dst_path=str(folder), tracking_uri=store
        )
    )


def _assignments(store: str, run, folder: Path) -> pd.DataFrame:
    return pd.read_parquet(_artifact(store, run, "assignments.parquet", folder))


def _scaled(frame: pd.DataFrame) -> np.ndarray:
    """Spark's StandardScaler by hand: the sample standard deviation (n - 1)."""
    values = frame[FEATURES].to_numpy(dtype=float)
    return (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)


@pytest.mark.parametrize("algo", ALGOS)
def test_spark_run_logs_the_contract(spark_sweep, algo, tmp_path):
    store, _, runs = spark_sweep
    run = runs[algo]
    assert run.info.status == "FINISHED", run.data.tags.get("segexp.error")
    assert set(run.data.metrics) >= CONTRACT_METRICS, sorted(run.data.metrics)
    assert run.data.metrics["n_clusters"] == K
    assert run.data.metrics["n_customers"] == N_CUSTOMERS
    tags = run.data.tags
    assert tags["segexp.engine"] == "spark"
    assert tags["segexp.silhouette_space"] == "squared_euclidean"
    assert "segexp.undefined.stability" in tags
    assert run.data.params["engine"] == "spark" and run.data.params["k"] == str(K)
    assert run.data.params["feature_columns"] == ",".join(FEATURES)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert files >= CONTRACT_FILES, sorted(files)
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/segments.png", "plots/silhouette.png", "plots/profile_heatmap.png"} <= plots
    model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/pipeline.skops", "model/meta.json"} <= model

    assignments = _assignments(store, run, tmp_path)
    assert len(assignments) == N_CUSTOMERS  # every input row, once
    assert list(assignments.columns) == ["customer_id", *FEATURES, "segment"]
    assert assignments["customer_id"].str.len().eq(4).all()  # ids kept as text: 0001
    assert "assignments.csv" not in {a.path for a in client.list_artifacts(run.info.run_id)}
    profile = pd.read_csv(_artifact(store, run, "profile.csv", tmp_path), index_col="segment")
    sizes = assignments["segment"].value_counts().sort_index()
    np.testing.assert_array_equal(profile.loc[sizes.index, "size"].to_numpy(), sizes.to_numpy())
    assert run.data.metrics["min_segment_share"] == pytest.approx(sizes.min() / N_CUSTOMERS)
    assert run.data.metrics["max_segment_share"] == pytest.approx(sizes.max() / N_CUSTOMERS)


@pytest.mark.parametrize("algo", ALGOS)
def test_spark_scores_agree_with_sklearn_on_the_same_labels(spark_sweep, algo, tmp_path):
    """Spark's silhouette (squaredEuclidean) is scikit-learn's silhouette with
    metric='sqeuclidean'; inertia, CH and DB from Spark's aggregations equal numpy's and
    scikit-learn's on the scaled features and the logged labels."""
    store, _, runs = spark_sweep
    run = runs[algo]
    assignments = _assignments(store, run, tmp_path)
    X, labels = _scaled(assignments), assignments["segment"].to_numpy()
    metrics = run.data.metrics
    expected = silhouette_score(X, labels, metric="sqeuclidean")
    assert abs(metrics["silhouette"] - expected) < 1e-6, (metrics["silhouette"], expected)
    euclidean = silhouette_score(X, labels)
    assert abs(metrics["silhouette"] - euclidean) > 1e-3  # a different number: tagged so
    assert metrics["inertia"] == pytest.approx(within_cluster_sum_of_squares(X, labels), rel=1e-9)
    assert metrics["calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(X, labels), rel=1e-9
    )
    assert metrics["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels), rel=1e-9)


@pytest.mark.parametrize("algo", ALGOS)
def test_spark_run_model_predicts_spark_labels(spark_sweep, algo, tmp_path):
    store, _, runs = spark_sweep
    run = runs[algo]
    assignments = _assignments(store, run, tmp_path)
    pipeline = storage.load(_artifact(store, run, "model/pipeline.skops", tmp_path))
    predicted = pipeline.predict(assignments[FEATURES].astype(float))
    np.testing.assert_array_equal(predicted, assignments["segment"].to_numpy())
    meta = json.loads(_artifact(store, run, "model/meta.json", tmp_path).read_text())
    assert meta["engine"] == "spark" and meta["input_columns"] == FEATURES
    assert meta["segments"] == list(range(K))


def test_spark_run_promotes_and_predicts_new_customers(spark_sweep, tmp_path):
    store, folder, runs = spark_sweep
    run = runs["kmeans"]
    tracking = f"mlflow.tracking_uri={store}"
    promoted = run_cli(
        [f"run_id={run.info.run_id}", "report.enabled=false", tracking],
        folder,
        module="segexp.promote",
    )
    assert promoted.returncode == 0, promoted.stderr
    assert "100.00% of 400 training customers reproduced" in promoted.stdout

    training = _assignments(store, run, tmp_path)
    new = pd.DataFrame(
        {
            "CustomerID": ["N1", "N2", "N3", "N4"],
            "Annual Income (k$)": [20.0, 120.0, 60.0, 130.0],
            "Spending Score (1-100)": [80.0, 15.0, 50.0, 95.0],
        }
    )
    incoming = pd.concat(
        [
            training.rename(
                columns={
                    "customer_id": "CustomerID",
                    "annual_income": "Annual Income (k$)",
                    "spending_score": "Spending Score (1-100)",
                }
            ).drop(columns="segment"),
            new,
        ],
        ignore_index=True,
    )
    incoming.to_csv(tmp_path / "new.csv", index=False)
    scored = run_cli(
        [f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'scored.csv'}", tracking],
        folder,
        module="segexp.predict",
    )
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "scored.csv", dtype={"CustomerID": str})
    assert len(out) == len(incoming) and out["segment_name"].notna().all()
    np.testing.assert_array_equal(
        out["segment"].to_numpy()[: len(training)], training["segment"].to_numpy()
    )
    # new customers: the nearest Spark centre in Spark's scaled space, by hand
    values = training[FEATURES].to_numpy(dtype=float)
    mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
    X = _scaled(training)
    labels = training["segment"].to_numpy()
    centres = np.stack([X[labels == s].mean(axis=0) for s in range(K)])
    points = (new.iloc[:, 1:].to_numpy(dtype=float) - mean) / std
    nearest = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(out["segment"].to_numpy()[len(training) :], nearest)


def test_spark_rejects_what_it_cannot_fit_in_one_line(tmp_path, spark_csv):
    """Before any Spark session or run: an algorithm or scaler Spark has not, exit 2."""
    for override, words in (
        ("algo=dbscan", "algo=dbscan: engine=spark fits kmeans, bisecting_kmeans, gmm"),
        ("scaler=minmax", "scaler=minmax: engine=spark scales with standard or none"),
        ("engine.sample_rows=1", "engine.sample_rows: an integer >= 2; got 1"),
        ("+engine.executors=2", "engine.executors: no such config key"),
    ):
        ran = run_cli(
            [*SPARK_ARGS, override, f"data.path={spark_csv}", "mlflow.tracking_uri=sqlite:///x.db"],
            tmp_path,
            timeout=60,
        )
        assert ran.returncode == 2, (override, ran.stdout, ran.stderr)
        lines = [line for line in ran.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("segexp: error: "), ran.stderr
        assert words in lines[0], lines[0]


def test_missing_pyspark_or_java_is_one_line(tmp_path, spark_csv):
    """A process where pyspark cannot be imported (sys.modules['pyspark'] = None), and one
    whose JAVA_HOME has no java."""
    import subprocess
    import sys

    args = [*SPARK_ARGS, f"data.path={spark_csv}", "mlflow.tracking_uri=sqlite:///x.db"]
    hide = (
        "import sys; sys.modules['pyspark'] = None; sys.argv = ['segexp', *sys.argv[1:]]; "
        "from segexp.__main__ import main; sys.exit(main())"
    )
    ran = subprocess.run(
        [sys.executable, "-c", hide, *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        'segexp: error: engine=spark: pyspark is not installed; pip install "segexp[spark]" '
        "(or use engine=sklearn)"
    ]
    ran = run_cli(args, tmp_path, env={"JAVA_HOME": str(tmp_path / "no-java")}, timeout=60)
    assert ran.returncode == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith("segexp: error: engine=spark: Spark needs a Java runtime"), line
