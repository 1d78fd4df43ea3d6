"""Per-run evaluation: reference space, stability, ground truth, DBSCAN eps evidence.

Numbers are checked against scikit-learn's own functions on the same data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from kneed import KneeLocator
from sklearn.base import clone
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from segexp.data import load_customers
from segexp.data.load import CustomerTable, fingerprint_frame
from segexp.errors import ConfigError, DataError, usage_error_line
from segexp.insight.plots import save_k_distance_plot
from segexp.model.evaluation import (
    K_DISTANCE_FIGURE,
    evaluate_run,
    evaluation_settings,
    reference_columns,
    reference_space,
    resample_positions,
    resample_stability,
)
from segexp.model.metrics import score_fitted
from segexp.model.pipeline import fit_configured, fit_segmentation

NUMERIC = ["age", "annual_income", "spending_score"]


def fit(cfg, table=None):
    table = table or load_customers(cfg.data)
    fitted = fit_configured(table.frame, cfg)
    return table, fitted


def no_stability(overrides=()):
    return [*overrides, "evaluation.stability.n_resamples=0"]


def table_of(frame: pd.DataFrame, label_column=None) -> CustomerTable:
    return CustomerTable(frame, "test table", fingerprint_frame(frame), None, label_column)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tables fit faster on one BLAS/OpenMP thread, as the runner fits them."""
    with threadpool_limits(limits=1):
        yield


# ------------------------------------------------------------------ reference space


def test_same_segments_under_different_scalers_get_the_same_ref_silhouette(make_config):
    results, labels, own = {}, {}, {}
    for scaler in ("standard", "minmax"):
        cfg = make_config(no_stability([f"scaler={scaler}", "k=5"]))
        table, fitted = fit(cfg)
        results[scaler] = evaluate_run(table, fitted, cfg)
        labels[scaler] = fitted.labels
        own[scaler] = silhouette_score(fitted.transformed, fitted.labels)
    # precondition: the two scalers produced the same segments, scored in different spaces
    assert adjusted_rand_score(labels["standard"], labels["minmax"]) == 1.0
    assert own["standard"] != pytest.approx(own["minmax"], abs=1e-3)
    for name in ("ref_silhouette", "ref_calinski_harabasz", "ref_davies_bouldin"):
        assert results["standard"].values[name] == pytest.approx(results["minmax"].values[name])
    # and the value is scikit-learn's silhouette in the standardized numeric columns
    frame = table.frame[NUMERIC].to_numpy(float)
    space = (frame - frame.mean(axis=0)) / frame.std(axis=0)
    assert results["minmax"].values["ref_silhouette"] == pytest.approx(
        silhouette_score(space, labels["minmax"])
    )
    assert results["minmax"].values["ref_calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(space, labels["minmax"])
    )
    assert results["minmax"].values["ref_davies_bouldin"] == pytest.approx(
        davies_bouldin_score(space, labels["minmax"])
    )
    assert results["minmax"].notes["reference_columns"] == ",".join(NUMERIC)


