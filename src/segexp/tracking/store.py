"""The one way a run reaches MLflow: store location, experiments, runs, logging.

A job computes everything its run holds into a ``RunRecord`` (params, metrics,
tags, and a folder of artifact files); ``log_run`` turns it into one MLflow
run: create, one ``log_batch``, one artifact upload, end. Every launcher and
the Python API go through it. MLflow is imported on first use, not at import
time: it is the slowest import of the stack and ``--help`` needs none of it.

Uses ``MlflowClient`` with explicit run ids (never the fluent API's global
active run), so parallel jobs, the sweep callback and the tools cannot pick up
each other's runs, and ``MLFLOW_RUN_ID`` in the environment cannot hijack a
parent (mlflow#15713). Each job logs its params, metrics and tags in one batch
and its artifacts in one call.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segexp.contract import TAG_ERROR, TAG_KIND, TAG_PREFIX, TAG_SWEEP_ID
from segexp.errors import StoreWriteError, TrackingError
from segexp.tracking import staging
from segexp.tracking.liveness import TAG_HOST, TAG_PID, hostname, is_gone, process_tags

DEFAULT_DB_NAME = "mlflow.db"
ARTIFACT_DIR_NAME = "mlruns"
# MLflow's own tag names (mlflow.utils.mlflow_tags), spelled out to keep mlflow out of imports
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"
# MLflow 3's UI opens an experiment on its GenAI views unless told it holds model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
_MAX_TAG_LENGTH = 5000
_MAX_PARAM_LENGTH = 6000


# MLflow retries an unanswered HTTP request 7 times with a growing backoff (about four
# minutes) and waits 120 s for each answer. segexp's processes use shorter bounds unless
# the user set these variables: an unreachable server is a one-line error in seconds.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    # MLflow draws a progress bar on stderr for every artifact download (predict, report):
    # noise beside segexp's own lines, whether or not stderr is a terminal.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # ... and two "View run/experiment at" lines per run ended on a tracking server; segexp
    # prints each run's line and the sweep's links itself.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
SERVER_CHECK_TIMEOUT = 5.0  # seconds the first request to a tracking server may take
# Seconds to wait for another process creating or migrating a store (said at once, with
# its pid); SEGEXP_STORE_LOCK_TIMEOUT sets another bound. A new store takes 3-4 s to create.
LOCK_TIMEOUT = 30.0
LOCK_GRACE = 5.0  # seconds waited for the lock before saying who holds it
LOCK_TIMEOUT_ENV = "SEGEXP_STORE_LOCK_TIMEOUT"
_SQLITE_HEADER = b"SQLite format 3\x00"
_MAX_EXPERIMENT_NAME = 500  # MLflow's limit (mlflow.utils.validation)
_DB_SCHEMES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores, with or without +driver
_OTHER_SCHEMES = ("databricks", "databricks-uc", "uc")
ALLOWED_URIS = (
    "sqlite:///PATH (a local file, created when missing), http://HOST:PORT or "
    "https://HOST:PORT (an mlflow server), postgresql://, mysql://, mssql://, databricks"
)


def bound_http_retries() -> None:
    """Bounded retries and timeouts for MLflow's HTTP requests in this process (and the
    processes it starts), and no download progress bars, where the user has not set them."""
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)


bound_http_retries()


def absolute_tracking_uri(configured: str | None, base_dir: str | Path | None = None) -> str:
    """Absolute tracking URI: the configured one, else MLFLOW_TRACKING_URI, else a local SQLite.

    Relative SQLite and file paths are made absolute against ``base_dir`` (the
    folder the command was started in) so Hydra's output folders never receive runs.
    Nothing is checked or opened.
    """
    base = Path(base_dir or os.getcwd()).resolve()
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        return f"sqlite:///{base / DEFAULT_DB_NAME}"
    if uri in _OTHER_SCHEMES:  # MLflow's names for a Databricks workspace, not a folder
        return uri
    if uri.startswith("sqlite:///"):
        db_path = uri[len("sqlite:///") :]
        if db_path != ":memory:" and db_path and not os.path.isabs(db_path):
            return f"sqlite:///{(base / db_path).resolve()}"
        return uri
    if "://" not in uri and not uri.startswith(("file:", "sqlite:")):  # a bare folder
        return str((base / uri).resolve())  # MLflow's file store (opt-in only in MLflow 3)
    if uri.startswith("file:") and not uri.startswith("file:///"):
        return (base / uri[len("file:") :]).resolve().as_uri()
    return uri


def resolve_tracking_uri(
    configured: str | None, base_dir: str | Path | None = None, *, check: bool = True
) -> str:
    """``absolute_tracking_uri``, checked once per process (``check``): a known scheme, a
    usable SQLite path, a server that answers. TrackingError (one line) otherwise."""
    uri = absolute_tracking_uri(configured, base_dir)
    if check:
        _check_once(uri, _where(configured, uri))
    return uri


@functools.cache
def _check_once(uri: str, where: str) -> None:
    """``check_tracking_uri``, remembered once it passed (a refusal raises, and is not kept)."""
    check_tracking_uri(uri, where)


def _where(configured: str | None, uri: str) -> str:
    """How the user set the store, for messages: the key (or variable) and its value."""
    if configured:
        return f"mlflow.tracking_uri={configured}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return f"MLFLOW_TRACKING_URI={os.environ['MLFLOW_TRACKING_URI']}"
    return f"the default store {uri} (mlflow.tracking_uri unset)"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a local SQLite store; None for any other store."""
    if tracking_uri.startswith("sqlite:///"):
        path = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None
    return None


