"""segexp-eda on tables shaped like public customer datasets, built here (no outside data).

Each test writes a CSV/TSV into tmp_path, runs the real command in a subprocess
against a real MLflow store, and reads back the printed summary, the artifacts,
the schema params and the metrics.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import mall_data_cfg, run_cli
from mlflow.tracking import MlflowClient

from segexp.data import load_customers
from segexp.tools.eda import choose_split, column_roles

BANK_NUMERIC = [
    "BALANCE", "BALANCE_FREQUENCY", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES",
    "CASH_ADVANCE", "PURCHASES_FREQUENCY", "ONEOFF_PURCHASES_FREQUENCY",
    "PURCHASES_INSTALLMENTS_FREQUENCY", "CASH_ADVANCE_FREQUENCY", "CASH_ADVANCE_TRX",
    "PURCHASES_TRX", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS", "PRC_FULL_PAYMENT", "TENURE",
]  # fmt: skip
SPEND = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]


def bank_table(n: int = 150, seed: int = 1) -> pd.DataFrame:
    """Credit-card customers: C10001-style ids, 17 numeric columns, blanks in two of them."""
    rng = np.random.default_rng(seed)
    oneoff = rng.exponential(600, n).round(2)
    installments = rng.exponential(400, n).round(2)
    frame = pd.DataFrame({"CUST_ID": [f"C{10001 + i}" for i in range(n)]})
    columns = {
        "BALANCE": rng.exponential(1500, n).round(2),
        "BALANCE_FREQUENCY": rng.uniform(0, 1, n).round(6),
        "PURCHASES": (oneoff + installments).round(2),
        "ONEOFF_PURCHASES": oneoff,
        "INSTALLMENTS_PURCHASES": installments,
        "CASH_ADVANCE": rng.exponential(900, n).round(2),
        "PURCHASES_FREQUENCY": rng.uniform(0, 1, n).round(6),
        "ONEOFF_PURCHASES_FREQUENCY": rng.uniform(0, 1, n).round(6),
        "PURCHASES_INSTALLMENTS_FREQUENCY": rng.uniform(0, 1, n).round(6),
        "CASH_ADVANCE_FREQUENCY": rng.uniform(0, 0.5, n).round(6),
        "CASH_ADVANCE_TRX": rng.poisson(3, n),
        "PURCHASES_TRX": rng.poisson(14, n),
        "CREDIT_LIMIT": rng.choice([1000.0, 1500.0, 3000.0, 7000.0, 12000.0], n),
        "PAYMENTS": rng.exponential(1700, n).round(2),
        "MINIMUM_PAYMENTS": rng.exponential(800, n).round(2),
        "PRC_FULL_PAYMENT": rng.choice([0.0, 0.0, 0.083333, 0.5, 1.0], n),
        "TENURE": rng.choice([6, 8, 10, 11, 12, 12, 12], n),
    }
    frame = frame.assign(**columns)
    frame.loc[[2, 9, 30, 31, 47, 50, 58], "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[[5], "CREDIT_LIMIT"] = np.nan
    return frame


def wholesale_table(n: int = 120, seed: int = 2) -> pd.DataFrame:
    """Wholesale clients: Channel {1, 2}, Region {1, 2, 3}, six integer spends, no id."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"Channel": rng.choice([1, 2], n, p=[0.7, 0.3]), "Region": rng.choice([1, 2, 3], n)}
    )
    for i, column in enumerate(SPEND):
        frame[column] = rng.lognormal(8 - 0.3 * i, 1.0, n).round().astype(int) + 3
    return frame


