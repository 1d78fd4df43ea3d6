"""The Python API: segexp.run and segexp.sweep log what the command line logs."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import run_cli
from mlflow.tracking import MlflowClient

import segexp
from segexp.errors import ConfigError, DataError, RunFailed

SWEEP = ["algo=kmeans,gmm", "k=3..4", "evaluation.stability.n_resamples=2"]


def _job_runs(store: str) -> list:
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string="tags.`segexp.kind` = 'job'")


def test_run_returns_the_logged_run_with_labels_and_profile(tmp_path, store, mall_csv):
    result = segexp.run(data=mall_csv, overrides=["k=4", f"mlflow.tracking_uri={store}"])
    run = MlflowClient(tracking_uri=store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert result.run_name == run.info.run_name == "kmeans-k4-standard-income_spending"
    assert result.metrics == run.data.metrics
    assert len(result.labels) == 200 and result.labels.index[0] == "0001"
    assert sorted(result.labels.unique()) == [0, 1, 2, 3]
    assert list(result.profile.index) == [0, 1, 2, 3]
    assert result.profile["size"].sum() == 200
    counts = result.labels.value_counts().sort_index()
    assert counts.tolist() == result.profile["size"].tolist()


def test_run_of_a_bad_config_raises_with_the_exit_code(store):
    with pytest.raises(RunFailed) as caught:
        segexp.run(overrides=["features.columns=[nosuch]", f"mlflow.tracking_uri={store}"])
    assert caught.value.exit_code == 2
    assert "nosuch" in str(caught.value)
    assert _job_runs(store) == []


def test_each_refused_call_raises_its_own_message(store):
    """Refusals before any job (a range without -m, an unknown key, a sweep over
    limits.max_jobs) carry their own line, never the previous call's."""
    uri = f"mlflow.tracking_uri={store}"
    expected = {
        ("seed=abc",): "seed: an integer from 0 to 4294967295; got 'abc'",
        ("k=3..8",): "k=3..8: a range runs one job per value, which is a sweep: add -m",
        ("+data.foo=1",): "data.foo: no such config key",
        ("algo=nosuch",): "algo=nosuch: no such option",
    }
    for overrides, words in expected.items():
        with pytest.raises(RunFailed) as caught:
            segexp.run(overrides=[*overrides, uri])
        assert caught.value.exit_code == 2
        assert words in str(caught.value), (overrides, str(caught.value))
    with pytest.raises(RunFailed) as caught:
        segexp.sweep(overrides=["k=1..2000", uri])
    assert "a sweep of at most 1000 jobs" in str(caught.value) and "got 2000 jobs" in str(
        caught.value
    )
    with pytest.raises(RunFailed) as caught:
        segexp.sweep(overrides=["k=3,4", "seed=abc", uri])
    # refused by the schema while composing, before any job exists
    assert (
        str(caught.value)
        == "segexp.sweep: exit code 2: seed: an integer from 0 to 4294967295; got 'abc'"
    )
    assert _job_runs(store) == []


def test_a_list_of_options_is_refused_with_the_tuple_that_sweeps_them(store):
    """``algo=["kmeans", "gmm"]`` is a list value (Hydra merges both files), not a sweep and
    not a removed group: the refusal shows the tuple that sweeps them."""
    tracking = {"mlflow": {"tracking_uri": store}}
    with pytest.raises(RunFailed) as caught:
        segexp.sweep(algo=["kmeans", "gmm"], k=range(3, 5), **tracking)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "algo: one option per job" in message and "got a list" in message
    assert "segexp.sweep: algo=('kmeans', 'gmm')" in message and "removed" not in message
    assert _job_runs(store) == []


