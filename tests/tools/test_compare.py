"""segexp.compare and the leaderboard rules, on real runs in a real SQLite MLflow store.

Two sweeps are logged through segexp.runner.run_job (an older one and
the latest); results are read back with MlflowClient and compared with what the
leaderboard prints."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONF_DIR, PROJECT_DIR, compose_config, run_cli
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from threadpoolctl import threadpool_limits

from segexp.contract import TAG_KIND, TAG_SWEEP_ID, TAG_UNDEFINED_PREFIX
from segexp.errors import ConfigError, usage_error_line
from segexp.jobs.job import run_job, validate_inputs
from segexp.jobs.outcomes import SweepContext
from segexp.jobs.validation import check_tool_config
from segexp.model.evaluation import evaluate_run
from segexp.model.pipeline import fit_segmentation
from segexp.tools.compare import run_compare
from segexp.tracking.leaderboard import (
    EmptyLeaderboardError,
    LeaderboardFilters,
    build_leaderboard,
    runs_to_frame,
    select_best,
)
from segexp.tracking.store import Tracker

EXPERIMENT = "segexp-customers"
FAST = ["plots.enabled=false", "evaluation.stability.n_resamples=4"]
OLD_SWEEP = ["k=3", "k=4"]
LATEST_SWEEP = [
    ["k=3"],
    ["k=4"],
    ["k=5"],
    ["algo=gmm", "k=5"],
    ["scaler=minmax", "k=5"],
    ["features=age_spending", "k=4"],
    ["algo=dbscan", "algo.eps=0.3"],
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tables fit faster on one BLAS/OpenMP thread, as the runner fits them."""
    with threadpool_limits(limits=1):
        yield


def _ensure_evaluated(tracker: Tracker, cfg, run_id: str) -> None:
    """Log evaluate_run's metrics on a run when the runner did not (before integration)."""
    run = tracker.client.get_run(run_id)
    if "stability" in run.data.metrics or "ref_silhouette" in run.data.metrics:
        return
    spec, table = validate_inputs(cfg)
    with threadpool_limits(limits=1):  # module fixtures run outside _one_thread
        fitted = fit_segmentation(
            table.frame,
            spec.columns,
            cfg.data.categorical or [],
            cfg.preprocess,
            cfg.scaler,
            cfg.algo,
        )
        result = evaluate_run(table, fitted, cfg, figures=False)
    tags = {TAG_UNDEFINED_PREFIX + name: reason for name, reason in result.undefined.items()}
    tracker.log(run_id, metrics=result.values, tags=tags)


