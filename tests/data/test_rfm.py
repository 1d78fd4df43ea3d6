"""Transaction logs to customers: RFM values by hand, the logged rules, errors, the sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, run_cli
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from segexp.data import load_customers
from segexp.data.features import resolve_features
from segexp.data.rfm import RFM_COLUMNS, RfmRules, build_rfm
from segexp.data.samples import generate_transactions
from segexp.errors import ConfigError, DataError
from segexp.tools import sample as sample_tool

# Online Retail style header; rows are numbered as in the file (header = row 1).
LOG = """InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
1001,A1,2,2024-01-05 10:00,10.00,A
1001,A2,1,2024-01-05 10:00,5.00,A
1003,B1,10,2024-02-10 08:00,1.50,B
1003,B1,10,2024-02-10 08:00,1.50,B
C2000,D1,-1,2024-02-01 09:00,5.00,D
1002,A1,3,2024-03-01 12:00,10.00,A
C1002,A1,-1,2024-03-03 09:00,10.00,A
1004,Z1,4,2024-03-05 11:00,2.00,
1005,C1,1,2024-03-10 16:00,100.00,C
"""
# By hand, reference day 2024-03-11 (the day after the last transaction):
# A bought on 01-05 (25.00) and 03-01 (30.00) and returned 10.00 on 03-03;
# B bought once on 02-10 (15.00; the second line is an exact duplicate);
# C bought once on 03-10; D only returned something; the 03-05 line has no customer.
EXPECTED = pd.DataFrame(
    {
        "customer_id": ["A", "B", "C"],
        "recency": [10, 30, 1],
        "frequency": [2, 1, 1],
        "monetary": [45.0, 15.0, 100.0],
        "tenure": [66, 30, 1],
        "avg_order_value": [22.5, 15.0, 100.0],
    }
)


def transactions_cfg(**overrides):
    cfg = OmegaConf.load(CONF_DIR / "data" / "transactions_sample.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def load_log(tmp_path, text=LOG, name="log.csv", **overrides):
    path = tmp_path / name
    path.write_text(text)
    return load_customers(transactions_cfg(path=str(path), **overrides))


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    indexed = frame.set_index("customer_id")
    indexed.index = indexed.index.astype(object)
    return indexed


def test_hand_written_log_gives_hand_computed_rfm(tmp_path):
    table = load_log(tmp_path)
    assert table.id_column == "customer_id"
    assert list(table.frame.columns) == ["customer_id", *RFM_COLUMNS]
    pd.testing.assert_frame_equal(
        by_customer(table.frame), by_customer(EXPECTED), check_dtype=False
    )
    assert table.notes == {
        "rfm.rows_read": 9.0,
        "rfm.rows_without_customer": 1.0,
        "rfm.duplicate_rows": 1.0,
        "rfm.return_rows": 2.0,
        "rfm.rows_after_reference": 0.0,
        "rfm.customers_without_purchase": 1.0,
        "rfm.customers_monetary_clipped": 0.0,
        "rfm.customers": 3.0,
    }
    assert table.tags["rfm.reference_date"] == "2024-03-11"
    assert "returns=subtract" in table.tags["rfm.rules"]


def test_excluded_returns_do_not_reduce_spend(tmp_path):
    frame = by_customer(load_log(tmp_path, **{"rfm.returns": "exclude"}).frame)
    assert frame.loc["A", "monetary"] == pytest.approx(55.0)
    assert frame.loc["A", "avg_order_value"] == pytest.approx(27.5)


def test_reference_date_sets_recency_and_drops_later_lines(tmp_path):
    table = load_log(tmp_path, **{"rfm.reference_date": "2024-03-06"})
    frame = by_customer(table.frame)
    assert list(frame.index) == ["A", "B"]
    assert frame.loc["A", ["recency", "tenure"]].tolist() == [5, 61]
    assert frame.loc["B", "recency"] == 25
    assert table.notes["rfm.rows_after_reference"] == 1.0


def test_without_cancel_prefix_negative_quantities_are_returns(tmp_path):
    text = LOG.replace("C2000", "2000").replace("C1002", "1006")
    table = load_log(tmp_path, text, **{"rfm.cancel_prefix": None})
    pd.testing.assert_frame_equal(
        by_customer(table.frame), by_customer(EXPECTED), check_dtype=False
    )


def test_amount_only_log_with_other_header_names(tmp_path):
    text = (
        "order_id;customer;order_date;line_total\n"
        "1;A;05/01/2024;25,00\n"
        "2;A;01/03/2024;30,00\n"
        "R2;A;03/03/2024;-10,00\n"
        "3;B;10/02/2024;15,00\n"
    )
    table = load_log(
        tmp_path,
        text,
        name="orders.csv",
        decimal=",",
        **{"rfm.cancel_prefix": None, "rfm.date_format": "%d/%m/%Y"},
    )
    frame = by_customer(table.frame)
    assert frame.loc["A", ["monetary", "frequency", "tenure"]].tolist() == [45.0, 2, 59]
    assert frame.loc["B", "recency"] == 23  # reference day: 2024-03-04


def test_rules_apply_to_a_frame_directly():
    frame = pd.DataFrame(
        {
            "customer_id": ["x", "x", None],
            "invoice_id": ["1", "2", "3"],
            "invoice_date": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]),
            "quantity": [1, 2, 5],
            "unit_price": [4.0, 3.0, 1.0],
        }
    )
    result = build_rfm(frame, RfmRules())
    row = result.customers.iloc[0]
    assert (row["recency"], row["frequency"], row["monetary"], row["tenure"]) == (1, 2, 10.0, 3)
    assert result.counts["rfm.rows_without_customer"] == 1.0


def error_of(tmp_path, text, **overrides) -> str:
    with pytest.raises((DataError, ConfigError)) as info:
        load_log(tmp_path, text, **overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


A_ROW = "1001,A1,2,2024-01-05 10:00,10.00,A"


@pytest.mark.parametrize(
    ("old", "new", "overrides", "fragments"),
    [
        (
            "1002,A1,3,",
            "1002,A1,-3,",
            {},
            ["column 'quantity' is negative in row 7 (-3)", "not cancellations", "cancel_prefix"],
        ),
        (
            "2024-03-01 12:00",
            "2024-13-45",
            {},
            [
                "column 'invoice_date'",
                "do not parse as dates in row 7",
                "'2024-13-45'",
                "data.rfm.date_format",
            ],
        ),
        (
            "16:00,100.00,C",
            "16:00,lots,C",
            {},
            ["column 'unit_price' must be numeric", "row 10", "'lots'"],
        ),
        (A_ROW, A_ROW.replace("10.00", "-10.00"), {}, ["'unit_price' is negative in row 2"]),
        (
            A_ROW,
            A_ROW,
            {"rfm.missing_customer": "error"},
            ["column 'customer_id' is empty in row 9", "data.rfm.missing_customer=drop"],
        ),
        ("InvoiceNo", "Bill", {}, ["has no column 'invoice_id'", "data.aliases.invoice_id"]),
        (A_ROW, A_ROW, {"rfm.retruns": "x"}, ["data.rfm.retruns", "did you mean 'returns'"]),
        (A_ROW, A_ROW, {"rfm.returns": "net"}, ["data.rfm.returns", "subtract, exclude", "'net'"]),
        (
            A_ROW,
            A_ROW,
            {"numeric": ["recency", "monetry"]},
            ["data.numeric", "did you mean 'monetary'"],
        ),
    ],
)
def test_bad_transaction_logs(tmp_path, old, new, overrides, fragments):
    assert old in LOG
    message = error_of(tmp_path, LOG.replace(old, new, 1), **overrides)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_header_only_log(tmp_path):
    message = error_of(tmp_path, LOG.splitlines()[0] + "\n")
    assert "has a header" in message and "no transaction rows" in message


def test_generator_is_deterministic_and_has_every_kind_of_line():
    log = generate_transactions(120, seed=3)
    pd.testing.assert_frame_equal(log, generate_transactions(120, seed=3))
    assert not log.equals(generate_transactions(120, seed=4))
    cancelled = log["InvoiceNo"].str.startswith("C")
    assert cancelled.any() and (log.loc[cancelled, "Quantity"] < 0).all()
    assert (log.loc[~cancelled, "Quantity"] > 0).all()
    assert log["CustomerID"].isna().any()
    assert log.duplicated().any()
    assert log["CustomerID"].dropna().nunique() == 120


def test_sample_rfm_matches_plain_pandas():
    table = load_customers(transactions_cfg())
    log = generate_transactions(300, seed=7)
    assert table.source == "built-in transaction sample"
    assert len(table.frame) == 300 and table.notes["rfm.customers"] == 300.0
    known = log[log["CustomerID"].notna()]
    unique = known.drop_duplicates()
    assert table.notes["rfm.rows_without_customer"] == log["CustomerID"].isna().sum()
    assert table.notes["rfm.duplicate_rows"] == len(known) - len(unique)
    returns = unique["InvoiceNo"].str.startswith("C")
    assert table.notes["rfm.return_rows"] == returns.sum()
    value = unique["Quantity"] * unique["UnitPrice"]
    monetary = value.groupby(unique["CustomerID"]).sum()
    frequency = unique[~returns].groupby("CustomerID")["InvoiceNo"].nunique()
    last = pd.to_datetime(unique[~returns]["InvoiceDate"]).groupby(unique["CustomerID"]).max()
    reference = pd.to_datetime(log["InvoiceDate"]).max().normalize() + pd.Timedelta(days=1)
    frame = by_customer(table.frame)
    np.testing.assert_allclose(frame["monetary"], monetary.loc[frame.index].clip(lower=0))
    np.testing.assert_array_equal(frame["frequency"], frequency.loc[frame.index])
    np.testing.assert_array_equal(
        frame["recency"], (reference - last.loc[frame.index].dt.normalize()).dt.days
    )


def test_sample_written_as_csv_loads_to_the_same_customers(tmp_path, capsys):
    out = tmp_path / "transactions.csv"
    assert sample_tool.main(["transactions", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    from_file = load_customers(transactions_cfg(path=str(out)))
    from_sample = load_customers(transactions_cfg())
    pd.testing.assert_frame_equal(from_file.frame, from_sample.frame)
    assert from_file.notes == from_sample.notes


def test_all_numeric_features_are_the_rfm_columns(make_config):
    cfg = make_config(["data=transactions_sample", "features=all_numeric"])
    table = load_customers(cfg.data)
    assert resolve_features(cfg.features.columns, "all_numeric", table)[1] == RFM_COLUMNS
    assert list(make_config(["features=rfm"]).features.columns) == RFM_COLUMNS[:3]


def test_transaction_sample_clusters_on_rfm_by_default(make_config):
    cfg = make_config(["data=transactions_sample"])
    table = load_customers(cfg.data)
    assert resolve_features(cfg.features.columns, "default", table) == ("rfm", RFM_COLUMNS[:3])


@pytest.mark.slow
def test_cli_segments_the_transaction_sample(tmp_path, store):
    args = ["data=transactions_sample", "preprocess=rfm_log"]  # rfm: the log's default features
    result = run_cli([*args, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segexp-transactions")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["features"] == "rfm"
    assert runs[0].data.metrics["n_customers"] == 300