def marketing_table(n: int = 140, seed: int = 3) -> pd.DataFrame:
    """Marketing campaign customers (tab-separated): dates, text categories with odd values,
    Income with blanks, two constant columns."""
    rng = np.random.default_rng(seed)
    marital = ["Married", "Together", "Single", "Divorced", "Widow", "Alone", "Absurd", "YOLO"]
    education = ["Graduation", "PhD", "Master", "2n Cycle", "Basic"]
    frame = pd.DataFrame(
        {
            "ID": rng.permutation(np.arange(1, 11000))[:n],
            "Year_Birth": rng.integers(1940, 2000, n),
            "Education": rng.choice(education, n, p=[0.5, 0.2, 0.15, 0.1, 0.05]),
            "Marital_Status": [marital[i % 8] if i < 16 else marital[i % 5] for i in range(n)],
            "Income": rng.normal(52000, 21000, n).round().clip(2000),
            "Kidhome": rng.choice([0, 1, 2], n),
            "Dt_Customer": (
                pd.Timestamp("2012-07-30") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
            ).strftime("%Y-%m-%d"),
            "Recency": rng.integers(0, 100, n),
            "MntWines": rng.exponential(300, n).round().astype(int),
            "NumWebPurchases": rng.poisson(4, n),
            "Z_CostContact": 3,
            "Z_Revenue": 11,
        }
    )
    frame.loc[[0] + [4, 8, 15, 16, 23, 42, 99], "Dt_Customer"] = "2012-09-04"
    frame.loc[[7, 19, 64], "Income"] = np.nan
    return frame


