"""The one way a run reaches MLflow: checking and opening a store, experiments, ``log_run``.
Explicit run ids only, never the fluent API's active run: ``MLFLOW_RUN_ID`` (mlflow#15713)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import socket
import ssl
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from filelock import FileLock, Timeout

from segexp.contract import TAG_ERROR, TAG_KIND, TAG_PREFIX, TAG_SWEEP_ID
from segexp.errors import StoreWriteError, TrackingError
from segexp.tracking import staging
from segexp.tracking.liveness import TAG_HOST, TAG_PID, is_gone, process_tags

DEFAULT_DB_NAME = "mlflow.db"
# MLflow 3's UI opens an experiment on its GenAI views unless told it holds model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
_MAX_TAG_LENGTH = 5000
_MAX_PARAM_LENGTH = 6000
_MAX_EXPERIMENT_NAME = 500  # MLflow's limit (mlflow.utils.validation)
_DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")

# MLflow retries an unanswered HTTP request for about four minutes; segexp's processes use
# shorter bounds unless the user set these: an unreachable server is an error in seconds.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    # no progress bars and "View run at" lines beside segexp's own lines
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
os.environ.update({k: v for k, v in HTTP_BOUNDS.items() if k not in os.environ})

SERVER_CHECK_TIMEOUT = 5.0  # seconds the first request to a tracking server may take
ALLOW_REDIRECTS_ENV = "SEGEXP_ALLOW_REDIRECTS"  # true: follow a server's redirect elsewhere
LOCK_TIMEOUT = 30.0  # seconds to wait for another process creating or migrating a store
LOCK_GRACE = 5.0  # waited in silence: a new store takes 3-4 s to create
LOCK_TIMEOUT_ENV = "SEGEXP_STORE_LOCK_TIMEOUT"
_SQLITE_HEADER = b"SQLite format 3\x00"
_DB_SCHEMES = ("postgresql", "mysql", "mssql")  # SQLAlchemy stores, with or without +driver
_OTHER_SCHEMES = ("databricks", "databricks-uc", "uc")
ALLOWED_URIS = (
    "sqlite:///PATH (a local file, created when missing), http://HOST:PORT or "
    "https://HOST:PORT (an mlflow server), postgresql://, mysql://, mssql://, databricks"
)
_LOCAL = "use a local store: leave mlflow.tracking_uri unset (sqlite:///<current folder>/mlflow.db)"


def absolute_tracking_uri(configured: str | None, base_dir: str | Path | None = None) -> str:
    """The configured URI, else MLFLOW_TRACKING_URI, else ``<base_dir>/mlflow.db``; relative
    paths made absolute against ``base_dir`` so Hydra's output folders never receive runs."""
    base = Path(base_dir or os.getcwd()).resolve()
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or ""
    db = uri.removeprefix("sqlite:///")
    if not uri:
        return f"sqlite:///{base / DEFAULT_DB_NAME}"
    if uri.startswith("sqlite:///") and db not in ("", ":memory:") and not os.path.isabs(db):
        return f"sqlite:///{(base / db).resolve()}"
    if uri in _OTHER_SCHEMES or "://" in uri or uri.startswith("sqlite:"):
        return uri  # Databricks' names, servers, databases, absolute paths
    if uri.startswith("file:"):
        return (base / uri[len("file:") :]).resolve().as_uri()
    return str((base / uri).resolve())  # a bare folder: MLflow's file store (opt-in in MLflow 3)


