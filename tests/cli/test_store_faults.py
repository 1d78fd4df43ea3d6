"""Tracking-store faults, end to end: a server that does not answer fails in seconds with
one line; two sweeps creating the same new store at once both succeed (a file lock
serialises MLflow's migrations); runs of a process that is gone are ended KILLED by the
next command that opens the store, runs of live processes and other hosts are not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import free_port, run_cli
from mlflow.tracking import MlflowClient

from segexp.tracking import liveness
from segexp.tracking.store import Tracker, open_store, reap_lost_runs

BOUND_S = 15.0  # the promise: an unreachable server is an error within this many seconds


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("segexp", []),
        ("segexp", ["-m", "k=3,4"]),
        ("segexp.compare", []),
        ("segexp.promote", ["best=silhouette"]),
    ],
    ids=["run", "sweep", "compare", "promote"],
)
def test_unreachable_server_is_one_line_within_bound(tmp_path, module, args):
    port = free_port()  # nothing listens on it
    uri = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    result = run_cli([*args, f"mlflow.tracking_uri={uri}"], cwd=tmp_path, module=module)
    wall = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-3000:]
    line = _one_error_line(result)
    assert line.startswith(f"segexp: error: mlflow.tracking_uri={uri}: no MLflow server answers")
    assert "connection refused" in line and "mlflow server" in line
    assert wall < BOUND_S, f"{module} took {wall:.1f} s"
    assert not any(tmp_path.iterdir())  # no local store, no Hydra folder
    print(f"{module} {' '.join(args)}: {wall:.2f} s")


def test_mlflow_http_retries_are_bounded_for_segexp_processes():
    """segexp sets MLflow's retry and timeout variables for its processes unless the user
    did: MLflow's own request (past the up-front check) gives up in seconds, not minutes."""
    code = (
        "import os, time\n"
        "import segexp.tracking.store\n"
        "from mlflow.tracking import MlflowClient\n"
        "e = os.environ\n"
        "print(e['MLFLOW_HTTP_REQUEST_MAX_RETRIES'], e['MLFLOW_HTTP_REQUEST_TIMEOUT'])\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    MlflowClient(tracking_uri='http://127.0.0.1:1').search_experiments()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "print(round(time.monotonic() - t, 2))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.split()
    assert lines[:2] == ["2", "20"], done.stdout + done.stderr
    assert lines[2] == "MlflowException"
    assert float(lines[3]) < BOUND_S
    user = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, segexp.tracking.store as s; "
            "print(os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES'])",
        ],
        env={**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert user.stdout.strip() == "5"  # the user's own setting wins


@pytest.mark.slow
def test_two_sweeps_create_one_new_store_at_once(tmp_path):
    """NOTES.md: without a lock both die in Alembic ('table _alembic_tmp_tags already
    exists') and the store is left half-migrated. Here both finish and every run is there."""
    db = tmp_path / "shared" / "mlflow.db"  # neither the file nor its folder exists yet
    uri = f"sqlite:///{db}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    sweeps = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        sweeps.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "segexp",
                    "-m",
                    "k=3,4,5",
                    "plots.enabled=false",
                    f"mlflow.tracking_uri={uri}",
                    f"hydra.sweep.dir={work / 'multirun'}",
                ],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [p.communicate(timeout=600) for p in sweeps]
    for process, (_, err) in zip(sweeps, results, strict=True):
        assert process.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=uri)  # a half-migrated store refuses to open
    experiment = client.get_experiment_by_name("segexp-customers")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("segexp.kind") == "sweep"]
    jobs = [r for r in runs if r.data.tags.get("segexp.kind") == "job"]
    assert len(parents) == 2 and len(jobs) == 6
    assert all(r.info.status == "FINISHED" for r in runs)
    assert (tmp_path / "shared" / "mlflow.db.lock").exists()
    again = run_cli(
        ["mlflow.tracking_uri=" + uri, "sweep_id=" + parents[0].data.tags["segexp.sweep_id"]],
        cwd=tmp_path,
        module="segexp.compare",
    )
    assert again.returncode == 0, again.stderr


def test_next_opening_ends_runs_of_gone_processes_killed(store):
    """A RUNNING sweep (with a RUNNING job run) of a process that is gone ends KILLED when
    the store is next opened; runs of a live process or another host stay RUNNING."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client = open_store(store)
    experiment_id = client.create_experiment("reap")

    def run(tags: dict[str, str]) -> str:
        return client.create_run(experiment_id, tags=tags).info.run_id

    dead = liveness.process_tags(os.getpid()) | {liveness.TAG_PID: str(gone.pid)}
    parent = run({"segexp.kind": "sweep", "segexp.sweep_id": "s1", **dead})
    child = run({"segexp.kind": "job", "segexp.sweep_id": "s1"})  # no process tags
    alive = run({"segexp.kind": "sweep", "segexp.sweep_id": "s2", **liveness.process_tags()})
    elsewhere = run(
        {"segexp.kind": "sweep", "segexp.sweep_id": "s3", **dead, liveness.TAG_HOST: "other"}
    )
    reused = run(  # this pid, but another start time: pid reuse is not life
        {
            "segexp.kind": "sweep",
            "segexp.sweep_id": "s4",
            **liveness.process_tags(),
            liveness.TAG_PID_START: "1",
        }
    )
    ended = reap_lost_runs(_tracker(store))
    assert set(ended) == {parent, reused}
    status = {r: client.get_run(r) for r in (parent, child, alive, elsewhere, reused)}
    assert status[parent].info.status == "KILLED"
    assert status[parent].data.tags["segexp.ended_by"] == "process_gone"
    assert str(gone.pid) in status[parent].data.tags["segexp.end_reason"]
    assert status[child].info.status == "KILLED"  # its sweep's process is gone
    assert status[alive].info.status == "RUNNING"
    assert status[elsewhere].info.status == "RUNNING"  # another host: never touched
    assert status[reused].info.status == "KILLED"


def _tracker(uri: str) -> Tracker:
    """A Tracker that has not reaped yet (``Tracker(uri)`` reaps once when it opens)."""
    tracker = Tracker.__new__(Tracker)
    tracker.tracking_uri = uri
    tracker.client = open_store(uri)
    return tracker


def test_store_is_created_under_a_lock_beside_it(tmp_path):
    db = tmp_path / "new" / "mlflow.db"
    client = open_store(f"sqlite:///{db}")
    assert client.search_experiments() is not None
    assert db.exists() and (tmp_path / "new" / "mlflow.db.lock").exists()


OPEN_AT = """
import sys, time
import mlflow.store.tracking.sqlalchemy_store  # loaded before the agreed instant
from segexp.tracking.store import open_store
uri, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.002)
open_store(uri)
print("ok")
"""


@pytest.mark.slow
def test_processes_opening_one_new_store_at_the_same_instant_all_succeed(tmp_path):
    """Three processes create the same new store at one instant (measured here without
    the lock: two plain MlflowClients fail 3 times out of 3, 'table experiments already
    exists' or 'duplicate column name: step')."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time() + 8  # every process has loaded MLflow by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, uri, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0 and out.strip() == "ok", err[-3000:]
    client = MlflowClient(tracking_uri=uri)
    assert client.create_experiment("after") and client.search_registered_models() == []
