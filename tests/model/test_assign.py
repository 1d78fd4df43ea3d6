"""SegmentAssigner and the pyfunc model: new customers, header variants, the inductive extension."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR
from omegaconf import OmegaConf
from sklearn.metrics import pairwise_distances

from segexp.data import load_customers, read_table_file
from segexp.data.features import resolve_features
from segexp.errors import DataError
from segexp.model.assign import (
    ASSIGN_BY_NEAREST_CORE,
    ASSIGN_BY_NEAREST_NEIGHBOURS,
    ASSIGN_BY_PREDICT,
    NOISE_LABEL,
    SegmentAssigner,
)
from segexp.model.pipeline import fit_segmentation
from segexp.tracking.models import pip_requirements, save_segment_model

CONF_ALGOS = sorted(p.stem for p in (CONF_DIR / "algo").glob("*.yaml"))


def fit_assigner(make_config, *overrides: str, names: dict[int, str] | None = None):
    """Fit a segmentation of the built-in sample as a run does, and wrap it."""
    cfg = make_config(["plots.enabled=false", *overrides])
    table = load_customers(cfg.data)
    listed = cfg.features.columns
    _, columns = resolve_features(
        list(listed) if OmegaConf.is_list(listed) else listed, "custom", table
    )
    categorical = table.categorical
    fitted = fit_segmentation(
        table.frame, columns, categorical, cfg.preprocess, cfg.scaler, cfg.algo
    )
    meta = {
        "input_columns": columns,
        "numeric_columns": [c for c in columns if c not in categorical],
        "algorithm": cfg.algo._target_,
    }
    training = fitted.features.assign(segment=fitted.labels)
    assigner = SegmentAssigner.from_run(
        fitted.pipeline,
        meta,
        training,
        aliases=OmegaConf.to_container(cfg.data.aliases),
        impute=cfg.preprocess.impute,
        segment_names=names,
    )
    return assigner, fitted


def kaggle_headers(frame: pd.DataFrame) -> pd.DataFrame:
    """The sample's columns named as in the Kaggle Mall Customers file, plus an extra column."""
    renamed = frame.rename(
        columns={
            "customer_id": "CustomerID",
            "gender": "Genre",
            "age": "Age",
            "annual_income": "Annual Income (k$)",
            "spending_score": "Spending Score (1-100)",
        }
    )
    return renamed.assign(store_visits=7)


@pytest.mark.parametrize("algo", CONF_ALGOS)
def test_every_algorithm_assigns_its_training_customers(make_config, algo):
    assigner, fitted = fit_assigner(make_config, f"algo={algo}")
    assigned = assigner.assign(fitted.features)["segment"].to_numpy()
    if hasattr(fitted.pipeline[-1], "predict"):
        assert assigner.method == ASSIGN_BY_PREDICT
        np.testing.assert_array_equal(assigned, fitted.labels)
        np.testing.assert_array_equal(assigned, fitted.pipeline.predict(fitted.features))
    else:
        assert assigner.method in (ASSIGN_BY_NEAREST_CORE, ASSIGN_BY_NEAREST_NEIGHBOURS)
        assert np.mean(assigned == fitted.labels) >= 0.99