def test_the_fit_scores_are_reused_only_where_the_reference_space_is_the_same(make_config):
    cfg = make_config(no_stability(["scaler=standard", "k=5", "features=all_numeric"]))
    table, fitted = fit(cfg)
    fit_scores = score_fitted(fitted)
    space = table.frame[NUMERIC].to_numpy(float)
    space = (space - space.mean(axis=0)) / space.std(axis=0)
    assert np.allclose(fitted.transformed, space)  # precondition: the same space
    reused = evaluate_run(table, fitted, cfg, fit_scores=fit_scores)
    assert reused.values["ref_silhouette"] == fit_scores.values["silhouette"]
    assert reused.values["ref_silhouette"] == pytest.approx(silhouette_score(space, fitted.labels))
    assert reused.values == evaluate_run(table, fitted, cfg).values
    # another space (min-max): the reference scores are computed, not the fit's reused
    cfg = make_config(no_stability(["scaler=minmax", "k=5", "features=all_numeric"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg, fit_scores=score_fitted(fitted))
    assert result.values["ref_silhouette"] == pytest.approx(silhouette_score(space, fitted.labels))
    assert result.values["ref_silhouette"] != pytest.approx(
        silhouette_score(fitted.transformed, fitted.labels)
    )


def test_reference_columns_are_the_eligible_declared_numeric_ones():
    frame = pd.DataFrame(
        {
            "customer_id": ["1", "2", "3", "4"],
            "age": [20, 30, 40, 50],
            "constant": [1.0, 1.0, 1.0, 1.0],
            "city": ["a", "b", "a", "b"],
            "income": [10.0, np.nan, 30.0, 50.0],
        }
    )
    table = CustomerTable(frame, "t", "f", "customer_id", None)
    declared = ["customer_id", "age", "constant", "city", "income", "not_there"]
    assert reference_columns(table, declared) == ["age", "income"]
    space, columns = reference_space(table, declared)
    income = np.array([10.0, 30.0, 50.0])
    assert space[:, 1][[0, 2, 3]] == pytest.approx((income - income.mean()) / income.std())
    assert np.isnan(space[1, 1])


def test_reference_space_excludes_noise_and_missing_rows(make_config):
    cfg = make_config(no_stability(["algo=dbscan", "algo.eps=0.25"]))
    table, fitted = fit(cfg)
    assert (fitted.labels == -1).any()
    result = evaluate_run(table, fitted, cfg)
    values = table.frame[NUMERIC].to_numpy(float)
    space = (values - values.mean(axis=0)) / values.std(axis=0)
    clustered = fitted.labels != -1
    assert result.values["ref_silhouette"] == pytest.approx(
        silhouette_score(space[clustered], fitted.labels[clustered])
    )


def test_reference_metrics_undefined_without_eligible_columns(make_config):
    cfg = make_config(no_stability(["data.numeric=[]"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    for name in ("ref_silhouette", "ref_calinski_harabasz", "ref_davies_bouldin"):
        assert name not in result.values
        assert "no clustering-eligible numeric column" in result.undefined[name]


def test_one_segment_leaves_reference_scores_undefined_not_zero(make_config):
    cfg = make_config(no_stability(["algo=dbscan", "algo.eps=50"]))
    table, fitted = fit(cfg)
    assert set(fitted.labels) == {0}
    result = evaluate_run(table, fitted, cfg)
    assert "ref_silhouette" not in result.values
    assert "only one segment" in result.undefined["ref_silhouette"]


def test_reference_space_can_be_turned_off(make_config):
    cfg = make_config(no_stability(["evaluation.reference_space=false"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    assert not any(name.startswith("ref_") for name in [*result.values, *result.undefined])


# ------------------------------------------------------------------------ stability


def test_stability_is_high_on_the_sample_at_its_true_k(make_config):
    cfg = make_config(["k=5"])
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    assert result.values["stability"] > 0.9
    assert "subsample, 6 resamples of 0.8 of the customers" in result.notes["stability_method"]


def test_stability_is_low_on_uniform_random_customers_at_k5(make_config):
    # 200 customers, 8 numeric attributes drawn uniformly: no segments to find.
    rng = np.random.default_rng(0)
    columns = [f"attr{i}" for i in range(8)]
    frame = pd.DataFrame(rng.uniform(0, 100, size=(200, 8)), columns=columns)
    cfg = make_config(["k=5"])
    fitted = fit_segmentation(frame, columns, [], cfg.preprocess, cfg.scaler, cfg.algo)
    defaults = evaluation_settings(cfg)
    value, reason, _ = resample_stability(
        fitted, n_resamples=defaults.n_resamples, fraction=defaults.fraction, seed=42
    )
    assert reason == ""
    assert value < 0.5


def test_stability_is_the_mean_pairwise_ari_on_shared_customers(make_config):
    cfg = make_config(["k=4"])
    table, fitted = fit(cfg)
    value, _, _ = resample_stability(fitted, n_resamples=4, fraction=0.7, seed=11)
    # the same computation spelled out with scikit-learn
    draws = resample_positions(len(fitted.features), 4, "subsample", 0.7, 11)
    fits = []
    for rows in draws:
        labels = clone(fitted.pipeline).fit_predict(fitted.features.iloc[rows])
        fits.append(dict(zip(rows.tolist(), labels.tolist(), strict=True)))
    expected = []
    for first, second in itertools.combinations(fits, 2):
        shared = sorted(set(first) & set(second))
        expected.append(
            adjusted_rand_score([first[c] for c in shared], [second[c] for c in shared])
        )
    assert value == pytest.approx(np.mean(expected))
    assert len({len(rows) for rows in draws}) == 1 and len(draws[0]) == 140


def test_bootstrap_stability_is_seeded(make_config):
    cfg = make_config(["k=4"])
    _, fitted = fit(cfg)
    first = resample_stability(fitted, n_resamples=4, method="bootstrap", seed=3)[0]
    again = resample_stability(fitted, n_resamples=4, method="bootstrap", seed=3)[0]
    assert first == again
    assert 0 < first <= 1
    draws = resample_positions(200, 2, "bootstrap", 0.8, 3)
    assert all(len(d) == 200 for d in draws) and len(np.unique(draws[0])) < 200


def test_stability_undefined_when_resamples_cannot_be_fitted(make_config):
    cfg = make_config(["k=5"])
    frame = pd.DataFrame({"annual_income": np.arange(8.0), "spending_score": np.arange(8.0)})
    fitted = fit_segmentation(
        frame, ["annual_income", "spending_score"], [], cfg.preprocess, cfg.scaler, cfg.algo
    )
    value, reason, notes = resample_stability(fitted, n_resamples=3, fraction=0.4, seed=0)
    assert value is None
    assert "only 0 of 3 resample fits succeeded" in reason
    assert "n_samples=3 should be >= n_clusters=5" in reason
    assert notes["stability_failed_fits"].startswith("3 of 3")


def test_stability_max_rows_resamples_within_a_subset(make_config):
    cfg = make_config(["k=3"])
    _, fitted = fit(cfg)
    value, _, notes = resample_stability(fitted, n_resamples=3, max_rows=50, seed=1)
    assert 0 <= value <= 1
    assert "within a random 50 of 200 customers" in notes["stability_method"]


def test_stability_off_logs_nothing(make_config):
    cfg = make_config(no_stability())
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    assert "stability" not in result.values and "stability" not in result.undefined


# --------------------------------------------------------------------- ground truth


def test_ari_and_nmi_against_the_label_column(make_config):
    cfg = make_config(no_stability(["k=4"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    truth = table.frame["true_segment"]
    assert result.values["ari"] == pytest.approx(adjusted_rand_score(truth, fitted.labels))
    assert result.values["nmi"] == pytest.approx(normalized_mutual_info_score(truth, fitted.labels))
    assert result.values["ari"] < 0.9  # k=4 merges two generating segments


def test_no_label_column_configured_means_no_ari(make_config, mall_csv):
    cfg = make_config(no_stability([f"data.path={mall_csv}", "data.label_column=null"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    assert "ari" not in result.values and "ari" not in result.undefined


def test_a_file_without_a_label_column_gets_no_ari_and_no_undefined_tag(make_config, mall_csv):
    cfg = make_config(no_stability([f"data.path={mall_csv}"]))  # data.label_column: auto
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    assert table.label_column is None
    assert not {"ari", "nmi"} & (set(result.values) | set(result.undefined))


def test_a_configured_label_column_missing_from_the_file_is_a_clear_error(make_config, mall_csv):
    cfg = make_config(no_stability([f"data.path={mall_csv}", "data.label_column=true_segment"]))
    with pytest.raises(DataError) as info:
        load_customers(cfg.data)
    message = str(info.value)
    assert "\n" not in message
    assert "data.label_column names column 'true_segment'" in message
    assert "Mall_Customers.csv" in message


# ------------------------------------------------------------------------ DBSCAN eps


def test_dbscan_gets_a_k_distance_figure_and_suggested_eps(make_config, tmp_path):
    cfg = make_config(no_stability(["algo=dbscan", "algo.min_samples=6"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg)
    distances, _ = NearestNeighbors(n_neighbors=5).fit(fitted.transformed).kneighbors()
    # kneighbors() without X leaves each point out; DBSCAN counts the point itself, so its
    # min_samples=6 neighbourhood reaches the 5th other customer
    sorted_distances = np.sort(distances[:, -1])
    knee = KneeLocator(
        np.arange(len(sorted_distances)),
        sorted_distances,
        curve="convex",
        direction="increasing",
    ).knee
    assert result.values["suggested_eps"] == pytest.approx(sorted_distances[knee])
    assert K_DISTANCE_FIGURE in result.figures
    axes = result.figures[K_DISTANCE_FIGURE].axes[0]
    assert axes.lines[0].get_ydata() == pytest.approx(sorted_distances)
    path = save_k_distance_plot(tmp_path, **result.plot_inputs[K_DISTANCE_FIGURE], dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suggested_eps_gives_dbscan_segments_with_little_noise(make_config):
    cfg = make_config(no_stability(["algo=dbscan", "algo.eps=0.1"]))
    table, fitted = fit(cfg)
    assert (fitted.labels == -1).mean() > 0.5  # the configured eps is far too small
    eps = evaluate_run(table, fitted, cfg).values["suggested_eps"]
    cfg = make_config(no_stability(["algo=dbscan", f"algo.eps={eps}"]))
    table, refitted = fit(cfg)
    assert len(set(refitted.labels) - {-1}) >= 2
    assert (refitted.labels == -1).mean() < 0.1
    assert adjusted_rand_score(table.frame["true_segment"], refitted.labels) > 0.7


def test_algorithms_without_eps_get_no_k_distance(make_config):
    cfg = make_config(no_stability(["algo=kmeans"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg, figures=True)
    assert "suggested_eps" not in result.values and not result.figures


def test_figures_false_defers_drawing(make_config):
    cfg = make_config(no_stability(["algo=dbscan"]))
    table, fitted = fit(cfg)
    result = evaluate_run(table, fitted, cfg, figures=False)
    assert not result.figures
    assert result.plot_inputs[K_DISTANCE_FIGURE]["min_samples"] == 5


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        (
            "evaluation.stability.n_resamples=1",
            ["evaluation.stability.n_resamples", "0 (stability off) or an integer >= 2", "got 1"],
        ),
        (
            "evaluation.stability.method=jackknife",
            ["evaluation.stability.method", "subsample, bootstrap", "'jackknife'"],
        ),
        (
            "evaluation.stability.fraction=1.5",
            ["evaluation.stability.fraction", "(0, 1]", "1.5"],
        ),
        ("evaluation.reference_space=maybe", ["evaluation.reference_space", "true or false"]),
    ],
)
def test_bad_evaluation_settings_name_the_key(make_config, override, fragments):
    try:  # a wrong type is refused by the schema when Hydra composes the config
        cfg = make_config([override])
    except Exception as exc:
        message = usage_error_line(exc, "config", [override])
    else:
        with pytest.raises(ConfigError) as caught:
            evaluation_settings(cfg)
        message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
