"""Silhouettes on different distances are not ranked against each other.

A Spark run's silhouette (ClusteringEvaluator, squared Euclidean distances) and a
k-prototypes run's (Gower distances) read higher or lower than scikit-learn's
Euclidean one on the same segments; ranked together, they would win or lose for that.
"""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from segexp.tools.compare import noise_note
from segexp.tracking.leaderboard import (
    LeaderboardFilters,
    build_leaderboard,
    candidates,
    left_out_summary,
    runs_to_frame,
    select_best,
)


def _frame(spaces, silhouettes, noise=None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(spaces))],
            "status": ["FINISHED"] * len(spaces),
            "silhouette": silhouettes,
            "davies_bouldin": [0.5 + i / 10 for i in range(len(spaces))],
            "silhouette_space": spaces,
        }
    )
    if noise is not None:
        frame["noise_fraction"] = noise
    return frame


def test_a_squared_euclidean_silhouette_is_left_out_of_a_euclidean_ranking():
    board = build_leaderboard(_frame([None, None, "squared_euclidean"], [0.6, 0.5, 0.84]))
    assert board["run_id"].tolist() == ["r0", "r1", "r2"]
    assert board["rank"].tolist()[:2] == [1, 2] and pd.isna(board["rank"].iloc[2])
    reason = board["left_out"].iloc[2]
    assert reason.startswith("its silhouette is on squared euclidean distances")
    assert "not comparable with the euclidean silhouette" in reason
    assert (
        select_best(_frame([None, None, "squared_euclidean"], [0.6, 0.5, 0.84]))["run_id"] == "r0"
    )
    assert left_out_summary(board) == f"1 run left out: {reason}"


def test_other_metrics_rank_every_run():
    board = build_leaderboard(
        _frame([None, "squared_euclidean", "gower"], [0.6, 0.84, 0.3]), "davies_bouldin"
    )
    assert board["rank"].tolist() == [1, 2, 3]
    assert set(board["left_out"]) == {""}


def test_runs_of_one_space_rank_among_themselves():
    board = build_leaderboard(_frame(["squared_euclidean"] * 2, [0.8, 0.9]))
    assert board["run_id"].tolist() == ["r1", "r0"] and board["rank"].tolist() == [1, 2]
    spaces = _frame(["gower", "gower", "squared_euclidean"], [0.3, 0.4, 0.9])
    ranked, out = candidates(build_leaderboard(spaces))  # no Euclidean run: the most common
    assert ranked["run_id"].tolist() == ["r1", "r0"] and out["run_id"].tolist() == ["r2"]


def test_each_reason_is_its_own_clause_and_the_noise_hint_follows_the_noise_rule():
    frame = _frame([None, None, "squared_euclidean"], [0.6, 0.7, 0.84], noise=[0.0, 0.4, 0.0])
    board = build_leaderboard(frame, "silhouette", LeaderboardFilters())
    ranked, out = candidates(board)
    assert ranked["run_id"].tolist() == ["r0"] and sorted(out["run_id"]) == ["r1", "r2"]
    space, noise = noise_note(board, LeaderboardFilters()).split("; 1 run left out: more")
    assert space.startswith("1 run left out: its silhouette is on squared euclidean distances")
    assert noise == (
        " than 10% of customers not assigned (filter.max_noise_fraction=0.1)"
        "; filter.max_noise_fraction=1.0 ranks them too"
    )


def test_the_space_is_read_from_the_runs_tags(store):
    client = MlflowClient(tracking_uri=store)
    experiment = client.create_experiment("spaces")
    for name, silhouette, space in (("sk", 0.6, None), ("spark", 0.84, "squared_euclidean")):
        run = client.create_run(experiment, run_name=name)
        client.log_metric(run.info.run_id, "silhouette", silhouette)
        if space:
            client.set_tag(run.info.run_id, "segexp.silhouette_space", space)
        client.set_terminated(run.info.run_id)
    frame = runs_to_frame(client.search_runs([experiment]))
    ranked, out = candidates(build_leaderboard(frame))
    assert ranked["run_name"].tolist() == ["sk"] and out["run_name"].tolist() == ["spark"]