def check_tracking_uri(uri: str, where: str | None = None) -> None:
    """TrackingError (one line naming ``where``) when the store cannot be used:
    an unknown scheme, a SQLite path that cannot hold a database, a server that does
    not answer. Opens nothing (a local store is created only when a run is logged)."""
    where = where or f"mlflow.tracking_uri={uri}"
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if uri.startswith("databricks") and scheme in ("", "databricks"):
        _check_databricks(where)
        return
    if uri.startswith("sqlite:"):
        if not uri.startswith("sqlite:///") or sqlite_path(uri) is None:
            raise TrackingError(
                f"{where}: not a SQLite file; write sqlite:///PATH (relative to the current "
                "folder) or sqlite:////ABSOLUTE/PATH, e.g. sqlite:///mlflow.db; an in-memory "
                "store would lose every run when the command ends"
            )
        _check_sqlite(sqlite_path(uri), where)  # type: ignore[arg-type]
        return
    if scheme in ("http", "https"):
        _check_server(uri, where)
        return
    if scheme.split("+", 1)[0] in _DB_SCHEMES or scheme in _OTHER_SCHEMES:
        return
    if not scheme or scheme == "file":  # MLflow's file store: maintenance mode in MLflow 3
        folder = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true"):
            return
        db = folder if folder.suffix in (".db", ".sqlite", ".sqlite3") else folder / "mlflow.db"
        raise TrackingError(
            f"{where}: a plain path is MLflow's file store, which MLflow 3 keeps in "
            f"maintenance mode; use a SQLite store, e.g. mlflow.tracking_uri=sqlite:///{db}"
        )
    raise TrackingError(f"{where}: unknown scheme '{scheme}://'; allowed: {ALLOWED_URIS}")


