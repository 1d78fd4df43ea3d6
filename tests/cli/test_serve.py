"""The champion served by a real ``mlflow models serve`` answers like ``segexp.predict``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import CONF_DIR, compose_config, free_port, stop_process_group, wait_until_up
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from segexp.jobs.job import run_job
from segexp.tools.predict import predict
from segexp.tools.promote import promote

STARTUP_SECONDS = 180


def tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def promoted_dbscan(folder: Path, store: str, mall_csv: Path) -> None:
    """DBSCAN on the Mall file (served through the nearest-core extension), with names."""
    outcome = run_job(
        compose_config(
            [
                f"mlflow.tracking_uri={store}",
                f"data.path={mall_csv}",
                "algo=dbscan",
                "algo.eps=0.35",
                "plots.enabled=false",
            ]
        )
    )
    assert outcome.status == "finished", outcome.message
    labels = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=outcome.run_id, artifact_path="assignments.csv", tracking_uri=store
        )
    )["segment"]
    entries = [{"id": int(s), "name": f"Group {s}"} for s in sorted(set(labels) - {-1})]
    (folder / "segments.json").write_text(json.dumps(entries))
    MlflowClient(store).log_artifact(outcome.run_id, str(folder / "segments.json"))
    promote(
        tool_config(
            "promote",
            [
                f"mlflow.tracking_uri={store}",
                f"run_id={outcome.run_id}",
                f"report.output={folder / 'report.html'}",
            ],
        )
    )


@pytest.mark.server
def test_served_champion_matches_segexp_predict(tmp_path, _template_store, mall_csv):
    shutil.copy(_template_store, tmp_path / "mlflow.db")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    promoted_dbscan(tmp_path, store, mall_csv)

    customers = pd.read_csv(mall_csv, dtype={"CustomerID": str}).iloc[::10].head(20)
    customers = customers.assign(channel="web")  # an extra column the model ignores
    customers.to_csv(tmp_path / "new_customers.csv", index=False)
    predict(
        tool_config(
            "predict",
            [
                f"mlflow.tracking_uri={store}",
                f"input={tmp_path / 'new_customers.csv'}",
                f"output={tmp_path / 'segments.csv'}",
            ],
        )
    )
    expected = pd.read_csv(tmp_path / "segments.csv")
    assert len(expected) == 20 and expected["segment"].nunique() > 1

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/customer-segments@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}/ping", log, STARTUP_SECONDS)
        body = json.dumps(
            {"dataframe_split": json.loads(customers.to_json(orient="split", index=False))}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())["predictions"]
    finally:
        stop_process_group(process)
    assert process.poll() is not None
    assert [row["segment"] for row in answer] == expected["segment"].tolist()
    assert [row["segment_name"] for row in answer] == expected["segment_name"].tolist()