def _log_sweep(uri: str, sweep_id: str, jobs: list[list[str]], state_dir: Path) -> str:
    tracker = Tracker(uri)
    experiment_id = tracker.experiment_id(EXPERIMENT)
    parent = tracker.start_run(
        experiment_id, f"sweep-{sweep_id}", {TAG_KIND: "sweep", TAG_SWEEP_ID: sweep_id}
    )
    state = SweepContext(sweep_id, uri, experiment_id, parent)
    for num, overrides in enumerate(jobs):
        cfg = compose_config([*overrides, f"mlflow.tracking_uri={uri}", *FAST])
        outcome = run_job(cfg, sweep=state, job_num=num)
        assert outcome.status == "finished", outcome.message
        _ensure_evaluated(tracker, cfg, outcome.run_id)
    tracker.end_run(parent)
    return parent


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, _template_store):
    folder = tmp_path_factory.mktemp("compare-store")
    shutil.copy(_template_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    old_parent = _log_sweep(uri, "old-sweep", [[o] for o in OLD_SWEEP], folder / "old")
    latest_parent = _log_sweep(uri, "latest-sweep", LATEST_SWEEP, folder / "latest")
    return {"uri": uri, "old_parent": old_parent, "latest_parent": latest_parent}


def job_frame(uri: str, sweep_id: str | None = None) -> pd.DataFrame:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    query = f"tags.`{TAG_KIND}` = 'job'"
    if sweep_id:
        query += f" and tags.`{TAG_SWEEP_ID}` = '{sweep_id}'"
    return runs_to_frame(client.search_runs([experiment.experiment_id], query))


def compare(uri: str, *overrides: str) -> tuple[int, str, str]:
    given = [f"mlflow.tracking_uri={uri}", *overrides]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("compare", overrides=given)
    except Exception as exc:  # a wrong type: the schema refuses it while composing, as the
        return 2, "", usage_error_line(exc, "compare", given) + "\n"  # command says it
    try:  # bounds and choices: checked before the tool runs, as segexp-compare does
        check_tool_config("compare", cfg)
    except ConfigError as exc:
        return 2, "", f"segexp: error: {exc}\n"
    out, err = io.StringIO(), io.StringIO()
    code = run_compare(cfg, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def csv_rows(uri: str, *overrides: str) -> pd.DataFrame:
    code, out, err = compare(uri, "format=csv", "top=null", *overrides)
    assert code == 0, err
    return pd.read_csv(io.StringIO(out))


# ------------------------------------------------------------------ ranking


def test_default_is_the_latest_sweep_ranked_by_silhouette_descending(sweeps):
    ranked = csv_rows(sweeps["uri"])
    expected = job_frame(sweeps["uri"], "latest-sweep").sort_values("silhouette", ascending=False)
    expected = expected[expected["noise_fraction"] <= 0.1]  # the noise rule: DBSCAN left out
    assert ranked["run_id"].tolist() == expected["run_id"].tolist()
    assert ranked["silhouette"].tolist() == pytest.approx(expected["silhouette"].tolist())
    assert ranked["rank"].tolist() == list(range(1, len(LATEST_SWEEP)))
    assert set(ranked["sweep_id"]) == {"latest-sweep"}


@pytest.mark.parametrize(
    ("metric", "ascending"),
    [("davies_bouldin", True), ("inertia", True), ("stability", False), ("ari", False)],
)
def test_metrics_rank_in_their_natural_direction(sweeps, metric, ascending):
    ranked = csv_rows(sweeps["uri"], f"metric={metric}")
    values = ranked[metric].dropna().tolist()
    assert len(values) >= 5
    assert values == sorted(values, reverse=not ascending)
    assert values[0] == (min(values) if ascending else max(values))


def test_direction_override_and_unknown_metric_direction(sweeps):
    ranked = csv_rows(sweeps["uri"], "metric=silhouette", "direction=min")
    assert ranked["silhouette"].is_monotonic_increasing
    ranked = csv_rows(sweeps["uri"], "metric=n_customers", "direction=max")
    assert (ranked["n_customers"] == 200).all()
    code, out, err = compare(sweeps["uri"], "metric=n_customers")
    assert code == 2 and out == ""
    assert "metric=n_customers: no known ranking direction" in err
    assert "direction=max or direction=min" in err


def test_a_metric_no_run_logged_is_a_one_line_error_with_a_hint(sweeps):
    code, out, err = compare(sweeps["uri"], "metric=silhouete", "direction=max")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "metric=silhouete: no run of sweep latest-sweep" in err
    assert "did you mean 'silhouette'?" in err


def test_top_ranked_sample_configuration_recovers_the_generating_segments(sweeps):
    ranked = csv_rows(sweeps["uri"], "filter.algo=[kmeans,gmm]")
    top = ranked.iloc[0]
    assert top["k"] == 5
    assert top["ari"] >= 0.9
    run = MlflowClient(tracking_uri=sweeps["uri"]).get_run(top["run_id"])
    assert run.data.metrics["ari"] == pytest.approx(top["ari"])


def test_own_space_metric_across_scalers_gets_a_fairness_note(sweeps):
    code, _, err = compare(sweeps["uri"], "metric=silhouette")
    assert code == 0
    assert "rank by metric=ref_silhouette to compare them fairly" in err
    code, _, err = compare(sweeps["uri"], "metric=ref_silhouette")
    assert code == 0 and err == ""


# ------------------------------------------------------------------ filters


def test_filters_match_pandas_on_the_same_runs(sweeps):
    frame = job_frame(sweeps["uri"], "latest-sweep")
    cases = {
        ("filter.algo=kmeans",): frame["algo"] == "kmeans",
        ("filter.algo=[kmeans,gmm]",): frame["algo"].isin(["kmeans", "gmm"]),
        ("filter.scaler=minmax",): frame["scaler"] == "minmax",
        ("filter.features=age_spending",): frame["features"] == "age_spending",
        ("filter.k_min=4", "filter.k_max=5"): frame["k"].between(4, 5),
        ("filter.min_segment_share=0.15",): frame["min_segment_share"] >= 0.15,
        ("filter.min_stability=0.95",): frame["stability"] >= 0.95,
    }
    fair = frame["noise_fraction"] <= 0.1  # the default noise rule applies to every filter
    for overrides, mask in cases.items():
        expected = set(frame.loc[(mask & fair).fillna(False).astype(bool), "run_id"])
        assert 0 < len(expected) < len(frame), overrides
        assert set(csv_rows(sweeps["uri"], *overrides)["run_id"]) == expected, overrides


def test_k_range_filter_drops_runs_without_k(sweeps):
    ranked = csv_rows(sweeps["uri"], "filter.k_min=2")
    assert "dbscan" not in set(ranked["algo"])


def test_scope_experiment_and_an_older_sweep_by_id_or_parent_run(sweeps):
    everything = csv_rows(sweeps["uri"], "scope=experiment", "filter.max_noise_fraction=1.0")
    assert len(everything) == len(OLD_SWEEP) + len(LATEST_SWEEP)
    by_id = csv_rows(sweeps["uri"], "sweep_id=old-sweep")
    by_parent = csv_rows(sweeps["uri"], f"sweep_id={sweeps['old_parent']}")
    assert sorted(by_id["k"]) == [3, 4]
    assert by_id["run_id"].tolist() == by_parent["run_id"].tolist()


# ------------------------------------------------------------------ empty and errors


def test_no_run_passing_the_filters_is_a_clear_message_exit_1(sweeps):
    code, out, err = compare(sweeps["uri"], "filter.algo=spectral", "filter.k_min=3")
    assert code == 1 and out == ""
    assert err.startswith("segexp: nothing to rank: none of the 7 runs of sweep latest-sweep")
    assert "(filter.algo=spectral filter.k_min=3 filter.status=FINISHED)" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_store_experiment_and_sweep_are_reported(sweeps, tmp_path, store):
    code, _, err = compare(f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "no MLflow store at" in err and "run a sweep first" in err
    assert not (tmp_path / "none.db").exists()

    code, _, err = compare(store)
    assert code == 2 and "no experiment named 'segexp-customers'" in err

    code, _, err = compare(sweeps["uri"], "sweep_id=nope")
    assert code == 2 and "sweep_id=nope: no sweep with this id or parent run id" in err

    Tracker(store).experiment_id(EXPERIMENT)
    code, _, err = compare(store)
    assert code == 1 and "has no sweep" in err and "scope=experiment" in err


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("filter.k_min=three", ["filter.k_min: an integer >= 1 or null", "'three'"]),
        ("format=html", ["format: one of 'table', 'csv', 'markdown' or null", "'html'"]),
        ("scope=all", ["scope: one of 'sweep', 'experiment'", "'all'"]),
        ("direction=up", ["direction: one of 'auto', 'max', 'min'", "'up'"]),
        ("top=0", ["top: an integer >= 1 or null; got 0"]),
    ],
)
def test_bad_values_are_one_line_errors(sweeps, override, fragments):
    code, out, err = compare(sweeps["uri"], override)
    assert code == 2 and out == ""
    assert err.startswith("segexp: error: ") and err.count("\n") == 1
    for fragment in fragments:
        assert fragment in err


# ------------------------------------------------------------------ output formats


def test_table_output_is_readable_and_limited_by_top(sweeps):
    code, out, _ = compare(sweeps["uri"], "top=3")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("sweep latest-sweep (parent run ")
    assert (
        "6 runs (filter.status=FINISHED), showing 3, ranked by silhouette (larger is better); "
        "1 run left out: more than 10% of customers not assigned" in lines[0]
    )
    header = lines[1].split()
    assert header[:6] == ["rank", "run_name", "algo", "k", "scaler", "features"]
    assert "ref_silhouette" in header and "stability" in header and header[-1] == "run_id"
    assert len(lines) == 2 + 1 + 3  # heading, header, rule, three runs


def test_csv_file_holds_the_ranked_runs_with_mlflow_values(sweeps, tmp_path):
    target = tmp_path / "out" / "leaderboard.csv"
    code, out, _ = compare(sweeps["uri"], f"output={target}", "metric=ref_silhouette")
    assert code == 0 and str(target) in out
    written = pd.read_csv(target)
    client = MlflowClient(tracking_uri=sweeps["uri"])
    for _, row in written.iterrows():
        metrics = client.get_run(row["run_id"]).data.metrics
        assert row["ref_silhouette"] == pytest.approx(metrics["ref_silhouette"])
    assert written["ref_silhouette"].is_monotonic_decreasing
    assert {"run_name", "algo", "k", "scaler", "features", "seed"} <= set(written.columns)


def test_markdown_output_is_a_pipe_table(sweeps, tmp_path):
    code, out, _ = compare(sweeps["uri"], "format=markdown", "filter.algo=kmeans")
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].startswith("| rank | run_name | algo | k | scaler | features |")
    assert set(lines[1]) <= set("|-:") and "---:" in lines[1]
    assert len(lines) == 2 + 5  # the kmeans runs of the latest sweep
    assert len({line.count("|") for line in lines}) == 1  # every row has every cell
    code, extra, _ = compare(sweeps["uri"], "format=markdown", "columns=[inertia,seed]")
    assert code == 0 and "| inertia | seed |" in extra.splitlines()[0]
    target = tmp_path / "board.md"
    assert compare(sweeps["uri"], f"output={target}", "filter.algo=kmeans")[0] == 0
    assert target.read_text().strip() == out.strip()