def resolve_tracking_uri(
    configured: str | None, base_dir: str | Path | None = None, *, check: bool = True
) -> str:
    """``absolute_tracking_uri``, checked once per process when ``check``."""
    uri = absolute_tracking_uri(configured, base_dir)
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if check and configured:
        check_tracking_uri(uri, f"mlflow.tracking_uri={configured}")
    elif check:
        where = f"MLFLOW_TRACKING_URI={env}" if env else f"the default store {uri}"
        check_tracking_uri(uri, where if env else f"{where} (mlflow.tracking_uri unset)")
    return uri


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a local SQLite store; None for any other store."""
    path = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    ok = tracking_uri.startswith("sqlite:///") and path not in ("", ":memory:")
    return Path(path) if ok else None


@functools.cache  # a refusal raises and is not kept
def check_tracking_uri(uri: str, where: str) -> None:
    """TrackingError (one line naming ``where``) for an unknown scheme, a SQLite path that
    cannot hold a database or a server that does not answer. Creates nothing."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    db = sqlite_path(uri)
    if uri.startswith("databricks") and scheme in ("", "databricks"):
        _check_databricks(where)
    elif uri.startswith("sqlite:") and db is None:
        raise TrackingError(
            f"{where}: not a SQLite file; write sqlite:///PATH (relative to the current "
            "folder) or sqlite:////ABSOLUTE/PATH, e.g. sqlite:///mlflow.db; an in-memory "
            "store would lose every run when the command ends"
        )
    elif db is not None:
        _check_sqlite(db, where)
    elif scheme in ("http", "https"):
        _check_server(uri, where)
    elif scheme in ("", "file"):  # MLflow's file store: maintenance mode in MLflow 3
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true"):
            return
        folder = Path(uri.removeprefix("file://"))
        db = folder if folder.suffix in (".db", ".sqlite", ".sqlite3") else folder / "mlflow.db"
        raise TrackingError(
            f"{where}: a plain path is MLflow's file store, which MLflow 3 keeps in "
            f"maintenance mode; use a SQLite store, e.g. mlflow.tracking_uri=sqlite:///{db}"
        )
    elif scheme.split("+", 1)[0] not in _DB_SCHEMES and scheme not in _OTHER_SCHEMES:
        raise TrackingError(f"{where}: unknown scheme '{scheme}://'; allowed: {ALLOWED_URIS}")