def _check_databricks(where: str) -> None:
    """``databricks`` (or ``databricks://PROFILE``) needs a workspace and its credentials:
    DATABRICKS_HOST (with a token or other auth) or a Databricks config file."""
    import socket
    from urllib.parse import urlsplit

    config = Path(os.environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg").expanduser()
    host = os.environ.get("DATABRICKS_HOST", "")
    if host:  # Databricks' own client waits minutes for a workspace that does not answer
        parts = urlsplit(host if "://" in host else f"https://{host}")
        try:
            address = (parts.hostname or host, parts.port or 443)
            socket.create_connection(address, timeout=SERVER_CHECK_TIMEOUT).close()
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise TrackingError(
                f"{where}: the Databricks workspace DATABRICKS_HOST={host} does not answer "
                f"({why}); check DATABRICKS_HOST, or use a local store: leave "
                "mlflow.tracking_uri unset (sqlite:///<current folder>/mlflow.db)"
            ) from None
        return  # MLflow authenticates; a refusal is then one line from open_store
    if config.is_file():
        return
    raise TrackingError(
        f"{where}: no Databricks workspace is configured here (DATABRICKS_HOST unset, no "
        f"{config}); set DATABRICKS_HOST and DATABRICKS_TOKEN, or run `databricks configure`, "
        "or use a local store: leave mlflow.tracking_uri unset (sqlite:///<current folder>/"
        "mlflow.db)"
    )


def _check_sqlite(path: Path, where: str) -> None:
    if path.is_dir():
        raise TrackingError(
            f"{where}: {path} is a folder, not a database file; name a file in it, "
            f"e.g. sqlite:///{path / DEFAULT_DB_NAME}"
        )
    if Path(f"{path}.lock").is_file():  # another command may be creating it: said at once
        with store_lock(path, where):
            pass
    if path.exists():
        if not path.is_file():
            raise TrackingError(f"{where}: {path} is not a regular file")
        try:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise TrackingError(f"{where}: cannot read {path} ({exc.strerror})") from None
        if head and head != _SQLITE_HEADER:
            raise TrackingError(
                f"{where}: {path} is not an SQLite database (its first bytes are not SQLite's); "
                "move it away or choose another file for the store"
            )
        if not os.access(path, os.W_OK):
            raise TrackingError(
                f"{where}: {path} is read-only; make it writable (chmod u+w) or choose "
                "another file for the store"
            )
        return
    problem = folder_problem(path.parent)
    if problem is not None:
        raise TrackingError(f"{where}: cannot create the store: {problem}; choose a writable path")


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written in; None when it can. Tried, not
    asked: os.access says yes to root in read-only places."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder, so {folder} cannot be created"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".segexp-probe-", dir=existing))
    except OSError as exc:
        what = (
            "nothing can be written in it"
            if existing == folder
            else f"{folder} cannot be created in it"
        )
        return f"folder {existing} is not writable ({exc.strerror}), so {what}"
    return None


def _check_server(uri: str, where: str) -> None:
    """The server's /health, then its API, each bounded by SERVER_CHECK_TIMEOUT: any HTTP
    answer will do (MLflow then says what else is wrong); no answer is the error, and so
    is a redirect to another server unless ALLOW_REDIRECTS_ENV allows it (the runs and
    the customers' data would go there)."""
    import ssl
    from urllib.parse import urlsplit

    context = None
    if urlsplit(uri).scheme == "https":
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(
                cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
            )
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    for path in ("/health", _API_PROBE):
        _ask_server(opener, uri, path, where)


