"""A store that stops taking writes mid-sweep loses no run silently: the jobs the command
prints FINISHED are exactly the FINISHED runs the store holds, the command stops at once
with one line and exit code 1, and nothing is left RUNNING once the next command opened
the store. Faults: a file-size limit on the SQLite store (a full disk, as the kernel says
it: EFBIG), an ``mlflow server`` killed after two runs, a read-only ``mlruns/``."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import mlflow_server
from mlflow.tracking import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="rlimits")]
SWEEP = ["-m", "algo=kmeans,gmm", "k=2..7", "plots.enabled=false"]
FINISHED_LINE = re.compile(r"#\d+ (\S+) FINISHED")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SEGEXP_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONWARNINGS="ignore", COLUMNS="120")
    return env


def _job_runs(store: str) -> list:
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def _check_outcome(result: subprocess.CompletedProcess, store: str) -> None:
    """Exit 1 with one error line; printed FINISHED == stored FINISHED; nothing RUNNING
    after the next command opened the store."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert len(errors) == 1, result.stderr
    assert "the store stopped taking runs" in errors[0]
    printed = set(FINISHED_LINE.findall(result.stdout))
    jobs = [r for r in _job_runs(store) if r.data.tags.get("segexp.kind") == "job"]
    stored = {r.info.run_name for r in jobs if r.info.status == "FINISHED"}
    assert printed == stored, (printed, stored)
    assert f"{len(stored)} job runs" in errors[0]
    # The next command opens the store: runs of the gone process end KILLED.
    subprocess.run(
        [sys.executable, "-m", "segexp.compare", f"mlflow.tracking_uri={store}"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    running = [r.info.run_name for r in _job_runs(store) if r.info.status == "RUNNING"]
    assert running == []


def test_a_store_that_hits_the_file_size_limit_stops_the_sweep(tmp_path, _template_store):
    db = tmp_path / "mlflow.db"
    shutil.copy(_template_store, db)
    store = f"sqlite:///{db}"
    limit = db.stat().st_size + 96 * 1024  # room for a few runs, then EFBIG ("disk is full")

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "segexp", *SWEEP, f"mlflow.tracking_uri={store}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(),
        preexec_fn=limited,
        timeout=600,
    )
    _check_outcome(result, store)
    assert len(FINISHED_LINE.findall(result.stdout)) < 12  # the limit was hit mid-sweep


def test_a_server_killed_after_two_runs_stops_the_sweep(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    server_cm = mlflow_server(folder)
    uri = server_cm.__enter__()
    process = subprocess.Popen(
        [sys.executable, "-m", "segexp", *SWEEP, f"mlflow.tracking_uri={uri}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    out: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            out.append(line)
            if len(FINISHED_LINE.findall("".join(out))) == 2:
                break
        server_cm.__exit__(None, None, None)  # the server stops: its process group is killed
        rest, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    result = subprocess.CompletedProcess(
        process.args, process.returncode, "".join(out) + rest, stderr
    )
    _check_outcome(result, f"sqlite:///{folder / 'server.db'}")


def test_a_read_only_artifact_folder_stops_the_sweep(tmp_path, _template_store):
    db = tmp_path / "mlflow.db"
    shutil.copy(_template_store, db)
    store = f"sqlite:///{db}"
    mlruns = tmp_path / "mlruns"
    mlruns.mkdir()
    # root writes through permission bits: an immutable folder is read-only for root too
    lock, unlock = (["chattr", "+i"], ["chattr", "-i"]) if os.geteuid() == 0 else (None, None)
    if lock is None:
        mlruns.chmod(0o555)
    elif subprocess.run([*lock, str(mlruns)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported on this file system")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "segexp", *SWEEP, f"mlflow.tracking_uri={store}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=600,
        )
    finally:
        if unlock is not None:
            subprocess.run([*unlock, str(mlruns)], check=True)
        mlruns.chmod(0o755)
    _check_outcome(result, store)
    assert FINISHED_LINE.findall(result.stdout) == []