def _check_databricks(where: str) -> None:
    """A workspace needs DATABRICKS_HOST (which must answer) or a Databricks config file."""
    host = os.environ.get("DATABRICKS_HOST", "")
    config = Path(os.environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg").expanduser()
    if not host and not config.is_file():
        raise TrackingError(
            f"{where}: no Databricks workspace is configured here (DATABRICKS_HOST unset, no "
            f"{config}); set DATABRICKS_HOST and DATABRICKS_TOKEN, or run `databricks "
            f"configure`, or {_LOCAL}"
        )
    if host:  # Databricks' own client waits minutes for a workspace that does not answer
        parts = urlsplit(host if "://" in host else f"https://{host}")
        try:
            address = (parts.hostname or host, parts.port or 443)
            socket.create_connection(address, timeout=SERVER_CHECK_TIMEOUT).close()
        except OSError as exc:
            raise TrackingError(
                f"{where}: the Databricks workspace DATABRICKS_HOST={host} does not answer "
                f"({exc.strerror or type(exc).__name__}); check DATABRICKS_HOST, or {_LOCAL}"
            ) from None


def _check_sqlite(path: Path, where: str) -> None:
    if path.is_dir():
        raise TrackingError(
            f"{where}: {path} is a folder, not a database file; name a file in it, "
            f"e.g. sqlite:///{path / DEFAULT_DB_NAME}"
        )
    if Path(f"{path}.lock").is_file():  # another command may be creating it: said at once
        with store_lock(path, where):
            pass
    if not path.exists():
        if (problem := folder_problem(path.parent)) is not None:
            raise TrackingError(
                f"{where}: cannot create the store: {problem}; choose a writable path"
            )
        return
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


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written in; None when it can. Tried, not asked:
    os.access says yes to root in read-only places."""
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx answer is raised as HTTPError, with its Location


def _check_server(uri: str, where: str) -> None:
    """/health, then the API, each within SERVER_CHECK_TIMEOUT: any HTTP answer will do (MLflow
    says what else is wrong); no answer is the error, and so is a redirect to another server
    unless ALLOW_REDIRECTS_ENV allows it (the runs and the customers' data would go there)."""
    context = None
    if urlsplit(uri).scheme == "https":
        if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            context = ssl._create_unverified_context()
        else:
            cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
            context = ssl.create_default_context(cafile=cafile)
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    for path in ("/health", "/api/2.0/mlflow/experiments/search?max_results=1"):
        url = uri.rstrip("/") + path
        try:
            opener.open(url, timeout=SERVER_CHECK_TIMEOUT).close()
        except urllib.error.HTTPError as answer:  # it answered (401, 404 ...): a server is there
            location = answer.headers.get("Location") if 300 <= answer.code < 400 else None
            if location:
                _check_redirect(uri, urljoin(url, location), answer.code, where)
        except (OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise TrackingError(f"{where}: {_no_answer(reason, uri, path)}") from None


def _no_answer(reason: Any, uri: str, path: str) -> str:
    parts = urlsplit(uri)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate is not trusted ({reason.verify_message}); set "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to its CA bundle, or "
            "MLFLOW_TRACKING_INSECURE_TLS=true"
        )
    if isinstance(reason, TimeoutError) and path != "/health":
        return (
            f"the server answers /health but its API ({path.split('?')[0]}) gave no answer "
            f"within {SERVER_CHECK_TIMEOUT:g} s; is it an MLflow server, and is it overloaded or "
            f"stuck (see its log)? or {_LOCAL}"
        )
    hint = (
        f"start one with `mlflow server --host {parts.hostname or '127.0.0.1'} --port "
        f"{parts.port or 5000} --backend-store-uri sqlite:///mlflow.db`"
    )
    why = " ".join(str(getattr(reason, "strerror", None) or reason).split())
    if isinstance(reason, socket.gaierror):
        why, hint = f"unknown host {parts.hostname}", "check the host name"
    elif isinstance(reason, ssl.SSLError):
        why = f"TLS handshake failed: {reason.reason or reason}; is it an http:// server?"
    elif isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, TimeoutError):
        why = f"no answer within {SERVER_CHECK_TIMEOUT:g} s"
    return f"no MLflow server answers ({why}); {hint}, or {_LOCAL}"


def _check_redirect(uri: str, target: str, code: int, where: str) -> None:
    """MLflow follows a redirect within the server (or to https on its host); one to another
    server is refused unless the user allows it."""
    here, there = urlsplit(uri), urlsplit(target)
    same_host = (here.hostname or "").lower() == (there.hostname or "").lower()
    upgraded = there.scheme == "https" and there.port in (None, 443)
    allowed = os.environ.get(ALLOW_REDIRECTS_ENV, "").strip().lower() in ("1", "true", "yes")
    if allowed or (same_host and (here.port == there.port or upgraded)):
        return
    raise TrackingError(
        f"{where}: the server answers {code}, a redirect to another server ({target}); "
        "segexp sends no runs or customer data on to another server without your say: "
        f"use that server directly (mlflow.tracking_uri={there.scheme}://{there.netloc}) or "
        f"allow redirects with {ALLOW_REDIRECTS_ENV}=true"
    )


def check_experiment_name(name: Any, key: str = "mlflow.experiment") -> str:
    """The experiment name, or TrackingError when it is empty, null, too long for MLflow or
    holds control characters."""
    text = "" if name is None else str(name)
    bad = sorted({repr(c) for c in text if ord(c) < 32 or ord(c) == 127})
    if not text.strip():
        got = "null" if name is None else f"an empty one ({key}={text!r})"
        problem = f"expected an experiment name; got {got}; e.g. mlflow.experiment=customers"
    elif len(text) > _MAX_EXPERIMENT_NAME:
        problem = f"MLflow allows at most {_MAX_EXPERIMENT_NAME} characters; got {len(text)}"
    elif bad:
        problem = "control characters are not allowed in an experiment name; "
        problem += f"got {', '.join(bad)} in {text!r}"
    else:
        return text
    raise TrackingError(f"{key}: {problem}")


def _clip(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Tracker:
    """MLflow access for one store; opening it ends lost runs and removes stale staging."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.client = open_store(tracking_uri)
        reap_lost_runs(self)
        staging.sweep()

    def experiment_id(self, name: str, create: bool = True) -> str:
        """Id of the named experiment, created (race-safe) when missing and ``create``."""
        name = check_experiment_name(name)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment '{name}' is deleted in {self.tracking_uri}; restore it "
                "(mlflow experiments restore) or choose another mlflow.experiment"
            )
        if experiment is not None:
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before segexp set it
                self.client.set_experiment_tag(
                    experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            return experiment.experiment_id
        if not create:
            raise TrackingError(
                f"no experiment named '{name}' in {self.tracking_uri}; run a sweep first "
                "or set mlflow.experiment"
            )
        db = sqlite_path(self.tracking_uri)  # artifacts beside a local store; a server decides
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"
        folder = f"{slug}-{int(time.time() * 1000)}"
        location = None if db is None else (db.parent / "mlruns" / folder).as_uri()
        try:
            return self.client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except Exception:  # another process created it since our lookup (mlflow#10334)
            if (experiment := self.client.get_experiment_by_name(name)) is None:
                raise
            return experiment.experiment_id

    def start_run(
        self,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> str:
        """A new RUNNING run; ``start_time`` (ms since the epoch): when its job began."""
        parent = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
        all_tags = {k: _clip(v, _MAX_TAG_LENGTH) for k, v in {**(tags or {}), **parent}.items()}
        run = self.client.create_run(
            experiment_id, start_time=start_time, tags=all_tags, run_name=run_name
        )
        return run.info.run_id

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        artifact_dir: str | Path | None = None,
        datasets: list[dict[str, str]] | None = None,
    ) -> None:
        """One batch of params, metrics and tags, the input tables (the UI's Dataset column),
        then one upload of a folder of artifacts."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag  # slow

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, _clip(v, _MAX_PARAM_LENGTH)) for k, v in (params or {}).items()],
            tags=[RunTag(k, _clip(v, _MAX_TAG_LENGTH)) for k, v in (tags or {}).items()],
        )
        inputs = [
            DatasetInput(
                Dataset(**{key: d[key] for key in _DATASET_FIELDS if key in d}),
                tags=[InputTag("mlflow.data.context", d.get("context", "training"))],
            )
            for d in datasets or []
        ]
        if inputs:
            self.client.log_inputs(run_id, datasets=inputs)
        if artifact_dir is not None:
            self.client.log_artifacts(run_id, str(artifact_dir))

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
    # when the job began (ms since the epoch): the run is created only once the job is done,
    # and the UI's Duration is the job's, not the logging's
    started: int | None = None


