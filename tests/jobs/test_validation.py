"""segexp.jobs.validation and the schema (segexp.conf.schema): OmegaConf's refusals as one
line, the bounds a type cannot say, scikit-learn's own hyperparameter checks, the sweep
limit and the neighbour-memory estimate (no MLflow, no subprocess)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from segexp.errors import ConfigError, usage_error_line
from segexp.jobs import job, validation
from segexp.jobs.ranges import expand_argv


@pytest.fixture(scope="module")
def make():
    with initialize_config_module("segexp.conf", version_base="1.3"):

        def build(overrides=(), name="config"):
            return compose(name, overrides=list(overrides))

        yield build


def refusal(cfg, name="config") -> str:
    with pytest.raises(ConfigError) as raised:
        if name == "config":
            validation.check_job_config(cfg)
        else:
            validation.check_tool_config(name, cfg)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "name", ["config", "compare", "predict", "promote", "report", "eda", "rerun"]
)
def test_packaged_configs_pass(make, name):
    cfg = make(name=name)
    if name == "config":
        validation.check_job_config(cfg)
    else:
        validation.check_tool_config(name, cfg)


ALGOS = sorted(
    p.stem for p in (Path(validation.__file__).parents[1] / "conf" / "algo").glob("*.yaml")
)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_packaged_algorithm_passes(make, algo):
    validation.check_job_config(make([f"algo={algo}"]))


def composition_refusal(make, overrides) -> str:
    """The one line for a config OmegaConf refuses while Hydra composes it (a wrong type)."""
    with pytest.raises(Exception) as raised:
        make(overrides)
    line = usage_error_line(raised.value, "config", overrides)
    assert "\n" not in line
    return line.removeprefix("segexp: error: ")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["seed=abc"], "seed: an integer from 0 to 4294967295; got 'abc'"),
        (["seed=1.5"], "seed: an integer from 0 to 4294967295; got 1.5"),
        (["limits.threads=abc"], "limits.threads: an integer >= 1 or null; got 'abc'"),
        (["plots.enabled=maybe"], "plots.enabled: true or false; got 'maybe'"),
        (["k=abc"], "k: an integer >= 2; got 'abc'"),
        (
            ["limits=3"],
            "limits: a section with the keys max_rows_quadratic, threads, "
            "single_thread_below_rows, max_jobs, max_neighbour_memory_mb; got 3",
        ),
        (["seed=null"], "seed: an integer from 0 to 4294967295; got null"),
        (
            ["data.aliases=abc"],
            "data.aliases: column names with the file headers they go by, such as "
            "{income: [Annual Income]}; got 'abc'",
        ),
        (
            ["preprocess.winsor_limits=abc"],
            "preprocess.winsor_limits: a list like [a,b]; got 'abc'",
        ),
    ],
)
def test_wrong_type_is_refused_by_omegaconf_in_one_line(make, overrides, message):
    assert composition_refusal(make, overrides) == message


def _with_user_conf(conf: Path, build):
    """``build()`` inside a Hydra initialised with ``conf`` as the user's folder (the
    module's fixture holds Hydra: put back after)."""
    held = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    previous = os.environ.get("SEGEXP_CONF_DIR")
    os.environ["SEGEXP_CONF_DIR"] = str(conf)
    try:
        with initialize_config_module("segexp.conf", version_base="1.3"):
            return build()
    finally:
        if previous is None:
            os.environ.pop("SEGEXP_CONF_DIR")
        else:
            os.environ["SEGEXP_CONF_DIR"] = previous
        GlobalHydra.instance().clear()
        GlobalHydra.instance().initialize(held)


