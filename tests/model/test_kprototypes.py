"""algo=kprototypes: categories as categories, Gower silhouette, promote and predict.

Numbers are checked against independent computations: kmodes' KPrototypes run
directly on the same prepared data with the same seed (labels, cost), and a Gower
matrix built here from the raw table (Gower is unchanged by the per-column affine
scaling the pipeline applies) scored by ``sklearn.metrics.silhouette_score`` with
``metric="precomputed"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from kmodes.kprototypes import KPrototypes
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from segexp.contract import TAG_UNDEFINED_PREFIX
from segexp.errors import ConfigError
from segexp.jobs.job import run_job
from segexp.jobs.validation import check_job_config
from segexp.model import storage
from segexp.model.metrics import score_segmentation
from segexp.model.mixed import KPrototypesClusterer

K = 4
SEED = 42
NUMERIC = ["age", "annual_income"]


def customers(n: int = 240, seed: int = 3) -> pd.DataFrame:
    """Customers whose segments differ by gender as much as by age and income."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "gender": np.where(group % 2 == 0, "Female", "Male"),
            "age": np.round(np.array([25, 60, 30, 55])[group] + rng.normal(0, 6, n)).astype(int),
            "annual_income": np.clip(
                np.round(np.array([30, 35, 90, 95])[group] + rng.normal(0, 9, n)), 1, None
            ),
        }
    )


def gower_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Gower distances of the raw table: |a-b|/range per numeric column, mismatch per
    categorical one, averaged over the three columns."""
    total = np.zeros((len(frame), len(frame)))
    for column in NUMERIC:
        values = frame[column].to_numpy(dtype=float)
        total += np.abs(values[:, None] - values[None, :]) / np.ptp(values)
    gender = frame["gender"].to_numpy()
    total += gender[:, None] != gender[None, :]
    return total / 3


def prepared(frame: pd.DataFrame) -> np.ndarray:
    """The prepared space by hand: standardized numbers, then gender's code (sorted)."""
    scaled = StandardScaler().fit_transform(frame[NUMERIC].to_numpy(dtype=float))
    codes = np.unique(frame["gender"], return_inverse=True)[1].astype(float)
    return np.column_stack([scaled, codes])


def direct_kprototypes(frame: pd.DataFrame) -> KPrototypes:
    """KPrototypes with the shipped YAML's hyperparameters, on the same prepared data."""
    model = KPrototypes(n_clusters=K, init="Huang", n_init=5, max_iter=100, random_state=SEED)
    return model.fit(prepared(frame), categorical=[2])


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "customers.csv"
    customers().to_csv(path, index=False)
    return path


def mixed_overrides(store: str, path) -> list[str]:
    return [
        f"mlflow.tracking_uri={store}",
        f"data.path={path}",
        "algo=kprototypes",
        f"k={K}",
        f"seed={SEED}",
        "features.columns=[gender,age,annual_income]",
        "plots.enabled=false",
    ]


def test_kprototypes_run_matches_kmodes_and_an_independent_gower_silhouette(
    make_config, store, table_csv
):
    frame = customers()
    outcome = run_job(make_config(mixed_overrides(store, table_csv)))
    assert outcome.status == "finished", outcome.message
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags

    labels = pd.read_csv(
        download_artifacts(
            run_id=outcome.run_id, artifact_path="assignments.csv", tracking_uri=store
        )
    )["segment"].to_numpy()
    direct = direct_kprototypes(frame)
    np.testing.assert_array_equal(labels, direct.labels_)
    assert metrics["inertia"] == pytest.approx(direct.cost_, rel=1e-9)

    expected = silhouette_score(gower_matrix(frame), labels, metric="precomputed")
    assert metrics["silhouette"] == pytest.approx(expected, abs=1e-12)
    assert expected > 0.3  # the segments are real, not noise
    assert tags["segexp.silhouette_space"] == "gower"
    assert tags["segexp.silhouette_mode"] == "exact"
    for name in ("calinski_harabasz", "davies_bouldin"):
        assert name not in metrics
        assert "Euclidean" in tags[TAG_UNDEFINED_PREFIX + name]
    assert metrics["n_clusters"] == K and "stability" in metrics
    assert run.data.params["algo"] == "kprototypes"
    assert run.data.params["algo.n_init"] == "5"

    # profiles and names know gender is a category (shares, not a mean of codes)
    folder = download_artifacts(run_id=outcome.run_id, artifact_path="", tracking_uri=store)
    segments = json.loads(Path(folder, "segments.json").read_text())["segments"]
    assert sorted(s["id"] for s in segments) == list(range(K))
    assert all(s["name"] for s in segments)
    assert "gender" in Path(folder, "profile.md").read_text()
    # the stored model loads with segexp's trusted types and predicts as it labelled
    pipeline = storage.load(f"{folder}/model/pipeline.skops")
    assert isinstance(pipeline[-1], KPrototypesClusterer)
    assert pipeline[-1].categorical == (2,)
    np.testing.assert_array_equal(pipeline.predict(frame), labels)


