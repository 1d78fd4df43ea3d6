"""What a person sees in the terminal: a sweep's progress and closing lines, quiet by
default and verbose on request, segexp-compare within the terminal's width, and every
tool's --help and usage errors answering at once. Real subprocesses, real stores,
results read back with MlflowClient."""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, run_cli
from mlflow.tracking import MlflowClient

SMALL_SWEEP = ["-m", "k=3,4", "plots.enabled=false"]
HYDRA_LINES = ("Launching 2 jobs", "#0 : ", "#1 : ", "[HYDRA]")
MIGRATION_LINE = "Creating initial MLflow database tables"
PROGRESS = re.compile(
    r"^\[(\d+)/(\d+)(?:, \d+ failed)?\] #\d+ (\S+) FINISHED silhouette=\S+ .*\(\d+:\d\d elapsed"
)
SCRIPTS = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["scripts"]
# Console-script targets whose module imports nothing heavy before Hydra reads the command.
LIGHT_ENTRY_MODULES = ("segexp.__main__", "segexp.tools.compare", "segexp.tools.shell")
HYDRA_TOOLS = ("compare", "promote", "predict", "report", "eda", "rerun")
os.environ.pop("SEGEXP_VERBOSE", None)  # these tests see the default, quiet output


def _job_runs(uri: str):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("segexp-customers")
    return client.search_runs(
        [experiment.experiment_id], filter_string="tags.`segexp.kind` = 'job'"
    )


@pytest.fixture(scope="module")
def quiet_sweep(tmp_path_factory):
    """A small sweep into a fresh store in its own folder (so MLflow creates the tables)."""
    folder = tmp_path_factory.mktemp("quiet-sweep")
    result = run_cli(SMALL_SWEEP, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"result": result, "folder": folder, "uri": f"sqlite:///{folder / 'mlflow.db'}"}


# ------------------------------------------------------------------ the sweep


def test_a_sweep_shows_no_hydra_launch_lines_and_no_mlflow_migration_lines(quiet_sweep):
    result = quiet_sweep["result"]
    everything = result.stdout + result.stderr
    for line in HYDRA_LINES:
        assert line not in everything
    assert MIGRATION_LINE not in everything and "Updating database tables" not in everything
    assert result.stderr == ""


def test_each_finished_job_is_one_progress_line_with_done_total_and_time(quiet_sweep):
    lines = quiet_sweep["result"].stdout.splitlines()
    matches = [PROGRESS.match(line) for line in lines]
    progress = [m for m in matches if m]
    assert [(m.group(1), m.group(2)) for m in progress] == [("1", "2"), ("2", "2")]
    names = {r.info.run_name for r in _job_runs(quiet_sweep["uri"])}
    assert {m.group(3) for m in progress} == names
    header = next(line for line in lines if line.startswith("segexp: sweep "))
    assert "2 jobs; runs go to " + quiet_sweep["uri"] in header


def test_the_end_table_ranks_the_best_runs_as_the_store_does(quiet_sweep):
    runs = sorted(_job_runs(quiet_sweep["uri"]), key=lambda r: -r.data.metrics["silhouette"])
    lines = quiet_sweep["result"].stdout.splitlines()
    title = lines.index("Best 2 of 2 runs by silhouette (larger is better):")
    header = lines[title + 1].split()
    assert header == ["rank", "run_name", "silhouette", "n_clusters", "run_id"]
    rows = [line.split() for line in lines[title + 3 : title + 3 + len(runs)]]
    for rank, (row, run) in enumerate(zip(rows, runs, strict=True), start=1):
        assert row[0] == str(rank)
        assert row[1] == run.info.run_name
        assert float(row[2]) == pytest.approx(run.data.metrics["silhouette"], abs=1e-4)
        assert row[3] == str(int(run.data.metrics["n_clusters"]))
        assert row[4] == run.info.run_id[:8]
    assert "12 jobs" not in quiet_sweep["result"].stdout
    assert "2 jobs: 2 finished in " in quiet_sweep["result"].stdout


