"""``segexp.run`` and ``segexp.sweep``: the command line's runs and sweeps, from a notebook.

Settings are keyword arguments (``segexp.run(frame, algo="gmm", k=4)``), turned into
the command line's ``key=value`` overrides (see ``keyword_overrides``) and run by
``segexp.jobs.api``: the same config, the same runs in MLflow. A run comes back as a
``Segmentation`` that assigns new customers as ``segexp-predict`` does, shows the
run's figures and renders its report; a sweep as its leaderboard.

This module sits above ``segexp.tools`` (it reuses promote's model building, predict's
row checks and the report's builder), so heavy imports wait for the first call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from segexp.errors import ConfigError, DataError
from segexp.jobs import api
from segexp.jobs.api import RunResult

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from segexp.model.assign import SegmentAssigner

_SPECIAL = set(",[]{}()'\"=\\") | {" "}
_ROWS_SHOWN = 5
_FIGURE_DPI = 100  # a PNG is shown at its own pixel size


def _text(value: str) -> str:
    """A string inside a list or among swept values: quoted when Hydra would split it."""
    if value and not (_SPECIAL & set(value)):
        return value
    return "'" + value.replace("'", "\\'") + "'"


def _value(value: Any, key: str, *, top: bool = True) -> str:
    """A Python value as Hydra override text (``top``: a string is passed as typed)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, os.PathLike):
        return _text(os.fspath(value))
    if isinstance(value, str):
        return value if top else _text(value)
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
            nested = {f"{name}__{k}": v for k, v in value.items()}
            overrides += keyword_overrides(nested, sweep=sweep)
            continue
        swept = isinstance(value, tuple | range | set | frozenset)
        if swept and not sweep:
            raise ConfigError(
                f"{key}={value!r}: several values are a sweep; segexp.run fits one job: "
                "use segexp.sweep, or a list for a list value"
            )
        items = sorted(value) if isinstance(value, set | frozenset) else value
        if key == "features" and (
            isinstance(value, list) or (swept and all(isinstance(v, list) for v in items))
        ):
            key = "features.columns"  # features=[age, income]: the columns themselves
        if swept:
            overrides.append(f"{key}={','.join(_value(v, key, top=False) for v in items)}")
        else:
            overrides.append(f"{key}={_value(value, key)}")
    return overrides


def _given(**named: Any) -> dict[str, Any]:
    return {k: v for k, v in named.items() if v is not None}