def eda_cli(path, store, tmp_path, *extra: str):
    """Run segexp-eda on ``path``; returns (stdout, run) of its one run."""
    result = run_cli(
        [f"data.path={path}", f"mlflow.tracking_uri={store}", *extra],
        cwd=tmp_path,
        module="segexp.eda",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["segexp.kind"] == "eda"
    assert run.info.run_id in result.stdout  # the summary names the run
    return result.stdout, client.get_run(run.info.run_id)


def summary_block(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("EDA of "))
    return lines[start:]


def line_of(summary: list[str], key: str) -> str:
    return next(line for line in summary if line.startswith(f"  {key}"))


def artifacts(store: str, run_id: str, path: str | None = None) -> set[str]:
    client = MlflowClient(tracking_uri=store)
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(store, run_id, item.path) if item.is_dir else {item.path}
    return found


def schema_json(store: str, run_id: str, tmp_path) -> dict[str, str]:
    path = MlflowClient(tracking_uri=store).download_artifacts(run_id, "schema.json", str(tmp_path))
    with open(path) as handle:
        return {record["column"]: record["role"] for record in json.load(handle)}


@pytest.mark.slow
def test_bank_table_gets_every_numeric_column_and_no_split(tmp_path, store):
    path = tmp_path / "CC GENERAL.csv"
    bank_table().to_csv(path, index=False)
    stdout, run = eda_cli(path, store, tmp_path)
    summary = summary_block(stdout)
    assert len(summary) <= 25 and max(map(len, summary)) <= 100
    assert summary[0].endswith(": 150 rows x 18 columns")
    assert line_of(summary, "roles") == (
        "  roles      1 id, 17 numeric, 0 categorical, 0 date, 0 label, 0 excluded"
    )
    assert line_of(summary, "split by").startswith("  split by   none: no categorical column")
    assert "most in MINIMUM_PAYMENTS 7 (5%), CREDIT_LIMIT 1 (1%)" in line_of(summary, "missing")
    assert "8 cells" in line_of(summary, "missing")
    # PURCHASES = ONEOFF + INSTALLMENTS: the strongest pair
    r = bank_table()[["PURCHASES", "ONEOFF_PURCHASES"]].corr().iat[0, 1]
    assert line_of(summary, "correlated") == (
        f"  correlated {r:+.2f}  PURCHASES ~ ONEOFF_PURCHASES (Pearson)"
    )
    assert summary[summary.index(line_of(summary, "correlated")) + 2].startswith("             ")
    assert line_of(summary, "excluded") == "  excluded   none"

    run_id = run.info.run_id
    expected_plots = {f"plots/hist_{c}.png" for c in BANK_NUMERIC}
    found = artifacts(store, run_id)
    assert expected_plots <= found
    assert {"schema.json", "summary.csv", "plots/missingness.png", "plots/boxplots.png"} <= found
    assert not any(a.startswith("plots/bar_") for a in found)
    assert run.data.params["schema.id"] == "CUST_ID"
    shown = run.data.params["schema.numeric"]  # params stop at 250 characters; schema.json not
    assert shown.endswith(",... (17 columns)") and ",".join(BANK_NUMERIC).startswith(shown[:-17])
    assert run.data.params["schema.categorical"] == "-"
    assert run.data.params["hue"] == "none"
    assert run.data.metrics["missing.MINIMUM_PAYMENTS"] == 7
    assert run.data.metrics["missing_cells"] == 8
    roles = schema_json(store, run_id, tmp_path)
    assert roles["CUST_ID"] == "id" and {roles[c] for c in BANK_NUMERIC} == {"numeric"}
    outliers = line_of(summary, "outliers")
    assert outliers.startswith("  outliers   beyond 1.5 x IQR: ")
    top = outliers.split(": ")[1].split()[0]
    assert run.data.metrics[f"outliers.{top}"] == max(
        run.data.metrics[f"outliers.{c}"] for c in BANK_NUMERIC
    )


@pytest.mark.slow
def test_wholesale_codes_are_categorical_and_split_by_the_fewest_levels(tmp_path, store):
    path = tmp_path / "Wholesale customers data.csv"
    wholesale_table().to_csv(path, index=False)
    stdout, run = eda_cli(path, store, tmp_path)
    summary = summary_block(stdout)
    assert line_of(summary, "roles").startswith("  roles      0 id, 6 numeric, 2 categorical,")
    assert line_of(summary, "split by") == (
        "  split by   Channel (auto: the categorical with the fewest levels (2))"
    )
    assert line_of(summary, "missing") == "  missing    no missing cells"
    found = artifacts(store, run.info.run_id)
    assert {f"plots/hist_{c}.png" for c in SPEND} <= found
    assert {"plots/bar_Channel.png", "plots/bar_Region.png"} <= found
    assert "plots/hist_Region.png" not in found  # a code, not a quantity
    assert run.data.params["hue"] == "Channel"
    assert run.data.params["schema.categorical"] == "Channel,Region"
    assert run.data.params["schema.id"] == "-"
    corr = pd.read_csv(
        MlflowClient(tracking_uri=store).download_artifacts(
            run.info.run_id, "correlation_pearson.csv", str(tmp_path)
        ),
        index_col=0,
    )
    assert list(corr.columns) == SPEND


@pytest.mark.slow
def test_explicit_hue_wins_over_the_inferred_split(tmp_path, store):
    path = tmp_path / "wholesale.csv"
    wholesale_table().to_csv(path, index=False)
    stdout, run = eda_cli(path, store, tmp_path, "eda.hue=Region")
    assert line_of(summary_block(stdout), "split by") == "  split by   Region (set by eda.hue)"
    assert run.data.params["hue"] == "Region"


@pytest.mark.slow
def test_marketing_tsv_with_dates_odd_categories_and_constants(tmp_path, store):
    path = tmp_path / "marketing_campaign.tsv"
    marketing_table().to_csv(path, sep="\t", index=False)
    stdout, run = eda_cli(path, store, tmp_path)
    summary = summary_block(stdout)
    assert line_of(summary, "roles") == (
        "  roles      1 id, 7 numeric, 2 categorical, 1 date, 0 label, 3 excluded"
    )
    assert line_of(summary, "excluded").startswith(
        "  excluded   Year_Birth (birth year: age derived from it); "
    )
    # Education (5 levels) beats Marital_Status (8, with Absurd and YOLO)
    assert line_of(summary, "split by").startswith("  split by   Education (auto:")
    assert "most in Income 3 (2%)" in line_of(summary, "missing")
    run_id = run.info.run_id
    found = artifacts(store, run_id)
    assert {"plots/bar_Education.png", "plots/bar_Marital_Status.png"} <= found
    assert "plots/hist_Income.png" in found and "plots/hist_Z_Revenue.png" not in found
    assert run.data.params["schema.date"] == "Dt_Customer"
    assert run.data.params["schema.excluded"] == "Year_Birth,Z_CostContact,Z_Revenue"
    assert run.data.params["hue"] == "Education"
    roles = schema_json(store, run_id, tmp_path)
    assert roles["Marital_Status"] == "categorical" and roles["ID"] == "id"
    summary_csv = pd.read_csv(
        MlflowClient(tracking_uri=store).download_artifacts(run_id, "summary.csv", str(tmp_path))
    ).set_index("column")
    assert summary_csv.loc["Dt_Customer", "role"] == "date"
    assert summary_csv.loc["Z_Revenue", "role"] == "excluded"
    assert summary_csv.loc["Dt_Customer", "top"].startswith("2012-09-04")
    assert summary_csv.loc["Dt_Customer", "min"] == str(
        pd.to_datetime(marketing_table()["Dt_Customer"]).min()
    )
    assert summary_csv.loc["Income", "missing"] == 3


@pytest.mark.slow
def test_a_1000_column_table_caps_its_figures(tmp_path, store):
    """The figures are capped (their time is benchmarks' business, not a test's)."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        rng.normal(size=(300, 1000)).round(4), columns=[f"x{i:04d}" for i in range(1000)]
    )
    frame.iloc[::50, 999] = np.nan  # 6 blanks in the last column: counted though not drawn
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    stdout, run = eda_cli(path, store, tmp_path)
    summary = summary_block(stdout)
    assert len(summary) <= 25 and max(map(len, summary)) <= 100
    assert line_of(summary, "roles").startswith("  roles      0 id, 1000 numeric,")
    assert line_of(summary, "figures") == "  figures    40 histograms, 0 bar charts"
    assert "960 of 1000 numeric columns left out of figures" in "\n".join(summary)
    assert "most in x0999 6 (2%)" in line_of(summary, "missing")
    found = artifacts(store, run.info.run_id)
    histograms = {a for a in found if a.startswith("plots/hist_")}
    assert histograms == {f"plots/hist_x{i:04d}.png" for i in range(40)}
    assert run.data.metrics["missing.x0999"] == 6
    assert "outliers.x0999" in run.data.metrics  # counts cover every column
    assert run.data.params["schema.numeric"].endswith("(1000 columns)")
    corr = pd.read_csv(
        MlflowClient(tracking_uri=store).download_artifacts(
            run.info.run_id, "correlation_spearman.csv", str(tmp_path)
        ),
        index_col=0,
    )
    assert corr.shape == (40, 40)


@pytest.mark.slow
def test_max_columns_option_caps_the_histograms(tmp_path, store):
    path = tmp_path / "bank.csv"
    bank_table(n=60).to_csv(path, index=False)
    stdout, run = eda_cli(path, store, tmp_path, "eda.max_columns=5")
    found = artifacts(store, run.info.run_id)
    assert {a for a in found if a.startswith("plots/hist_")} == {
        f"plots/hist_{c}.png" for c in BANK_NUMERIC[:5]
    }
    assert "             12 of 17 numeric columns left out of figures" in summary_block(stdout)
    assert run.data.params["max_columns"] == "5"


def test_split_is_the_categorical_with_fewest_levels_within_the_cap(tmp_path):
    frame = marketing_table()
    frame["Response"] = np.arange(len(frame)) % 2
    frame["Plan"] = [f"plan{i % 9}" for i in range(len(frame))]  # 9 levels: too many
    path = tmp_path / "m.tsv"
    frame.to_csv(path, sep="\t", index=False)
    table = load_customers(mall_data_cfg(path=str(path)))
    _, categorical = column_roles(table)
    assert set(categorical) == {"Education", "Marital_Status", "Response", "Plan"}
    assert choose_split(table, categorical, "auto").column == "Response"
    assert choose_split(table, ["Marital_Status", "Plan"], "auto").column == "Marital_Status"
    assert choose_split(table, ["Plan"], "auto").column is None
    assert choose_split(table, ["Plan"], "auto", max_levels=9).column == "Plan"
    assert choose_split(table, categorical, None).column is None
