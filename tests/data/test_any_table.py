"""Any customer table in one command: inferred roles, the reader's exactness, the user's say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tables
from conftest import mall_data_cfg, run_cli
from mlflow.tracking import MlflowClient

from segexp.data import load_customers
from segexp.data.features import resolve_features
from segexp.data.read import read_table_file
from segexp.errors import ConfigError, DataError


def load(path, **overrides):
    return load_customers(mall_data_cfg(path=str(path), **overrides))


def roles(table) -> dict[str, list[str]]:
    schema = table.schema
    return {
        "id": schema.of("id"),
        "numeric": schema.numeric,
        "categorical": schema.categorical,
        "date": schema.dates,
        "label": schema.of("label"),
        "excluded": schema.of("excluded"),
    }


# ------------------------------------------------------------------ inferred roles, per shape


def test_bank_table_has_its_c_id_and_seventeen_numeric_columns(tmp_path):
    table = load(tables.bank_card_usage(tmp_path))
    found = roles(table)
    assert found["id"] == ["CUST_ID"]
    assert found["numeric"] == tables.BANK_NUMERIC
    assert found["categorical"] == found["excluded"] == found["label"] == []
    assert table.frame["CUST_ID"].iloc[0] == "C10001"
    assert table.frame["MINIMUM_PAYMENTS"].isna().sum() == 12


def test_wholesale_codes_are_categories_and_there_is_no_id(tmp_path):
    table = load(tables.wholesale(tmp_path))
    found = roles(table)
    assert found["id"] == [] and table.id_column is None
    assert found["categorical"] == ["Channel", "Region"]
    assert found["numeric"] == tables.WHOLESALE_SPEND


def test_marketing_table_dates_categories_constants_and_codes(tmp_path):
    table = load(tables.marketing_campaign(tmp_path))
    found = roles(table)
    assert found["id"] == ["ID"]
    assert found["date"] == ["Dt_Customer"]
    assert table.schema.role("Dt_Customer").date_format == "%d-%m-%Y"
    assert pd.api.types.is_datetime64_any_dtype(table.frame["Dt_Customer"])
    assert table.frame["Dt_Customer"].min() >= pd.Timestamp("2012-07-30")
    assert found["categorical"] == ["Education", "Marital_Status", "Response"]
    assert found["excluded"] == ["Year_Birth", "Z_CostContact", "Z_Revenue"]
    assert "constant" in table.schema.role("Z_Revenue").reason
    assert found["numeric"] == [
        "age",  # from Year_Birth, which leaves the features (tests/data/test_derived.py)
        "Income",
        "Kidhome",
        "tenure",  # days from Dt_Customer to the latest date
        "Recency",
        "MntWines",
        "MntMeatProducts",
        "NumWebPurchases",
    ]
    assert "YOLO" in set(table.frame["Marital_Status"])


def test_mall_under_snake_case_headers_maps_onto_the_canonical_names(tmp_path):
    table = load(tables.mall_like(tmp_path, tables.SNAKE_CASE_MALL))
    found = roles(table)
    assert found["id"] == ["customer_id"]
    assert found["numeric"] == ["age", "annual_income", "spending_score"]
    assert found["categorical"] == ["gender"]
    assert table.frame["customer_id"].iloc[0] == "0001"  # zero padding kept
    assert resolve_features("default", "default", table) == (
        "income_spending",
        ["annual_income", "spending_score"],
    )


def test_mall_under_spanish_headers_gets_roles_without_any_alias(tmp_path):
    table = load(tables.mall_like(tmp_path, tables.SPANISH_MALL))
    found = roles(table)
    assert found["id"] == ["ID_Cliente"]
    assert found["categorical"] == ["Género"]
    assert found["numeric"] == ["Edad", "Ingreso_Anual", "Puntuación_Gasto"]
    assert resolve_features("default", "default", table) == ("all_numeric", found["numeric"])


def test_invoice_export_is_read_as_a_transaction_log(tmp_path):
    path = tables.invoice_lines(tmp_path)
    table = load(path)
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert table.id_column == "customer_id"
    assert table.default_features == "rfm"
    assert table.notes["rfm.rows_read"] == len(lines)
    assert table.notes["rfm.rows_without_customer"] == (lines["CustomerID"] == "").sum()
    with_customer = lines[lines["CustomerID"] != ""]
    assert table.notes["rfm.return_rows"] == with_customer["InvoiceNo"].str.startswith("C").sum()
    assert table.notes["rfm.customers"] == with_customer["CustomerID"].nunique()
    # US-style dates: the last purchase of the log is its latest line
    latest = pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M").max()
    assert table.tags["rfm.reference_date"] == (latest + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    assert resolve_features("default", "default", table)[0] == "rfm"


# ------------------------------------------------------------------ what the user sets wins


def test_explicit_roles_win_over_inference(tmp_path):
    path = tables.wholesale(tmp_path)
    table = load(path, numeric=["Fresh", "Milk", "Channel"], categorical=["Region"])
    assert table.schema.numeric == ["Channel", "Fresh", "Milk"]  # in file order
    assert table.schema.categorical == ["Region"]
    assert table.schema.role("Grocery").role == "excluded"
    assert table.schema.role("Grocery").reason == "not in data.numeric"
    assert table.schema.role("Channel").by == "data.numeric"


def test_explicit_id_and_no_id(tmp_path):
    path = tables.bank_card_usage(tmp_path)
    assert load(path, id_column=None).id_column is None
    # unique text, not a feature
    assert "CUST_ID" in load(path, id_column=None).schema.of("excluded")


def test_explicit_names_may_be_the_files_own_headers(tmp_path):
    path = tables.mall_like(
        tmp_path, ["CustomerID", "Genre", "Age", "Annual Income (k$)", "Spending Score (1-100)"]
    )
    table = load(path, numeric=["Age", "Annual Income (k$)"], id_column="CustomerID")
    assert table.schema.numeric == ["age", "annual_income"]
    name, columns = resolve_features(["Annual Income (k$)", "Age"], "custom", table)
    assert columns == ["annual_income", "age"]


def test_a_wrong_explicit_name_is_a_one_line_error(tmp_path):
    path = tables.wholesale(tmp_path)
    with pytest.raises(DataError) as info:
        load(path, numeric=["Fresh", "Milkk"])
    message = str(info.value)
    assert "\n" not in message
    assert "data.numeric names column 'Milkk'" in message and "did you mean 'Milk'" in message


def test_mall_feature_groups_on_another_table_name_all_numeric_and_the_columns(tmp_path):
    table = load(tables.bank_card_usage(tmp_path))
    with pytest.raises(DataError) as info:
        resolve_features(["annual_income", "spending_score"], "income_spending", table)
    message = str(info.value)
    assert "features=income_spending needs column(s) annual_income, spending_score" in message
    assert "use features=all_numeric (its numeric columns: BALANCE," in message
    assert "PURCHASES_FREQUENCY" in message


def test_features_columns_must_be_a_list_or_a_keyword(tmp_path):
    table = load(tables.wholesale(tmp_path))
    with pytest.raises(ConfigError, match="all_numeric or default; got 'every'"):
        resolve_features("every", "custom", table)


# ------------------------------------------------------------------ the reader is exact


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("inf", "values beyond the float64 range in row 3"),
        ("-inf", "values beyond the float64 range in row 3"),
        ("1e309", "values beyond the float64 range in row 3"),
        ("1e308", "values too large to compute with (at least 1e150) in row 3"),
    ],
)
def test_infinite_and_absurd_numbers_are_refused_naming_column_and_row(tmp_path, cell, fragment):
    path = tmp_path / "customers.csv"
    path.write_text(f"id,age,balance\na,20,5.5\nb,30,{cell}\nc,40,7.25\nd,50,1.0\n")
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"column 'balance' has {fragment}" in message
    assert str(path) in message


def test_inf_listed_as_missing_is_missing(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("id,age,balance\na,20,5.5\nb,30,inf\nc,40,7.25\nd,50,1.0\n")
    table = load(path, missing_values=["", "inf"])
    assert table.frame["balance"].isna().tolist() == [False, True, False, False]


def test_numbers_keep_their_type_and_ids_their_text(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("id,whole,decimal,whole_as_float\n007,1,1.5,2.0\n010,2,2.25,3.0\n")
    frame = read_table_file(path)
    assert frame["id"].tolist() == ["007", "010"]
    assert frame["whole"].dtype == np.int64
    assert frame["decimal"].tolist() == [1.5, 2.25]
    assert frame["whole_as_float"].dtype == np.float64  # floats stay floats


def test_a_fifty_megabyte_field_is_read_and_left_out(tmp_path):
    frame = pd.DataFrame(
        {
            "id": list("abcdef"),
            "age": [20, 30, 40, 50, 60, 70],
            "income": [10, 20, 30, 40, 50, 60],
            "note": ["x" * (50 << 20), "y", "z", "w", "v", "u"],
        }
    )
    path = tmp_path / "long_field.csv"
    frame.to_csv(path, index=False)
    table = load(path)
    assert len(table.frame.loc[0, "note"]) == 50 << 20
    assert table.schema.numeric == ["age", "annual_income"]  # a Mall-like table: its aliases
    assert table.schema.role("note").role == "excluded"


def test_a_thousand_columns_load_with_their_roles(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, 1000)), columns=[f"f{i}" for i in range(1000)])
    frame.insert(0, "customer", [f"u{i}" for i in range(50)])
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    table = load(path)
    assert table.id_column == "customer"
    assert len(table.schema.numeric) == 1000
    assert "... 971 more columns: 971 numeric" in table.schema.table(str(path))


def test_csv_and_parquet_of_one_table_have_one_fingerprint(tmp_path):
    frame = pd.read_csv(tables.marketing_campaign(tmp_path), sep="\t")
    frame["Dt_Customer"] = pd.to_datetime(frame["Dt_Customer"], format="%d-%m-%Y")
    frame.to_csv(tmp_path / "copy.csv", index=False)
    frame.to_parquet(tmp_path / "copy.parquet")
    from_csv = load(tmp_path / "copy.csv")
    from_parquet = load(tmp_path / "copy.parquet")
    pd.testing.assert_frame_equal(from_csv.frame, from_parquet.frame, check_dtype=False)
    assert from_csv.fingerprint == from_parquet.fingerprint


# ------------------------------------------------------------------ one command, real CLI


SHAPES = {
    "bank": (tables.bank_card_usage, ["preprocess.impute=median"], "all_numeric"),
    "wholesale": (tables.wholesale, [], "all_numeric"),
    "marketing": (tables.marketing_campaign, ["preprocess.impute=median"], "all_numeric"),
    "mall_snake_case": (
        lambda folder: tables.mall_like(folder, tables.SNAKE_CASE_MALL),
        [],
        "income_spending",
    ),
    "mall_spanish": (
        lambda folder: tables.mall_like(folder, tables.SPANISH_MALL),
        [],
        "all_numeric",
    ),
    "invoices": (tables.invoice_lines, [], "rfm"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_one_command_runs_each_shape_and_logs_its_schema(tmp_path, store, shape):
    build, extra, features = SHAPES[shape]
    path = build(tmp_path)
    result = run_cli([f"data.path={path}", *extra, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Columns of {path}" in result.stdout
    assert f"-{features} FINISHED" in result.stdout or f"-{features}] FINISHED" in result.stdout
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segexp-customers")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["features"] == features
    assert "segexp.undefined.ari" not in run.data.tags
    local = client.download_artifacts(run.info.run_id, "schema.json", str(tmp_path))
    schema = json.loads(Path(local).read_text())
    numeric = [entry["column"] for entry in schema if entry["role"] == "numeric"]
    assert numeric
    logged = run.data.params["schema.numeric"]
    assert logged == ",".join(numeric) or logged.endswith(f",... ({len(numeric)} columns)")
    assert run.data.params["feature_columns"]


def test_an_infinite_cell_stops_the_command_before_any_run(tmp_path, store):
    path = tmp_path / "customers.csv"
    path.write_text("id,age,balance\na,20,5.5\nb,30,inf\nc,40,7.25\nd,50,1.0\n")
    result = run_cli([f"data.path={path}", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"segexp: error: {path}: column 'balance' has values beyond the float64 range in row 3 "
        "('inf'); fix those cells, or list their text in data.missing_values to read them as "
        "missing"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    client = MlflowClient(tracking_uri=store)
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


@pytest.mark.slow
def test_a_thousand_column_table_is_a_correct_run(tmp_path, store):
    rng = np.random.default_rng(1)
    centres = np.repeat(rng.normal(size=(3, 1000)) * 3, 100, axis=0)
    frame = pd.DataFrame(rng.normal(size=(300, 1000)) + centres)
    frame.columns = [f"f{i}" for i in range(1000)]
    frame.insert(0, "id", [f"u{i}" for i in range(300)])
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    result = run_cli([f"data.path={path}", "k=3", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("segexp-customers").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["feature_columns"].count(",") == 999
    assert run.data.metrics["silhouette"] > 0.1  # three well-separated groups


@pytest.mark.slow
def test_a_fifty_megabyte_field_is_a_correct_run(tmp_path, store):
    frame = pd.DataFrame(
        {
            "id": list("abcdefgh"),
            "balance": [10.5, 20, 30, 40, 500, 600, 700, 800],
            "visits": [1, 2, 3, 4, 50, 60, 70, 80],
            "note": ["x" * (50 << 20), *"yzwvuts"],
        }
    )
    path = tmp_path / "long_field.csv"
    frame.to_csv(path, index=False)
    result = run_cli([f"data.path={path}", "k=2", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "note      excluded" in result.stdout or "free text" in result.stdout
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("segexp-customers").experiment_id])
    assert run.data.params["feature_columns"] == "balance,visits"
    assert run.data.params["schema.excluded"] == "note"
