"""The bad-input battery: one case = one command a careless user types.

Every case runs the real command line in a subprocess, in a folder of its own,
and asserts the promise of ``segexp.errors``: exactly one ``segexp: error:``
line on stderr (no traceback), the expected exit code, the expected words in
the message, and nothing left behind: no new run in the tracking store, no new
file in the folder (Hydra's output folders included) other than those the case
allows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
MALL_CSV = PROJECT_DIR.parent / "shared" / "data" / "Mall_Customers.csv"
STORE_FILE = "mlflow.db"


@dataclass(frozen=True)
class Case:
    """One bad input. ``args`` may hold ``{dir}`` (the case's folder), ``{store}`` (its
    tracking URI), ``{mall}`` (the Kaggle file), ``{run_id}`` (a finished job run of the
    seeded store, when ``seeded``) and ``{parent_run_id}`` (its sweep's parent run);
    ``setup(folder)`` writes the files the case needs."""

    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]  # words the one-line message must contain (case-insensitive)
    module: str = "segexp"  # python -m <module>
    code: int = 2
    setup: Callable[[Path], None] | None = None
    seeded: bool = False  # the case needs a store holding a finished sweep
    allowed: tuple[str, ...] = ()  # files the case itself creates (relative to its folder)
    env: dict[str, str] = field(default_factory=dict)
    timeout: int = 120


def case(id: str, args: Sequence[str] | str, *expect: str, **options) -> Case:
    """``case("seed-abc", "seed=abc", "seed", "abc")``: args as a list or one string."""
    parts = tuple(args.split()) if isinstance(args, str) else tuple(args)
    return Case(id=id, args=parts, expect=tuple(expect), **options)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SEGEXP_"))}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        PYTHONWARNINGS="ignore",
        COLUMNS="120",
    )
    env.update(extra or {})
    return env


def snapshot(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, relative, except the store database itself."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if not p.name.startswith(STORE_FILE)  # mlflow.db, mlflow.db-journal, ...
        and ".lock" not in p.name
    }


def count_runs(store_uri: str) -> int:
    """Runs of every experiment (deleted ones too) in the store; 0 when it does not exist."""
    path = Path(store_uri.removeprefix("sqlite:///"))
    if not path.exists():
        return 0
    import sqlite3

    with sqlite3.connect(path) as db:
        try:
            return int(db.execute("select count(*) from runs").fetchone()[0])
        except sqlite3.OperationalError:  # a store without tables yet
            return 0


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def run(case: Case, folder: Path, values: dict[str, str]) -> subprocess.CompletedProcess:
    args = [fill(a, values) for a in case.args]
    return subprocess.run(
        [sys.executable, "-m", case.module, *args],
        cwd=folder,
        env=clean_env({k: fill(v, values) for k, v in case.env.items()}),
        capture_output=True,
        text=True,
        timeout=case.timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, case: Case) -> str:
    """The promised failure: exit code, one ``segexp: error:`` line, the expected words."""
    where = f"[{case.id}] python -m {case.module} {' '.join(case.args)}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("segexp: error:")]
    assert "Traceback" not in result.stderr, f"{where}: traceback:\n{result.stderr[-3000:]}"
    assert result.returncode == case.code, (
        f"{where}: exit {result.returncode}, expected {case.code}\n{result.stderr[-3000:]}"
    )
    assert len(errors) == 1, f"{where}: expected one error line, got:\n{result.stderr[-3000:]}"
    message = errors[0]
    for word in case.expect:
        assert word.lower() in message.lower(), f"{where}: {word!r} not in {message!r}"
    return message


def check(case: Case, folder: Path, values: dict[str, str]) -> str:
    """Run the case and assert the whole promise; return its message."""
    if case.setup is not None:
        case.setup(folder)
    store = values["store"]
    runs_before = count_runs(store)
    files_before = snapshot(folder)
    result = run(case, folder, values)
    message = assert_one_line_error(result, case)
    assert count_runs(store) == runs_before, f"[{case.id}] a run was left in the store"
    new_files = snapshot(folder) - files_before - {fill(a, values) for a in case.allowed}
    assert not new_files, f"[{case.id}] files left behind: {sorted(new_files)}"
    return message
