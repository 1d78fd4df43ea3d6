"""HDBSCAN, OPTICS and bisecting K-Means through segexp: scores as scikit-learn computes
them, noise under the leaderboard's noise rule, promotable and assigning new customers."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.cluster import HDBSCAN, BisectingKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

import segexp
from segexp.data.samples import generate_mall_sample
from segexp.tracking.leaderboard import (
    LeaderboardFilters,
    build_leaderboard,
    candidates,
    runs_to_frame,
)

FEATURES = ["annual_income", "spending_score"]


@pytest.fixture(scope="module")
def sample_space():
    frame = generate_mall_sample()
    return frame, StandardScaler().fit_transform(frame[FEATURES])


def test_hdbscan_scores_match_scikit_learn_and_noise_is_left_out_of_the_ranking(
    store, sample_space
):
    frame, space = sample_space
    dense = segexp.run(
        overrides=[f"mlflow.tracking_uri={store}", "algo=hdbscan", "plots.enabled=false"]
    )
    sparse = segexp.run(
        overrides=[
            f"mlflow.tracking_uri={store}",
            "algo=hdbscan",
            "algo.min_cluster_size=20",
            "plots.enabled=false",
        ]
    )
    expected = HDBSCAN(min_cluster_size=10, copy=True).fit_predict(space)
    np.testing.assert_array_equal(dense.labels.to_numpy(), expected)
    kept = expected != -1
    assert dense.metrics["noise_fraction"] == pytest.approx(float(np.mean(~kept)))
    assert dense.metrics["n_clusters"] == len(set(expected[kept]))
    assert dense.metrics["silhouette"] == pytest.approx(
        silhouette_score(space[kept], expected[kept]), abs=1e-9
    )
    assert sparse.metrics["noise_fraction"] > 0.1  # 25.5 % of the sample

    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_run(dense.run_id).info.experiment_id])
    ranked, out = candidates(build_leaderboard(runs_to_frame(runs), "silhouette"))
    assert ranked["run_id"].tolist() == [dense.run_id]
    assert out["run_id"].tolist() == [sparse.run_id]
    assert "not assigned" in out["left_out"].iloc[0]
    everything = build_leaderboard(
        runs_to_frame(runs), "silhouette", LeaderboardFilters(max_noise_fraction=1.0)
    )
    assert set(everything["rank"].dropna()) == {1, 2}


def test_bisecting_kmeans_labels_are_scikit_learns(store, sample_space):
    frame, space = sample_space
    result = segexp.run(
        overrides=[
            f"mlflow.tracking_uri={store}",
            "algo=bisecting_kmeans",
            "k=4",
            "plots.enabled=false",
        ]
    )
    expected = BisectingKMeans(
        n_clusters=4, n_init=3, bisecting_strategy="biggest_inertia", random_state=42
    ).fit(space)
    np.testing.assert_array_equal(result.labels.to_numpy(), expected.labels_)
    assert result.metrics["silhouette"] == pytest.approx(silhouette_score(space, expected.labels_))
    assert result.metrics["inertia"] == pytest.approx(expected.inertia_, rel=1e-9)
