"""One job end to end against a real SQLite store, read back through MlflowClient."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, RUN_METRICS
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from threadpoolctl import threadpool_info

from segexp.jobs.job import run_job
from segexp.model import storage

CONF_ALGOS = sorted(p.stem for p in (CONF_DIR / "algo").glob("*.yaml"))


def _run(make_config, store, overrides):
    outcome = run_job(make_config([f"mlflow.tracking_uri={store}", *overrides]))
    return outcome, MlflowClient(tracking_uri=store)


def _all_runs(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def _artifact_frame(client, run_id, path, tmp_path) -> pd.DataFrame:
    local = client.download_artifacts(run_id, path, str(tmp_path))
    return pd.read_csv(local, dtype={"customer_id": str})


def test_mall_kmeans_raw_income_spending_matches_known_values(make_config, store, mall_csv):
    outcome, client = _run(
        make_config,
        store,
        [
            f"data.path={mall_csv}",
            "scaler=none",
            "algo=kmeans",
            "k=5",
        ],
    )
    assert outcome.status == "finished", outcome.message
    metrics = client.get_run(outcome.run_id).data.metrics
    assert round(metrics["inertia"], 4) == 44448.4554
    assert round(metrics["silhouette"], 4) == 0.5539


@pytest.mark.parametrize("algo", ["kmeans", "gmm", "agglomerative"])
def test_logged_scores_equal_scikit_learn_on_the_same_space(make_config, store, tmp_path, algo):
    outcome, client = _run(
        make_config, store, [f"algo={algo}", "k=4", "features=age_income_spending"]
    )
    assert outcome.status == "finished", outcome.message
    run = client.get_run(outcome.run_id)
    assignments = _artifact_frame(client, outcome.run_id, "assignments.csv", tmp_path)
    pipeline = storage.load(
        client.download_artifacts(outcome.run_id, "model/pipeline.skops", str(tmp_path))
    )
    columns = ["age", "annual_income", "spending_score"]
    points = pipeline[:-1].transform(assignments[columns])
    labels = assignments["segment"].to_numpy()
    metrics = run.data.metrics
    assert metrics["silhouette"] == pytest.approx(silhouette_score(points, labels), abs=1e-9)
    assert metrics["calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(points, labels), abs=1e-9
    )
    assert metrics["davies_bouldin"] == pytest.approx(
        davies_bouldin_score(points, labels), abs=1e-9
    )
    centers = {s: points[labels == s].mean(axis=0) for s in np.unique(labels)}
    inertia = sum(((points[labels == s] - c) ** 2).sum() for s, c in centers.items())
    assert metrics["inertia"] == pytest.approx(inertia, rel=1e-12)
    if algo == "kmeans":
        assert metrics["inertia"] == pytest.approx(pipeline[-1].inertia_, rel=1e-6)
    if algo == "gmm":
        assert metrics["bic"] == pytest.approx(pipeline[-1].bic(points), rel=1e-12)
        assert metrics["aic"] == pytest.approx(pipeline[-1].aic(points), rel=1e-12)
    else:
        assert "bic" not in metrics
    sizes = pd.Series(labels).value_counts(normalize=True)
    assert metrics["min_segment_share"] == pytest.approx(sizes.min())
    assert metrics["max_segment_share"] == pytest.approx(sizes.max())
    assert metrics["n_clusters"] == 4


def test_run_holds_params_tags_and_artifacts(make_config, store):
    outcome, client = _run(make_config, store, ["algo=gmm", "k=3", "algo.covariance_type=diag"])
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gmm-k3-standard-income_spending"
    params = run.data.params
    assert params["algo"] == "gmm" and params["k"] == "3" and params["scaler"] == "standard"
    assert params["features"] == "income_spending" and params["seed"] == "42"
    assert params["algo.covariance_type"] == "diag" and params["algo.n_components"] == "3"
    tags = run.data.tags
    assert len(tags["segexp.data_fingerprint"]) == 16
    assert tags["segexp.code_version"].startswith("0.1.0+")
    assert tags["segexp.kind"] == "job"
    for name in (*RUN_METRICS, "bic", "aic"):
        assert name in run.data.metrics, name
    paths = set()
    for top in client.list_artifacts(outcome.run_id):
        if top.is_dir:
            paths.update(f.path for f in client.list_artifacts(outcome.run_id, top.path))
        else:
            paths.add(top.path)
    assert {
        "config.yaml",
        "assignments.csv",
        "profile.csv",
        "model/pipeline.skops",
        "model/meta.json",
        "model/input_example.csv",
        "plots/segments.png",
        "plots/silhouette.png",
        "plots/profile_heatmap.png",
        "plots/snake.png",
    } <= paths


def test_one_segment_leaves_pairwise_scores_absent_with_a_reason(make_config, store):
    outcome, client = _run(make_config, store, ["algo=dbscan", "algo.eps=50"])
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["n_clusters"] == 1
    for name in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        assert name not in metrics
        assert "only one segment" in tags[f"segexp.undefined.{name}"]
    assert "inertia" in metrics


def test_all_noise_leaves_every_segment_score_absent(make_config, store):
    outcome, client = _run(make_config, store, ["algo=dbscan", "algo.eps=0.0001"])
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["n_clusters"] == 0 and metrics["noise_fraction"] == 1.0
    for name in ("silhouette", "inertia", "min_segment_share"):
        assert name not in metrics
        assert "noise" in tags[f"segexp.undefined.{name}"]


def test_failing_algorithm_ends_its_run_failed_with_the_error(make_config, store):
    # Valid parameters (scikit-learn's checks pass before the run) that fail on the data:
    # one initial centre for k=5 segments.
    outcome, client = _run(make_config, store, ["+algo.init=[[0.0,0.0]]"])
    assert outcome.status == "failed"
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FAILED"
    assert "initial centers" in run.data.tags["segexp.error"]
    assert "algo.init" in run.data.params


def test_invalid_hyperparameter_is_refused_before_any_run(make_config, store):
    outcome, client = _run(make_config, store, ["algo.n_init=-3"])
    assert outcome.status == "invalid"
    assert outcome.message.startswith("algo.n_init: must be")
    assert "got -3 (scikit-learn's KMeans)" in outcome.message
    assert _all_runs(client) == []


def test_quadratic_algorithm_refuses_above_the_limit(make_config, store):
    outcome, client = _run(
        make_config, store, ["algo=agglomerative", "limits.max_rows_quadratic=100"]
    )
    assert outcome.status == "invalid"
    assert "limits.max_rows_quadratic=100" in outcome.message
    assert "algo=kmeans" in outcome.message
    assert _all_runs(client) == []


def test_silhouette_switches_to_a_seeded_sample_above_the_limit(make_config, store):
    outcome, client = _run(make_config, store, ["metrics.silhouette_max_rows=120"])
    run = client.get_run(outcome.run_id)
    assert run.data.tags["segexp.silhouette_mode"].startswith("sampled: 120 of 200")
    again, _ = _run(make_config, store, ["metrics.silhouette_max_rows=120"])
    assert client.get_run(again.run_id).data.metrics["silhouette"] == run.data.metrics["silhouette"]


def test_fewer_customers_than_k_is_invalid_and_creates_no_run(make_config, store):
    outcome, client = _run(make_config, store, ["data.sample.n_customers=8", "k=9"])
    assert outcome.status == "invalid"
    assert "fewer than k=9" in outcome.message
    assert _all_runs(client) == []


@pytest.mark.parametrize("algo", CONF_ALGOS)
def test_every_algorithm_config_builds_and_runs(make_config, store, algo):
    cfg = make_config([f"mlflow.tracking_uri={store}", f"algo={algo}", "k=4"])
    estimator = instantiate(cfg.algo)
    assert hasattr(estimator, "fit_predict")
    outcome = run_job(cfg)
    assert outcome.status == "finished", outcome.message
    run = MlflowClient(tracking_uri=store).get_run(outcome.run_id)
    assert run.data.params["algo"] == algo
    assert run.data.metrics["n_clusters"] >= 1


class ThreadRecordingKMeans(KMeans):
    """KMeans that notes the BLAS/OpenMP thread counts each fit ran under (and its rows)."""

    seen: list[set[int]] = []
    rows: list[int] = []

    def fit(self, X, y=None, sample_weight=None):
        if len(X):  # not segexp's parameter check (a fit on an empty array)
            ThreadRecordingKMeans.seen.append({p["num_threads"] for p in threadpool_info()})
            ThreadRecordingKMeans.rows.append(len(X))
        return super().fit(X, y, sample_weight)


@pytest.mark.parametrize("limit,expected", [("1", {1}), ("2", {2})])
def test_fits_run_under_the_configured_thread_limit(make_config, store, limit, expected):
    ThreadRecordingKMeans.seen.clear()
    outcome, _ = _run(
        make_config,
        store,
        [
            "algo=kmeans",
            "k=3",
            f"algo._target_={__name__}.ThreadRecordingKMeans",
            f"limits.threads={limit}",
            "evaluation.stability.n_resamples=0",
        ],
    )
    assert outcome.status == "finished", outcome.message
    assert ThreadRecordingKMeans.seen and all(s == expected for s in ThreadRecordingKMeans.seen)


def test_each_fit_gets_threads_for_its_own_size(make_config, store):
    """The job's fit (200 customers) is above single_thread_below_rows=170, its stability
    refits (160 each) below it: the job gets every usable core, each refit one thread."""
    ThreadRecordingKMeans.seen.clear()
    ThreadRecordingKMeans.rows.clear()
    outcome, client = _run(
        make_config,
        store,
        [
            "algo=kmeans",
            "k=3",
            f"algo._target_={__name__}.ThreadRecordingKMeans",
            "limits.single_thread_below_rows=170",
            "evaluation.stability.n_resamples=3",
        ],
    )
    assert outcome.status == "finished", outcome.message
    cores = len(os.sched_getaffinity(0))
    assert ThreadRecordingKMeans.rows == [200, 160, 160, 160]
    assert ThreadRecordingKMeans.seen == [{cores}, {1}, {1}, {1}]
    (run,) = _all_runs(client)
    assert run.data.tags["segexp.fit_threads"] == str(cores)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        (
            ["scaler=minmax", "features=age_income_spending", "algo=gmm"],
            "gmm-k5-minmax-age_income_spending",
        ),
        (["features=all_numeric", "algo=kmeans", "k=3"], "kmeans-k3-standard-all_numeric"),
        (
            ["features.columns=[age,spending_score]", "scaler=robust"],
            "kmeans-k5-robust-age_spending",
        ),
        (["features.columns=[age,annual_income]"], "kmeans-k5-standard-custom"),
    ],
)
def test_a_config_composed_without_hydra_runtime_names_its_options(overrides, name):
    """compose() without the hydra node (a notebook) names runs as the command line does."""
    from hydra import compose, initialize_config_module

    from segexp.model.spec import describe_job

    with initialize_config_module("segexp.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    assert "hydra" not in cfg
    assert describe_job(cfg).run_name == name


def test_the_objective_a_sweeper_gets_is_the_runs_configured_metric(make_config, store):
    from segexp.jobs.task import objective

    cfg = make_config([f"mlflow.tracking_uri={store}", "objective.metric=davies_bouldin"])
    outcome = run_job(cfg)
    logged = MlflowClient(tracking_uri=store).get_run(outcome.run_id).data.metrics
    assert objective(cfg, outcome) == logged["davies_bouldin"]
    one = make_config([f"mlflow.tracking_uri={store}", "algo=dbscan", "algo.eps=50"])
    single = run_job(one)  # one segment: silhouette undefined, so the trial ranks last
    assert "silhouette" not in single.metrics
    assert objective(one, single) == float("-inf")
    assert objective(one, single, direction="minimize") == float("inf")
