"""``segexp.run`` and ``segexp.sweep``: the command line's runs and sweeps from a notebook,
keyword settings turned into ``key=value`` overrides (docs/notebook.md), composed with
Hydra's compose API and run by the command's own functions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import pandas as pd
from hydra import compose, initialize_config_module
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from segexp.data import load_customers
from segexp.errors import (
    ConfigError,
    DataError,
    RunFailed,
    SegexpError,
    StoreWriteError,
    is_usage_error,
    shown,
    usage_error_line,
)
from segexp.insight.profiles import PROFILE_CSV
from segexp.insight.report import render_html
from segexp.jobs.callbacks import CONFIG_NAME, checked_jobs, end_sweep, record_outcome, start_sweep
from segexp.jobs.job import run_job
from segexp.jobs.ranges import expand_argv
from segexp.jobs.summary import end_interrupted_sweep, sweep_runs
from segexp.jobs.validation import check_command_before_hydra, check_job_config
from segexp.model.assign import SegmentAssigner
from segexp.tools.predict import check_new_columns
from segexp.tools.promote import load_run_model
from segexp.tools.report import collect_report_data
from segexp.tracking import staging
from segexp.tracking.assignments import download_assignments
from segexp.tracking.leaderboard import LeaderboardFilters, build_leaderboard
from segexp.tracking.store import resolve_tracking_uri, tracker_for

USER_CONF_ENV = "SEGEXP_CONF_DIR"
CONFIG_MODULE = "segexp.conf"

_SPECIAL = set(",[]{}()'\"=\\ ")
_ROWS_SHOWN = 5
_FIGURE_DPI = 100  # a PNG is shown at its own pixel size


def _value(value: Any, key: str, *, top: bool = True) -> str:
    """A Python value as Hydra override text (``top``: a string is passed as typed, else
    quoted when Hydra would split it)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars
    if value is None or isinstance(value, bool):
        return shown(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, os.PathLike):
        value, top = os.fspath(value), False
    if isinstance(value, str):
        plain = top or (value and not _SPECIAL & set(value))
        return value if plain else "'" + value.replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ",".join(_value(v, key, top=False) for v in value) + "]"
    raise ConfigError(
        f"{key}: a number, string, bool, None or list; got {type(value).__name__} {value!r}"
    )


def keyword_overrides(settings: Mapping[str, Any], *, sweep: bool = False) -> list[str]:
    """``key=value`` overrides for keyword settings (see ``run``'s docstring for the rules)."""
    overrides: list[str] = []
    for name, value in settings.items():
        key = name.replace("__", ".")
        if isinstance(value, Mapping):  # algo={"eps": 0.3} -> algo.eps=0.3
            overrides += keyword_overrides(
                {f"{name}__{k}": v for k, v in value.items()}, sweep=sweep
            )
            continue
        swept = isinstance(value, tuple | range | set | frozenset)
        if swept and not sweep:
            raise ConfigError(
                f"{key}={value!r}: several values are a sweep; segexp.run fits one job: "
                "use segexp.sweep, or a list for a list value"
            )
        items = sorted(value) if isinstance(value, set | frozenset) else value if swept else [value]
        if key == "features" and all(isinstance(v, list) for v in items):
            key = "features.columns"  # features=[age, income]: the columns themselves
        text = ",".join(_value(v, key, top=False) for v in items) if swept else _value(value, key)
        overrides.append(f"{key}={text}")
    return overrides


def _given(overrides: Sequence[str] | None, settings: dict, sweep: bool, **named: Any) -> list[str]:
    named = {k: v for k, v in named.items() if v is not None}
    return [*(overrides or []), *keyword_overrides({**named, **settings}, sweep=sweep)]