_API_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"
ALLOW_REDIRECTS_ENV = "SEGEXP_ALLOW_REDIRECTS"  # true: follow a server's redirect elsewhere


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: the 3xx answer is raised as HTTPError, with its Location."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _ask_server(opener: Any, uri: str, path: str, where: str) -> None:
    """One bounded request to ``uri`` + ``path``; TrackingError when nothing answers or
    the answer redirects to another server."""
    import socket
    import ssl
    import urllib.error
    from urllib.parse import urljoin, urlsplit

    url = uri.rstrip("/") + path
    try:
        with opener.open(url, timeout=SERVER_CHECK_TIMEOUT):
            return
    except urllib.error.HTTPError as answer:  # it answered (401, 404 ...): a server is there
        location = answer.headers.get("Location") if 300 <= answer.code < 400 else None
        if location:
            _check_redirect(uri, urljoin(url, location), answer.code, where)
        return
    except urllib.error.URLError as exc:
        reason: Any = exc.reason
    except (OSError, ValueError) as exc:
        reason = exc
    parts = urlsplit(uri)
    if isinstance(reason, ssl.SSLCertVerificationError):
        raise TrackingError(
            f"{where}: the server's TLS certificate is not trusted ({reason.verify_message}); "
            "set MLFLOW_TRACKING_SERVER_CERT_PATH to its CA bundle, or "
            "MLFLOW_TRACKING_INSECURE_TLS=true"
        )
    if isinstance(reason, TimeoutError | socket.timeout) and path != "/health":
        raise TrackingError(
            f"{where}: the server answers /health but its API ({path.split('?')[0]}) gave no "
            f"answer within {SERVER_CHECK_TIMEOUT:g} s; is it an MLflow server, and is it "
            "overloaded or stuck (see its log)? or use a local store: leave "
            "mlflow.tracking_uri unset (sqlite:///<current folder>/mlflow.db)"
        )
    if isinstance(reason, ssl.SSLError):
        why = f"TLS handshake failed: {reason.reason or reason}; is it an http:// server?"
    elif isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, socket.gaierror):
        why = f"unknown host {parts.hostname}"
    elif isinstance(reason, TimeoutError | socket.timeout):
        why = f"no answer within {SERVER_CHECK_TIMEOUT:g} s"
    else:
        why = " ".join(str(getattr(reason, "strerror", None) or reason).split())
    host, port = parts.hostname or "127.0.0.1", parts.port or 5000
    if isinstance(reason, socket.gaierror):
        raise TrackingError(
            f"{where}: no MLflow server answers ({why}); check the host name, or use a local "
            "store: leave mlflow.tracking_uri unset (sqlite:///<current folder>/mlflow.db)"
        )
    raise TrackingError(
        f"{where}: no MLflow server answers ({why}); start one with `mlflow server --host "
        f"{host} --port {port} --backend-store-uri sqlite:///mlflow.db`, or use a local "
        "store: leave mlflow.tracking_uri unset (sqlite:///<current folder>/mlflow.db)"
    )


def _check_redirect(uri: str, target: str, code: int, where: str) -> None:
    """A redirect within the server (or to https on the same host) is followed by MLflow;
    one to another server is refused unless the user allows it."""
    from urllib.parse import urlsplit

    here, there = urlsplit(uri), urlsplit(target)
    same_host = (here.hostname or "").lower() == (there.hostname or "").lower()
    upgraded = there.scheme == "https" and there.port in (None, 443)
    if same_host and (here.port == there.port or upgraded):
        return
    if os.environ.get(ALLOW_REDIRECTS_ENV, "").strip().lower() in ("1", "true", "yes"):
        return
    elsewhere = f"{there.scheme}://{there.netloc}"
    raise TrackingError(
        f"{where}: the server answers {code}, a redirect to another server ({target}); "
        "segexp sends no runs or customer data on to another server without your say: "
        f"use that server directly (mlflow.tracking_uri={elsewhere}) or allow redirects "
        f"with {ALLOW_REDIRECTS_ENV}=true"
    )