@dataclass(repr=False)
class Segmentation(RunResult):
    """One logged run: ``run_id``, ``run_name``, ``metrics``, ``params``, ``tags``,
    ``labels`` (each customer's segment) and ``profile`` (one row per segment), plus
    ``predict(frame)``, ``figures`` and ``report_html()``."""

    _assigner: SegmentAssigner | None = field(default=None, init=False, repr=False)
    _figures: dict[str, Figure] | None = field(default=None, init=False, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={self.metrics[k]:.4g}" for k in ("silhouette", "n_clusters") if k in self.metrics
        )
        return f"<Segmentation {self.run_name} (run {self.run_id}): {shown}>"

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def assigner(self) -> SegmentAssigner:
        """The run's model as ``segexp-promote`` builds it (pipeline, header aliases,
        segment names, the nearest-neighbour extension for clusterers without predict)."""
        if self._assigner is None:
            import tempfile
            from pathlib import Path

            from segexp.tools.promote import load_run_model

            client = self._client()
            with tempfile.TemporaryDirectory(prefix="segexp-model-") as folder:
                run = client.get_run(self.run_id)
                self._assigner = load_run_model(client, run, Path(folder)).assigner
        return self._assigner

    def predict(self, customers: pd.DataFrame) -> pd.DataFrame:
        """Assign new customers as ``segexp-predict`` does with this run's model.

        ``customers``: a table with the run's feature columns (header variants such as
        ``Annual Income (k$)`` are accepted, other columns are kept and ignored).
        Returns a copy with ``segment`` (and ``segment_name``) added. A row the model
        cannot score (a missing or non-numeric value, a negative amount ...) raises
        ``DataError`` naming it by its index; nothing is returned then.
        """
        from pathlib import Path

        import pandas as pd

        from segexp.tools.predict import check_new_columns

        if not isinstance(customers, pd.DataFrame):
            raise DataError(
                f"customers: a pandas DataFrame; got {type(customers).__name__} (read a file "
                "with pandas.read_csv, or score it with segexp-predict)"
            )
        check_new_columns([str(c) for c in customers.columns], Path("DataFrame"), False)
        assigner = self.assigner()
        features, reasons = assigner.row_problems(customers)
        bad = (reasons != "").to_numpy()
        if bad.any():
            positions = bad.nonzero()[0]
            shown = "; ".join(
                f"index {customers.index[i]!r}: {reasons.iloc[i]}" for i in positions[:_ROWS_SHOWN]
            )
            more = (
                f" (+{len(positions) - _ROWS_SHOWN} more)" if len(positions) > _ROWS_SHOWN else ""
            )
            raise DataError(
                f"customers: {len(positions)} row(s) cannot be scored: {shown}{more}; fix or "
                "drop those rows"
            )
        scored = assigner.assign_prepared(features)
        out = customers.copy()
        for column in scored.columns:
            out[column] = scored[column].to_numpy()
        return out

    @property
    def figures(self) -> dict[str, Figure]:
        """The run's plots (``plots/*.png``) as matplotlib figures, by name: ``segments``,
        ``silhouette``, ``profile_heatmap``, ``snake`` ... Each shows inline in a notebook
        (``result.figures["segments"]``); empty when the run was logged with
        ``plots.enabled=false``."""
        if self._figures is None:
            self._figures = self._load_figures()
        return self._figures

    def _load_figures(self) -> dict[str, Figure]:
        import tempfile
        from pathlib import Path

        import matplotlib.image
        import matplotlib.pyplot as plt

        client = self._client()
        names = [a.path for a in client.list_artifacts(self.run_id, "plots")]
        found: dict[str, Figure] = {}
        with tempfile.TemporaryDirectory(prefix="segexp-figures-") as folder:
            for name in sorted(n for n in names if n.endswith(".png")):
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
                found[Path(name).stem] = fig
        return found

    def report_html(self) -> str:
        """The run's HTML report (segments, pictures, how it was chosen, the data), as
        ``segexp-report run_id=<run id>`` writes it; nothing is written or logged.
        Show it with ``IPython.display.HTML(result.report_html())``."""
        from segexp.insight.report import render_html
        from segexp.tools.report import collect_report_data

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

    ``data``: a pandas DataFrame (one row per customer) or a CSV/TSV/Parquet path; None
    uses ``data=`` from the config (default: the built-in 200-customer sample).

    Settings are keyword arguments, each one command-line override::

        segexp.run(frame, algo="gmm", k=4)                 # algo=gmm k=4
        segexp.run(frame, features=["age", "spending_score"], scaler="robust")
        segexp.run(frame, algo="dbscan", algo__eps=0.3)     # algo.eps=0.3
        segexp.run(frame, algo={"eps": 0.3})                # the same key, as a dict
        segexp.run(frame, preprocess__log1p=["annual_income"], plots__enabled=False)

    - ``key__sub`` is the nested key ``key.sub``; a dict sets each of its keys that way.
    - ``features``: an option name (``income_spending``) or a list of columns
      (``features.columns=[...]``).
    - A list becomes a Hydra list; None ``null``; numbers and bools as themselves.
    - A string is the text you would type after ``key=`` on the command line.
    - ``overrides``: command-line strings (``["algo=gmm", "k=4"]``), applied first.
    - ``conf_dir``: a project's own config folder (default: ``./conf`` when it exists).
    - ``data_name``: how the runs name a DataFrame (param ``data``; default ``DataFrame``).

    The store is ``mlflow.tracking_uri`` (default ``sqlite:///mlflow.db`` in the current
    folder, or ``MLFLOW_TRACKING_URI``). Returns a ``Segmentation``: ``run_id``,
    ``metrics``, ``labels``, ``profile``, ``predict(frame)``, ``figures`` and
    ``report_html()``. Raises ``segexp.errors.RunFailed`` (its ``exit_code`` and the
    command line's one-line message) when the run was refused or failed.
    """
    named = _given(algo=algo, k=k, features=features, scaler=scaler)
    given = [*(overrides or []), *keyword_overrides({**named, **settings})]
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
    """Run every combination as one sweep, as ``segexp -m <key=value ...>`` does; return
    its leaderboard.

    Settings as in ``segexp.run``; a tuple, set or range gives the values to sweep::

        segexp.sweep(frame, algo=("kmeans", "gmm"), k=range(3, 9))
        segexp.sweep(frame, k="3..8", scaler=("standard", "robust"))   # command-line text
        segexp.sweep(frame, features=(["age", "spending_score"], ["annual_income"]), k=(3, 4))

    The leaderboard has one row per job (any status), best first by ``metric``, with its
    params and metrics; ``board.attrs`` holds ``sweep_id``, ``parent_run_id`` and
    ``tracking_uri``. Take a row's run to ``segexp-promote run_id=<run_id>``. Nothing
    but a line naming the store is printed (no shell commands). Raises
    ``segexp.errors.RunFailed`` when the sweep could not start or was stopped; a failed
    job is a row with status FAILED.
    """
    named = _given(algo=algo, k=k, features=features, scaler=scaler)
    given = [*(overrides or []), *keyword_overrides({**named, **settings}, sweep=True)]
    return api.sweep(data, given, conf_dir=conf_dir, data_name=data_name, metric=metric)