@dataclass(repr=False)
class Segmentation:
    """One logged run: its id and metrics, each customer's segment (``labels``, indexed by
    customer id or row), the segment ``profile``; ``predict(frame)``, ``figures`` and
    ``report_html()``."""

    run_id: str
    run_name: str
    tracking_uri: str
    metrics: dict[str, float]
    params: dict[str, str]
    labels: pd.Series
    profile: pd.DataFrame
    tags: dict[str, str] = field(default_factory=dict)
    _assigner: SegmentAssigner | None = field(default=None, init=False, repr=False)
    _figures: dict[str, Figure] | None = field(default=None, init=False, repr=False)

    def __repr__(self) -> str:
        scores = ", ".join(
            f"{k}={self.metrics[k]:.4g}" for k in ("silhouette", "n_clusters") if k in self.metrics
        )
        return f"<Segmentation {self.run_name} (run {self.run_id}): {scores}>"

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def assigner(self) -> SegmentAssigner:
        """The run's model as ``segexp-promote`` builds it (pipeline, header aliases,
        segment names, the nearest-neighbour extension for clusterers without predict)."""
        if self._assigner is None:
            client = self._client()
            with tempfile.TemporaryDirectory(prefix="segexp-model-") as folder:
                run = client.get_run(self.run_id)
                self._assigner = load_run_model(client, run, Path(folder)).assigner
        return self._assigner

    def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``customers`` with ``segment`` (and ``segment_name``) added, as
        ``segexp-predict`` assigns them; ``DataError`` naming the index of a row the model
        cannot score (a missing or non-numeric value, a negative amount ...)."""
        if not isinstance(customers, pd.DataFrame):
            raise DataError(
                f"customers: a pandas DataFrame; got {type(customers).__name__} (read a file "
                "with pandas.read_csv, or score it with segexp-predict)"
            )
        check_new_columns([str(c) for c in customers.columns], Path("DataFrame"), False)
        features, reasons = self.assigner().row_problems(customers)
        bad = reasons[reasons != ""]
        if len(bad):
            rows = "; ".join(f"index {i!r}: {r}" for i, r in bad.iloc[:_ROWS_SHOWN].items())
            more = f" (+{len(bad) - _ROWS_SHOWN} more)" if len(bad) > _ROWS_SHOWN else ""
            raise DataError(
                f"customers: {len(bad)} row(s) cannot be scored: {rows}{more}; fix or drop "
                "those rows"
            )
        scored = self.assigner().assign_prepared(features)
        return customers.assign(**{c: scored[c].to_numpy() for c in scored.columns})

    @property
    def figures(self) -> dict[str, Figure]:
        """The run's plots (``plots/*.png``) as matplotlib figures by name (``segments``,
        ``silhouette`` ...), shown inline; empty for a run with ``plots.enabled=false``."""
        if self._figures is not None:
            return self._figures
        client, self._figures = self._client(), {}
        names = sorted(a.path for a in client.list_artifacts(self.run_id, "plots"))
        with tempfile.TemporaryDirectory(prefix="segexp-figures-") as folder:
            for name in (n for n in names if n.endswith(".png")):
                image = matplotlib.image.imread(
                    client.download_artifacts(self.run_id, name, folder)
                )
                height, width = image.shape[:2]
                # pyplot (then closed): the notebook's inline backend displays the figure
                fig = plt.figure(figsize=(width / _FIGURE_DPI, height / _FIGURE_DPI))
                ax = fig.add_axes((0, 0, 1, 1))
                ax.imshow(image)
                ax.set_axis_off()
                plt.close(fig)
                self._figures[Path(name).stem] = fig
        return self._figures

    def report_html(self) -> str:
        """The run's HTML report as ``segexp-report run_id=<run id>`` writes it, nothing
        written or logged: ``IPython.display.HTML(result.report_html())`` shows it."""
        return render_html(collect_report_data(self.tracking_uri, self.run_id))


@contextlib.contextmanager
def _data_overrides(data: Any, data_name: str | None) -> Iterator[list[str]]:
    """Overrides pointing ``data.path`` at ``data`` (a DataFrame is staged as Parquet, where
    the next command removes it if this process is killed meanwhile)."""
    if isinstance(data, pd.DataFrame):
        staging.sweep()
        with tempfile.TemporaryDirectory(prefix="segexp-frame-", dir=staging.process_dir()) as tmp:
            path = Path(tmp) / "data.parquet"
            data.to_parquet(path, index=False)
            yield [f"data.path={path}", f"+data.source_name={data_name or 'DataFrame'}"]
    elif data is None or isinstance(data, str | os.PathLike):
        named = [f"+data.source_name={data_name}"] if data_name else []
        yield [] if data is None else [f"data.path={Path(data).expanduser().resolve()}", *named]
    else:
        raise ConfigError(
            f"data: expected a file path or a pandas DataFrame; got {type(data).__name__}"
        )


@contextlib.contextmanager
def _conf_dir(conf_dir: str | os.PathLike | None) -> Iterator[None]:
    """``SEGEXP_CONF_DIR`` set to ``conf_dir`` for the call."""
    saved = os.environ.get(USER_CONF_ENV)
    if conf_dir is not None:
        os.environ[USER_CONF_ENV] = str(Path(conf_dir).expanduser().resolve())
    try:
        yield
    finally:
        if saved is not None:
            os.environ[USER_CONF_ENV] = saved
        elif conf_dir is not None:
            os.environ.pop(USER_CONF_ENV, None)


def _compose(overrides: Sequence[str]) -> DictConfig:
    """The config the command line composes for ``overrides`` (with its ``hydra`` node);
    Hydra's refusal is a ConfigError with the command line's one line."""
    try:
        with initialize_config_module(CONFIG_MODULE, job_name="segexp", version_base="1.3"):
            return compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    except Exception as exc:
        if not is_usage_error(exc):
            raise
        line = usage_error_line(exc, CONFIG_NAME, list(overrides), False)
        raise ConfigError(line.removeprefix("segexp: error: ")) from None


def _refused(where: str, exc: SegexpError) -> RunFailed:
    """The command's refusal, with its exit code."""
    return RunFailed(f"{where}: exit code {exc.exit_code}: {exc}", exc.exit_code)


