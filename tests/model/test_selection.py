"""k selection: each criterion against kneed / pandas on the same numbers, the consensus
rule, and the evidence on the built-in sample and on the real Mall Customers file."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from kneed import KneeLocator
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from segexp.data import load_customers
from segexp.data.samples import generate_mall_sample
from segexp.model.metrics import mixture_criteria, score_segmentation
from segexp.model.pipeline import fit_configured
from segexp.model.selection import (
    CONSENSUS,
    consensus_k,
    gap_k,
    gap_statistic,
    k_selection_table,
    per_k_table,
    recommended_k_metrics,
    select_k,
)

K_RANGE = range(2, 11)


def sweep_rows(cfg, ks=K_RANGE) -> tuple[pd.DataFrame, dict]:
    """What a sweep over k logs for one group, computed with the runner's own pieces."""
    table = load_customers(cfg.data)
    rows, labels = [], {}
    for k in ks:
        cfg.k = k
        fitted = fit_configured(table.frame, cfg)
        scores = score_segmentation(fitted.transformed, fitted.labels)
        row = {"k": k, **scores.values}
        row.update(mixture_criteria(fitted.pipeline[-1], fitted.transformed))
        rows.append(row)
        labels[k] = (fitted, table)
    return pd.DataFrame(rows), labels


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tables fit faster on one BLAS/OpenMP thread, as the runner fits them."""
    with threadpool_limits(limits=1):
        yield


# ------------------------------------------------------------------ criteria


def test_extremum_criteria_match_pandas_on_the_same_rows():
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "k": list(K_RANGE),
            "inertia": 1000 / np.arange(2, 11) ** 1.5,
            "silhouette": rng.uniform(0.2, 0.7, 9),
            "calinski_harabasz": rng.uniform(50, 300, 9),
            "davies_bouldin": rng.uniform(0.4, 1.5, 9),
            "bic": rng.uniform(900, 1200, 9),
        }
    )
    picks = select_k(rows).recommended
    assert picks["silhouette"] == rows.loc[rows["silhouette"].idxmax(), "k"]
    assert picks["calinski_harabasz"] == rows.loc[rows["calinski_harabasz"].idxmax(), "k"]
    assert picks["davies_bouldin"] == rows.loc[rows["davies_bouldin"].idxmin(), "k"]
    assert picks["bic"] == rows.loc[rows["bic"].idxmin(), "k"]
    knee = KneeLocator(rows["k"], rows["inertia"], curve="convex", direction="decreasing").knee
    assert picks["elbow"] == knee


def test_elbow_finds_the_obvious_bend():
    rows = pd.DataFrame({"k": [2, 3, 4, 5, 6, 7, 8], "inertia": [900, 600, 300, 60, 50, 42, 36]})
    assert select_k(rows).recommended["elbow"] == 5


def test_bic_is_a_criterion_only_when_the_group_logs_it():
    rows = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.3, 0.5, 0.4]})
    selection = select_k(rows)
    assert "bic" not in selection.recommended
    assert "bic" not in selection.undefined


def test_runs_with_the_same_k_are_averaged_before_choosing():
    rows = pd.DataFrame(
        {"k": [3, 3, 4, 4], "silhouette": [0.9, 0.1, 0.45, 0.55], "seed": [1, 2, 1, 2]}
    )
    table = per_k_table(rows)
    assert table["silhouette"].tolist() == pytest.approx([0.5, 0.5])
    # equal means: the smaller k wins
    assert select_k(rows).recommended["silhouette"] == 3


def test_too_few_k_values_leave_criteria_undefined_with_reasons():
    rows = pd.DataFrame({"k": [4, 5], "inertia": [50.0, 40.0], "silhouette": [0.4, 0.5]})
    selection = select_k(rows)
    assert "elbow" not in selection.recommended
    assert "3 or more k values" in selection.undefined["elbow"]
    assert selection.recommended["silhouette"] == 5


def test_empty_group_recommends_nothing_and_says_why():
    selection = select_k(pd.DataFrame(columns=["k", "silhouette", "inertia"]))
    assert selection.recommended == {}
    assert "consensus needs 2 criteria" in selection.undefined[CONSENSUS]


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ({"elbow": 5, "silhouette": 5, "calinski_harabasz": 9, "davies_bouldin": 5}, 5),
        # tie 3 vs 5: the silhouette's pick is among the tied values
        ({"elbow": 3, "silhouette": 5, "calinski_harabasz": 3, "davies_bouldin": 5}, 5),
        # tie without the silhouette's pick: the smallest tied k
        ({"elbow": 3, "silhouette": 6, "calinski_harabasz": 3, "davies_bouldin": 4, "bic": 4}, 3),
        ({"elbow": 7, "davies_bouldin": 4}, 4),
        ({"silhouette": 4}, None),
        ({}, None),
    ],
)
def test_consensus_is_a_plurality_vote_with_documented_ties(votes, expected):
    assert consensus_k(votes) == expected


def test_consensus_ignores_an_earlier_consensus_entry():
    assert consensus_k({"silhouette": 4, CONSENSUS: 9}) is None


# ------------------------------------------------------------------ gap statistic


def test_gap_statistic_finds_the_sample_segments_and_nothing_in_noise():
    points = StandardScaler().fit_transform(
        generate_mall_sample()[["annual_income", "spending_score"]].to_numpy(float)
    )
    gaps = gap_statistic(points, range(2, 8), n_references=5, seed=0)
    assert gap_k(gaps) == (5, "")
    # the gap criterion joins the others when the gap columns are merged into the rows
    rows = pd.DataFrame({"k": range(2, 8), "silhouette": [0.1, 0.2, 0.3, 0.6, 0.5, 0.4]})
    assert select_k(rows.merge(gaps, on="k")).recommended["gap"] == 5

    uniform = np.random.default_rng(0).uniform(size=(200, 2))
    assert gap_k(gap_statistic(uniform, range(1, 5), n_references=5, seed=0))[0] == 1


def test_gap_log_wk_is_the_log_of_kmeans_inertia():
    from sklearn.cluster import KMeans

    points = np.random.default_rng(1).normal(size=(60, 2))
    gaps = gap_statistic(points, [3], n_references=2, seed=4)
    inertia = KMeans(3, n_init=10, random_state=4).fit(points).inertia_
    assert gaps.loc[0, "log_wk"] == pytest.approx(np.log(inertia), rel=1e-9)


def test_gap_rule_says_when_the_gap_keeps_rising():
    gaps = pd.DataFrame({"k": [2, 3, 4], "gap": [0.1, 0.5, 0.9], "gap_sk": [0.01, 0.01, 0.01]})
    k, reason = gap_k(gaps)
    assert k is None and "sweep larger k" in reason


# ------------------------------------------------------------------ evidence


@pytest.mark.parametrize("algo", ["kmeans", "gmm"])
def test_sample_consensus_is_the_number_of_generating_segments(make_config, algo):
    cfg = make_config([f"algo={algo}"])
    rows, fits = sweep_rows(cfg)
    picks = select_k(rows).recommended
    assert picks[CONSENSUS] == 5, picks
    # the best-ranked k of the group recovers the generating segments
    best_k = int(rows.loc[rows["silhouette"].idxmax(), "k"])
    fitted, table = fits[best_k]
    truth = table.frame["true_segment"].iloc[fitted.kept_rows]
    assert adjusted_rand_score(truth, fitted.labels) >= 0.9


@pytest.mark.parametrize("scaler", ["none", "standard"])
def test_mall_customers_income_spending_kmeans_picks_five(make_config, mall_csv, scaler):
    cfg = make_config([f"data.path={mall_csv}", f"scaler={scaler}", "algo=kmeans"])
    rows, fits = sweep_rows(cfg)
    # the silhouette each row carries is scikit-learn's on the clustered space
    fitted, _ = fits[5]
    assert rows.loc[rows["k"] == 5, "silhouette"].item() == pytest.approx(
        silhouette_score(fitted.transformed, fitted.labels)
    )
    picks = select_k(rows).recommended
    assert picks["silhouette"] == 5
    assert picks[CONSENSUS] == 5
    assert picks["elbow"] == 5


# ------------------------------------------------------------------ parent-run outputs


def test_parent_metrics_name_the_group_only_when_there_are_several():
    rows = pd.DataFrame(
        {
            "k": [2, 3, 4, 5],
            "inertia": [100.0, 40.0, 30.0, 25.0],
            "silhouette": [0.3, 0.6, 0.5, 0.4],
            "davies_bouldin": [0.9, 0.5, 0.6, 0.7],
        }
    )
    one = {("kmeans", "standard", "income_spending"): select_k(rows)}
    assert recommended_k_metrics(one) == {
        "recommended_k.elbow": 3.0,
        "recommended_k.silhouette": 3.0,
        "recommended_k.davies_bouldin": 3.0,
        "recommended_k.consensus": 3.0,
    }
    two = {**one, ("gmm", "none", "age spending"): select_k(rows.assign(bic=[5, 4, 3, 9]))}
    metrics = recommended_k_metrics(two)
    assert metrics["recommended_k.kmeans-standard-income_spending.consensus"] == 3.0
    assert metrics["recommended_k.gmm-none-age_spending.bic"] == 4.0
    assert not any(name.count(".") == 1 for name in metrics)


def test_k_selection_table_has_one_row_per_group_with_reasons():
    rows = pd.DataFrame({"k": [4, 5], "silhouette": [0.4, 0.5], "inertia": [9.0, 8.0]})
    table = k_selection_table({("kmeans", "standard", "none", "income_spending"): select_k(rows)})
    assert table.loc[0, "silhouette"] == 5
    assert pd.isna(table.loc[0, "elbow"]) and pd.isna(table.loc[0, CONSENSUS])
    assert "elbow: the elbow needs inertia at 3 or more k values" in table.loc[0, "undefined"]
    assert list(table.columns[:4]) == ["algo", "scaler", "preprocess", "features"]


def _random_convex_decreasing(rng, n):
    x = np.sort(rng.choice(np.arange(1, 30), size=n, replace=False)).astype(float)
    y = 1000.0 / (x ** rng.uniform(0.3, 2.5)) + rng.normal(0, rng.uniform(0, 8), n)
    return x, y


@pytest.mark.parametrize("seed", range(40))
def test_the_elbow_is_kneeds_knee(seed):
    """The elbow criterion is kneed's KneeLocator (convex, decreasing, its defaults)."""
    rng = np.random.default_rng(seed)
    x, y = _random_convex_decreasing(rng, int(rng.integers(3, 12)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = KneeLocator(x, y, curve="convex", direction="decreasing").knee
    got = select_k(pd.DataFrame({"k": x.astype(int), "inertia": y})).recommended.get("elbow")
    assert (got is None and expected is None) or got == pytest.approx(float(expected))


def test_select_k_leaves_out_runs_with_a_segment_under_the_minimum_share():
    rows = pd.DataFrame(
        {
            "k": [2, 3, 4],
            "silhouette": [0.99, 0.6, 0.5],
            "min_segment_share": [1 / 440, 0.3, 0.2],
        }
    )
    assert select_k(rows).recommended["silhouette"] == 3  # not the 439/1 split
    assert select_k(rows, min_segment_share=None).recommended["silhouette"] == 2
    only_small = select_k(rows.iloc[:1])
    assert only_small.undefined["silhouette"] == (
        "every run has a segment under 2% of customers (min_segment_share=0.02)"
    )
