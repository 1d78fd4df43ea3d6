"""``segexp.run`` and ``segexp.sweep``: the command line's runs and sweeps from a notebook,
keyword settings turned into ``key=value`` overrides (docs/notebook.md)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from segexp.errors import ConfigError, DataError, shown
from segexp.insight.report import render_html
from segexp.jobs import api
from segexp.jobs.api import RunResult
from segexp.model.assign import SegmentAssigner
from segexp.tools.predict import check_new_columns
from segexp.tools.promote import load_run_model
from segexp.tools.report import collect_report_data

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
class Segmentation(RunResult):
    """One logged run (``run_id``, ``metrics``, ``labels``, ``profile`` ...) with
    ``predict(frame)``, ``figures`` and ``report_html()``."""

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
    given = _given(overrides, settings, False, algo=algo, k=k, features=features, scaler=scaler)
    result = api.run(data, given, conf_dir=conf_dir, data_name=data_name)
    return Segmentation(**{f.name: getattr(result, f.name) for f in fields(RunResult)})


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
    leaderboard (every job, best first by ``metric``; ``board.attrs``: ``sweep_id``,
    ``parent_run_id``). Settings as in ``segexp.run``; a tuple, set or range is swept::

        segexp.sweep(frame, algo=("kmeans", "gmm"), k=range(3, 9))

    Raises ``segexp.errors.RunFailed`` when the sweep could not start or was stopped.
    """
    given = _given(overrides, settings, True, algo=algo, k=k, features=features, scaler=scaler)
    return api.sweep(data, given, conf_dir=conf_dir, data_name=data_name, metric=metric)