def check_experiment_name(name: Any, key: str = "mlflow.experiment") -> str:
    """The experiment name, or TrackingError when MLflow (or a one-line message) cannot
    take it: empty, null, longer than MLflow allows, or holding control characters."""
    if name is None:
        raise TrackingError(f"{key}: expected an experiment name; got null")
    text = str(name)
    if not text.strip():
        raise TrackingError(
            f"{key}: expected an experiment name; got an empty one ({key}={text!r}); "
            "e.g. mlflow.experiment=customers"
        )
    if len(text) > _MAX_EXPERIMENT_NAME:
        raise TrackingError(
            f"{key}: MLflow allows at most {_MAX_EXPERIMENT_NAME} characters; got {len(text)}"
        )
    bad = sorted({repr(c) for c in text if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise TrackingError(
            f"{key}: control characters are not allowed in an experiment name; "
            f"got {', '.join(bad)} in {text!r}"
        )
    return text


def local_artifact_root(tracking_uri: str) -> Path | None:
    """A local SQLite store keeps artifacts beside it in ``mlruns/``; a server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        db_path = Path(tracking_uri[len("sqlite:///") :])
        return db_path.parent / ARTIFACT_DIR_NAME
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "experiment"


def _clip(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tracker:
    """MLflow access for one tracking URI, with batched logging per run."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = open_store(tracking_uri)
        reap_lost_runs(self)
        staging.sweep()

    def experiment_id(self, name: str, create: bool = True) -> str:
        """Id of the named experiment, created (race-safe) when missing and ``create``."""
        name = check_experiment_name(name)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"experiment '{name}' is deleted in {self.tracking_uri}; restore it "
                    "(mlflow experiments restore) or choose another mlflow.experiment"
                )
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before segexp set it
                self.client.set_experiment_tag(
                    experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            return experiment.experiment_id
        from mlflow.exceptions import MlflowException

        if not create:
            raise TrackingError(
                f"no experiment named '{name}' in {self.tracking_uri}; run a sweep first "
                "or set mlflow.experiment"
            )
        root = local_artifact_root(self.tracking_uri)
        location = None
        if root is not None:
            location = (root / f"{_slug(name)}-{int(time.time() * 1000)}").as_uri()
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except MlflowException:
            # another process created it between our lookup and create (mlflow#10334)
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def start_run(
        self,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        all_tags = {k: _clip(v, _MAX_TAG_LENGTH) for k, v in (tags or {}).items()}
        all_tags[MLFLOW_RUN_NAME] = run_name
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        return run.info.run_id

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        artifact_dir: str | Path | None = None,
    ) -> None:
        """One batch of params, metrics and tags, then one upload of a folder of artifacts."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, _clip(v, _MAX_PARAM_LENGTH)) for k, v in (params or {}).items()],
            tags=[RunTag(k, _clip(v, _MAX_TAG_LENGTH)) for k, v in (tags or {}).items()],
        )
        if artifact_dir is not None:
            self.client.log_artifacts(run_id, str(artifact_dir))

    def log_datasets(self, run_id: str, datasets: list[dict[str, str]]) -> None:
        """The run's input tables, as MLflow datasets (the UI's Dataset column)."""
        if not datasets:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(
                    name=d["name"],
                    digest=d["digest"],
                    source_type=d["source_type"],
                    source=d["source"],
                    schema=d.get("schema"),
                    profile=d.get("profile"),
                ),
                tags=[InputTag("mlflow.data.context", d.get("context", "training"))],
            )
            for d in datasets
        ]
        self.client.log_inputs(run_id, datasets=inputs)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log(run_id, tags=tags)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def fail_run(self, run_id: str, error: str) -> None:
        """Record the error as a tag and end the run FAILED."""
        self.client.set_tag(run_id, TAG_ERROR, _clip(error, _MAX_TAG_LENGTH))
        self.end_run(run_id, "FAILED")


@dataclass
class RunRecord:
    """Everything one job logs. ``error`` set means the run ends FAILED with that error."""

    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifact_dir: str | None = None  # files the job wrote: tables, model, plots
    error: str | None = None
    datasets: list[dict[str, str]] = field(default_factory=list)  # input tables (log_inputs)


def log_run(
    tracker: Tracker, experiment_id: str, record: RunRecord, parent_run_id: str | None = None
) -> tuple[str, str | None]:
    """Create the run, log everything in one batch and one upload, end it.

    Returns (run id, error): error is None for a FINISHED run, else the job's own error
    (the run ended FAILED). A store that refuses any of it (a full disk, a read-only
    folder, a server gone) raises ``StoreWriteError``; the run is ended FAILED first
    where the store still answers, so nothing it half holds stays RUNNING.
    """
    tags = {**record.tags, **process_tags()}  # who logs it: a run left RUNNING is found
    try:
        run_id = tracker.start_run(experiment_id, record.run_name, tags, parent_run_id)
    except Exception as exc:
        raise StoreWriteError(f"creating run {record.run_name}: {_error_text(exc)}") from exc
    try:
        tracker.log_datasets(run_id, record.datasets)
        if record.error is not None:
            tracker.log(run_id, params=record.params)
            tracker.fail_run(run_id, record.error)
            return run_id, record.error.splitlines()[0]
        tracker.log(
            run_id, params=record.params, metrics=record.metrics, artifact_dir=record.artifact_dir
        )
        tracker.end_run(run_id, "FINISHED")
        return run_id, None
    except Exception as exc:  # the store failed mid-run: the run says so where it can
        error = f"logging run {record.run_name} ({run_id}): {_error_text(exc)}"
        with contextlib.suppress(Exception):
            tracker.fail_run(run_id, error + "\n" + traceback.format_exc(limit=8))
        raise StoreWriteError(error) from exc


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def runs_url(tracking_uri: str, experiment_id: str, ui: str = LOCAL_UI) -> str:
    """The UI page that lists the experiment's runs (the runs table, not the GenAI views).

    A tracking server is its own UI; a local store's UI is ``mlflow ui`` at ``ui``."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else ui
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"


def sweep_runs_url(
    tracking_uri: str,
    experiment_id: str,
    sweep_id: str,
    metric: str = "silhouette",
    descending: bool = True,
    ui: str = LOCAL_UI,
) -> str:
    """The runs table filtered to one sweep's job runs, best first by ``metric``."""
    from urllib.parse import quote, urlencode

    query = urlencode(
        {
            "searchFilter": f"tags.`{TAG_SWEEP_ID}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'job'",
            "orderByKey": f"metrics.`{metric}`",
            "orderByAsc": "false" if descending else "true",
        },
        quote_via=quote,
    )
    return f"{runs_url(tracking_uri, experiment_id, ui)}?{query}"


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves the UI of a local store (None: a server is its own UI)."""
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


# ------------------------------------------------------------- opening a store


def open_store(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on the store, opened (created and migrated when new) now.

    A local SQLite store is opened under a file lock (``<db>.lock`` beside it): two
    commands creating the same new store at once would both run MLflow's schema
    migrations and leave it half-migrated. Any failure to open is one TrackingError line.
    """
    from mlflow.tracking import MlflowClient

    db = sqlite_path(tracking_uri)
    try:
        if db is None:
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)
            return client
        db.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(db, tracking_uri):
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)  # tracking tables
            client.search_registered_models(max_results=1)  # registry tables
        return client
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(store_problem(tracking_uri, exc)) from exc


