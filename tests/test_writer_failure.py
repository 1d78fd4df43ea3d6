"""The MLflow writer process dying: one line on stderr, exit 1, no traceback."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

WRITER_DIES_AT_START = """
import os, sys
if len(sys.argv) > 1 and sys.argv[1].isdigit():  # python -m segexp.writer <fd> ...
    os._exit(3)
"""
MESSAGE = "segexp: error: the MLflow writer process exited (code {code}) before logging finished"


def _env_with_site(tmp_path: Path) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WRITER_DIES_AT_START)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("args", [["k=4"], ["-m", "k=3..5"]], ids=["single", "sweep"])
def test_writer_dead_at_start(tmp_path, store, args):
    result = run_cli(
        [*args, f"mlflow.tracking_uri={store}"], cwd=tmp_path, env=_env_with_site(tmp_path)
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert errors == [
        MESSAGE.format(code=3) + "; rerun with SEGEXP_WRITER=0 to log in the main process"
    ]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int, seconds: float = 10) -> bool:
    """The process has exited (and is no zombie of this test's making) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/stat")
        if not status.exists() or status.read_text().split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.02)
    return False


def _sweep_killing(tmp_path, store, victims) -> tuple[int, str, list[int]]:
    """Run a 16-job sweep; after its first logged run, SIGKILL ``victims(main pid)``.

    Returns the exit code, stderr and the killed pids.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segexp",
            "-m",
            "algo=kmeans,gmm",
            "k=2..9",
            f"mlflow.tracking_uri={store}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stdout:  # the writer prints a line per logged run
            if "FINISHED" in line:
                break
        killed = victims(process.pid)
        assert killed, "no process to kill found"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr, killed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_writer_killed_mid_sweep(tmp_path, store):
    helpers: list[int] = []

    def writers(main_pid: int) -> list[int]:
        found = _children(main_pid)
        helpers.extend(h for w in found for h in _children(w))
        return found

    code, stderr, _ = _sweep_killing(tmp_path, store, writers)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert MESSAGE.format(code=-9) in stderr
    assert helpers and all(_gone(pid) for pid in helpers)  # the orphaned helper exits too


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_render_helper_killed_mid_sweep_loses_nothing(tmp_path, store):
    from mlflow.tracking import MlflowClient

    def helpers(main_pid: int) -> list[int]:
        return [h for w in _children(main_pid) for h in _children(w)]

    code, stderr, _ = _sweep_killing(tmp_path, store, helpers)
    assert code == 0, stderr
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    jobs = [r for r in runs if r.data.tags.get("segexp.kind") == "job"]
    assert len(jobs) == 16 and all(r.info.status == "FINISHED" for r in jobs)
    for run in jobs:
        plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
        assert len(plots) == 5, (run.info.run_name, plots)