def test_gower_silhouette_on_a_sample_is_sklearns_sample():
    frame = customers(n=180)
    points = prepared(frame)
    labels = direct_kprototypes(frame).labels_
    scores = score_segmentation(
        points, labels, silhouette_max_rows=60, seed=7, categorical=(2,), cost=1.5
    )
    # the ranges are the whole table's; sklearn samples the same rows for the same seed
    expected = silhouette_score(
        gower_matrix(frame), labels, metric="precomputed", sample_size=60, random_state=7
    )
    assert scores.values["silhouette"] == pytest.approx(expected, abs=1e-12)
    assert scores.notes["silhouette_mode"].startswith("sampled: 60 of 180")
    assert scores.values["inertia"] == 1.5
    assert set(scores.undefined) == {"calinski_harabasz", "davies_bouldin"}


def test_one_segment_leaves_the_gower_silhouette_undefined():
    points = prepared(customers(n=30))
    scores = score_segmentation(points, np.zeros(30, dtype=int), categorical=(2,), cost=2.0)
    assert "silhouette" not in scores.values
    assert "only one segment" in scores.undefined["silhouette"]
    assert scores.values["inertia"] == 2.0


def test_kprototypes_on_numbers_only_is_kmeans_and_says_so(make_config, store):
    cfg = make_config([f"mlflow.tracking_uri={store}", "algo=kprototypes", "k=3"])
    outcome = run_job(cfg)
    assert outcome.status == "finished", outcome.message
    run = MlflowClient(tracking_uri=store).get_run(outcome.run_id)
    assert "k-means ran on the numeric columns" in run.data.tags["segexp.warnings"]
    assert "segexp.silhouette_space" not in run.data.tags  # Euclidean, as for k-means
    assert "calinski_harabasz" in run.data.metrics
    folder = download_artifacts(run_id=outcome.run_id, artifact_path="", tracking_uri=store)
    pipeline = storage.load(f"{folder}/model/pipeline.skops")
    assigned = pd.read_csv(f"{folder}/assignments.csv")
    columns = run.data.params["feature_columns"].split(",")
    scaled = StandardScaler().fit_transform(assigned[columns].to_numpy(dtype=float))
    kmeans = KMeans(n_clusters=3, n_init=5, max_iter=100, random_state=SEED).fit(scaled)
    np.testing.assert_array_equal(assigned["segment"].to_numpy(), kmeans.labels_)
    assert run.data.metrics["inertia"] == pytest.approx(kmeans.inertia_, rel=1e-9)
    assert pipeline[-1].mode_ == "kmeans"


def test_a_bad_kprototypes_hyperparameter_names_its_key(make_config):
    with pytest.raises(ConfigError) as error:
        check_job_config(make_config(["algo=kprototypes", "algo.n_init=0"]))
    assert "algo.n_init" in str(error.value)
    assert "[1, inf)" in str(error.value)


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("algo.init=best", ["algo.init: must be a str among", "'Huang'", "got 'best'"]),
        (
            "algo.gamma=-1.0",
            ["algo.gamma: must be a float in the range [0.0, inf) or None", "-1.0"],
        ),
        ("algo.max_iter=0", ["algo.max_iter: must be an int in the range [1, inf); got 0"]),
        ("algo.random_state=-3", ["algo.random_state: must be an int in the range [0,", "-3"]),
        ("algo.n_clusters=0", ["algo.n_clusters: must be an int in the range [1, inf); got 0"]),
    ],
)
def test_kprototypes_parameters_are_refused_in_scikit_learns_words(
    make_config, override, fragments
):
    """segexp checks these itself (scikit-learn's checker is private), in scikit-learn's words."""
    with pytest.raises(ConfigError) as error:
        check_job_config(make_config(["algo=kprototypes", override]))
    for fragment in fragments:
        assert fragment in str(error.value)