def test_dbscan_extension_keeps_noise_and_follows_the_nearest_core_rule(make_config):
    assigner, fitted = fit_assigner(make_config, "algo=dbscan")
    dbscan = fitted.pipeline[-1]
    assert assigner.method == ASSIGN_BY_NEAREST_CORE
    assigned = assigner.assign(fitted.features)["segment"].to_numpy()
    cores = dbscan.core_sample_indices_
    np.testing.assert_array_equal(assigned[cores], fitted.labels[cores])
    noise = fitted.labels == NOISE_LABEL
    assert noise.any()
    assert (assigned[noise] == NOISE_LABEL).all()

    rng = np.random.default_rng(0)
    new = pd.DataFrame(
        {"annual_income": rng.uniform(10, 140, 300), "spending_score": rng.uniform(0, 100, 300)}
    )
    distances = pairwise_distances(fitted.pipeline[:-1].transform(new), dbscan.components_)
    nearest = distances.argmin(axis=1)
    expected = np.where(
        distances.min(axis=1) <= dbscan.eps, fitted.labels[cores][nearest], NOISE_LABEL
    )
    got = assigner.assign(new)["segment"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert (got == NOISE_LABEL).any() and (got != NOISE_LABEL).any()
    far = pd.DataFrame({"annual_income": [900.0], "spending_score": [900.0]})
    assert assigner.assign(far)["segment"].tolist() == [NOISE_LABEL]


def test_agglomerative_extension_assigns_segment_centres_to_their_segment(make_config):
    assigner, fitted = fit_assigner(make_config, "algo=agglomerative")
    assert assigner.method == ASSIGN_BY_NEAREST_NEIGHBOURS
    np.testing.assert_array_equal(
        assigner.assign(fitted.features)["segment"].to_numpy(), fitted.labels
    )
    centres = fitted.features.groupby(fitted.labels).median()
    np.testing.assert_array_equal(
        assigner.assign(centres.reset_index(drop=True))["segment"].to_numpy(),
        centres.index.to_numpy(),
    )


def test_header_variants_and_extra_columns_give_the_same_segments(make_config, mall_csv):
    assigner, fitted = fit_assigner(
        make_config, "features.columns=[gender,age,annual_income,spending_score]"
    )
    table = load_customers(make_config(["data.path=" + str(mall_csv)]).data)
    canonical = table.frame[["gender", "age", "annual_income", "spending_score"]]
    raw = read_table_file(mall_csv)  # Kaggle header: Genre, Annual Income (k$), text cells
    assert "Genre" in raw.columns and "Annual Income (k$)" in raw.columns
    from_file = assigner.assign(raw.assign(notes="x"))["segment"].to_numpy()
    np.testing.assert_array_equal(from_file, fitted.pipeline.predict(canonical))


def test_missing_columns_are_named_with_the_accepted_headers(make_config):
    assigner, fitted = fit_assigner(make_config)
    frame = kaggle_headers(fitted.features).drop(columns=["Spending Score (1-100)"])
    with pytest.raises(DataError) as error:
        assigner.assign(frame)
    message = str(error.value)
    assert "missing column(s) 'spending_score'" in message
    assert "'Spending Score (1-100)'" in message
    assert "received 'Annual Income (k$)', 'store_visits'" in message
    assert "\n" not in message


def test_bad_rows_are_named_with_their_reasons(make_config):
    assigner, fitted = fit_assigner(make_config)
    frame = kaggle_headers(fitted.features.head(4).astype(object))
    frame.iloc[1, 0] = "abc"
    frame.iloc[3, 1] = np.nan
    frame.iloc[2, 1] = "inf"
    features, reasons = assigner.row_problems(frame)
    assert reasons.tolist() == [
        "",
        "Annual Income (k$): 'abc' is not a number",
        "Spending Score (1-100): 'inf' is not a finite number",
        "Spending Score (1-100) is missing",
    ]
    with pytest.raises(DataError, match=r"rows 2 \(Annual Income \(k\$\): 'abc' is not a number"):
        assigner.assign(frame)


def test_imputing_pipeline_scores_blank_cells_like_the_pipeline(make_config):
    assigner, fitted = fit_assigner(make_config, "preprocess.impute=median")
    frame = fitted.features.head(6).copy()
    frame.iloc[[1, 4], 0] = np.nan
    assert assigner.row_problems(frame)[1].eq("").all()
    np.testing.assert_array_equal(
        assigner.assign(frame)["segment"].to_numpy(), fitted.pipeline.predict(frame)
    )


def test_saved_model_has_signature_example_requirements_and_stable_ids(make_config, tmp_path):
    names = {0: "Zero", 1: "One", 2: "Two", 3: "Three", 4: "Four"}
    assigner, fitted = fit_assigner(make_config, "algo=agglomerative", names=names)
    folder = save_segment_model(tmp_path / "model", assigner, fitted.features)
    requirements = (folder / "requirements.txt").read_text().split()
    assert requirements == pip_requirements()
    assert json.loads((folder / "input_example.json").read_text())["columns"] == [
        "annual_income",
        "spending_score",
    ]
    first = mlflow.pyfunc.load_model(str(folder))
    signature = first.metadata.signature
    assert {"annual_income", "Annual Income (k$)", "spending_score", "score"} <= set(
        signature.inputs.input_names()
    )
    assert signature.outputs.input_names() == ["segment", "segment_name"]
    new = kaggle_headers(fitted.features)
    scored = first.predict(new)
    np.testing.assert_array_equal(scored["segment"].to_numpy(), fitted.labels)
    assert scored["segment_name"].tolist() == [names[s] for s in fitted.labels]
    again = mlflow.pyfunc.load_model(str(folder)).predict(new)
    pd.testing.assert_frame_equal(scored, again)