def test_user_option_file_gets_the_group_schema(tmp_path):
    """A user's own conf/data file is typed by the data group's schema while composing."""
    bank = tmp_path / "conf" / "data" / "bank.yaml"
    bank.parent.mkdir(parents=True)

    def compose_bank():
        bank.write_text("name: bank\nid_colum: cust\n")
        with pytest.raises(Exception) as raised:
            compose("config", overrides=["data=bank"])
        bank.write_text("name: bank\nid_column: cust\n")
        assert compose("config", overrides=["data=bank"]).data.id_column == "cust"
        return raised.value

    line = usage_error_line(_with_user_conf(tmp_path / "conf", compose_bank), "config")
    assert line.startswith("segexp: error: data.id_colum: no such config key (did you mean ")
    assert "data.id_column?); available under data: name, path" in line


def test_user_primary_config_without_the_schema_is_checked_against_it(tmp_path):
    """A user's own conf/config.yaml that does not list config_schema: its values are
    merged onto the schema when checked, so the same refusals come."""
    packaged = Path(validation.__file__).parents[1] / "conf" / "config.yaml"
    text = "\n".join(line for line in packaged.read_text().splitlines() if "_schema" not in line)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(text)

    def messages():
        found = []
        for overrides in (["seed=abc"], ["+foo=1"], ["plots.dpi=0"]):
            cfg = compose("config", overrides=overrides)
            with pytest.raises(ConfigError) as raised:
                validation.check_job_config(cfg)
            found.append(str(raised.value))
        validation.check_job_config(compose("config"))
        return found

    seed, foo, dpi = _with_user_conf(tmp_path / "conf", messages)
    assert seed == "seed: an integer from 0 to 4294967295; got 'abc'"
    assert foo.startswith("foo: no such config key; available: data, features")
    assert dpi == "plots.dpi: an integer from 20 to 1200; got 0"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["algo=dbscan", "algo.eps=-1"],
            "algo.eps: must be a float in the range (0.0, inf); got -1 (scikit-learn's DBSCAN)",
        ),
        (
            ["algo=dbscan", "algo.min_samples=0"],
            "algo.min_samples: must be an int in the range [1, inf); got 0 (scikit-learn's DBSCAN)",
        ),
        (["seed=-1"], "seed: an integer from 0 to 4294967295; got -1"),
        (["plots.dpi=0"], "plots.dpi: an integer from 20 to 1200; got 0"),
        (["limits.threads=0"], "limits.threads: an integer >= 1 or null; got 0"),
        (["metrics.silhouette_max_rows=0"], "metrics.silhouette_max_rows: an integer >= 2; got 0"),
        (
            ["~k"],  # the command line's words (the config is resolved before the schema)
            "k: the command removed it (~k), and algo.n_clusters refers to it (${k}); keep k",
        ),
        (
            ["limits.max_neighbour_memory_mb=-5"],
            "limits.max_neighbour_memory_mb: a number > 0; got -5",
        ),
        (
            ["+limits.foo=1"],
            "limits.foo: no such config key; available under limits: "
            "max_rows_quadratic, threads, single_thread_below_rows, max_jobs, "
            "max_neighbour_memory_mb",
        ),
        (["k=1"], "k: an integer >= 2; got 1"),
        (["data.decimal=x"], "data.decimal: one of '.', ',' or null; got 'x'"),
        (
            ["objective.direction=up"],
            "objective.direction: one of 'maximize', 'minimize'; got 'up'",
        ),
        (["limits.max_jobs=0"], "limits.max_jobs: an integer >= 1; got 0"),
    ],
)
def test_bad_value_names_key_allowed_and_received(make, overrides, message):
    assert refusal(make(overrides)) == message


def test_null_is_allowed_where_the_key_says_so(make):
    validation.check_job_config(make(["limits.threads=null", "limits.threads=4"]))
    validation.check_job_config(make(["limits.threads=null"]))


def test_unknown_keys_list_what_exists(make):
    assert refusal(make(["+foo=1"])).startswith("foo: no such config key; available: ")
    assert "did you mean plots.dpi" in refusal(make(["+plots.dpii=1"]))
    message = refusal(make(["+algo.max_iters=5"]))
    assert message.startswith("algo.max_iters: not a parameter of scikit-learn's KMeans")
    assert "did you mean algo.max_iter" in message


