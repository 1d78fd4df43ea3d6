"""Staging removes only what segexp made: a user's folders under SEGEXP_STAGING_DIR survive.

``SEGEXP_STAGING_DIR=$PWD/big segexp k=4`` used to delete the user's ``2023-sales/``
(every folder whose name starts with digits and whose "process" is gone). Now segexp
marks its own process folders (``.segexp-staging``) and removes only those, after a
normal run and after a killed one (the next command sweeps it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli

from segexp.tracking import staging
from segexp.tracking.staging import MARKER

USER_FOLDERS = ("2023-sales", "12345-0", "999999-1")


def _plant(staging: Path) -> None:
    for name in USER_FOLDERS:
        (staging / name).mkdir(parents=True)
        (staging / name / "mine.txt").write_text(f"{name}\n")


def _assert_planted(staging: Path) -> None:
    for name in USER_FOLDERS:
        assert (staging / name / "mine.txt").read_text() == f"{name}\n", f"{name} lost"


def _env(staging: Path) -> dict[str, str]:
    return {"MLFLOW_DISABLE_TELEMETRY": "true", "SEGEXP_STAGING_DIR": str(staging)}


def test_user_folders_survive_a_run(tmp_path):
    staging, work = tmp_path / "big", tmp_path / "work"
    work.mkdir()
    _plant(staging)
    store = f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}"
    done = run_cli(["k=4", "plots.enabled=false", store], cwd=work, env=_env(staging))
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_planted(staging)
    assert sorted(p.name for p in staging.iterdir()) == sorted(USER_FOLDERS)  # its own: gone


def test_user_folders_survive_the_command_after_a_killed_sweep(tmp_path):
    staging, work = tmp_path / "big", tmp_path / "work"
    work.mkdir()
    _plant(staging)
    store = f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "segexp", "-m", "k=2..20", store],
        cwd=work,
        env={**os.environ, **_env(staging)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    own = f"{process.pid}-"
    try:
        deadline = time.monotonic() + 240
        while not any(staging.glob(own + "*")):  # killed once it has staged something
            assert process.poll() is None, "the sweep ended before it staged anything"
            assert time.monotonic() < deadline, "the sweep staged nothing within 240 s"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)  # the command and any worker it started
        process.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    left = [p for p in staging.iterdir() if p.name.startswith(own)]
    assert left and all((p / MARKER).is_file() for p in left), "no marked folder to sweep"
    _assert_planted(staging)
    after = run_cli(["k=2", "plots.enabled=false", store], cwd=work, env=_env(staging))
    assert after.returncode == 0, after.stderr[-3000:]
    _assert_planted(staging)
    assert sorted(p.name for p in staging.iterdir()) == sorted(USER_FOLDERS), after.stderr


def test_a_dead_commands_unfinished_folder_is_swept_and_an_unmarked_one_is_kept(
    tmp_path, monkeypatch
):
    """A staging folder is made as .<pid>-<start>.new, marked, then renamed: a command killed
    in between leaves a marked .new folder, which the next command removes."""
    monkeypatch.setenv(staging.ROOT_ENV, str(tmp_path))
    unfinished, unmarked = tmp_path / ".999999-1.new", tmp_path / ".999998-1.new"
    for folder in (unfinished, unmarked):
        folder.mkdir()
    (unfinished / staging.MARKER).write_text("segexp staging folder\n")
    assert staging.sweep() == [unfinished]
    assert not unfinished.exists() and unmarked.is_dir()


def test_only_the_two_staging_names_are_swept(tmp_path, monkeypatch):
    """<pid>-<start> and .<pid>-<start>.new are segexp's names; a marked folder named only
    like them (.<pid>-<start>, <pid>-<start>.new) is the user's and stays."""
    monkeypatch.setenv(staging.ROOT_ENV, str(tmp_path))
    names = ("999999-1", ".999999-2.new", ".999999-3", "999999-4.new", "x999999-5")
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / staging.MARKER).write_text("segexp staging folder\n")
    assert sorted(p.name for p in staging.sweep()) == [".999999-2.new", "999999-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".999999-3", "999999-4.new", "x999999-5"]