@contextlib.contextmanager
def store_lock(db: Path, where: str) -> Iterator[None]:
    """Hold ``<db>.lock`` (the store is created or migrated under it). When another
    process still holds it after ``LOCK_GRACE`` seconds (a store's creation takes 3-4 s;
    joblib's workers open one store at once), say so on stderr with its pid and wait at
    most ``lock_timeout()`` seconds more; TrackingError (one line) after that."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{db}.lock")
    try:  # another segexp process creating the store (3-4 s) is waited for in silence
        lock.acquire(timeout=LOCK_GRACE)
    except Timeout:
        bound, holder = lock_timeout(), _lock_holder(Path(f"{db}.lock"))
        print(
            f"segexp: the store {db} is locked by {holder} (creating or migrating it); "
            f"waiting up to {bound:g} s ({LOCK_TIMEOUT_ENV})",
            file=sys.stderr,
            flush=True,
        )
        try:
            lock.acquire(timeout=bound)
        except Timeout:
            raise TrackingError(
                f"{where}: {db}.lock is still held by {holder} after {bound:g} s; let that "
                f"command finish (or stop it), or wait longer with {LOCK_TIMEOUT_ENV}=<seconds>; "
                "remove the lock file only if no segexp or mlflow command is running"
            ) from None
    try:
        yield
    finally:
        lock.release()


def lock_timeout() -> float:
    """Seconds to wait for a store's lock: ``$SEGEXP_STORE_LOCK_TIMEOUT``, else LOCK_TIMEOUT."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    try:
        return float(raw) if raw else LOCK_TIMEOUT
    except ValueError:
        raise TrackingError(
            f"{LOCK_TIMEOUT_ENV}: seconds to wait for a locked store, e.g. 60; got {raw!r}"
        ) from None


