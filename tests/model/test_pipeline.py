"""Cleaning inside the fitted pipeline: imputation, outliers, log transform, encoding, warnings."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, mall_data_cfg
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.metrics.pairwise import nan_euclidean_distances
from sklearn.preprocessing import MinMaxScaler

from segexp.data import load_customers, validate_feature_table
from segexp.errors import ConfigError, DataError
from segexp.model.pipeline import PreprocessOptions, fit_segmentation

NUMERIC = ["age", "annual_income", "spending_score"]
FEATURES = [*NUMERIC, "gender"]
STANDARD = OmegaConf.create({"_target_": "sklearn.preprocessing.StandardScaler"})
MINMAX = OmegaConf.create({"_target_": "sklearn.preprocessing.MinMaxScaler"})
ROBUST = OmegaConf.create({"_target_": "sklearn.preprocessing.RobustScaler"})
IDENTITY = OmegaConf.create({"_target_": "sklearn.preprocessing.FunctionTransformer"})
KMEANS = OmegaConf.create(
    {"_target_": "sklearn.cluster.KMeans", "n_clusters": 5, "n_init": 4, "random_state": 42}
)
# (column, row positions) blanked in the copy of the Kaggle file
BLANKS = {"age": [4, 50, 120], "annual_income": [10, 50], "gender": [7]}


@pytest.fixture(scope="module")
def mall(mall_csv):
    return load_customers(mall_data_cfg(path=str(mall_csv)))


@pytest.fixture(scope="module")
def blanked(mall_csv, tmp_path_factory):
    """The Kaggle file with some cells blanked, loaded like a user's file."""
    raw = pd.read_csv(mall_csv, dtype=str)
    canonical = ["customer_id", "gender", "age", "annual_income", "spending_score"]
    for column, rows in BLANKS.items():
        raw.iloc[rows, canonical.index(column)] = ""
    path = tmp_path_factory.mktemp("blanked") / "blanked.csv"
    raw.to_csv(path, index=False)
    return load_customers(mall_data_cfg(path=str(path)))


def fit(frame, columns, preprocess, scaler=STANDARD, categorical=("gender",)):
    return fit_segmentation(frame, columns, list(categorical), preprocess, scaler, KMEANS)


def knn_expected_age(train: pd.DataFrame, customer: pd.DataFrame, k: int = 5) -> float:
    """Mean age of the k nearest donors, distances on standardized columns (nan-euclidean)."""
    values = train[NUMERIC].to_numpy(dtype=float)
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    donors = ~np.isnan(values[:, 0])
    point = (customer[NUMERIC].to_numpy(dtype=float) - mean) / std
    distances = nan_euclidean_distances(point, (values[donors] - mean) / std)[0]
    nearest = np.argsort(distances, kind="stable")[:k]
    return float(values[donors][nearest, 0].mean())


def expected_age(impute: str, train: pd.DataFrame, customer: pd.DataFrame) -> float:
    ages = train["age"]
    return {
        "median": lambda: float(ages.median()),
        "mean": lambda: float(ages.mean()),
        "most_frequent": lambda: float(ages.mode().min()),
        "knn": lambda: knn_expected_age(train, customer),
    }[impute]()


def test_blanked_copy_fails_by_default(blanked):
    with pytest.raises(DataError) as info:
        validate_feature_table(blanked, FEATURES, impute="none", config_key="features.columns")
    for fragment in ["'age' (3 missing", "'annual_income' (2 missing", "'gender' (1 missing"]:
        assert fragment in str(info.value)


def test_impute_drop_counts_the_rows_it_leaves_out(blanked):
    validate_feature_table(blanked, FEATURES, impute="drop", config_key="features.columns")
    fitted = fit(blanked.frame, FEATURES, {"impute": "drop"})
    complete = blanked.frame[FEATURES].notna().all(axis=1).to_numpy()
    assert fitted.dropped_rows == int((~complete).sum()) == 5
    np.testing.assert_array_equal(fitted.kept_rows, np.flatnonzero(complete))
    assert len(fitted.labels) == len(fitted.features) == 195