def test_kprototypes_refuses_repeated_or_negative_category_positions():
    for positions in [(1, 1), (-1,)]:
        with pytest.raises(ValueError, match=r"'categorical' parameter .* distinct column"):
            KPrototypesClusterer(n_clusters=2, categorical=positions).fit(np.zeros((4, 2)))


@pytest.mark.slow
def test_kprototypes_cli_run_promote_predict(tmp_path, store, table_csv):
    tracking = f"mlflow.tracking_uri={store}"
    ran = run_cli(
        [
            "algo=kprototypes",
            "features.columns=[gender,age,annual_income]",
            f"data.path={table_csv}",
            f"k={K}",
            tracking,
        ],
        tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs(client.get_experiment_by_name("segexp-customers").experiment_id)
    assert run.info.status == "FINISHED" and run.data.tags["segexp.silhouette_space"] == "gower"

    promoted = run_cli([f"run_id={run.info.run_id}", tracking], tmp_path, module="segexp.promote")
    assert promoted.returncode == 0, promoted.stderr

    # the training customers with a header variant, plus new ones (one of an unseen gender)
    new = pd.DataFrame(
        {
            "customer_id": ["N1", "N2", "N3"],
            "Gender": ["Female", "Male", "Other"],
            "age": [24, 58, 31],
            "annual_income": [28.0, 36.0, 92.0],
        }
    )
    frame = customers()
    incoming = pd.concat([frame.rename(columns={"gender": "Gender"}), new], ignore_index=True)
    incoming.to_csv(tmp_path / "new.csv", index=False)
    scored = run_cli(
        ["input=new.csv", "output=scored.csv", tracking], tmp_path, module="segexp.predict"
    )
    assert scored.returncode == 0, scored.stderr
    out = pd.read_csv(tmp_path / "scored.csv")
    assert len(out) == len(incoming) and out["segment_name"].notna().all()
    direct = direct_kprototypes(frame)
    np.testing.assert_array_equal(out["segment"].to_numpy()[: len(frame)], direct.labels_)
    # new customers: kmodes' own predict on them, prepared with the training's scaling
    scaler = StandardScaler().fit(frame[NUMERIC].to_numpy(dtype=float))
    codes = new["Gender"].map({"Female": 0.0, "Male": 1.0}).fillna(-1.0).to_numpy()
    points = np.column_stack([scaler.transform(new[NUMERIC].to_numpy(dtype=float)), codes])
    np.testing.assert_array_equal(
        out["segment"].to_numpy()[len(frame) :], direct.predict(points, categorical=[2])
    )


def test_kprototypes_imputes_categories_and_its_assigner_round_trips(make_config, tmp_path):
    from segexp.data import load_customers
    from segexp.model.assign import SegmentAssigner
    from segexp.model.pipeline import fit_configured

    frame = customers(n=120)
    frame.loc[[3, 40], "gender"] = np.nan
    frame.loc[[7], "age"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    cfg = make_config(
        [
            f"data.path={path}",
            "algo=kprototypes",
            "k=3",
            "features.columns=[gender,age,annual_income]",
            "preprocess.impute=most_frequent",
            "algo.init=Cao",
        ]
    )
    table = load_customers(cfg.data)
    fitted = fit_configured(table.frame, cfg, table)
    assert fitted.categorical_positions == (2,)
    # gender reaches the clusterer as one code column (not one-hot): 0/1, imputed
    assert set(np.unique(fitted.transformed[:, 2])) == {0.0, 1.0}
    training = table.frame.iloc[fitted.kept_rows].assign(segment=fitted.labels)
    meta = {"input_columns": ["gender", "age", "annual_income"], "numeric_columns": NUMERIC}
    assigner = SegmentAssigner.from_run(fitted.pipeline, meta, training, impute="most_frequent")
    again = storage.load(storage.save(assigner, tmp_path / "assigner.skops"))
    np.testing.assert_array_equal(again.assign(training)["segment"].to_numpy(), fitted.labels)