# ------------------------------------------------------------------ the best rule


def test_select_best_is_rank_one_among_runs_with_the_metric(sweeps):
    frame = job_frame(sweeps["uri"])
    best = select_best(frame, "ref_silhouette")
    assert best["ref_silhouette"] == frame["ref_silhouette"].max()
    stable = select_best(frame, "silhouette", LeaderboardFilters(algo=("gmm",)))
    assert stable["algo"] == "gmm"
    with pytest.raises(EmptyLeaderboardError) as caught:
        select_best(frame, "silhouette", LeaderboardFilters(min_stability=1.5))
    assert "no run with metric 'silhouette' passes the filters (min_stability=1.5" in str(
        caught.value
    )


def test_ties_go_to_the_more_stable_then_the_smaller_segmentation():
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "status": ["FINISHED"] * 4,
            "silhouette": [0.5, 0.5, 0.5, 0.4],
            "stability": [0.8, 0.9, 0.9, 1.0],
            "n_clusters": [4.0, 6.0, 5.0, 5.0],
        }
    )
    assert build_leaderboard(frame, "silhouette")["run_id"].tolist() == ["c", "b", "a", "d"]
    assert select_best(frame, "silhouette")["run_id"] == "c"
    with pytest.raises(ConfigError):
        build_leaderboard(frame, "silhouette", direction="sideways")