def _lock_holder(lock_file: Path) -> str:
    """'pid N' of the process holding ``lock_file`` (Linux's /proc/locks), else a phrase."""
    try:
        st = lock_file.stat()
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" not in fields and len(fields) > 5 and fields[5] == key:
                return f"pid {fields[4]}"
    except OSError:
        pass
    return "another process"


def store_problem(tracking_uri: str, exc: BaseException) -> str:
    """One line for a store that refused to open or answer."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    if "schema" in text.lower() and "out-of-date" in text.lower():
        return (
            f"{tracking_uri}: the store's schema is older than this MLflow's ({text}); "
            f"upgrade it with `mlflow db upgrade {tracking_uri}` (back it up first)"
        )
    return f"{tracking_uri}: the store cannot be opened ({type(exc).__name__}: {text})"


# ------------------------------------------------------------- lost and killed runs

TAG_ENDED_BY = TAG_PREFIX + "ended_by"  # SIGINT | SIGTERM | process_gone
TAG_END_REASON = TAG_PREFIX + "end_reason"  # the sentence behind it
TAG_JOBS_PLANNED = TAG_PREFIX + "jobs_planned"  # on a sweep's parent: the jobs it launches


def end_killed(tracker: Tracker, run_id: str, ended_by: str, reason: str) -> None:
    """End a run KILLED, saying who ended it (``segexp.ended_by``) and why."""
    tracker.log(run_id, tags={TAG_ENDED_BY: ended_by, TAG_END_REASON: reason})
    tracker.end_run(run_id, "KILLED")


def kill_open_job_runs(
    tracker: Tracker, experiment_id: str, sweep_id: str, ended_by: str, reason: str
) -> int:
    """End the sweep's job runs that are still RUNNING as KILLED; how many there were."""
    runs = tracker.client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_SWEEP_ID}` = '{sweep_id}' and tags.`{TAG_KIND}` = 'job' "
            "and attributes.status = 'RUNNING'"
        ),
        max_results=50000,
    )
    for run in runs:
        end_killed(tracker, run.info.run_id, ended_by, reason)
    return len(runs)


def reap_lost_runs(tracker: Tracker) -> list[str]:
    """End KILLED every RUNNING run of this host whose process is gone (a SIGKILL, a
    crash), and the RUNNING job runs of a sweep whose parent is ended so; their ids.

    Runs of other hosts are never touched. A store that cannot be searched is left as it is.
    """
    host = hostname()
    try:
        experiments = tracker.client.search_experiments(max_results=50000)
        ids = [e.experiment_id for e in experiments]
        if not ids:
            return []
        runs = tracker.client.search_runs(
            ids,
            filter_string=f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host}'",
            max_results=50000,
        )
    except Exception:  # a store that refuses searches says so where it is used
        return []
    ended: list[str] = []
    me = os.getpid()
    for run in runs:
        tags = run.data.tags
        if not is_gone(tags):
            continue
        reason = (
            f"process {tags.get(TAG_PID)} on {host} ended without ending this run "
            f"(killed or crashed); found by process {me}"
        )
        with contextlib.suppress(Exception):
            end_killed(tracker, run.info.run_id, "process_gone", reason)
            ended.append(run.info.run_id)
            if tags.get(TAG_KIND) == "sweep" and tags.get(TAG_SWEEP_ID):
                kill_open_job_runs(
                    tracker,
                    run.info.experiment_id,
                    tags[TAG_SWEEP_ID],
                    "process_gone",
                    f"its sweep's process ({tags.get(TAG_PID)} on {host}) ended without ending it",
                )
    return ended


@functools.cache
def tracker_for(tracking_uri: str) -> Tracker:
    """One Tracker per store and process: creating a client opens the store (~0.3 s on SQLite)."""
    return Tracker(tracking_uri)


def find_run_name(tracker: Tracker, experiment_ids: list[str], filter_string: str) -> str | None:
    """Name of the first run matching ``filter_string``, quoted for messages; None if none."""
    runs = tracker.client.search_runs(experiment_ids, filter_string=filter_string, max_results=1)
    return f"run {runs[0].info.run_name}" if runs else None