@pytest.mark.parametrize("impute", ["median", "mean", "most_frequent", "knn"])
def test_blanked_copy_runs_and_fills_with_each_impute_option(blanked, impute):
    frame = blanked.frame
    validate_feature_table(blanked, FEATURES, impute=impute, config_key="features.columns")
    fitted = fit(frame, FEATURES, {"impute": impute}, scaler=IDENTITY)
    assert fitted.dropped_rows == 0 and len(fitted.labels) == len(frame)
    assert np.isfinite(fitted.transformed).all()
    # identity scaler: the clusterer saw the prepared columns (numeric, then gender_Male)
    for row in BLANKS["age"]:
        if impute == "knn":  # the row itself is no donor: its age is missing
            expected = knn_expected_age(frame, frame.iloc[[row]])
            assert fitted.transformed[row, 0] == pytest.approx(expected)
        else:
            assert fitted.transformed[row, 0] == pytest.approx(expected_age(impute, frame, None))
    majority_is_male = frame["gender"].value_counts().idxmax() == "Male"
    assert fitted.transformed[BLANKS["gender"][0], 3] == float(majority_is_male)


@pytest.mark.parametrize("impute", ["median", "mean", "most_frequent", "knn"])
def test_fitted_pipeline_imputes_a_new_customer_the_same_way(blanked, impute):
    fitted = fit(blanked.frame, FEATURES, {"impute": impute})
    new = pd.DataFrame(
        {
            "customer_id": ["9999"],
            "gender": [np.nan],
            "age": [np.nan],
            "annual_income": [70.3],
            "spending_score": [60.7],
        }
    )
    filled = new.assign(
        age=expected_age(impute, blanked.frame, new),
        gender=blanked.frame["gender"].value_counts().idxmax(),
    )
    prepare = fitted.pipeline["prepare"]
    np.testing.assert_allclose(prepare.transform(new), prepare.transform(filled))
    assert fitted.pipeline.predict(new)[0] == fitted.pipeline.predict(filled)[0]
    buffer = io.BytesIO()
    joblib.dump(fitted.pipeline, buffer)
    buffer.seek(0)
    assert joblib.load(buffer).predict(new)[0] == fitted.pipeline.predict(new)[0]


def test_refitting_a_clone_reproduces_the_labels(blanked):
    preprocess = {"impute": "knn", "outliers": "clip", "log1p": ["annual_income"]}
    fitted = fit(blanked.frame, FEATURES, preprocess)
    np.testing.assert_array_equal(clone(fitted.pipeline).fit_predict(blanked.frame), fitted.labels)


def tukey(values: np.ndarray, factor: float = 1.5) -> tuple[float, float]:
    q1, q3 = np.percentile(values, [25, 75])
    return q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)


def test_iqr_clipping_learns_tukey_fences_and_clips_new_customers(mall):
    columns = ["annual_income", "spending_score"]
    fitted = fit(mall.frame, columns, {"outliers": "clip"}, scaler=IDENTITY, categorical=())
    income = mall.frame["annual_income"].to_numpy(dtype=float)
    low, high = tukey(income)
    np.testing.assert_allclose(fitted.transformed[:, 0], np.clip(income, low, high))
    outside = sum(
        (
            (mall.frame[c] < tukey(mall.frame[c])[0]) | (mall.frame[c] > tukey(mall.frame[c])[1])
        ).sum()
        for c in columns
    )
    assert fitted.notes["outlier_cells_clipped"] == outside == 2
    new = pd.DataFrame({"annual_income": [1000.0], "spending_score": [50.0]})
    assert fitted.pipeline["prepare"].transform(new)[0, 0] == pytest.approx(high)


def test_winsorizing_clips_to_the_configured_quantiles(mall):
    preprocess = {"outliers": "winsorize", "winsor_limits": [0.1, 0.9]}
    fitted = fit(mall.frame, ["age", "spending_score"], preprocess, IDENTITY, categorical=())
    age = mall.frame["age"].to_numpy(dtype=float)
    np.testing.assert_allclose(
        fitted.transformed[:, 0], np.clip(age, *np.quantile(age, [0.1, 0.9]))
    )


def test_log1p_comes_before_clipping(mall):
    preprocess = {"log1p": ["annual_income"], "outliers": "clip", "iqr_factor": 1.0}
    fitted = fit(mall.frame, ["annual_income", "spending_score"], preprocess, IDENTITY, ())
    logged = np.log1p(mall.frame["annual_income"].to_numpy(dtype=float))
    np.testing.assert_allclose(fitted.transformed[:, 0], np.clip(logged, *tukey(logged, 1.0)))
    spending = mall.frame["spending_score"].to_numpy(dtype=float)
    np.testing.assert_allclose(fitted.transformed[:, 1], np.clip(spending, *tukey(spending, 1.0)))


def test_log1p_refuses_negative_values_and_unknown_columns(mall):
    frame = mall.frame.assign(annual_income=mall.frame["annual_income"] - 50)
    with pytest.raises(DataError, match="column 'annual_income' has .* negative values"):
        fit(frame, ["annual_income", "age"], {"log1p": ["annual_income"]}, categorical=())
    with pytest.raises(ConfigError, match="did you mean 'annual_income'"):
        fit(mall.frame, ["annual_income", "age"], {"log1p": ["anual_income"]}, categorical=())


