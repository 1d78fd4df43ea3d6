"""segexp.engines on a local[2] session: the stored models predict as Spark's own models on
points they were not fitted on, the profile equals the pandas profile of the same rows and
labels, and the config checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import compose_config

from segexp.errors import ConfigError
from segexp.jobs.validation import check_job_config

from .conftest import require_spark

require_spark()
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

TARGETS = {
    "kmeans": "sklearn.cluster.KMeans",
    "bisecting_kmeans": "sklearn.cluster.BisectingKMeans",
    "gmm": "sklearn.mixture.GaussianMixture",
}
COLUMNS = ["x", "y", "z"]


def _blobs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [4, 4, 0], [0, 5, 3], [5, 0, 5], [2, 2, 8]], dtype=float)
    which = rng.integers(0, len(centres), n)
    points = centres[which] + rng.normal(0, 1.2, (n, 3))
    return pd.DataFrame(points * [10, 1, 100], columns=COLUMNS)  # unequal units: scaling counts


@pytest.mark.parametrize("algo", sorted(TARGETS))
def test_stored_model_predicts_as_spark_on_new_points(spark, algo, tmp_path):
    from segexp.engines import spark_fit
    from segexp.model import storage

    training = _blobs(600, seed=1)
    target = TARGETS[algo]
    settings = spark_fit.spark_settings(target, {"max_iter": 8}, 4, 42)  # 8: a short test
    fitted = spark_fit.fit(
        spark.createDataFrame(training),
        COLUMNS,
        "standard",
        target,
        settings,
        training,
        tmp_path / "spark-model",
    )
    # points outside the training cloud too: every boundary of the model is crossed
    new = pd.DataFrame(
        np.random.default_rng(7).uniform(-1.5, 1.5, (3000, 3)) * training.std().to_numpy() * 3
        + training.mean().to_numpy(),
        columns=COLUMNS,
    )
    by_spark = fitted.spark_model.transform(spark.createDataFrame(new)).select("segment")
    expected = by_spark.toPandas()["segment"].to_numpy()
    storage.save(fitted.pipeline, tmp_path / "pipeline.skops")
    loaded = storage.load(tmp_path / "pipeline.skops")  # segexp's trusted types suffice
    np.testing.assert_array_equal(loaded.predict(new), expected)
    assert len(np.unique(expected)) >= 3


def test_spark_profile_equals_the_pandas_profile(spark):
    from pyspark.sql import functions as F

    from segexp.engines.spark_fit import spark_profile
    from segexp.insight.profiles import compute_profile

    frame = _blobs(500, seed=2)
    frame["gender"] = np.where(frame["x"] > 20, "Female", "Male")
    frame["channel"] = np.where(frame["y"] > 1, 1, 2)  # a coded category with value labels
    coded = {"channel": {1: "Horeca", 2: "Retail"}}
    labels = np.asarray(frame["y"] > 2, dtype=int) + 2 * np.asarray(frame["z"] > 300, dtype=int)
    assigned = spark.createDataFrame(frame.assign(segment=labels)).withColumn(
        "segment", F.col("segment").cast("int")
    )
    by_spark = spark_profile(assigned, frame.head(50), ["x", "y"], None, ["channel"], coded)
    by_pandas = compute_profile(
        frame, labels, ["x", "y"], None, categorical_columns=["channel"], value_labels=coded
    )
    pd.testing.assert_frame_equal(by_spark.table, by_pandas.table, check_dtype=False, rtol=1e-9)
    assert by_spark.numeric_columns == by_pandas.numeric_columns == ["x", "y", "z"]
    assert by_spark.split_columns == ["gender", "channel"]
    assert (
        by_spark.base["shares"].keys() == by_pandas.base["shares"].keys() == {"gender", "channel"}
    )
    assert set(by_spark.base["shares"]["channel"]) == {"Horeca", "Retail"}  # labels, not 1 and 2
    for column in ("gender", "channel"):
        assert by_spark.base["shares"][column] == pytest.approx(by_pandas.base["shares"][column])
    for column, stats in by_pandas.base["columns"].items():
        assert by_spark.base["columns"][column] == pytest.approx(stats, rel=1e-9)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo=dbscan"], "algo=dbscan: engine=spark fits kmeans, bisecting_kmeans, gmm"),
        (["algo=kprototypes"], "algo=kprototypes: engine=spark fits"),
        (["scaler=robust"], "scaler=robust: engine=spark scales with standard or none"),
        (["engine.driver_memory=lots"], "engine.driver_memory: a JVM memory size"),
        (["engine.shuffle_partitions=0"], "engine.shuffle_partitions: an integer >= 1"),
        (["engine.name=dask"], "engine.name: one of 'sklearn', 'spark'; got 'dask'"),
    ],
)
def test_spark_config_checks(overrides, message):
    with pytest.raises(ConfigError) as error:
        check_job_config(compose_config(["engine=spark", *overrides]))
    assert message in str(error.value)


@pytest.mark.parametrize("algo", sorted(TARGETS))
def test_spark_algorithms_pass_the_checks(algo):
    check_job_config(compose_config(["engine=spark", f"algo={algo}"]))
    check_job_config(compose_config(["engine=spark", f"algo={algo}", "scaler=none"]))
