"""Interrupted sweeps, with real signals on a real `segexp -m` subprocess.

SIGINT (to the process group, as Ctrl-C sends it) and SIGTERM end the parent run and
any open job run KILLED, tagged ``segexp.ended_by``, with one line and exit 130/143.
After a SIGKILL the parent stays RUNNING until the next segexp command on the store,
which ends it KILLED (its process is gone) and removes the files it had staged; compare
refuses the incomplete latest sweep and promote best= refuses it, unless
``allow_incomplete=true``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

from segexp.tracking.store import open_store

JOBS = "k=2..60"  # 59 jobs: long enough to be interrupted after the first few
PLANNED = 59


def _env(staging: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "SEGEXP_STAGING_DIR": str(staging)}


def _start(work: Path, staging: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "segexp", "-m", JOBS, *extra],
        cwd=work,
        env=_env(staging),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C's target, and our cleanup's
    )


def _runs(client) -> list:
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def _wait_for_jobs(process: subprocess.Popen, db: Path, jobs: int, seconds: float = 300):
    """The client on the sweep's store once ``jobs`` job runs FINISHED under a RUNNING parent."""
    deadline = time.monotonic() + seconds
    client = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
        if not db.exists():
            continue
        client = client or open_store(f"sqlite:///{db}")  # under the store's lock
        runs = _runs(client)
        done = [
            r
            for r in runs
            if r.data.tags.get("segexp.kind") == "job" and r.info.status == "FINISHED"
        ]
        if len(done) >= jobs:
            return client
    pytest.fail(f"fewer than {jobs} job runs after {seconds} s")


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=30)


def _group_gone(pgid: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _sweep_runs(client):
    runs = _runs(client)
    parents = [r for r in runs if r.data.tags.get("segexp.kind") == "sweep"]
    jobs = [r for r in runs if r.data.tags.get("segexp.kind") == "job"]
    assert len(parents) == 1
    return parents[0], jobs


JOBLIB = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "launcher"),
    [("SIGTERM", ()), ("SIGINT", ()), ("SIGTERM", JOBLIB)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-joblib"],
)
def test_signal_ends_sweep_and_open_runs_killed(tmp_path, name, launcher):
    number = getattr(signal, name)
    work, staging = tmp_path / "work", tmp_path / "staging"
    work.mkdir()
    process = _start(work, staging, launcher)
    try:
        client = _wait_for_jobs(process, work / "mlflow.db", 2)
        started = time.monotonic()
        if name == "SIGINT":  # Ctrl-C: the whole foreground group (pool workers too)
            os.killpg(process.pid, number)
        else:
            os.kill(process.pid, number)
        _, err = process.communicate(timeout=300)
        took = time.monotonic() - started
    finally:
        _stop_group(process)
    assert process.returncode == 128 + number, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("segexp:")]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"segexp: stopped by {name} (exit {128 + number}): sweep ")
    assert "ended KILLED" in lines[0] and "allow_incomplete=true" in lines[0]
    parent, jobs = _sweep_runs(client)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["segexp.ended_by"] == name
    assert parent.data.tags["segexp.jobs_planned"] == str(PLANNED)
    assert parent.data.tags["segexp.internal.pid"] == str(process.pid)
    assert 2 <= len(jobs) < PLANNED
    assert not [r for r in jobs if r.info.status == "RUNNING"]
    killed = [r for r in jobs if r.info.status == "KILLED"]
    assert all(r.data.tags["segexp.ended_by"] == name for r in killed)
    left = sorted(p.name for p in work.iterdir())
    assert left == ["mlflow.db", "mlflow.db.lock", "mlruns"], f"left behind: {left}"
    if launcher:  # joblib's workers die with the command: the next command sweeps theirs
        shown = run_cli(
            ["allow_incomplete=true"], cwd=work, env=_env(staging), module="segexp.compare"
        )
        assert shown.returncode == 0, shown.stderr[-3000:]
    assert not [p for p in staging.rglob("*") if p.is_file()], "staged files left behind"
    print(f"{name}: ended in {took:.1f} s with {len(jobs)} of {PLANNED} job runs")


