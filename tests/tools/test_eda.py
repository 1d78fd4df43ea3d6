"""python -m segexp.eda: one MLflow run holding every table and plot of the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, mall_data_cfg, run_cli
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from PIL import Image

from segexp.data import load_customers
from segexp.errors import ConfigError, DataError
from segexp.tools.eda import (
    bar_figure,
    boxplot_figure,
    eda,
    histogram_figure,
    iqr_outliers,
    missingness_figure,
    missingness_matrix,
    summary_table,
)
from segexp.tracking.leaderboard import format_markdown

MALL_ARTIFACTS = {
    "schema.json",
    "summary.csv",
    "summary.md",
    "correlation_pearson.csv",
    "correlation_spearman.csv",
    "plots/hist_age.png",
    "plots/hist_annual_income.png",
    "plots/hist_spending_score.png",
    "plots/bar_gender.png",
    "plots/scatter_matrix.png",
    "plots/boxplots.png",
    "plots/correlation_pearson.png",
    "plots/correlation_spearman.png",
    "plots/missingness.png",
}


def eda_config(overrides: list[str]):
    """conf/eda.yaml; no local folder unless the overrides name one (tests run in the repo)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("eda", overrides=["output=null", *overrides])


def all_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found |= all_artifacts(client, run_id, item.path)
        else:
            found.add(item.path)
    return found


