"""segexp as an installed package: a built wheel in a fresh venv, run from a user's folder.

The rest of the suite runs against the editable install (``/work/main/src``). This test
builds a wheel, installs it with ``--no-deps`` into a new venv and borrows the
dependencies from the dev venv through a plain path line in a ``.pth`` file (a plain
line does not run the ``.pth`` files of that folder, so the dev venv's editable hook
for segexp stays off). Missing package data, plugins or entry points show up here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import PROJECT_DIR
from mlflow.tracking import MlflowClient

SCRIPTS = [
    "segexp",
    "segexp-compare",
    "segexp-promote",
    "segexp-predict",
    "segexp-report",
    "segexp-eda",
    "segexp-rerun",
    "segexp-sample",
]
BISECTING_YAML = (
    "_target_: sklearn.cluster.BisectingKMeans\nn_clusters: ${k}\nrandom_state: ${seed}\n"
)
# Not part of a build: environments, VCS data, caches, outputs of earlier runs.
NOT_SOURCES = shutil.ignore_patterns(
    ".venv",
    ".git",
    "*.egg-info",
    "build",
    "dist",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    ".mypy_cache",
    "outputs",
    "multirun",
    "mlruns",
    "mlartifacts",
    "*.db",
)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in cmd],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def _build_wheel(tmp_path: Path) -> Path:
    # Build from a copy: an in-tree build writes build/ and src/*.egg-info into the live tree.
    source = tmp_path / "source"
    shutil.copytree(PROJECT_DIR, source, ignore=NOT_SOURCES)
    outdir = tmp_path / "dist"
    _ok(
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", outdir, source], cwd=tmp_path),
        "python -m build --wheel",
    )
    wheels = list(outdir.glob("segexp-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _job_runs(project: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=100) if experiments else []
    return [r for r in runs if r.data.tags.get("segexp.kind") == "job"]


@pytest.mark.slow
def test_built_wheel_runs_jobs_and_user_configs_from_a_fresh_venv(tmp_path):
    wheel = _build_wheel(tmp_path)

    # Every packaged config of the source tree ships in the wheel.
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    conf_src = PROJECT_DIR / "src" / "segexp" / "conf"
    expected = {
        f"segexp/conf/{p.relative_to(conf_src).as_posix()}" for p in conf_src.rglob("*.yaml")
    }
    assert "segexp/conf/config.yaml" in expected
    assert expected - shipped == set(), "configs missing from the wheel"
    assert "hydra_plugins/segexp_sweep/user_conf.py" in shipped
    assert "hydra_plugins/segexp_sweep/launcher.py" not in shipped  # Hydra's own sweeper

    # A fresh venv with only the wheel installed; dependencies borrowed from the dev venv.
    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path), "python -m venv")
    python = venv / "bin" / "python"
    _ok(
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                python,
                "install",
                "--no-deps",
                "--no-index",
                wheel,
            ],
            cwd=tmp_path,
        ),
        "pip install --no-deps wheel",
    )
    fresh_site = Path(
        _ok(
            _run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=tmp_path,
            ),
            "fresh venv sysconfig",
        ).stdout.strip()
    )
    assert fresh_site.is_relative_to(venv)
    dev_site = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (fresh_site / "segexp_dev_deps.pth").write_text("".join(f"{p}\n" for p in dev_site))

    probe = (
        "import json, sys, segexp, segexp.__main__ as l, "
        "hydra_plugins.segexp_sweep.user_conf as u, mlflow, hydra, sklearn; "
        "print(json.dumps([segexp.__file__, l.__file__, u.__file__, sys.path]))"
    )
    where = _ok(_run([python, "-c", probe], cwd=tmp_path), "import probe in fresh venv")
    *modules, path = json.loads(where.stdout.strip().splitlines()[-1])
    src = PROJECT_DIR / "src"
    for module in modules:
        assert Path(module).is_relative_to(fresh_site), f"{module} not from the installed wheel"
        assert not Path(module).is_relative_to(src), f"{module} comes from the source tree"
    assert str(src) not in path, "the dev venv's editable finder leaked into the fresh venv"

    bin_dir = venv / "bin"
    missing = [name for name in SCRIPTS if not (bin_dir / name).is_file()]
    assert missing == [], f"console scripts missing from the fresh venv: {missing}"
    assert (bin_dir / "segexp").read_text().startswith(f"#!{python}")

    # One job from an empty folder: default store sqlite:///<cwd>/mlflow.db.
    project = tmp_path / "project"
    project.mkdir()
    _ok(_run([bin_dir / "segexp", "k=3"], cwd=project), "segexp k=3")
    assert (project / "mlflow.db").is_file()
    runs = _job_runs(project)
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["algo"] == "kmeans"
    assert run.data.params["k"] == "3"
    assert run.info.run_name == "kmeans-k3-standard-income_spending"
    assert run.info.artifact_uri.startswith(f"file://{project}/mlruns") or (
        run.info.artifact_uri.startswith(str(project / "mlruns"))
    ), run.info.artifact_uri

    # A user config group option in ./conf, found by the installed search-path plugin.
    (project / "conf" / "algo").mkdir(parents=True)
    (project / "conf" / "algo" / "bisecting.yaml").write_text(BISECTING_YAML)
    _ok(_run([bin_dir / "segexp", "algo=bisecting", "k=4"], cwd=project), "segexp algo=bisecting")
    runs = _job_runs(project)
    assert len(runs) == 2, [r.info.run_name for r in runs]
    bisecting = [r for r in runs if r.data.params.get("algo") == "bisecting"]
    assert len(bisecting) == 1, [r.data.params for r in runs]
    assert bisecting[0].info.status == "FINISHED"
    assert bisecting[0].data.params["k"] == "4"
    assert bisecting[0].info.run_name == "bisecting-k4-standard-income_spending"

    _ok(
        _run([bin_dir / "segexp-compare", "--help"], cwd=project, timeout=60),
        "segexp-compare --help",
    )