def _choices(cfg: DictConfig) -> dict[str, str]:
    return {str(k): str(v) for k, v in cfg.hydra.runtime.choices.items()}


def run(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    algo: str | Mapping[str, Any] | None = None,
    k: int | None = None,
    features: str | list[str] | None = None,
    scaler: str | None = None,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
    **settings: Any,
) -> Segmentation:
    """Fit one segmentation and log it as one MLflow run, as ``segexp <key=value ...>`` does.

    ``data``: a DataFrame or a CSV/TSV/Parquet path (None: the config's). Each keyword is
    one override, ``key__sub`` the key ``key.sub`` (docs/notebook.md has the rules)::

        segexp.run(frame, algo="dbscan", algo__eps=0.3, plots__enabled=False)

    Returns a ``Segmentation`` (``run_id``, ``metrics``, ``labels``, ``profile``,
    ``predict(frame)``, ``figures``, ``report_html()``); raises ``segexp.errors.RunFailed``
    (the command's message and ``exit_code``) when the run was refused or failed.
    """
    where = "segexp.run"
    given = _given(overrides, settings, False, algo=algo, k=k, features=features, scaler=scaler)
    if "-m" in given or "--multirun" in given:
        raise ConfigError("overrides: segexp.run fits one job; use segexp.sweep for -m")
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        try:
            check_command_before_hydra(given)
            cfg = _compose([*expand_argv(given), *data_args])
            check_job_config(cfg)
            tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
            outcome = run_job(cfg, choices=_choices(cfg), checked=True)
        except SegexpError as exc:
            raise _refused(where, exc) from None
    if outcome.status != "finished" or outcome.run_id is None:
        code = 1 if outcome.status == "failed" else 2
        raise RunFailed(f"{where}: exit code {code}: {outcome.message}", code)
    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = outcome.run_id
    with tempfile.TemporaryDirectory(prefix="segexp-result-", dir=staging.process_dir()) as folder:
        assignments = download_assignments(client, run_id, Path(folder), id_column="first")
        profile = pd.read_csv(
            client.download_artifacts(run_id, PROFILE_CSV, folder), index_col="segment"
        )
    if assignments.columns[0] != "segment":  # indexed by the customer id
        assignments = assignments.set_index(assignments.columns[0])
    labels = assignments["segment"].astype(int)
    logged = client.get_run(run_id)
    info, tracked = logged.info, logged.data
    return Segmentation(
        run_id,
        info.run_name,
        tracking_uri,
        tracked.metrics,
        tracked.params,
        labels,
        profile,
        tracked.tags,
    )