@pytest.fixture
def blanked_csv(mall_csv, tmp_path):
    raw = pd.read_csv(mall_csv, dtype=str)
    raw.loc[[3, 40, 41], "Age"] = ""
    path = tmp_path / "blanked.csv"
    raw.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_eda_cli_logs_one_run_with_every_artifact(tmp_path, store, blanked_csv):
    result = run_cli(
        [f"data.path={blanked_csv}", f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
        module="segexp.eda",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segexp-customers")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    table = load_customers(mall_data_cfg(path=str(blanked_csv)))
    assert run.info.status == "FINISHED"
    assert run.data.tags["segexp.kind"] == "eda"
    assert run.data.tags["segexp.data_fingerprint"] == table.fingerprint
    assert all_artifacts(client, run.info.run_id) == MALL_ARTIFACTS
    frame = table.frame
    assert run.data.metrics["missing.age"] == 3
    assert run.data.metrics["missing_cells"] == 3
    assert run.data.metrics["outliers.annual_income"] == 2  # the two 137 k$ customers
    summary = pd.read_csv(client.download_artifacts(run.info.run_id, "summary.csv", str(tmp_path)))
    summary = summary.set_index("column")
    assert summary.loc["age", "missing"] == 3
    assert summary.loc["age", "mean"] == pytest.approx(frame["age"].mean())
    assert summary.loc["spending_score", "q75"] == pytest.approx(
        frame["spending_score"].quantile(0.75)
    )
    assert summary.loc["gender", "top"] == "Female"
    # the schema, not the data config's `auto` keys, decides the roles
    assert run.data.params["schema.numeric"] == "age,annual_income,spending_score"
    assert run.data.params["schema.categorical"] == "gender"
    assert run.data.params["schema.id"] == "customer_id"
    assert run.data.params["hue"] == "gender"
    screen = result.stdout[result.stdout.index("EDA of ") :].splitlines()
    assert "  roles      1 id, 3 numeric, 1 categorical, 0 date, 0 label, 0 excluded" in screen
    assert "  split by   gender (auto: gender)" in screen
    assert any(line.startswith("  missing    3 cells; most in age 3 (2%)") for line in screen)
    assert f"  MLflow run {run.info.run_id} in experiment 'segexp-customers'" in screen
    # the same files in the local folder the summary names
    assert "  saved in   eda-customers/ (figures in plots/, tables, schema)" in screen
    local = {
        str(p.relative_to(tmp_path / "eda-customers"))
        for p in (tmp_path / "eda-customers").rglob("*.*")
    }
    assert {p for p in local if p.startswith(("plots/", "summary"))} == {
        p for p in MALL_ARTIFACTS if p.startswith(("plots/", "summary"))
    }
    again = run_cli([f"data.path={blanked_csv}", f"mlflow.tracking_uri={store}"], cwd=tmp_path,
                    module="segexp.eda")  # fmt: skip
    assert again.returncode == 2
    assert "output=eda-customers: the folder exists; set overwrite=true" in again.stderr


def test_eda_of_a_transaction_log_logs_the_rfm_rules(store, tmp_path):
    run_id = eda(eda_config(["data=transactions_sample", f"mlflow.tracking_uri={store}"])).run_id
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    table = load_customers(eda_config(["data=transactions_sample"]).data)
    assert run.info.status == "FINISHED"
    assert run.data.tags["segexp.kind"] == "eda"
    assert run.data.tags["segexp.data_fingerprint"] == table.fingerprint
    assert run.data.tags["segexp.rfm.reference_date"] == table.tags["rfm.reference_date"]
    for name, value in table.notes.items():
        assert run.data.metrics[name] == value
    artifacts = all_artifacts(client, run_id)
    assert {f"plots/hist_{c}.png" for c in ("recency", "frequency", "monetary")} <= artifacts
    assert not any(a.startswith("plots/bar_") for a in artifacts)  # no categorical column
    corr = pd.read_csv(
        client.download_artifacts(run_id, "correlation_spearman.csv", str(tmp_path)),
        index_col=0,
    )
    expected = table.frame[list(corr.columns)].corr(method="spearman")
    np.testing.assert_allclose(corr.to_numpy(), expected.to_numpy())


def test_bad_data_stops_before_any_run(store, tmp_path):
    cfg = eda_config([f"data.path={tmp_path / 'nope.csv'}", f"mlflow.tracking_uri={store}"])
    with pytest.raises(DataError, match="file not found"):
        eda(cfg)
    client = MlflowClient(tracking_uri=store)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_unknown_hue_column_suggests_the_closest(store, mall_csv):
    cfg = eda_config([f"data.path={mall_csv}", "eda.hue=gendr", f"mlflow.tracking_uri={store}"])
    with pytest.raises(DataError, match="eda.hue names column 'gendr'.*did you mean 'gender'"):
        eda(cfg)


@pytest.mark.slow
def test_eda_cli_error_is_one_line_with_exit_code_2(tmp_path, store):
    result = run_cli(
        [f"data.path={tmp_path / 'missing.csv'}", f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
        module="segexp.eda",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert len(errors) == 1 and "missing.csv: file not found" in errors[0]
    assert "Traceback" not in result.stderr


def test_missingness_matrix_shows_absent_cells_as_gaps():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", None], "c": [1, 2, 3]})
    fig = missingness_figure(frame)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(shown, frame.notna().to_numpy().astype(np.uint8))
    tall = pd.DataFrame({"a": np.arange(10_000.0)})
    tall.loc[5_555, "a"] = np.nan
    blocks, size = missingness_matrix(tall, max_rows=2000)
    assert size == 5 and blocks.shape == (2000, 1)
    assert blocks[:, 0].tolist().count(0) == 1 and blocks[5_555 // 5, 0] == 0


def test_histograms_are_split_by_gender(mall_csv):
    frame = load_customers(mall_data_cfg(path=str(mall_csv))).frame
    fig = histogram_figure(frame, "age", "gender")
    bars = fig.axes[0].containers
    totals = {c.patches[0].get_label(): sum(p.get_height() for p in c.patches) for c in bars}
    assert totals == frame["gender"].value_counts().to_dict()


def test_box_plot_titles_count_tukey_outliers(mall_csv):
    frame = load_customers(mall_data_cfg(path=str(mall_csv))).frame
    columns = ["age", "annual_income", "spending_score"]
    fig = boxplot_figure(frame, columns, 1.5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"{iqr_outliers(frame[c])} outliers" for c in columns]
    income = frame["annual_income"]
    q1, q3 = income.quantile([0.25, 0.75])
    assert iqr_outliers(income) == int(
        ((income < q1 - 1.5 * (q3 - q1)) | (income > q3 + 1.5 * (q3 - q1))).sum()
    )


def test_summary_table_agrees_with_pandas(mall_csv):
    table = load_customers(mall_data_cfg(path=str(mall_csv)))
    summary = summary_table(table, ["age", "annual_income", "spending_score"]).set_index("column")
    described = table.frame[["age", "annual_income", "spending_score"]].describe()
    for column in described.columns:
        assert summary.loc[column, "std"] == pytest.approx(described.loc["std", column])
        assert summary.loc[column, "median"] == pytest.approx(described.loc["50%", column])
    assert summary.loc["customer_id", "role"] == "id"
    assert summary.loc["gender", "top_count"] == 112
    lines = format_markdown(summary.reset_index()).splitlines()
    assert len(lines) == 2 + len(summary)
    assert lines[0].startswith("| column | role |")


def test_figures_are_deck_quality_and_written_to_the_local_folder(store, tmp_path, mall_csv):
    folder = tmp_path / "eda-mall"
    overrides = [f"data.path={mall_csv}", f"mlflow.tracking_uri={store}", f"output={folder}"]
    report = eda(eda_config(overrides))
    assert report.folder == str(folder) and f"  saved in   {folder}/" in report.summary()
    pngs = sorted((folder / "plots").glob("*.png"))
    assert {p.name for p in pngs} == {p[len("plots/") :] for p in MALL_ARTIFACTS if "png" in p}
    for png in pngs:
        with Image.open(png) as image:
            assert image.size[0] >= 900, (png.name, image.size)
            assert round(image.info["dpi"][0]) == 150, png.name
    # the same files as the run holds
    client = MlflowClient(tracking_uri=store)
    assert all_artifacts(client, report.run_id) == {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
    }
    with pytest.raises(ConfigError, match="the folder exists; set overwrite=true"):
        eda(eda_config(overrides))
    assert (
        len(client.search_runs([client.get_experiment_by_name("segexp-customers").experiment_id]))
        == 1
    )
    (folder / "plots" / "old.png").write_bytes(b"x")
    eda(eda_config([*overrides, "overwrite=true"]))
    assert not (folder / "plots" / "old.png").exists()


def test_no_missing_cells_is_said_in_words():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    fig = missingness_figure(frame)
    assert not fig.axes  # no solid dark block
    words = " ".join(text.get_text() for text in fig.texts)
    assert "No missing cells" in words and "all 4 cells are filled (2 rows x 2 columns)" in words


def test_a_categorical_is_a_bar_chart_of_counts_and_shares(mall_csv):
    frame = load_customers(mall_data_cfg(path=str(mall_csv))).frame
    ax = bar_figure(frame, "gender").axes[0]
    widths = {
        t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)
    }
    assert widths == frame["gender"].value_counts().to_dict()
    shares = [t.get_text().strip() for t in ax.texts]
    assert shares[0] == f"112 ({112 / len(frame):.0%})"
