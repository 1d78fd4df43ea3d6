"""Fixtures of the bad-input battery: a folder per case and, when asked, a seeded store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.battery.harness import MALL_CSV, STORE_FILE, clean_env


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory) -> tuple[Path, str, str]:
    """A store holding one finished two-job sweep of the built-in sample; (folder, a job's
    run id, the sweep's parent run id)."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("battery-seed")
    subprocess.run(
        [sys.executable, "-m", "segexp", "-m", "k=3,4", "plots.enabled=false"],
        cwd=folder,
        env=clean_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / STORE_FILE}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`segexp.kind` = 'job'",
    )
    return folder, runs[0].info.run_id, runs[0].data.tags["mlflow.parentRunId"]


@pytest.fixture
def battery(tmp_path, request):
    """``battery(case)`` runs one case in a fresh folder and asserts the whole promise."""
    from tests.battery import harness

    def run_case(case: harness.Case) -> str:
        folder = tmp_path / "work"
        folder.mkdir()
        values = {"dir": str(folder), "mall": str(MALL_CSV), "run_id": "", "parent_run_id": ""}
        values["store"] = f"sqlite:///{folder / STORE_FILE}"
        if case.seeded:
            seed_folder, run_id, parent_run_id = request.getfixturevalue("seeded_store")
            shutil.copy(seed_folder / STORE_FILE, folder / STORE_FILE)  # artifacts stay put
            values["run_id"], values["parent_run_id"] = run_id, parent_run_id
        if "{mall}" in " ".join(case.args) and not MALL_CSV.exists():
            pytest.skip(f"{MALL_CSV} not found")
        return harness.check(case, folder, values)

    return run_case