def sweep(
    data: Any = None,
    overrides: Sequence[str] | None = None,
    *,
    algo: str | Sequence[str] | None = None,
    k: int | str | range | Sequence[int] | None = None,
    features: str | Sequence[Any] | None = None,
    scaler: str | Sequence[str] | None = None,
    conf_dir: str | os.PathLike | None = None,
    data_name: str | None = None,
    metric: str = "silhouette",
    **settings: Any,
) -> pd.DataFrame:
    """Run every combination as one sweep, as ``segexp -m <key=value ...>`` does; return its
    leaderboard (every job, any status, best first by ``metric``; ``board.attrs``:
    ``sweep_id``, ``parent_run_id``, ``tracking_uri``). Settings as in ``segexp.run``; a
    tuple, set or range is swept::

        segexp.sweep(frame, algo=("kmeans", "gmm"), k=range(3, 9))

    Raises ``segexp.errors.RunFailed`` when the sweep could not start or was stopped.
    """
    where = "segexp.sweep"
    given = _given(overrides, settings, True, algo=algo, k=k, features=features, scaler=scaler)
    given = [o for o in given if o not in ("-m", "--multirun")]
    with _conf_dir(conf_dir), _data_overrides(data, data_name) as data_args:
        try:
            check_command_before_hydra(["-m", *given])
            given = [*expand_argv(["-m", *given])[1:], *data_args]
            base = _compose([o for o in given if "," not in o])
            groups = {str(g) for g in base.hydra.runtime.choices}
            with initialize_config_module(CONFIG_MODULE, job_name="segexp", version_base="1.3"):
                jobs, configs = checked_jobs(given, {}, base, groups)
            command = f"segexp.sweep {' '.join(given)}"
            table = load_customers(base.data)
            context = start_sweep(base, table, len(jobs), "", command, configs_checked=True)
        except SegexpError as exc:
            raise _refused(where, exc) from None
        tracker = tracker_for(context.tracking_uri)
        try:
            for num, cfg in enumerate(configs):
                outcome = run_job(cfg, sweep=context, job_num=num, choices=_choices(cfg))
                record_outcome(context, outcome)
            end_sweep(base, context)
        except StoreWriteError as exc:
            with contextlib.suppress(Exception):
                tracker.fail_run(context.parent_run_id, f"the store stopped taking runs: {exc}")
            raise _refused(where, exc) from None
        except KeyboardInterrupt:
            end_interrupted_sweep(tracker, context, "SIGINT")
            raise RunFailed(
                f"{where}: stopped by SIGINT (exit code 130); the sweep's parent run and open "
                "job runs ended KILLED",
                130,
            ) from None
    frame = sweep_runs(tracker, context.experiment_id, context.sweep_id)
    board = build_leaderboard(frame, metric, LeaderboardFilters(status=None))
    board.attrs.update(
        sweep_id=context.sweep_id,
        parent_run_id=context.parent_run_id,
        tracking_uri=context.tracking_uri,
    )
    return board
