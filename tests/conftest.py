"""Shared test fixtures: composed configs, real MLflow stores in temporary folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_DIR / "src" / "segexp" / "conf"
MALL_CSV = PROJECT_DIR.parent / "shared" / "data" / "Mall_Customers.csv"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_RUN_ID", None)


def compose_config(overrides: list[str] | None = None):
    """Compose the app config as a job sees it, with Hydra's runtime choices set."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides or []), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
    return cfg


def mall_data_cfg(**overrides):
    """The shipped data config, as a user's `data.key=value` overrides would change it."""
    cfg = OmegaConf.load(CONF_DIR / "data" / "mall_sample.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


@pytest.fixture
def make_config():
    return compose_config


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory) -> Path:
    """One initialised empty SQLite store; creating a store costs seconds of migrations."""
    folder = tmp_path_factory.mktemp("template-store")
    db = folder / "mlflow.db"
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store(tmp_path, _template_store) -> str:
    """A fresh, isolated SQLite tracking store (copied from the template) in tmp_path."""
    db = tmp_path / "mlflow.db"
    shutil.copy(_template_store, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="session")
def mall_csv() -> Path:
    if not MALL_CSV.exists():
        pytest.skip(f"{MALL_CSV} not found (../shared/data beside the project)")
    return MALL_CSV


# The metrics every job run logs (README: "What every run logs"), whatever its engine.
RUN_METRICS = (
    "silhouette",
    "inertia",
    "calinski_harabasz",
    "davies_bouldin",
    "n_clusters",
    "noise_fraction",
    "min_segment_share",
    "max_segment_share",
    "fit_seconds",
)


def run_cli(
    args: list[str], cwd: Path, env: dict | None = None, module: str = "segexp", timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run a segexp command-line tool in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(process: subprocess.Popen, url: str, log: Path, seconds: int = 180) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"no answer on {url} after {seconds} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (its store and artifacts in ``folder``): its URI."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "w") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
            + ["--port", str(port), "--workers", "1"]
            + ["--backend-store-uri", f"sqlite:///{folder / 'server.db'}"]
            + ["--artifacts-destination", str(folder / "server-artifacts")],
            cwd=folder,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(server, f"{uri}/health", log)
        yield uri
    finally:
        stop_process_group(server)


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with start_new_session=True and every worker it forked."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