def test_the_next_commands_are_printed_and_work(quiet_sweep):
    folder, uri = quiet_sweep["folder"], quiet_sweep["uri"]
    out = quiet_sweep["result"].stdout
    steps = out[out.index("\nNext:\n") :].splitlines()[2:]
    commands = [line.split("  #")[0].strip() for line in steps]
    client = MlflowClient(tracking_uri=uri)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("segexp-customers").experiment_id],
        filter_string="tags.`segexp.kind` = 'sweep'",
    )
    sweep_id = parent.data.tags["segexp.sweep_id"]
    assert commands[0] == f"segexp-compare sweep_id={sweep_id}"
    assert commands[1] == f"segexp-promote best=silhouette sweep_id={sweep_id}"
    assert commands[2] == f"mlflow ui --backend-store-uri {uri}"
    experiment_id = parent.info.experiment_id
    assert commands[3].startswith(f"open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs")
    assert sweep_id in commands[3]
    # The compare line, run where the sweep ran, ranks the same best run first.
    compare = run_cli(
        shlex.split(commands[0])[1:], cwd=folder, module="segexp.compare", env={"COLUMNS": "400"}
    )
    assert compare.returncode == 0, compare.stderr
    best = max(_job_runs(uri), key=lambda r: r.data.metrics["silhouette"])
    first_row = compare.stdout.splitlines()[3].split()
    assert first_row[:2] == ["1", best.info.run_name]