@pytest.mark.slow
def test_sigkill_then_next_command_ends_the_sweep_killed(tmp_path):
    work, staging = tmp_path / "work", tmp_path / "staging"
    work.mkdir()
    process = _start(work, staging)
    try:
        client = _wait_for_jobs(process, work / "mlflow.db", 2)
        os.kill(process.pid, signal.SIGKILL)  # the command only: its workers are orphaned
        process.wait(timeout=60)
        # the orphaned publishing workers notice and leave (within a second or two)
        assert _group_gone(process.pid), "workers of the killed command are still running"
    finally:
        _stop_group(process)
    parent, _ = _sweep_runs(client)
    assert parent.info.status == "RUNNING"  # nobody ended it
    leaked = [p for p in staging.iterdir() if p.name.startswith(f"{process.pid}-")]
    assert leaked, "the killed command had staged files (its run folders)"
    sweep_id = parent.data.tags["segexp.sweep_id"]

    # the next command on the store: compare refuses the incomplete latest sweep
    env = {"SEGEXP_STAGING_DIR": str(staging)}
    started = time.monotonic()
    refused = run_cli([], cwd=work, module="segexp.compare", env=env)
    took = time.monotonic() - started
    assert refused.returncode == 2, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("segexp: error:")]
    assert len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"sweep {sweep_id}" in errors[0] and "is incomplete" in errors[0]
    assert "KILLED (segexp.ended_by=process_gone)" in errors[0]
    assert f"of {PLANNED} planned jobs ran" in errors[0]
    assert "allow_incomplete=true" in errors[0]

    parent, jobs = _sweep_runs(client)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["segexp.ended_by"] == "process_gone"
    assert str(process.pid) in parent.data.tags["segexp.end_reason"]
    assert not [r for r in jobs if r.info.status == "RUNNING"]
    assert not list(staging.iterdir()), "the killed command's staged files were not swept"

    # promote best= refuses it: one line naming the sweep, its status and the key
    promote = run_cli(
        ["best=silhouette", "report.enabled=false"], cwd=work, module="segexp.promote", env=env
    )
    assert promote.returncode == 2, promote.stderr
    line = [x for x in promote.stderr.splitlines() if x.startswith("segexp: error:")]
    assert len(line) == 1, promote.stderr
    assert line[0].startswith("segexp: error: best=silhouette: sweep ")
    assert sweep_id in line[0] and "KILLED" in line[0] and "allow_incomplete=true" in line[0]
    assert not open_store(f"sqlite:///{work / 'mlflow.db'}").search_registered_models()

    # named, or allowed: the leaderboard with a clear note
    shown = run_cli(["allow_incomplete=true"], cwd=work, module="segexp.compare", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"INCOMPLETE sweep {sweep_id}")
    assert "segexp: note:" in shown.stderr and "is incomplete" in shown.stderr
    named = run_cli([f"sweep_id={sweep_id}"], cwd=work, module="segexp.compare", env=env)
    assert named.returncode == 0, named.stderr
    assert "is incomplete" in named.stderr
    print(f"next command ended the lost sweep and refused it in {took:.1f} s")


# ----------------------------------------------- incomplete sweeps on a hand-made store


def _sweep(client, experiment_id: str, sweep_id: str, planned: int, silhouettes, status, tags=()):
    """A sweep as segexp writes it: a parent (kind sweep, jobs_planned) and job runs."""
    parent = client.create_run(
        experiment_id,
        run_name=f"sweep-{sweep_id}",
        tags={
            "segexp.kind": "sweep",
            "segexp.sweep_id": sweep_id,
            "segexp.jobs_planned": str(planned),
            **dict(tags),
        },
    ).info.run_id
    for num, value in enumerate(silhouettes):
        job = client.create_run(
            experiment_id,
            run_name=f"kmeans-k{num + 3}-standard-income_spending",
            tags={
                "segexp.kind": "job",
                "segexp.sweep_id": sweep_id,
                "segexp.job_num": str(num),
                "mlflow.parentRunId": parent,
            },
        ).info.run_id
        for key, param in {"algo": "kmeans", "k": num + 3, "scaler": "standard"}.items():
            client.log_param(job, key, param)
        client.log_metric(job, "silhouette", value)
        client.log_metric(job, "n_clusters", num + 3)
        client.set_terminated(job, "FINISHED")
    if status != "RUNNING":
        client.set_terminated(parent, status)
    return parent


def _error_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("segexp: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_sweep_with_fewer_runs_than_planned_is_refused_or_flagged(tmp_path, store):
    client = open_store(store)
    experiment_id = client.create_experiment("segexp-customers")
    _sweep(client, experiment_id, "complete", 2, [0.5, 0.6], "FINISHED")
    time.sleep(0.01)  # the incomplete one is the latest
    _sweep(client, experiment_id, "short", 3, [0.7, 0.4], "FINISHED")
    args = [f"mlflow.tracking_uri={store}"]

    refused = run_cli(args, cwd=tmp_path, module="segexp.compare")
    assert refused.returncode == 2
    line = _error_line(refused)
    assert "sweep short" in line and "2 of 3 planned jobs ran" in line
    assert "allow_incomplete=true" in line and "sweep_id=complete" in line

    promote = run_cli([*args, "best=silhouette"], cwd=tmp_path, module="segexp.promote")
    assert promote.returncode == 2
    line = _error_line(promote)
    assert line.startswith("segexp: error: best=silhouette: sweep short")
    assert "2 of 3 planned jobs ran" in line and "allow_incomplete=true" in line

    shown = run_cli([*args, "allow_incomplete=true"], cwd=tmp_path, module="segexp.compare")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("INCOMPLETE sweep short")
    assert "2 of 3 planned jobs ran" in shown.stderr

    complete = run_cli([*args, "sweep_id=complete"], cwd=tmp_path, module="segexp.compare")
    assert complete.returncode == 0, complete.stderr
    assert complete.stdout.startswith("sweep complete") and "incomplete" not in complete.stderr


def test_running_sweep_of_a_live_process_is_incomplete_and_left_running(tmp_path, store):
    from segexp.tracking.liveness import process_tags

    client = open_store(store)
    experiment_id = client.create_experiment("segexp-customers")
    parent = _sweep(client, experiment_id, "live", 2, [0.5, 0.6], "RUNNING", process_tags())
    refused = run_cli([f"mlflow.tracking_uri={store}"], cwd=tmp_path, module="segexp.compare")
    assert refused.returncode == 2
    assert "still RUNNING" in _error_line(refused)
    assert client.get_run(parent).info.status == "RUNNING"  # its process (this one) lives
