"""Battery: tracking stores and experiment names a careless user gives, for segexp and the tools.

Each case is one real command in its own folder: one ``segexp: error:`` line naming the
key (or variable) and why, exit 2, no run and no file left behind (``harness.check``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.battery.harness import case

UNREACHABLE = "mlflow.tracking_uri=http://127.0.0.1:1"
NO_SERVER = ("no MLflow server answers", "127.0.0.1:1", "mlflow server")


def _file_in_the_way(folder: Path) -> None:
    (folder / "afile").write_text("not a folder\n")


def _folder_as_db(folder: Path) -> None:
    (folder / "store.db").mkdir()


def _not_a_database(folder: Path) -> None:
    (folder / "notes.db").write_text("customer notes, not a database\n")


def _deleted_experiment(folder: Path) -> None:
    """A store whose experiment 'gone' is deleted (MLflow keeps it, lifecycle 'deleted')."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    artifacts = (folder.parent / "gone-artifacts").as_uri()  # outside the case's folder
    client.delete_experiment(client.create_experiment("gone", artifact_location=artifacts))


def _unwritable(folder: Path) -> None:
    """A folder this user cannot write in (root writes anywhere but /sys)."""
    target = folder / "locked"
    target.mkdir()
    target.chmod(0o555)


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

CASES = [
    # a server that does not answer: every tool, in seconds (timeout bounds the case)
    case("unreachable-server", UNREACHABLE, *NO_SERVER, timeout=30),
    case("unreachable-server-sweep", f"-m k=3,4 {UNREACHABLE}", *NO_SERVER, timeout=30),
    case("compare-unreachable", UNREACHABLE, *NO_SERVER, module="segexp.compare", timeout=30),
    case(
        "promote-best-unreachable",
        f"best=silhouette {UNREACHABLE}",
        *NO_SERVER,
        module="segexp.promote",
        timeout=30,
    ),
    case("report-unreachable", f"run_id=abc {UNREACHABLE}", *NO_SERVER, module="segexp.report"),
    case("eda-unreachable", UNREACHABLE, *NO_SERVER, module="segexp.eda", timeout=30),
    case(
        "predict-unreachable",
        f"input={{mall}} output={{dir}}/out.csv {UNREACHABLE}",
        *NO_SERVER,
        module="segexp.predict",
        timeout=30,
    ),
    case("rerun-unreachable", f"run_id=abc {UNREACHABLE}", *NO_SERVER, module="segexp.rerun"),
    case(
        "https-closed-port",
        "mlflow.tracking_uri=https://127.0.0.1:1",
        "https://127.0.0.1:1",
        "no MLflow server answers",
        timeout=30,
    ),
    case(
        "env-uri-unreachable",
        "k=3",
        "MLFLOW_TRACKING_URI=http://127.0.0.1:1",
        "no MLflow server answers",
        env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"},
        timeout=30,
    ),
    case(
        "unknown-host",
        "mlflow.tracking_uri=http://no-such-host.invalid:5000",
        "unknown host",
        "no-such-host.invalid",
        timeout=30,
    ),
    # URIs MLflow cannot take
    case("bad-scheme", "mlflow.tracking_uri=ftp://host/runs", "unknown scheme 'ftp://'", "sqlite"),
    case(
        "compare-bad-scheme",
        "mlflow.tracking_uri=ftp://host/runs",
        "unknown scheme",
        module="segexp.compare",
    ),
    case("sqlite-in-memory", "mlflow.tracking_uri=sqlite:///:memory:", "not a SQLite file"),
    case("sqlite-two-slashes", "mlflow.tracking_uri=sqlite://mlflow.db", "sqlite:///PATH"),
    case(
        "plain-folder-file-store",
        "mlflow.tracking_uri=./runs",
        "file store",
        "sqlite:///",
    ),
    # SQLite paths that cannot hold a store
    case(
        "sqlite-under-a-file",
        "mlflow.tracking_uri=sqlite:///{dir}/afile/sub/mlflow.db",
        "afile is a file, not a folder",
        setup=_file_in_the_way,
        allowed=("afile",),
    ),
    case(
        "sweep-sqlite-under-a-file",
        "-m k=3,4 mlflow.tracking_uri=sqlite:///{dir}/afile/mlflow.db",
        "afile is a file",
        setup=_file_in_the_way,
        allowed=("afile",),
    ),
    case(
        "sqlite-folder-as-db",
        "mlflow.tracking_uri=sqlite:///{dir}/store.db",
        "is a folder, not a database file",
        setup=_folder_as_db,
        allowed=("store.db",),
    ),
    case(
        "sqlite-not-a-database",
        "mlflow.tracking_uri=sqlite:///{dir}/notes.db",
        "notes.db is not an SQLite database",
        setup=_not_a_database,
        allowed=("notes.db",),
    ),
    case(
        "compare-not-a-database",
        "mlflow.tracking_uri=sqlite:///{dir}/notes.db",
        "not an SQLite database",
        module="segexp.compare",
        setup=_not_a_database,
        allowed=("notes.db",),
    ),
    case(
        "eda-folder-as-db",
        "mlflow.tracking_uri=sqlite:///{dir}/store.db",
        "is a folder",
        module="segexp.eda",
        setup=_folder_as_db,
        allowed=("store.db",),
    ),
    pytest.param(
        case(
            "sqlite-unwritable-folder",
            "mlflow.tracking_uri=sqlite:////sys/segexp-battery/mlflow.db",
            "folder /sys is not writable",
        ),
        marks=pytest.mark.skipif(not os.path.isdir("/sys"), reason="no /sys here"),
    ),
    pytest.param(
        case(
            "sqlite-read-only-folder",
            "mlflow.tracking_uri=sqlite:///{dir}/locked/mlflow.db",
            "locked is not writable",
            setup=_unwritable,
            allowed=("locked",),
        ),
        marks=pytest.mark.skipif(ROOT, reason="root writes into a read-only folder"),
    ),
    # experiment names
    case("empty-experiment", "mlflow.experiment=", "mlflow.experiment", "empty"),
    case("empty-experiment-sweep", "-m k=3,4 mlflow.experiment=", "mlflow.experiment", "empty"),
    case("null-experiment", "mlflow.experiment=null", "mlflow.experiment", "null"),
    case(
        "compare-empty-experiment",
        "mlflow.tracking_uri={store} mlflow.experiment=",
        "mlflow.experiment",
        module="segexp.compare",
        seeded=True,
    ),
    case(
        "experiment-too-long",
        "mlflow.experiment=" + "x" * 501,
        "at most 500 characters",
        "501",
    ),
    case(
        "deleted-experiment",
        "mlflow.experiment=gone",
        "experiment 'gone' is deleted",
        "mlflow experiments restore",
        setup=_deleted_experiment,
    ),
    case(
        "sweep-deleted-experiment",
        "-m k=3,4 mlflow.experiment=gone",
        "experiment 'gone' is deleted",
        setup=_deleted_experiment,
    ),
    case(
        "compare-deleted-experiment",
        "mlflow.experiment=gone",
        "experiment 'gone' is deleted",
        module="segexp.compare",
        setup=_deleted_experiment,
    ),
]


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_bad_store_is_one_line_error(battery, c):
    battery(c)