def log_run(
    tracker: Tracker, experiment_id: str, record: RunRecord, parent_run_id: str | None = None
) -> tuple[str, str | None]:
    """Create the run, log it in one batch and one upload, end it; (run id, the job's error).

    A store that refuses any of it raises ``StoreWriteError``, after ending the run FAILED
    where the store still answers: a run is never reported FINISHED before it is stored.
    """
    tags = {**record.tags, **process_tags()}  # who logs it: a run left RUNNING is found
    try:
        run_id = tracker.start_run(
            experiment_id, record.run_name, tags, parent_run_id, record.started
        )
    except Exception as exc:
        raise StoreWriteError(f"creating run {record.run_name}: {_error_text(exc)}") from exc
    ok = record.error is None  # a failed job logs its params and inputs only
    try:
        tracker.log(
            run_id,
            params=record.params,
            metrics=record.metrics if ok else None,
            artifact_dir=record.artifact_dir if ok else None,
            datasets=record.datasets,
        )
        if record.error is not None:
            tracker.fail_run(run_id, record.error)
            return run_id, record.error.splitlines()[0]
        tracker.end_run(run_id, "FINISHED")
        return run_id, None
    except Exception as exc:  # the store failed mid-run: the run says so where it can
        error = f"logging run {record.run_name} ({run_id}): {_error_text(exc)}"
        with contextlib.suppress(Exception):
            tracker.fail_run(run_id, error + "\n" + traceback.format_exc(limit=8))
        raise StoreWriteError(error) from exc


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def runs_url(tracking_uri: str, experiment_id: str, ui: str = LOCAL_UI) -> str:
    """The experiment's runs table in the UI: a server's own, else ``mlflow ui`` at ``ui``."""
    base = tracking_uri if tracking_uri.startswith(("http://", "https://")) else ui
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"


VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # MLflow UI views, opened by ?viewStateShareKey=
VIEW_METRICS = ("noise_fraction", "min_segment_share", "stability", "n_clusters")
VIEW_PARAMS = ("algo", "k", "scaler", "features", "preprocess")


def _sweep_filter(sweep_id: str | None) -> str:
    """MLflow's filter for the job runs of a sweep (None: of every sweep)."""
    where = "" if sweep_id is None else f"tags.`{TAG_SWEEP_ID}` = '{sweep_id}' and "
    return f"{where}tags.`{TAG_KIND}` = 'job'"


def sweep_job_runs(client: Any, experiment_id: str, sweep_id: str | None, running=False) -> list:
    """The job runs of one sweep (None: of the whole experiment), any status or RUNNING only,
    as MLflow ``Run`` objects."""
    where = _sweep_filter(sweep_id) + (" and attributes.status = 'RUNNING'" if running else "")
    return client.search_runs([experiment_id], filter_string=where, max_results=50000)


def save_sweep_view(
    client: Any, experiment_id: str, sweep_id: str, metric: str, descending: bool
) -> str:
    """Save a sweep's runs table as an MLflow UI view (its runs best first, with the columns
    that choose a segmentation) on the experiment; returns the view's key for the URL."""
    metrics = [metric, *(m for m in VIEW_METRICS if m != metric)]
    state = {
        "searchFilter": _sweep_filter(sweep_id),
        "orderByKey": f"metrics.`{metric}`",
        "orderByAsc": not descending,
        "selectedColumns": [f"metrics.`{m}`" for m in metrics]
        + [f"params.`{p}`" for p in VIEW_PARAMS],
    }
    key = f"segexp-{sweep_id}"
    client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + key, json.dumps(state))
    return key


def sweep_runs_url(
    tracking_uri: str,
    experiment_id: str,
    sweep_id: str,
    metric: str = "silhouette",
    descending: bool = True,
    ui: str = LOCAL_UI,
    view: str | None = None,
) -> str:
    """The runs table (model-training pages) of one sweep's job runs, best first by ``metric``:
    the saved ``view`` with its columns, or the filter and order alone (the UI ignores a view
    when the URL also carries a filter)."""
    shown = {
        "searchFilter": _sweep_filter(sweep_id),
        "orderByKey": f"metrics.`{metric}`",
        "orderByAsc": "false" if descending else "true",
    }
    shown = {"viewStateShareKey": view} if view is not None else shown
    query = urlencode({"workflowType": "machine_learning", **shown}, quote_via=quote)
    return f"{runs_url(tracking_uri, experiment_id, ui)}?{query}"


def ui_command(tracking_uri: str) -> str | None:
    """The command that serves the UI of a local store (None: a server is its own UI)."""
    local = not tracking_uri.startswith(("http://", "https://"))
    return f"mlflow ui --backend-store-uri {tracking_uri}" if local else None