@pytest.mark.slow
def test_sweep_on_a_dataframe_logs_what_the_cli_sweep_logs(tmp_path, mall_csv, _template_store):
    import shutil

    api_db, cli_db = tmp_path / "api.db", tmp_path / "cli.db"
    shutil.copy(_template_store, api_db)
    shutil.copy(_template_store, cli_db)
    api_store, cli_store = f"sqlite:///{api_db}", f"sqlite:///{cli_db}"
    frame = pd.read_csv(mall_csv, dtype={"CustomerID": str})
    board = segexp.sweep(data=frame, overrides=[*SWEEP, f"mlflow.tracking_uri={api_store}"])
    result = run_cli(
        ["-m", *SWEEP, f"data.path={mall_csv}", f"mlflow.tracking_uri={cli_store}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr

    assert len(board) == 4 and (board["status"] == "FINISHED").all()
    assert board["silhouette"].is_monotonic_decreasing
    assert board.attrs["parent_run_id"]
    api_runs = {r.info.run_name: r for r in _job_runs(api_store)}
    cli_runs = {r.info.run_name: r for r in _job_runs(cli_store)}
    assert set(api_runs) == set(cli_runs) == set(board["run_name"])
    assert set(api_runs) == {
        f"{a}-k{k}-standard-income_spending" for a in ("kmeans", "gmm") for k in (3, 4)
    }
    for name, api_run in api_runs.items():
        cli_run = cli_runs[name]
        # the same data (same fingerprint), named by its source: a DataFrame or the file
        assert api_run.data.params.pop("data") == "DataFrame"
        assert cli_run.data.params.pop("data") == str(mall_csv)
        assert api_run.data.params == cli_run.data.params
        assert set(api_run.data.metrics) == set(cli_run.data.metrics)
        assert api_run.data.metrics["silhouette"] == pytest.approx(
            cli_run.data.metrics["silhouette"], abs=1e-12
        )
        same_tags = {"segexp.kind", "segexp.data_fingerprint", "segexp.config_key"}
        for tag in same_tags:
            assert api_run.data.tags[tag] == cli_run.data.tags[tag], tag
        assert set(api_run.data.tags) == set(cli_run.data.tags)
        client_api, client_cli = MlflowClient(api_store), MlflowClient(cli_store)
        assert _artifacts(client_api, api_run.info.run_id) == _artifacts(
            client_cli, cli_run.info.run_id
        )


def _artifacts(client, run_id, path=None) -> set[str]:
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


# --------------------------------------------------------------- keyword settings (issue 24.5)


def test_keywords_become_the_command_lines_overrides():
    from segexp.notebook import keyword_overrides

    assert keyword_overrides(
        {
            "algo": "dbscan",
            "algo__eps": 0.3,
            "features": ["age", "annual income"],
            "plots": {"enabled": False, "dpi": 150},
            "preprocess__log1p": [],
            "seed": None,
        }
    ) == [
        "algo=dbscan",
        "algo.eps=0.3",
        "features.columns=[age,'annual income']",
        "plots.enabled=false",
        "plots.dpi=150",
        "preprocess.log1p=[]",
        "seed=null",
    ]
    swept = {"algo": ("kmeans", "gmm"), "k": range(3, 6), "features": (["a", "b"], ["c"])}
    assert keyword_overrides(swept, sweep=True) == [
        "algo=kmeans,gmm",
        "k=3,4,5",
        "features.columns=[a,b],[c]",
    ]
    assert keyword_overrides({"k": "3..8"}, sweep=True) == ["k=3..8"]  # command-line text
    with pytest.raises(ConfigError, match=r"k=range\(3, 5\): several values are a sweep"):
        keyword_overrides({"k": range(3, 5)})


def test_help_shows_the_real_signature_and_import_stays_light():
    import inspect
    import subprocess
    import sys

    parameters = inspect.signature(segexp.run).parameters
    assert {"data", "overrides", "algo", "k", "features", "scaler", "settings"} <= set(parameters)
    assert "algo__eps=0.3" in segexp.run.__doc__ and "predict(frame)" in segexp.run.__doc__
    assert "range(3, 9)" in segexp.sweep.__doc__
    assert segexp.run.__module__ == "segexp.notebook"
    code = "import sys, segexp; print(sorted({'mlflow', 'sklearn', 'hydra'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_run_with_keywords_predicts_shows_figures_and_reports(store, mall_csv):
    from matplotlib.figure import Figure

    frame = pd.read_csv(mall_csv, dtype={"CustomerID": str})
    result = segexp.run(frame, algo="gmm", k=4, mlflow__tracking_uri=store)
    assert result.run_name == "gmm-k4-standard-income_spending"
    assert result.params["k"] == "4" and result.params["data"] == "DataFrame"

    # the training customers get the segments the run gave them (gmm predicts by itself)
    scored = result.predict(frame)
    assert list(scored.columns) == [*frame.columns, "segment", "segment_name"]
    assert scored["segment"].tolist() == result.labels.tolist()
    names = result.profile["name"].to_dict()
    new = pd.DataFrame({"Annual Income (k$)": [20, 120], "Spending Score (1-100)": [85, 15]})
    assigned = result.predict(new)
    assert assigned["segment"].tolist() == scored["segment"].iloc[[_nearest(frame, 20, 85),
        _nearest(frame, 120, 15)]].tolist()  # fmt: skip
    assert assigned["segment_name"].tolist() == [names[s] for s in assigned["segment"]]
    with pytest.raises(DataError, match=r"index 1: annual_income: 'lots' is not a number"):
        result.predict(pd.DataFrame({"annual_income": [50, "lots"], "spending_score": [5, 5]}))

    figures = result.figures
    assert set(figures) == {"segments", "silhouette", "profile_heatmap", "snake"}
    assert all(isinstance(f, Figure) for f in figures.values())
    segments = figures["segments"]
    assert segments.get_size_inches()[0] * segments.dpi >= 900  # shown at the PNG's own size

    html = result.report_html()
    assert html.lstrip().lower().startswith("<!doctype html") and result.run_id in html
    client = MlflowClient(tracking_uri=store)
    assert client.list_artifacts(result.run_id, "report") == []  # nothing logged


def _nearest(frame: pd.DataFrame, income: float, spending: float) -> int:
    """Row of the customer closest to a new one (both far from any segment border)."""
    distance = (frame["Annual Income (k$)"] - income) ** 2 + (
        frame["Spending Score (1-100)"] - spending
    ) ** 2
    return int(distance.to_numpy().argmin())


def test_sweep_with_keywords_returns_the_leaderboard_and_prints_no_commands(store, capsys):
    board = segexp.sweep(
        algo=("kmeans", "gmm"),
        k=(3, 4),
        evaluation__stability__n_resamples=2,
        mlflow__tracking_uri=store,
    )
    assert len(board) == 4 and (board["status"] == "FINISHED").all()
    assert set(board["algo"]) == {"kmeans", "gmm"} and set(board["k"].astype(int)) == {3, 4}
    printed = capsys.readouterr()
    for command in ("segexp-compare", "segexp-promote", "mlflow ui", "Next:"):
        assert command not in printed.out + printed.err
    assert f"runs go to {store}" in printed.out
