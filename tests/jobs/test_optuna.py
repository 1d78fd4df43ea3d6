"""Optuna (hydra-optuna-sweeper) as segexp's sweeper: trials are jobs under one parent run.

``hydra/sweeper=optuna`` replaces segexp's sweeper; the launcher stays segexp's, so
each trial is a job run under the sweep's parent run, and the task's return value
(``objective.metric`` of the run) is what Optuna optimises. ``hydra/sweeper=optuna_objective``
(src/segexp/conf/hydra/sweeper/) is the same sweeper with its direction taken from
``objective.direction``. The search space is given as an override of the app's config:
``'algo.eps=interval(0.15,0.6)'``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import compose_config, run_cli
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")

EXPERIMENT = "segexp-customers"
EPS_LOW, EPS_HIGH = 0.15, 0.6
SEED = "hydra.sweeper.sampler.seed=42"
DBSCAN_EPS = ["algo=dbscan", f"algo.eps=interval({EPS_LOW},{EPS_HIGH})"]


def _runs(store: str, kind: str):
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no experiment {EXPERIMENT} in {store}"
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`segexp.kind` = '{kind}'"
    )


def _output(result) -> str:
    return (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )


def test_optuna_objective_direction_follows_objective():
    cfg = compose_config(
        ["hydra/sweeper=optuna_objective", "objective.metric=davies_bouldin"]
        + ["objective.direction=minimize"]
    )
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "minimize"
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    # An explicit hydra.sweeper.direction still wins.
    cfg = compose_config(["hydra/sweeper=optuna_objective", "hydra.sweeper.direction=minimize"])
    assert cfg.objective.direction == "maximize"
    assert cfg.hydra.sweeper.direction == "minimize"


@pytest.mark.slow
@pytest.mark.parametrize(
    "sweeper",
    [
        ["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize"],
        ["hydra/sweeper=optuna_objective"],  # maximize: objective.direction's default
    ],
    ids=["optuna", "optuna_objective"],
)
def test_optuna_sweep_tunes_dbscan_eps(tmp_path: Path, store: str, mall_csv, sweeper):
    # Seeded TPE (its first 10 trials are random): eps 0.319, 0.578, 0.479, 0.419, each
    # with a defined silhouette. A trial whose silhouette is undefined (NaN) would stop
    # the whole sweep today (see test_undefined_objective_does_not_stop_the_sweep).
    result = run_cli(
        ["-m", *sweeper, "hydra.sweeper.n_trials=4", SEED]
        + [*DBSCAN_EPS, f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, _output(result)

    parents = _runs(store, "sweep")
    assert len(parents) == 1, _output(result)
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    artifacts = {
        a.path for a in MlflowClient(tracking_uri=store).list_artifacts(parent.info.run_id)
    }
    assert "leaderboard.csv" in artifacts

    jobs = _runs(store, "job")
    assert len(jobs) == 4, _output(result)
    for job in jobs:
        assert job.info.status == "FINISHED"
        assert job.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert job.data.params["algo"] == "dbscan"
        assert EPS_LOW <= float(job.data.params["algo.eps"]) <= EPS_HIGH
    assert len({job.data.params["algo.eps"] for job in jobs}) == 4

    # What Optuna optimised is the runs' silhouette: its best trial is the best run.
    (results_file,) = (tmp_path / "multirun").rglob("optimization_results.yaml")
    best = OmegaConf.load(results_file)
    best_run = max(jobs, key=lambda job: job.data.metrics["silhouette"])
    assert math.isclose(best.best_value, best_run.data.metrics["silhouette"])
    assert math.isclose(best.best_params["algo.eps"], float(best_run.data.params["algo.eps"]))


# A custom search space (hydra.sweeper.custom_search_space) that raises when Optuna
# configures the third trial: the sweeper raises in its second batch, after two jobs ran.
BOOM_MODULE = """
def space(cfg, trial):
    if trial.number >= 2:
        raise RuntimeError("boom: no third trial")
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["bad_direction", "grid_over_interval", "raises_mid_sweep"],
)
def test_optuna_sweeper_error_ends_parent_failed(tmp_path: Path, store: str, mall_csv, case):
    # Each of these composes fine and raises only inside OptunaSweeper.sweep(), after the
    # parent run was opened; Hydra then skips on_multirun_end and segexp ends the parent.
    extra, message, n_jobs = {
        # optuna.create_study: "Please set either 'minimize' or 'maximize' to direction"
        "bad_direction": (["hydra.sweeper.direction=sideways", SEED], "direction", 0),
        # the grid sampler (it has no seed) needs discrete distributions; an interval is not
        "grid_over_interval": (["hydra/sweeper/sampler=grid"], "discrete distributions", 0),
        "raises_mid_sweep": (
            ["hydra.sweeper.custom_search_space=optuna_boom.space", SEED],
            "boom: no third trial",
            2,
        ),
    }[case]
    # `python -m` puts the working folder on sys.path: the sweeper imports optuna_boom there.
    (tmp_path / "optuna_boom.py").write_text(BOOM_MODULE)
    result = run_cli(
        ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", *extra]
        + ["hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2"]
        + [*DBSCAN_EPS, f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
    )
    # Hydra reports the sweeper's exception and exits 1; segexp's main maps that to 2
    # (no sweep summary was reached). Only "non-zero" is the contract here.
    assert result.returncode != 0, _output(result)
    assert message in result.stderr, _output(result)

    parents = _runs(store, "sweep")
    assert len(parents) == 1, _output(result)
    parent = parents[0]
    assert parent.info.status == "FAILED"
    assert parent.info.end_time is not None
    assert "segexp.error" in parent.data.tags
    jobs = _runs(store, "job")
    assert len(jobs) == n_jobs
    for job in jobs:
        assert job.info.status == "FINISHED"
        assert job.data.tags["mlflow.parentRunId"] == parent.info.run_id


@pytest.mark.slow
def test_undefined_objective_does_not_stop_the_sweep(tmp_path: Path, store: str, mall_csv):
    # eps >= 4 on standardized income/spending: one segment, silhouette undefined.
    result = run_cli(
        ["-m", "hydra/sweeper=optuna_objective", "hydra.sweeper.n_trials=2"]
        + [SEED, "algo=dbscan", "algo.eps=interval(4.0,5.0)"]
        + [f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
    )
    (parent,) = _runs(store, "sweep")
    assert len(_runs(store, "job")) == 2
    assert parent.info.status == "FINISHED", _output(result)
    assert result.returncode == 0, _output(result)
    for job in _runs(store, "job"):  # the trials rank last; the runs say why they have no score
        assert "silhouette" not in job.data.metrics
        assert "segexp.undefined.silhouette" in job.data.tags