def open_store(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on the store, opened (created and migrated when new) now; a SQLite
    store under ``<db>.lock``, as two processes migrating one new store would break it."""
    from mlflow.tracking import MlflowClient  # the slowest import: `--help` needs none of it

    db = sqlite_path(tracking_uri)
    try:
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(db, tracking_uri) if db is not None else contextlib.nullcontext():
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)  # tracking tables
            if db is not None:
                client.search_registered_models(max_results=1)  # registry tables
        return client
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(store_problem(tracking_uri, exc)) from exc


@contextlib.contextmanager
def store_lock(db: Path, where: str) -> Iterator[None]:
    """Hold ``<db>.lock``. Held by another command: said at once with its pid, then waited for
    ``$SEGEXP_STORE_LOCK_TIMEOUT`` (else LOCK_TIMEOUT) seconds, TrackingError after; held by a
    worker of this same command (joblib's share its process group): LOCK_GRACE s in silence."""
    lock = FileLock(f"{db}.lock")
    if not _acquired(lock, 0):
        pid = _lock_holder(Path(f"{db}.lock"))
        holder = f"pid {pid}" if pid is not None else "another process"
        # once more before saying so: a brief hold (a command opening the store) is often over
        if not _acquired(lock, LOCK_GRACE if _same_command(pid) else 0):
            raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
            try:
                bound = float(raw) if raw else LOCK_TIMEOUT
            except ValueError:
                raise TrackingError(
                    f"{LOCK_TIMEOUT_ENV}: seconds to wait for a locked store, e.g. 60; got {raw!r}"
                ) from None
            print(
                f"segexp: the store {db} is locked by {holder} (creating or migrating it); "
                f"waiting up to {bound:g} s ({LOCK_TIMEOUT_ENV})",
                file=sys.stderr,
                flush=True,
            )
            if not _acquired(lock, bound):
                raise TrackingError(
                    f"{where}: {db}.lock is still held by {holder} after {bound:g} s; let that "
                    f"command finish (or stop it), or wait longer with {LOCK_TIMEOUT_ENV}="
                    "<seconds>; remove the lock file only if no segexp or mlflow command is running"
                )
    try:
        yield
    finally:
        lock.release()


def _acquired(lock: FileLock, timeout: float) -> bool:
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        return False
    return True


def _lock_holder(lock_file: Path) -> int | None:
    """The pid of the process holding ``lock_file`` (Linux's /proc/locks), None if unknown."""
    with contextlib.suppress(OSError, ValueError):
        st = lock_file.stat()
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        for fields in (line.split() for line in Path("/proc/locks").read_text().splitlines()):
            if "->" not in fields and len(fields) > 5 and fields[5] == key:
                return int(fields[4])
    return None


def _same_command(pid: int | None) -> bool:
    """Whether ``pid`` is a worker of this command (the same process group)."""
    with contextlib.suppress(OSError):
        return pid is not None and os.getpgid(pid) == os.getpgrp()
    return False


def store_problem(tracking_uri: str, exc: BaseException) -> str:
    """One line for a store that refused to open or answer (MLflow's own words say what to do,
    e.g. ``mlflow db upgrade`` for an older schema)."""
    return f"{tracking_uri}: the store cannot be opened ({_error_text(exc)})"


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
    runs = sweep_job_runs(tracker.client, experiment_id, sweep_id, running=True)
    for run in runs:
        end_killed(tracker, run.info.run_id, ended_by, reason)
    return len(runs)


def reap_lost_runs(tracker: Tracker) -> list[str]:
    """End KILLED the RUNNING runs of this host whose process is gone (and the RUNNING job
    runs of such a sweep); their ids. Runs of other hosts are never touched."""
    host = socket.gethostname()
    running = f"attributes.status = 'RUNNING' and tags.`{TAG_HOST}` = '{host}'"
    try:
        ids = [e.experiment_id for e in tracker.client.search_experiments(max_results=50000)]
        runs = tracker.client.search_runs(ids, running, max_results=50000) if ids else []
    except Exception:  # a store that refuses searches says so where it is used
        return []
    ended: list[str] = []
    for run in (run for run in runs if is_gone(run.data.tags)):
        tags, pid = run.data.tags, run.data.tags.get(TAG_PID)
        reason = (
            f"process {pid} on {host} ended without ending this run (killed or crashed); "
            f"found by process {os.getpid()}"
        )
        with contextlib.suppress(Exception):
            end_killed(tracker, run.info.run_id, "process_gone", reason)
            ended.append(run.info.run_id)
            if tags.get(TAG_KIND) == "sweep" and tags.get(TAG_SWEEP_ID):
                why = f"its sweep's process ({pid} on {host}) ended without ending it"
                kill_open_job_runs(
                    tracker, run.info.experiment_id, tags[TAG_SWEEP_ID], "process_gone", why
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
