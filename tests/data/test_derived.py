"""Dates and birth years become numbers (issue 21.6): tenure, recency and age columns in the
schema and among the default numeric features, each switched off by a data key."""

from __future__ import annotations

import pandas as pd
import pytest
import tables
from conftest import mall_data_cfg

from segexp.data import load_customers
from segexp.data.features import resolve_features
from segexp.errors import ConfigError


def load(path, **overrides):
    return load_customers(mall_data_cfg(path=str(path), **overrides))


def test_customer_since_date_gives_tenure_and_birth_year_gives_age(tmp_path):
    path = tables.wholesale_customers(tmp_path)
    raw = pd.read_csv(path)
    table = load(path)
    since = pd.to_datetime(raw["Customer_Since"])
    reference = since.max()  # the latest date in the table
    assert table.frame["tenure"].tolist() == (reference - since).dt.days.tolist()
    assert table.frame["age"].tolist() == (reference.year - raw["Year_Birth"]).tolist()
    assert table.tags["data.derive.reference_date"] == f"{reference:%Y-%m-%d}"

    schema = table.schema
    assert schema.role("tenure").role == "numeric"
    assert schema.role("tenure").reason.startswith("derived: days from Customer_Since")
    assert schema.role("age").role == "numeric"
    # the birth year itself leaves the features: the same information twice weighs double
    assert schema.role("Year_Birth").role == "excluded"
    assert schema.categorical == ["Channel", "Region", "Response"]
    text = schema.table(str(path))
    assert "tenure" in text and "derived: years from Year_Birth" in text
    assert "data.derive.days_since=false" in text
    name, columns = resolve_features("default", "default", table)
    assert name == "all_numeric"
    assert columns == [*tables.WHOLESALE_SPEND, "tenure", "age"]


def test_each_derivation_is_switched_off_by_its_data_key(tmp_path):
    path = tables.wholesale_customers(tmp_path)
    no_days = load(path, **{"derive.days_since": False})
    assert "tenure" not in no_days.frame and "age" in no_days.frame
    no_age = load(path, **{"derive.age": False})
    assert "age" not in no_age.frame and "tenure" in no_age.frame
    assert no_age.schema.role("Year_Birth").role == "numeric"
    assert "tenure" in resolve_features("default", "default", no_age)[1]
    neither = load(path, derive={"days_since": False, "age": False})
    assert neither.schema.numeric == [*tables.WHOLESALE_SPEND, "Year_Birth"]
    assert not neither.tags


def test_reference_date_by_config_and_recency_for_a_last_activity_date(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "spend": [10.0, 20.0, 5.0],
            "last_purchase": ["2024-12-01", "2024-11-15", "2024-06-30"],
            "date_of_birth": ["1980-01-01", "2000-12-31", "1990-06-15"],
        }
    )
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    table = load(path, **{"derive.reference_date": "2025-01-01"})
    assert table.frame["recency"].tolist() == [31, 47, 185]
    assert table.frame["age"].tolist() == [45, 24, 34]  # whole years to 2025-01-01
    assert table.schema.numeric == ["spend", "recency", "age"]
    with pytest.raises(ConfigError, match="data.derive.reference_date: a date such as"):
        load(path, **{"derive.reference_date": "someday"})


def test_listed_numeric_columns_keep_the_derived_ones_out(tmp_path):
    table = load(tables.wholesale_customers(tmp_path), numeric=["Fresh", "Milk"])
    assert table.schema.numeric == ["Fresh", "Milk"]
    assert table.schema.role("tenure").role == "excluded"
    assert "not in data.numeric" in table.schema.role("tenure").reason


def test_mall_table_has_nothing_to_derive(mall_csv):
    table = load(mall_csv)
    assert table.schema.numeric == ["age", "annual_income", "spending_score"]
    assert not table.tags
