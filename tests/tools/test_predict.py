"""segexp.predict: every input row with its segment, header variants, bad rows, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, compose_config, run_cli
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from segexp.data import load_customers
from segexp.errors import DataError, TrackingError
from segexp.jobs.job import run_job
from segexp.model import storage
from segexp.tools.predict import predict
from segexp.tools.promote import promote

NAMES = {0: "Careful", 1: "Standard", 2: "Target", 3: "Sensible", 4: "Careless"}


def tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="module")
def champion(tmp_path_factory, _template_store, mall_csv):
    """k-means (k=5) on the Kaggle Mall file, with segment names, promoted to champion."""
    folder = tmp_path_factory.mktemp("predict-store")
    shutil.copy(_template_store, folder / "mlflow.db")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    outcome = run_job(
        compose_config(
            [f"mlflow.tracking_uri={store}", f"data.path={mall_csv}", "plots.enabled=false"]
        )
    )
    assert outcome.status == "finished", outcome.message
    entries = [{"id": k, "name": v, "archetype": None, "actions": []} for k, v in NAMES.items()]
    (folder / "segments.json").write_text(json.dumps(entries))
    client = MlflowClient(store, registry_uri=store)
    client.log_artifact(outcome.run_id, str(folder / "segments.json"))
    promote(
        tool_config(
            "promote",
            [
                f"mlflow.tracking_uri={store}",
                f"run_id={outcome.run_id}",
                f"report.output={folder / 'report.html'}",
            ],
        )
    )
    pipeline = storage.load(
        mlflow.artifacts.download_artifacts(
            run_id=outcome.run_id,
            artifact_path="model/pipeline.skops",
            dst_path=str(folder / "run"),
            tracking_uri=store,
        )
    )
    table = load_customers(compose_config([f"data.path={mall_csv}"]).data)
    expected = pipeline.predict(table.frame)  # scikit-learn's own answer for the file's rows
    return SimpleNamespace(store=store, expected=expected, original=mall_csv)


def predict_with(champion, *overrides: str):
    return predict(tool_config("predict", [f"mlflow.tracking_uri={champion.store}", *overrides]))


def mall_rows(mall_csv: Path, rows: int | None = None) -> pd.DataFrame:
    frame = pd.read_csv(mall_csv, dtype=str, keep_default_na=False)
    return frame if rows is None else frame.head(rows)


def with_bad_rows(mall_csv: Path, tmp_path: Path) -> Path:
    frame = mall_rows(mall_csv, 6)
    frame.loc[1, "Annual Income (k$)"] = "abc"  # file row 3
    frame.loc[4, "Spending Score (1-100)"] = ""  # file row 6
    path = tmp_path / "new_customers.csv"
    frame.to_csv(path, index=False)
    return path


def test_predict_writes_every_row_with_its_segment_and_name(champion, mall_csv, tmp_path):
    result = predict_with(champion, f"input={mall_csv}", f"output={tmp_path / 'out.csv'}")
    assert (result.rows, result.scored, result.rejected) == (200, 200, 0)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    original = mall_rows(mall_csv)
    assert list(out.columns) == [*original.columns, "segment", "segment_name"]
    pd.testing.assert_frame_equal(out[original.columns], original)  # ids keep "0001"
    segments = out["segment"].astype(int).to_numpy()
    np.testing.assert_array_equal(segments, champion.expected)
    assert out["segment_name"].tolist() == [NAMES[s] for s in segments]


def test_predict_accepts_other_headers_and_keeps_extra_columns(champion, mall_csv, tmp_path):
    frame = mall_rows(mall_csv, 30).rename(
        columns={"Annual Income (k$)": "income", "Spending Score (1-100)": "score"}
    )
    frame = frame.drop(columns=["CustomerID", "Age"]).assign(email="x@example.com")
    frame.to_csv(tmp_path / "variants.csv", index=False, sep=";")
    predict_with(champion, f"input={tmp_path / 'variants.csv'}", f"output={tmp_path / 'o.csv'}")
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out.columns) == ["Genre", "income", "score", "email", "segment", "segment_name"]
    np.testing.assert_array_equal(out["segment"].to_numpy(), champion.expected[:30])


def test_predict_names_missing_columns(champion, mall_csv, tmp_path):
    mall_rows(mall_csv, 5).drop(columns=["Spending Score (1-100)"]).to_csv(
        tmp_path / "short.csv", index=False
    )
    with pytest.raises(DataError) as error:
        predict_with(champion, f"input={tmp_path / 'short.csv'}", f"output={tmp_path / 'o.csv'}")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'short.csv'}: customer input is missing column(s)")
    assert "'spending_score' (also accepted: 'Spending Score (1-100)'" in message
    assert not (tmp_path / "o.csv").exists()


def test_bad_rows_are_an_error_naming_file_rows(champion, mall_csv, tmp_path):
    path = with_bad_rows(mall_csv, tmp_path)
    with pytest.raises(DataError) as error:
        predict_with(champion, f"input={path}", f"output={tmp_path / 'o.csv'}")
    message = str(error.value)
    assert f"{path}: 2 row(s) cannot be scored" in message
    assert "row 3: Annual Income (k$): 'abc' is not a number" in message
    assert "row 6: Spending Score (1-100) is missing" in message
    assert "set rejects=<file>" in message
    assert not (tmp_path / "o.csv").exists()


def test_rejects_file_takes_bad_rows_and_the_rest_is_scored(champion, mall_csv, tmp_path):
    path = with_bad_rows(mall_csv, tmp_path)
    result = predict_with(
        champion,
        f"input={path}",
        f"output={tmp_path / 'o.csv'}",
        f"rejects={tmp_path / 'rejects.csv'}",
    )
    assert (result.scored, result.rejected) == (4, 2)
    out = pd.read_csv(tmp_path / "o.csv", dtype={"CustomerID": str})
    assert out["CustomerID"].tolist() == ["0001", "0003", "0004", "0006"]
    np.testing.assert_array_equal(out["segment"].to_numpy(), champion.expected[[0, 2, 3, 5]])
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str, keep_default_na=False)
    assert rejects["row"].tolist() == ["3", "6"]
    assert rejects["CustomerID"].tolist() == ["0002", "0005"]
    assert rejects["reason"].tolist() == [
        "Annual Income (k$): 'abc' is not a number",
        "Spending Score (1-100) is missing",
    ]


def test_unknown_model_is_a_clear_error(champion, mall_csv, tmp_path):
    with pytest.raises(TrackingError) as error:
        predict_with(
            champion,
            f"input={mall_csv}",
            f"output={tmp_path / 'o.csv'}",
            "model=models:/nobody@champion",
        )
    assert "cannot load 'models:/nobody@champion'" in str(error.value)
    assert "python -m segexp.promote" in str(error.value)


@pytest.mark.slow
def test_predict_cli_exit_codes(champion, mall_csv, tmp_path):
    tracking = f"mlflow.tracking_uri={champion.store}"
    done = run_cli(
        [f"input={mall_csv}", "output=segments.csv", tracking], tmp_path, module="segexp.predict"
    )
    assert done.returncode == 0, done.stderr
    assert "200 of 200 customers scored with models:/customer-segments@champion" in done.stdout
    scored = pd.read_csv(tmp_path / "segments.csv")
    np.testing.assert_array_equal(scored["segment"].to_numpy(), champion.expected)

    bad = with_bad_rows(mall_csv, tmp_path)
    failed = run_cli([f"input={bad}", "output=o.csv", tracking], tmp_path, module="segexp.predict")
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert lines[-1].startswith("segexp: error: ") and "row 3: Annual Income (k$)" in lines[-1]
    assert "Traceback" not in failed.stderr


def test_predict_without_a_model_scores_with_the_champion(champion, mall_csv, tmp_path):
    result = predict_with(champion, f"input={mall_csv}", f"output={tmp_path / 'o.csv'}")
    assert result.model_uri == "models:/customer-segments@champion"
    client = MlflowClient(champion.store, registry_uri=champion.store)
    version = client.get_model_version_by_alias("customer-segments", "champion")
    assert str(version.version) == "1"
    out = pd.read_csv(tmp_path / "o.csv")
    np.testing.assert_array_equal(out["segment"].to_numpy(), champion.expected)


def test_predict_without_a_model_and_no_champion_says_how_to_choose(store, tmp_path):
    from segexp.data.samples import generate_mall_sample

    source = tmp_path / "customers.csv"
    generate_mall_sample().to_csv(source, index=False)
    done = run_cli(
        [f"input={source}", "output=o.csv", f"mlflow.tracking_uri={store}"],
        tmp_path,
        module="segexp.predict",
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "segexp: error: no champion yet: run segexp-promote best=silhouette "
        "(or pass model=<model URI>); models:/customer-segments@champion is not in"
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(TrackingError) as error:
        predict(
            tool_config(
                "predict",
                [
                    f"mlflow.tracking_uri={store}",
                    f"input={source}",
                    f"output={tmp_path / 'o.csv'}",
                    "registry.alias=production",
                ],
            )
        )
    assert str(error.value).startswith(
        "no production yet: run segexp-promote best=silhouette registry.alias=production"
    )