# ------------------------------------------------------------------ the command line


@pytest.mark.slow
def test_cli_prints_markdown_and_reports_empty_results(sweeps, tmp_path):
    done = run_cli(
        [f"mlflow.tracking_uri={sweeps['uri']}", "format=markdown", "metric=stability"],
        cwd=tmp_path,
        module="segexp.compare",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("| rank | run_name |")
    assert not any(tmp_path.iterdir())  # no Hydra output folders
    empty = run_cli(
        [f"mlflow.tracking_uri={sweeps['uri']}", "filter.k_min=99"],
        cwd=PROJECT_DIR,
        module="segexp.compare",
    )
    assert empty.returncode == 1
    assert empty.stdout == ""
    assert empty.stderr.strip().startswith("segexp: nothing to rank:")
    assert "Traceback" not in empty.stderr and empty.stderr.count("\n") == 1


# ------------------------------------------------------------------ the noise rule


def test_compare_leaves_the_noisy_run_out_and_says_how_many_and_why(sweeps):
    frame = job_frame(sweeps["uri"], "latest-sweep")
    noisy = frame.loc[frame["noise_fraction"] > 0.1, "run_id"].tolist()
    assert len(noisy) == 1  # dbscan eps=0.3 leaves 14.5% of the sample unassigned
    code, out, err = compare(sweeps["uri"], "format=csv", "top=null", "metric=ref_silhouette")
    assert code == 0 and noisy[0] not in out
    assert err == (  # CSV on standard output stays parseable: the note is on stderr
        "segexp: note: 1 run left out: more than 10% of customers not assigned "
        "(filter.max_noise_fraction=0.1); filter.max_noise_fraction=1.0 ranks them too\n"
    )
    every = csv_rows(sweeps["uri"], "filter.max_noise_fraction=1.0")
    assert len(every) == len(LATEST_SWEEP) and noisy[0] in set(every["run_id"])
    assert "left_out" not in every.columns
    code, out, _ = compare(sweeps["uri"], "filter.max_noise_fraction=1.0")
    assert "filter.max_noise_fraction=1)" in out.splitlines()[0] and "left out" not in out


def test_noisy_runs_follow_the_ranked_ones_without_a_rank_and_are_never_best():
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "status": ["FINISHED"] * 3,
            "silhouette": [0.7, 0.6, 0.5],
            "noise_fraction": [0.145, 0.0, 0.1],  # exactly 10% passes
        }
    )
    board = build_leaderboard(frame, "silhouette", LeaderboardFilters(status=None))
    assert board["run_id"].tolist() == ["b", "c", "a"]
    assert board["rank"].tolist()[:2] == [1, 2] and pd.isna(board["rank"].iloc[2])
    assert board["left_out"].tolist() == [
        "",
        "",
        "more than 10% of customers not assigned (max_noise_fraction=0.1)",
    ]
    assert select_best(frame, "silhouette")["run_id"] == "b"
    assert (
        select_best(frame, "silhouette", LeaderboardFilters(max_noise_fraction=1.0))["run_id"]
        == "a"
    )
    assert (
        select_best(frame, "silhouette", LeaderboardFilters(max_noise_fraction=None))["run_id"]
        == "a"
    )
    with pytest.raises(EmptyLeaderboardError) as caught:
        select_best(frame.iloc[:1], "silhouette", prefix="filter.")
    message = str(caught.value)
    assert "1 run left out: more than 10% of customers not assigned" in message
    assert "filter.max_noise_fraction=1.0 allows them" in message


@pytest.mark.parametrize("value", ["1.5", "-0.1", "lots"])
def test_a_bad_noise_limit_is_a_one_line_error(sweeps, value):
    code, out, err = compare(sweeps["uri"], f"filter.max_noise_fraction={value}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("segexp: error: filter.max_noise_fraction: ")
    assert "from 0 to 1" in err or "expected a share" in err


def test_choosing_k_leaves_noisy_runs_out_too():
    from segexp.model.selection import select_k

    rows = pd.DataFrame(
        {
            "k": [3, 4, 5],
            "silhouette": [0.5, 0.6, 0.9],
            "davies_bouldin": [0.9, 0.8, 0.2],
            "noise_fraction": [0.0, 0.05, 0.3],
        }
    )
    assert select_k(rows).recommended["silhouette"] == 4
    assert select_k(rows).recommended["davies_bouldin"] == 4
    assert select_k(rows, max_noise_fraction=1.0).recommended["silhouette"] == 5
    noisy = select_k(rows.assign(noise_fraction=0.5))
    assert noisy.recommended == {}
    assert noisy.undefined["silhouette"] == (
        "every run has more than 10% of customers not assigned (max_noise_fraction=0.1)"
    )