def test_gender_is_one_hot_encoded_as_one_binary_column(mall):
    fitted = fit(mall.frame, FEATURES, {}, scaler=IDENTITY)
    names = list(fitted.pipeline["prepare"].get_feature_names_out())
    assert names == [*NUMERIC, "gender_Male"]
    np.testing.assert_array_equal(fitted.transformed[:, 3], mall.frame["gender"] == "Male")
    other = mall.frame.head(2).assign(gender=["Other", "Male"])  # unseen level: all zeros
    with pytest.warns(UserWarning, match="unknown categories"):
        encoded = fitted.pipeline["prepare"].transform(other)
        assert len(fitted.pipeline.predict(other)) == 2
    np.testing.assert_array_equal(encoded[:, 3], [0.0, 1.0])


def test_standardized_gender_dummy_is_warned_about(mall):
    fitted = fit(mall.frame, FEATURES, {})
    assert len(fitted.warnings) == 1
    warning = fitted.warnings[0]
    for fragment in [
        "encoded binary column 'gender_Male' (from 'gender')",
        "dominates distances after scaling",
        "25% of the variance the clusterer sees (equal share 25%)",
        "pure in it",
        "drop 'gender' from features.columns",
    ]:
        assert fragment in warning
    assert "\n" not in warning


def test_min_max_scaled_gender_dummy_share_matches_a_hand_computation(mall):
    fitted = fit(mall.frame, FEATURES, {}, scaler=MINMAX)
    encoded = np.column_stack(
        [mall.frame[NUMERIC].to_numpy(dtype=float), mall.frame["gender"] == "Male"]
    )
    variances = MinMaxScaler().fit_transform(encoded).var(axis=0)
    share = variances[3] / variances.sum()
    assert len(fitted.warnings) == 1
    assert f"carries {share:.0%} of the variance" in fitted.warnings[0]
    assert share > 0.5


def test_no_warning_without_a_dominating_dummy(mall):
    assert fit(mall.frame, NUMERIC, {}).warnings == []
    assert fit(mall.frame, FEATURES, {}, scaler=ROBUST).warnings == []


@pytest.mark.parametrize(
    ("preprocess", "fragments"),
    [
        ({"impute": "zero"}, ["preprocess.impute", "knn", "got 'zero'"]),
        ({"outliers": "trim"}, ["preprocess.outliers", "clip, winsorize", "got 'trim'"]),
        ({"winsor_limits": [0.9, 0.1]}, ["preprocess.winsor_limits", "low < high"]),
        ({"iqr_factor": -1}, ["preprocess.iqr_factor", ">= 0"]),
        ({"knn_neighbors": 0}, ["preprocess.knn_neighbors", ">= 1"]),
    ],
)
def test_bad_preprocess_values_are_config_errors(mall, preprocess, fragments):
    with pytest.raises(ConfigError) as info:
        fit(mall.frame, NUMERIC, preprocess)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "path", sorted((CONF_DIR / "preprocess").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_preprocess_config_composes_and_is_valid(make_config, path):
    cfg = make_config([f"preprocess={path.stem}"])
    options = PreprocessOptions.from_config(cfg.preprocess)
    assert options.impute in ("none", "median")


@pytest.mark.parametrize(
    ("scaler", "param", "value", "low", "high"),
    [
        ("minmax", "feature_range", [0, 10], 0.0, 10.0),
        ("robust", "quantile_range", [10.0, 90.0], None, None),
    ],
)
def test_scaler_ranges_given_as_lists_reach_scikit_learn_as_tuples(scaler, param, value, low, high):
    """Hydra hands over lists; scikit-learn's scalers take their ranges as tuples."""
    from segexp.model.pipeline import build_scaler

    cfg = OmegaConf.load(CONF_DIR / "scaler" / f"{scaler}.yaml")
    cfg[param] = value
    built = build_scaler(cfg)
    assert built.get_params()[param] == tuple(value)
    X = np.array([[1.0, 5.0], [2.0, 7.0], [4.0, 11.0], [8.0, 3.0]])
    out = built.fit_transform(X)
    if low is not None:
        np.testing.assert_allclose(out.min(axis=0), low)
        np.testing.assert_allclose(out.max(axis=0), high)
    else:
        from sklearn.preprocessing import RobustScaler

        np.testing.assert_allclose(out, RobustScaler(quantile_range=(10.0, 90.0)).fit_transform(X))