def test_a_single_run_ends_with_its_ui_page_and_lasts_its_jobs_time(tmp_path, store):
    """The run's page in the MLflow UI after the command that serves the store; the run's
    start (the UI's Duration) is the job's start, not the moment it was logged."""
    slow_fit = "algo.n_init=3000"  # a fit of about a second, far longer than the logging
    done = run_cli(["k=3", slow_fit, f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    serve, page = done.stdout.strip().splitlines()[-2:]
    client = MlflowClient(tracking_uri=store)
    (run,) = _job_runs(store)
    experiment_id, run_id = run.info.experiment_id, run.info.run_id
    assert serve.split("  #")[0].strip() == f"mlflow ui --backend-store-uri {store}"
    assert page.strip() == (
        f"open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
        "?workflowType=machine_learning"
    )
    (logged,) = client.get_metric_history(run_id, "silhouette")
    fit_ms = run.data.metrics["fit_seconds"] * 1000
    assert logged.timestamp - run.info.start_time >= fit_ms > 300
    assert run.info.end_time >= logged.timestamp


def test_verbose_true_brings_back_hydra_and_mlflow_lines(tmp_path):
    result = run_cli([*SMALL_SWEEP, "verbose=true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    assert "Launching 2 jobs locally" in everything
    assert "#0 : k=3" in everything and "#1 : k=4" in everything
    assert MIGRATION_LINE in everything
    assert PROGRESS.match(next(x for x in result.stdout.splitlines() if x.startswith("[1/2]")))


def test_segexp_verbose_environment_variable_shows_the_migration_lines(tmp_path):
    result = run_cli(["k=3", "plots.enabled=false"], cwd=tmp_path, env={"SEGEXP_VERBOSE": "1"})
    assert result.returncode == 0, result.stderr
    assert MIGRATION_LINE in result.stdout + result.stderr
    (tmp_path / "quiet").mkdir()
    quiet = run_cli(["k=4", "plots.enabled=false"], cwd=tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert MIGRATION_LINE not in quiet.stdout + quiet.stderr


def _run_in_terminal(args: list[str], cwd: Path, columns: int = 100) -> tuple[int, str]:
    """Run ``python -m segexp`` on a pseudo-terminal; its exit code and everything it wrote."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "segexp", *args],
        cwd=cwd,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_the_progress_is_a_live_bar_and_the_lines_stay(tmp_path, store):
    code, screen = _run_in_terminal([*SMALL_SWEEP, f"mlflow.tracking_uri={store}"], tmp_path)
    assert code == 0, screen[-3000:]
    assert "\x1b[" in screen  # the live display redraws itself
    assert "2/2" in screen  # done/total on the bar
    for run in _job_runs(store):
        assert f"{run.info.run_name} FINISHED silhouette=" in screen
    assert "Best 2 of 2 runs by silhouette" in screen
    assert "segexp-compare sweep_id=" in screen
    assert "Traceback" not in screen


# ------------------------------------------------------------------ compare


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_compare_fits_columns_and_wide_keeps_full_names(quiet_sweep):
    folder, uri = quiet_sweep["folder"], quiet_sweep["uri"]
    runs = _job_runs(uri)
    fitted = run_cli([], cwd=folder, module="segexp.compare", env={"COLUMNS": "120"})
    assert fitted.returncode == 0, fitted.stderr
    assert _widest(fitted.stdout + fitted.stderr) <= 120
    for run in runs:
        assert run.info.run_name in fitted.stdout
        assert run.info.run_id[:8] in fitted.stdout and run.info.run_id not in fitted.stdout
    assert "wide=true shows every column" in fitted.stdout

    wide = run_cli(["wide=true"], cwd=folder, module="segexp.compare", env={"COLUMNS": "120"})
    assert wide.returncode == 0, wide.stderr
    assert _widest(wide.stdout) > 120
    for run in runs:
        assert run.info.run_id in wide.stdout and run.info.run_name in wide.stdout
    assert "calinski_harabasz" in wide.stdout.splitlines()[1]


def test_compare_on_a_narrow_terminal_cuts_run_names_not_numbers(quiet_sweep):
    folder = quiet_sweep["folder"]
    narrow = run_cli([], cwd=folder, module="segexp.compare", env={"COLUMNS": "60"})
    assert narrow.returncode == 0, narrow.stderr
    assert _widest(narrow.stdout + narrow.stderr) <= 60
    best = max(_job_runs(quiet_sweep["uri"]), key=lambda r: r.data.metrics["silhouette"])
    row = next(line for line in narrow.stdout.splitlines() if line.strip().startswith("1 "))
    assert "\u2026" in row and best.info.run_id[:8] in row
    assert f"{best.data.metrics['silhouette']:.4g}" in row


# ------------------------------------------------------------------ usage errors


def _script_command(name: str) -> list[str]:
    """The console script as installed, else what it runs (pyproject's module:function)."""
    installed = Path(sys.executable).parent / name
    if installed.exists():
        return [str(installed)]
    module, function = SCRIPTS[name].split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function}; "
            f"sys.argv[0] = {name!r}; sys.exit({function}())"]  # fmt: skip


# What a help or usage answer must not load (each takes seconds to import); how fast
# they answer is measured by benchmarks/usage_errors.py, not asserted here.
HEAVY_MODULES = ("mlflow", "pandas", "matplotlib", "sklearn")


def _answered(command: list[str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess]:
    """The command's result, and which of HEAVY_MODULES it imported (from a second run
    with ``PYTHONPROFILEIMPORTTIME``, whose import lines go to stderr)."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    profiled = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in profiled.stderr.splitlines()
        if line.startswith("import time:")
    }
    return {m for m in HEAVY_MODULES if m in imported}, done


def _light(name: str) -> bool:
    return SCRIPTS[name].split(":")[0] in LIGHT_ENTRY_MODULES


def _console_script_cases():
    for name in SCRIPTS:
        marks = []
        if name != "segexp-sample" and not _light(name):
            # Runs once the script points at its light entry (tested below either way).
            marks.append(
                pytest.mark.skip(
                    reason=f"pyproject points {name} at {SCRIPTS[name]}, whose module imports "
                    f"MLflow/pandas/matplotlib before Hydra reads the command line; point it "
                    f"at segexp.tools.shell:{name.removeprefix('segexp-')}_main"
                )
            )
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_console_script_cases()))
def test_every_console_script_answers_help_and_a_usage_error_at_once(name, tmp_path):
    heavy, done = _answered([*_script_command(name), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and done.stderr == ""
    assert heavy == set(), f"--help imported {heavy}"
    heavy, done = _answered([*_script_command(name), "nosuchkey=1"], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert heavy == set(), f"nosuchkey=1 imported {heavy}"
    assert "Traceback" not in done.stderr and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    no_such = "no such key" if name == "segexp-sample" else "no such config key"
    assert line.startswith(f"segexp: error: nosuchkey: {no_such}; available: "), line
    assert not any(tmp_path.iterdir())  # no store, no Hydra output folder


@pytest.mark.parametrize("tool", HYDRA_TOOLS)
def test_each_tools_light_entry_answers_help_and_a_usage_error_at_once(tool, tmp_path):
    command = [sys.executable, "-m", "segexp.tools.shell", tool]
    heavy, done = _answered([*command, "--help"], tmp_path)
    assert done.returncode == 0 and f"segexp-{tool}" in done.stdout, done.stderr
    assert "Keys (key=value" in done.stdout
    assert heavy == set(), f"--help imported {heavy}"
    heavy, done = _answered([*command, "metirc=x"], tmp_path)
    assert done.returncode == 2
    assert heavy == set(), f"a usage error imported {heavy}"
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("segexp: error: metirc: no such config key")
    assert "mlflow" in line.split("available: ")[1]
    assert not any(tmp_path.iterdir())


# Each command's own keys (a few) that its --help must name with their defaults.
OWN_KEYS = {
    "segexp": ["k=5", "seed=42", "plots.dpi=150", "algo=kmeans", "data=mall_sample"],
    "segexp-compare": ["metric=silhouette", "scope=sweep", "top=20", "output=null"],
    "segexp-promote": ["run_id=null", "best=null", "registry.alias=champion", "dry_run=false"],
    "segexp-predict": ["input=null", "output=null", "model=null", "rejects=null"],
    "segexp-report": ["run_id=null", "output=null", "log_to_mlflow=true"],
    "segexp-eda": ["eda.hue=auto", "eda.max_columns=40", "data=mall_sample"],
    "segexp-rerun": ["run_id=null", "mlflow=local"],
    "segexp-sample": ["kind=null", "out=null", "customers=null", "seed=7", "overwrite=false"],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_every_help_fits_one_screen_with_its_keys_and_examples(name, tmp_path):
    command = _script_command(name)
    done = subprocess.run([*command, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 60, f"{name} --help: {len(lines)} lines"
    assert max(map(len, lines)) <= 100
    assert lines[0].startswith(f"{name}: ")  # what the command does, first
    assert "Examples:" in done.stdout and f"\n  {name} " in done.stdout
    keys = {line.split()[0] for line in lines if line.startswith("  ") and "=" in line}
    assert set(OWN_KEYS[name]) <= keys
    assert "powered by hydra" not in done.stdout.lower()
    bare = subprocess.run([*command, "help"], cwd=tmp_path, capture_output=True, text=True)
    assert bare.returncode == 0 and bare.stdout == done.stdout, bare.stderr
    assert not any(tmp_path.iterdir())


def test_help_shows_the_command_lines_overrides_and_where_configs_come_from(tmp_path):
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "mine.yaml").write_text("defaults:\n  - mall_sample\n")
    done = subprocess.run(
        [*_script_command("segexp-compare"), "--help", "metric=davies_bouldin"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "  metric=davies_bouldin " in done.stdout
    assert f"your {tmp_path / 'conf'}" in done.stdout
    data_line = next(line for line in done.stdout.splitlines() if line.startswith("  data="))
    assert "mine" in data_line and "mall_sample" in data_line
    assert "-sc install=bash" in done.stdout


def test_cfg_job_still_prints_the_whole_config(tmp_path):
    done = subprocess.run(
        [*_script_command("segexp"), "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for section in ("data:", "algo:", "naming:", "limits:", "objective:"):
        assert f"\n{section}\n" in f"\n{done.stdout}"
    assert "max_neighbour_memory_mb: 2048" in done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["algo=nosuchalgo"], "segexp: error: algo=nosuchalgo: no such option; available: "),
        (["metrics.silhuette_max_rows=5"], "segexp: error: metrics.silhuette_max_rows: no such "),
        (["k=["], "segexp: error: k=[: cannot parse this override"),
        (["--help", "nosuchkey=1"], "segexp: error: nosuchkey: no such config key"),
    ],
)
def test_segexp_usage_errors_are_one_line_exit_2_and_fast(args, expected, tmp_path):
    heavy, done = _answered([*_script_command("segexp"), *args], tmp_path)
    assert done.returncode == 2
    assert heavy == set(), f"{args} imported {heavy}"
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(expected)
    assert not any(tmp_path.iterdir())


def test_metrics_typo_names_the_keys_under_its_section(tmp_path):
    _, done = _answered([*_script_command("segexp"), "metrics.silhuette_max_rows=5"], tmp_path)
    line = done.stderr.strip()
    assert "did you mean metrics.silhouette_max_rows?" in line
    assert "available under metrics: silhouette_max_rows" in line


def test_a_sweep_whose_job_configs_hydra_refuses_writes_nothing(tmp_path):
    result = run_cli(["-m", "k=3", "nosuch=1,2"], cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("segexp: error: nosuch: no such config key; available: ")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("name", ["segexp", "segexp-compare"])
def test_help_into_a_closed_pipe_is_no_traceback(name, tmp_path):
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)  # `segexp --help | true`
    reader.wait(timeout=30)
    assert reader.stdin is not None
    writer = subprocess.run(
        [*_script_command(name), "--help"],
        cwd=tmp_path,
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    reader.stdin.close()
    assert writer.returncode == 0, writer.stderr
    assert writer.stderr == ""


def test_every_light_entry_names_a_function_its_tool_module_has():
    import importlib

    from segexp.tools.shell import TOOLS

    for name, (_, target) in TOOLS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function, None)), name