def test_dbscan_k_is_only_a_name(make):
    validation.check_job_config(make(["algo=dbscan", "k=1"]))


def test_unimportable_target(make):
    assert refusal(make(["algo._target_=nosuch.Clusterer"])).startswith("algo._target_: ")


def test_tool_keys(make):
    assert refusal(make(["top=0"], "compare"), "compare") == "top: an integer >= 1 or null; got 0"
    assert "filter.status" in refusal(make(["filter.status=DONE"], "compare"), "compare")
    validation.check_tool_config("compare", make(["filter.algo=[kmeans,gmm]"], "compare"))


def test_algorithm_check_pays_its_imports_once(make):
    """Only the first check loads scikit-learn and the estimator's module; later ones load
    nothing (their time per check: benchmarks/config_checks.py)."""
    cfg = make(["algo=dbscan", "algo.eps=0.25"])
    validation.check_job_config(cfg)
    loaded = set(sys.modules)
    validation.check_job_config(cfg)
    assert set(sys.modules) == loaded


def test_sweep_count_from_the_command_line_is_quick_and_exact_for_lists():
    started = time.perf_counter()
    args = expand_argv(["-m", "k=1..100000", "algo=kmeans,gmm", "seed=3"])
    assert validation.count_sweep_values(args) == 200000
    assert time.perf_counter() - started < 1.0
    assert validation.count_sweep_values(["-m", "k=range(2,9)"]) == 1  # Hydra's: the sweeper counts


def test_sweep_size_limit_message():
    validation.check_sweep_size(1000, 1000)
    with pytest.raises(
        ConfigError,
        match=r"^limits.max_jobs: a sweep of at most 1000 jobs .*=1001.*; got 1001 jobs$",
    ):
        validation.check_sweep_size(1001, 1000)


def test_neighbour_estimate_scales_the_sample_mean():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(20000, 2))
    mb, mean = job.neighbour_memory_mb(X, 0.05, seed=1)
    # uniform on the unit square: about n * pi r^2 neighbours (less near the edges)
    assert 0.85 * 20000 * np.pi * 0.05**2 < mean < 1.02 * 20000 * np.pi * 0.05**2
    expected = (mean * 20000 * job.BYTES_PER_NEIGHBOUR + 20000 * job.BYTES_PER_ROW) / 2**20
    assert mb == pytest.approx(expected)
    exact = np.mean(
        [
            len(x)
            for x in __import__("sklearn.neighbors", fromlist=["KDTree"])
            .KDTree(X)
            .query_radius(X[:3000], r=0.05)
        ]
    )
    assert mean == pytest.approx(exact, rel=0.1)


def test_neighbour_estimate_other_metrics():
    X = np.random.default_rng(0).uniform(0, 1, size=(3000, 2))
    _, manhattan = job.neighbour_memory_mb(X, 0.05, {"metric": "manhattan"})
    _, euclidean = job.neighbour_memory_mb(X, 0.05)
    assert manhattan < euclidean  # a diamond inside the circle


def test_spark_master_check_passes_a_listening_master_and_names_each_refusal():
    """``spark://`` masters are tried in order; one that accepts a connection is enough."""
    import socket

    from segexp.engines.spark_session import check_master_answers

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_master_answers(f"spark://127.0.0.1:{port}")
        check_master_answers(f"spark://127.0.0.1:1,127.0.0.1:{port}")  # a standby first
        check_master_answers("local[2]")  # not a standalone master: nothing to reach
    with pytest.raises(ConfigError) as caught:
        check_master_answers(f"spark://127.0.0.1:1,127.0.0.1:{port}")
    message = str(caught.value)
    assert message.count("refused") == 2 and f"127.0.0.1:{port}" in message
