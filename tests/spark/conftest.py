"""engine=spark fixtures: skipped without pyspark or Java; one local[2] session per module;
one CLI sweep (kmeans, bisecting_kmeans, gmm) shared by the tests that read its runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from segexp.engines.spark_session import java_executable

K = 4
SEED = 42
N_CUSTOMERS = 400
ALGOS = ("kmeans", "bisecting_kmeans", "gmm")
MASTER = "engine.master='local[2]'"
SPARK_ARGS = ["engine=spark", MASTER, "engine.shuffle_partitions=2", "engine.driver_memory=1g"]


def require_spark() -> None:
    """Skip the calling test module when pyspark or Java is missing."""
    pytest.importorskip("pyspark", reason='engine=spark needs pyspark: pip install "segexp[spark]"')
    if java_executable() is None:
        pytest.skip(
            "engine=spark needs a Java runtime (java on PATH or JAVA_HOME)",
            allow_module_level=True,
        )


@pytest.fixture(scope="module")
def spark():
    from segexp.engines.spark_session import get_session, stop_session

    session = get_session("local[2]", "1g", 2)
    yield session
    stop_session()


@pytest.fixture(scope="session")
def spark_csv(tmp_path_factory) -> Path:
    """400 customers of the built-in generator, ids zero-padded, as a CSV file."""
    from segexp.data.samples import generate_mall_sample

    path = tmp_path_factory.mktemp("spark-data") / "customers.csv"
    generate_mall_sample(n_customers=N_CUSTOMERS, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def spark_sweep(tmp_path_factory, _template_store, spark_csv):
    """(tracking uri, folder, {algo: run}) of one CLI sweep over the three Spark algorithms."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("spark-sweep")
    shutil.copy(_template_store, folder / "mlflow.db")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    ran = run_cli(
        [
            "-m",
            *SPARK_ARGS,
            f"algo={','.join(ALGOS)}",
            "+algo.max_iter=10",  # Spark runs every bisecting iteration: keep the test short
            f"k={K}",
            f"data.path={spark_csv}",
            f"mlflow.tracking_uri={store}",
        ],
        folder,
        timeout=240,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segexp-customers").experiment_id
    runs = client.search_runs([experiment], "tags.`segexp.kind` = 'job'")
    by_algo = {run.data.params["algo"]: run for run in runs}
    assert sorted(by_algo) == sorted(ALGOS), ran.stdout[-2000:]
    return store, folder, by_algo
