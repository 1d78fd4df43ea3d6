"""Configuration checked before any run or store is touched: one rule per key.

``check_job_config(cfg)`` checks a composed job config (``conf/config.yaml``):
the main config's own keys (``k``, ``seed``, ``metrics.*``, ``limits.*``,
``plots.*``, ``objective.*``, ``verbose``, ``data.sample.*``), the
``preprocess`` and ``evaluation`` groups, and the algorithm's hyperparameters.
``check_tool_config(name, cfg)`` checks a tool's config (``conf/compare.yaml``,
``predict.yaml``, ...). Both raise ``ConfigError`` with one line::

    <key>: <what is allowed>; got <value received>

An unknown key (``+foo=1``, ``+limits.foo=1``) is refused with the keys that
exist; a required key that was removed (``~k``) says so.

Hyperparameters are checked by scikit-learn itself: the configured estimator is
instantiated (as ``segexp.model.pipeline`` does) and fitted on an empty array.
scikit-learn checks every parameter against its constraints at the start of
``fit``, before it looks at the data, and raises ``InvalidParameterError`` (a
``ValueError``) naming the parameter, what it allows and what it got; only that
error is turned into the one-line message (``algo.eps: must be a float in the
range (0.0, inf); got -1 (scikit-learn's DBSCAN)``). The empty array's own
refusal means the parameters passed. Each distinct algorithm config is checked
once per process (well under a millisecond after the first).

``neighbour_memory_mb`` estimates what a density algorithm's neighbourhood lists
(DBSCAN) hold, for ``limits.max_neighbour_memory_mb`` (see ``segexp.jobs.job``).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from segexp.errors import ConfigError, first_line
from segexp.jobs.ranges import range_size

_MAX_LISTED = 24
_MISSING = object()


def shown(value: Any) -> str:
    """A value as the user typed it: null, true, 3, 0.5, 'abc', [1, 2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """One key: the words saying what it allows, and the test a value must pass."""

    key: str
    allowed: str
    test: Callable[[Any], bool]

    def check(self, cfg: DictConfig, prefix: str = "") -> None:
        value = _select(cfg, self.key)
        name = prefix + self.key
        if value is _MISSING:
            raise ConfigError(
                f"{name}: {self.allowed}; got nothing (the key was removed, e.g. by ~{name})"
            )
        if not self.test(value):
            raise ConfigError(f"{name}: {self.allowed}; got {shown(value)}")


def _bounds(low: float | None, high: float | None, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"from {low} to {high}" if not low_open else f"> {low} and <= {high}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"<= {high}"
    return ""


def integer(
    key: str, low: int | None = None, high: int | None = None, *, null: bool = False
) -> Rule:
    words = " ".join(filter(None, ["an integer", _bounds(low, high)]))
    return Rule(
        key,
        words + (" or null" if null else ""),
        lambda v: (
            (null and v is None)
            or (_is_int(v) and (low is None or v >= low) and (high is None or v <= high))
        ),
    )


def number(
    key: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    null: bool = False,
) -> Rule:
    words = " ".join(filter(None, ["a number", _bounds(low, high, low_open)]))

    def test(v: Any) -> bool:
        if null and v is None:
            return True
        if not _is_number(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or v <= high

    return Rule(key, words + (" or null" if null else ""), test)


def flag(key: str) -> Rule:
    return Rule(key, "true or false", lambda v: isinstance(v, bool))


_SWITCH_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")


def switch(key: str) -> Rule:
    """true/false, also as the words the environment variables take (yes, on, 1 ...)."""
    return Rule(
        key,
        "true or false",
        lambda v: (
            isinstance(v, bool)
            or (_is_int(v) and v in (0, 1))
            or (isinstance(v, str) and v.strip().lower() in _SWITCH_WORDS)
        ),
    )


def choice(key: str, *values: Any, null: bool = False) -> Rule:
    words = "one of " + ", ".join(shown(v) if v is not None else "null" for v in values)
    return Rule(
        key,
        words + (" or null" if null else ""),
        lambda v: (null and v is None) or (not isinstance(v, bool) and v in values),
    )


def text(key: str, *, null: bool = False, what: str = "a non-empty text") -> Rule:
    """A name or path: any non-empty scalar but true/false (Hydra reads 123 as a number)."""
    return Rule(
        key,
        what + (" or null" if null else ""),
        lambda v: (
            (null and v is None)
            or (isinstance(v, str) and bool(v.strip()))
            or _is_int(v)
            or (isinstance(v, float) and math.isfinite(v))
        ),
    )


def names(key: str) -> Rule:
    """One name, a list of names, or null (compare's filter.algo and the like)."""

    def test(v: Any) -> bool:
        if v is None or (isinstance(v, str) and v.strip()):
            return True
        return isinstance(v, list) and all(isinstance(x, str | int) for x in v)

    return Rule(key, "a name, a list of names like [a,b], or null", test)


def text_list(key: str) -> Rule:
    return Rule(
        key,
        "a list of names like [a,b]",
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    )


# ----------------------------------------------------------------- the rules

DPI = integer("plots.dpi", 20, 1200)
RUN_STATUSES = ("FINISHED", "FAILED", "RUNNING", "KILLED", "SCHEDULED")

_DATA = [integer("data.sample.n_customers", 2, null=True), integer("data.sample.seed", 0)]


def _aliases(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, list) and all(isinstance(h, str | int) for h in v) for v in value.values()
    )


# How a table is read (segexp.data.read): checked where a data option has the key, since a
# user's own conf/data file may leave some out.
DATA_READING_RULES: list[Rule] = [
    Rule(
        "data.delimiter",
        "one character such as ',', ';' or '|', tab, or null (found from the file)",
        lambda v: v is None or (isinstance(v, str) and (len(v) == 1 or v in ("\\t", "tab"))),
    ),
    Rule(
        "data.quotechar",
        "one character such as '\"' or \"'\"",
        lambda v: isinstance(v, str) and len(v) == 1,
    ),
    choice("data.decimal", ".", ","),
    Rule(
        "data.missing_values",
        "a list of texts that mean missing, such as [NA, n/a, '-'], or null (segexp's list)",
        lambda v: (
            v is None
            or isinstance(v, str)
            or (isinstance(v, list) and all(isinstance(x, str | int | float) for x in v))
        ),
    ),
    Rule(
        "data.aliases",
        "column names with the file headers they go by, such as {income: [Annual Income]}",
        _aliases,
    ),
    flag("data.dayfirst"),
    text("data.date_format", null=True, what="a strptime format such as '%d/%m/%Y'"),
]


def check_data_reading(cfg: DictConfig) -> None:
    """The reading keys that the data option has (see ``DATA_READING_RULES``)."""
    for rule in DATA_READING_RULES:
        if _select(cfg, rule.key) is not _MISSING:
            rule.check(cfg)


MAIN_RULES: list[Rule] = [
    integer("seed", 0, 2**32 - 1),
    integer("metrics.silhouette_max_rows", 2),
    integer("limits.max_rows_quadratic", 1),
    integer("limits.threads", 1, null=True),
    integer("limits.single_thread_below_rows", 0),
    integer("limits.max_jobs", 1),
    number("limits.max_neighbour_memory_mb", 0, low_open=True),
    flag("plots.enabled"),
    DPI,
    integer("plots.max_points", 100),
    integer("artifacts.assignments_parquet_above_rows", 0),
    text("objective.metric", what="a metric name (silhouette, davies_bouldin, ...)"),
    choice("objective.direction", "maximize", "minimize"),
    switch("verbose"),
    *_DATA,
]
# engine=spark (segexp.engines): its keys, checked when the job names that engine
# (the master URLs Spark itself takes: yarn, or local / spark:// / k8s:// forms)
SPARK_MASTER = re.compile(
    r"local|local\[(\d+|\*)(,\d+)?\]|local-cluster\[\d+,\d+,\d+\]"
    r"|spark://[\w.-]+(:\d+)?(,[\w.-]+(:\d+)?)*|k8s://\S+|yarn"
)
ENGINE_NAME = choice("engine.name", "sklearn", "spark")
SPARK_RULES: list[Rule] = [
    Rule(
        "engine.master",
        "a Spark master URL: local, local[*], local[2], local[2,3], spark://host:7077, "
        "k8s://https://host:443 or yarn",
        lambda v: isinstance(v, str) and SPARK_MASTER.fullmatch(v.strip()) is not None,
    ),
    Rule(
        "engine.driver_memory",
        "a JVM memory size such as 2g or 512m",
        lambda v: isinstance(v, str) and re.fullmatch(r"\d+[kmgt]?", v.strip().lower()) is not None,
    ),
    integer("engine.sample_rows", 2),
    integer("engine.shuffle_partitions", 1),
]
K_USED = integer("k", 2)  # the number of segments, for algorithms that take ${k}
K_UNUSED = integer("k", 1)  # DBSCAN finds its own: k only names the job

_FILTER = [
    names("filter.algo"),
    names("filter.features"),
    names("filter.scaler"),
    number("filter.min_segment_share", 0, 1, null=True),
    number("filter.min_stability", -1, 1, null=True),
    integer("filter.k_min", 1, null=True),
    integer("filter.k_max", 1, null=True),
    choice("filter.status", *RUN_STATUSES, null=True),
    number("filter.max_noise_fraction", 0, 1, null=True),
]
_REGISTRY = [text("registry.name"), text("registry.alias")]
_RUN_ID = text("run_id", null=True, what="a run id")
_SWEEP_ID = text("sweep_id", null=True, what="a sweep id or its parent run id")
_PATH = "a file path"

TOOL_RULES: dict[str, list[Rule]] = {
    "compare": [
        choice("scope", "sweep", "experiment"),
        _SWEEP_ID,
        text("metric", what="a metric name (silhouette, davies_bouldin, ...)"),
        choice("direction", "auto", "max", "min"),
        *_FILTER,
        integer("top", 1, null=True),
        text_list("columns"),
        choice("format", "table", "csv", "markdown", null=True),
        integer("width", 20, null=True),
        flag("wide"),
        text("output", null=True, what=_PATH),
        *_DATA,
    ],
    "promote": [
        _RUN_ID,
        text("best", null=True, what="a metric name"),
        choice("scope", "sweep", "experiment"),
        _SWEEP_ID,
        choice("direction", "auto", "max", "min"),
        *_FILTER,
        *_REGISTRY,
        number("validation.min_agreement", 0, 1),
        flag("report.enabled"),
        text("report.output", null=True, what=_PATH),
        flag("dry_run"),
        *_DATA,
    ],
    "predict": [
        text("input", null=True, what=_PATH),
        text("output", null=True, what=_PATH),
        text("model", null=True, what="an MLflow model URI"),
        *_REGISTRY,
        text("rejects", null=True, what=_PATH),
        text("delimiter", null=True, what="a delimiter such as , ; or |"),
        text("encoding", null=True, what="an encoding such as utf-8"),
    ],
    "report": [
        _RUN_ID,
        *_REGISTRY,
        text("metric", what="a metric name (silhouette, davies_bouldin, ...)"),
        number("filter.max_noise_fraction", 0, 1, null=True),
        text("output", null=True, what=_PATH),
        flag("log_to_mlflow"),
    ],
    "eda": [
        integer("eda.max_hue_levels", 2),
        integer("eda.max_columns", 1),
        number("eda.iqr_factor", 0),
        integer("eda.max_scatter_rows", 2),
        integer("eda.max_scatter_columns", 2),
        integer("eda.max_pie_levels", 1),
        integer("plots.dpi", 20, 1200),
        *_DATA,
    ],
    "rerun": [_RUN_ID],
}

# Config groups: their options are files of their own (conf/<group>/<option>.yaml).
_GROUPS = ("data", "features", "preprocess", "scaler", "algo", "mlflow", "evaluation", "naming")
# Sections of the main and tool configs whose keys are fixed: anything else is a typo.
_CLOSED: tuple[str, ...] = ("metrics", "limits", "plots", "artifacts", "objective", "filter")
_CLOSED += ("registry", "validation", "report", "eda")
# Groups whose options all take keys from one set: the keys of segexp's own option files
# (a user's conf/data/bank.yaml takes the same ones); the hyperparameter groups (algo,
# scaler) are checked against their class instead, and engine by segexp.engines.
_KEYED_GROUPS = ("data", "features", "preprocess", "mlflow", "evaluation", "naming")
# keys a group takes that no shipped option file sets
_EXTRA_GROUP_KEYS: dict[str, tuple[str, ...]] = {"data": ("source_name",)}
# sections inside a group whose own keys are fixed too (the others, such as data.aliases
# or naming.columns, are keyed by the user's column names)
_FIXED_GROUP_SECTIONS = {
    "data": ("sample", "rfm"),
    "evaluation": ("stability",),
    "naming": ("levels",),
}


def _select(cfg: Any, key: str) -> Any:
    """The key's value as plain Python (lists and dicts too); _MISSING when absent."""
    node = cfg
    for part in key.split("."):
        if not OmegaConf.is_dict(node) or part not in node:
            return _MISSING
        try:
            node = node[part]
        except Exception as exc:  # an interpolation that cannot be resolved
            raise ConfigError(f"{key}: cannot be resolved ({first_line(exc)})") from None
    if OmegaConf.is_config(node):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except Exception as exc:
            raise ConfigError(f"{key}: cannot be resolved ({first_line(exc)})") from None
    return node


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    text = ", ".join(items[:_MAX_LISTED])
    return text + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


# ------------------------------------------------------------------- unknown keys


def _config_file(config_name: str) -> Path:
    """The primary config file as Hydra finds it: the user's conf/ first, then segexp's."""
    from hydra_plugins.segexp_sweep.user_conf import user_conf_dir

    user = user_conf_dir()
    if user is not None and (user / f"{config_name}.yaml").is_file():
        return user / f"{config_name}.yaml"
    return Path(__file__).resolve().parents[1] / "conf" / f"{config_name}.yaml"


def declared_keys(config_name: str) -> dict:
    """The keys the primary config file declares (its groups included), as a tree."""
    return _declared_in(_config_file(config_name))


@functools.cache
def _declared_in(path: Path) -> dict:
    with path.open(encoding="utf-8") as file:  # a YAML error names the file
        tree = yaml.safe_load(file) or {}
    groups: dict[str, Any] = {}
    for item in tree.pop("defaults", None) or []:
        if isinstance(item, dict):
            groups.update({str(k): None for k in item if not str(k).startswith("override")})
        elif isinstance(item, str) and item != "_self_":
            groups[item] = None
    tree.pop("hydra", None)
    return {**groups, **tree}


def check_known_keys(cfg: DictConfig, config_name: str) -> None:
    """Refuse keys the config does not declare: at the top and in the fixed sections."""
    declared = declared_keys(config_name)
    top = [str(k) for k in cfg if k != "hydra"]
    for key in top:
        if key not in declared and key not in _GROUPS:
            _unknown(key, "", list(declared))
    for section in _CLOSED:
        known = declared.get(section)
        if not isinstance(known, Mapping) or not OmegaConf.is_dict(cfg.get(section)):
            continue
        for key in cfg[section]:
            if str(key) not in known:
                _unknown(f"{section}.{key}", section, [str(k) for k in known])
            inner = known[str(key)]
            if isinstance(inner, Mapping) and OmegaConf.is_dict(cfg[section][key]):
                for sub in cfg[section][key]:
                    if str(sub) not in inner:
                        where = f"{section}.{key}"
                        _unknown(f"{where}.{sub}", where, [str(k) for k in inner])


@functools.cache
def group_keys(group: str) -> dict[str, list[str]]:
    """The keys segexp's own ``conf/<group>/*.yaml`` files declare: ``{"": top-level keys,
    section: its keys}`` for the sections in ``_FIXED_GROUP_SECTIONS``."""
    top: dict[str, None] = {}
    sections: dict[str, dict[str, None]] = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "conf" / group).glob("*.yaml")):
        tree = yaml.safe_load(path.read_text()) or {}
        tree.pop("defaults", None)
        top.update(dict.fromkeys(map(str, tree)))
        for section in _FIXED_GROUP_SECTIONS.get(group, ()):
            if isinstance(tree.get(section), dict):
                sections.setdefault(section, {}).update(dict.fromkeys(map(str, tree[section])))
    top.update(dict.fromkeys(_EXTRA_GROUP_KEYS.get(group, ())))
    return {"": list(top), **{k: list(v) for k, v in sections.items()}}


def check_group_keys(cfg: DictConfig) -> None:
    """Refuse keys that no option of a group takes (``+data.foo=1``, a typo in a user's
    own ``conf/data/bank.yaml``), with the keys the group has."""
    for group in _KEYED_GROUPS:
        node = cfg.get(group)
        if not OmegaConf.is_dict(node):
            continue
        known = group_keys(group)
        for key in node:
            if str(key) not in known[""]:
                _unknown(f"{group}.{key}", group, known[""])
        for section in _FIXED_GROUP_SECTIONS.get(group, ()):
            inner = node.get(section)
            if section not in known or not OmegaConf.is_dict(inner):
                continue
            for key in inner:
                if str(key) not in known[section]:
                    where = f"{group}.{section}"
                    _unknown(f"{where}.{key}", where, known[section])


def _unknown(key: str, where: str, available: Sequence[str]) -> None:
    leaf = key[len(where) + 1 :] if where else key
    near = difflib.get_close_matches(leaf, list(available), n=1)
    hint = f" (did you mean {'.'.join(filter(None, [where, near[0]]))}?)" if near else ""
    under = f" under {where}" if where else ""
    raise ConfigError(f"{key}: no such config key{hint}; available{under}: {_listed(available)}")


# --------------------------------------------------------------- hyperparameters

_SKLEARN_MESSAGE = re.compile(
    r"^The '(?P<param>\w+)' parameter of (?P<owner>\w+) must be (?P<allowed>.*)\. "
    r"Got (?P<got>.*) instead\.$",
    re.S,
)


def _is_parameter_error(exc: BaseException) -> bool:
    """scikit-learn's InvalidParameterError, recognised by name (its module is private)."""
    return any(t.__name__ == "InvalidParameterError" for t in type(exc).__mro__)


def _resolved_algo(algo: DictConfig, where: str) -> dict[str, Any]:
    raw = OmegaConf.to_container(algo, resolve=False)
    assert isinstance(raw, dict)
    try:
        params = OmegaConf.to_container(algo, resolve=True)
    except Exception as exc:  # ${k} after ~k, ${nosuch}
        for name, value in raw.items():
            try:
                OmegaConf.select(algo, str(name), throw_on_missing=True)
            except Exception:
                raise ConfigError(
                    f"{where}.{name!s}: a value or an interpolation of an existing key; got "
                    f"{shown(value)}, which cannot be resolved ({str(exc).splitlines()[0]})"
                ) from None
        raise ConfigError(f"{where}: cannot be resolved ({str(exc).splitlines()[0]})") from None
    assert isinstance(params, dict)
    return {str(name): value for name, value in params.items()}


def _key_of(raw: Mapping[str, Any], param: str, where: str) -> str:
    """``algo.n_clusters``, or ``k (algo.n_clusters)`` when the value is ``${k}``."""
    value = raw.get(param)
    match = re.fullmatch(r"\$\{([\w.]+)\}", value) if isinstance(value, str) else None
    return f"{match.group(1)} ({where}.{param})" if match else f"{where}.{param}"


def check_algorithm(algo: DictConfig) -> None:
    """The algorithm's ``_target_`` and hyperparameters, as scikit-learn checks them: fitted
    on an empty array, whose refusal means the parameters passed."""
    from hydra.utils import instantiate

    _check_estimator(
        algo, "algo", "sklearn.cluster.KMeans", lambda node: instantiate(node, _convert_="all")
    )


# three plain rows a scaler is fitted on: checks made after scikit-learn's parameter
# constraints (MinMaxScaler's range order) run too, and any refusal is the config's
_SCALER_ROWS = ((0.0, 1.0), (1.0, 0.0), (0.5, 0.5))


def check_scaler(scaler: DictConfig) -> None:
    """The scaler's ``_target_`` and parameters, built as jobs build it and fitted."""
    from segexp.model.pipeline import build_scaler

    _check_estimator(
        scaler, "scaler", "sklearn.preprocessing.StandardScaler", build_scaler, _SCALER_ROWS
    )


def _check_estimator(
    algo: DictConfig,
    where: str,
    example: str,
    build: Callable[[DictConfig], Any],
    rows: Sequence[Sequence[float]] | None = None,
) -> None:
    """An estimator config (``where``: algo, scaler) checked by its class and scikit-learn:
    built with ``build``, then fitted on ``rows`` (any refusal is an error) or, without
    them, on an empty array (only a parameter error is)."""
    params = _resolved_algo(algo, where)
    target = params.pop("_target_", None)
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"{where}._target_: a scikit-learn class path such as {example}; got {shown(target)}"
        )
    try:
        module, _, name = target.strip().rpartition(".")
        cls = getattr(importlib.import_module(module), name)
    except Exception:
        raise ConfigError(
            f"{where}._target_: an importable class path such as {example}; "
            f"got {shown(target)}, which cannot be imported"
        ) from None
    if not inspect.isclass(cls):
        raise ConfigError(
            f"{where}._target_: a class path such as {example}; got {shown(target)}, "
            f"which is a {type(cls).__name__}, not a class"
        )
    owner = (
        f"scikit-learn's {cls.__name__}"
        if cls.__module__.startswith("sklearn.")
        else f"{cls.__module__}.{cls.__qualname__}"
    )
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = None
    if accepted is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()
    ):
        for name in params:
            if not name.startswith("_") and name not in accepted:
                _unknown_param(f"{where}.{name}", owner, list(accepted))
    raw = OmegaConf.to_container(algo, resolve=False)
    assert isinstance(raw, dict)
    import numpy as np

    try:
        estimator = build(algo)
    except Exception as exc:
        raise ConfigError(
            f"{where}: {owner} cannot be created from these values "
            f"({first_line(exc.__cause__ or exc)})"
        ) from None
    fit = getattr(estimator, "fit", None)
    if fit is None:
        raise ConfigError(f"{where}._target_: an estimator with a fit method; got {target}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit(np.empty((0, 2)) if rows is None else np.array(rows, dtype=float))
        except Exception as exc:  # without rows, the empty array's refusal: parameters passed
            named = {str(name): value for name, value in raw.items()}
            if _is_parameter_error(exc):
                raise ConfigError(_parameter_message(str(exc), named, where, owner)) from None
            if rows is not None:
                raise ConfigError(f"{where}: {first_line(exc)} ({owner})") from None


def _unknown_param(key: str, owner: str, available: Sequence[str]) -> None:
    leaf = key.rpartition(".")[2]
    near = difflib.get_close_matches(leaf, list(available), n=1)
    hint = f" (did you mean {key.rpartition('.')[0]}.{near[0]}?)" if near else ""
    raise ConfigError(f"{key}: not a parameter of {owner}{hint}; available: {_listed(available)}")


def _parameter_message(message: str, raw: Mapping[str, Any], where: str, owner: str) -> str:
    match = _SKLEARN_MESSAGE.match(message.strip())
    if match is None:
        return f"{where}: {first_line(ValueError(message))} ({owner})"
    allowed = " ".join(match["allowed"].split())
    key = _key_of(raw, match["param"], where)
    return f"{key}: must be {allowed}; got {match['got']} (scikit-learn's {match['owner']})"


# ------------------------------------------------------------------- entry points


def _refers_to(node: DictConfig, key: str) -> bool:
    """The node's values refer to the top-level ``key`` (``n_clusters: ${k}``)."""
    raw = OmegaConf.to_container(node, resolve=False)
    assert isinstance(raw, dict)
    return any(isinstance(v, str) and "${" + key + "}" in v for v in raw.values())


def check_config_complete(cfg: DictConfig) -> None:
    """The config groups segexp needs are there and every value resolves."""
    check_groups_present(cfg)
    check_resolvable(cfg)


def check_groups_present(cfg: DictConfig) -> None:
    """Every config group segexp needs is there (``~mlflow`` removes one); ConfigError
    with its options. (A removed key of the main config is its rule's to say.)"""
    for group in _GROUPS:
        if group not in cfg:
            folders = _group_folders(group)
            options = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
            raise ConfigError(
                f"{group}: segexp needs this config group, and the command removed it "
                f"(~{group}); keep it or choose an option: {_listed(options)}"
            )


def check_resolvable(cfg: DictConfig) -> None:
    """Every value resolves: ``${oc.env:VAR}`` of an unset variable, ``${key}`` of a key
    that is not there; ConfigError naming the key, what it holds and what to do."""
    shown = [str(k) for k in cfg if k != "hydra"]
    try:
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, shown), resolve=True)
    except OmegaConfBaseException as exc:
        key = str(exc.full_key or "?")
        parent, _, leaf = key.rpartition(".")
        try:
            node = OmegaConf.select(cfg, parent) if parent else cfg
            text = OmegaConf.to_container(node, resolve=False).get(leaf, "")  # type: ignore[union-attr]
        except Exception:  # a parent that is itself an interpolation
            text = ""
        why = first_line(exc).split("resolving interpolation: ")[-1].strip("\"'")
        env = re.search(r"\$\{oc\.env:([^,}]+)\}", str(text))
        removed = re.fullmatch(r"Interpolation key '(\w+)' not found", why)
        if removed and removed.group(1) in declared_keys("config"):
            name = removed.group(1)
            raise ConfigError(
                f"{name}: the command removed it (~{name}), and {key} refers to it "
                f"({text}); keep {name}"
            ) from None
        hint = (
            f"set {env.group(1)}, give a default (${{oc.env:{env.group(1)},<default>}}) or "
            f"set {key}=<value>"
            if env
            else f"refer to a key that exists, or set {key}=<value>"
        )
        raise ConfigError(f"{key}: {text} cannot be resolved ({why}); {hint}") from None


def _group_folders(group: str) -> list[Path]:
    from hydra_plugins.segexp_sweep.user_conf import user_conf_dir

    user = user_conf_dir()
    packaged = Path(__file__).resolve().parents[1] / "conf" / group
    return [packaged] + ([user / group] if user is not None else [])


def check_job_config(cfg: DictConfig) -> None:
    """Every check of a job's config that needs no data; ConfigError on the first problem.

    The main config's own keys are checked before scikit-learn is imported, so most
    mistakes answer at once; the groups and the algorithm's hyperparameters after.
    """
    check_groups_present(cfg)
    check_known_keys(cfg, "config")
    check_group_keys(cfg)
    if "algo" not in cfg or not OmegaConf.is_dict(cfg.algo):
        raise ConfigError("algo: an algorithm option (algo=kmeans, algo=dbscan, ...); got none")
    (K_USED if _refers_to(cfg.algo, "k") else K_UNUSED).check(cfg)
    for rule in MAIN_RULES:
        rule.check(cfg)
    check_data_reading(cfg)
    from segexp.model.evaluation import evaluation_settings
    from segexp.model.pipeline import PreprocessOptions

    PreprocessOptions.from_config(cfg.get("preprocess"))
    evaluation_settings(cfg)
    check_algorithm(cfg.algo)
    if OmegaConf.is_dict(cfg.get("scaler")) and "_target_" in cfg.scaler:
        check_scaler(cfg.scaler)
    check_engine(cfg)
    check_resolvable(cfg)


def _option(cfg: DictConfig, group: str) -> str:
    """The option of a config group the job was composed from (algo=gmm), else its class."""
    from hydra.core.hydra_config import HydraConfig

    chosen = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}")
    if chosen is None and HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get(group)
    if chosen is None:
        target = OmegaConf.select(cfg, f"{group}._target_", default="") or ""
        chosen = str(target).rpartition(".")[2] or group
    return str(chosen)


def check_engine(cfg: DictConfig) -> None:
    """``engine.*`` keys, and with engine=spark an algorithm and scaler Spark has."""
    from segexp.engines import (
        ENGINE_KEYS,
        SPARK,
        SPARK_ALGO_NAMES,
        SPARK_ALGORITHMS,
        SPARK_SCALER_NAMES,
        SPARK_SCALERS,
    )

    if "engine" not in cfg:
        return  # a config of its own without the group: engine=sklearn
    ENGINE_NAME.check(cfg)
    name = str(cfg.engine.name)
    for key in cfg.engine:
        if str(key) not in ENGINE_KEYS[name]:
            _unknown(f"engine.{key}", "engine", list(ENGINE_KEYS[name]))
    if name != SPARK:
        return
    for rule in SPARK_RULES:
        rule.check(cfg)
    if str(cfg.algo.get("_target_")) not in SPARK_ALGORITHMS:
        algo = _option(cfg, "algo")
        raise ConfigError(
            f"algo={algo}: engine=spark fits {', '.join(SPARK_ALGO_NAMES)} (pyspark.ml); "
            f"got {algo}; use one of them, or engine=sklearn for {algo}"
        )
    if str(cfg.scaler.get("_target_")) not in SPARK_SCALERS:
        scaler = _option(cfg, "scaler")
        raise ConfigError(
            f"scaler={scaler}: engine=spark scales with {' or '.join(SPARK_SCALER_NAMES)}; "
            f"got {scaler}; use scaler=standard, or engine=sklearn for scaler={scaler}"
        )


def check_tool_config(config_name: str, cfg: DictConfig) -> None:
    """The keys of a tool's config (``conf/<config_name>.yaml``); ConfigError on the first."""
    if "data" in cfg:  # predict, report, rerun compose no data: their run names the data
        check_resolvable(cfg)  # (and mlflow.experiment, segexp-${data.name}, is not used)
    check_known_keys(cfg, config_name)
    for rule in TOOL_RULES.get(config_name, []):
        rule.check(cfg)
    if config_name == "eda":
        check_data_reading(cfg)


# ------------------------------------------------------------------ sweep limits


def max_jobs(cfg: DictConfig | None, default: int = 1000) -> int:
    rule = integer("limits.max_jobs", 1)
    if cfg is None or _select(cfg, "limits.max_jobs") is _MISSING:
        return default
    rule.check(cfg)
    return int(_select(cfg, "limits.max_jobs"))


def check_sweep_size(count: int, limit: int) -> None:
    if count > limit:
        raise ConfigError(
            f"limits.max_jobs: a sweep of at most {limit} jobs (sweep fewer values, or raise "
            f"the limit with limits.max_jobs={count}); got {count} jobs"
        )


def check_sweep_before_hydra(args: Sequence[str], config_name: str = "config") -> None:
    """A basic sweep (segexp's sweeper) larger than ``limits.max_jobs``, counted from the
    command line: Hydra's override parser takes about 10 s for ``k=1..100000`` (the
    expanded list) before its sweeper could count; the sweeper counts exactly again."""
    if not any(a in ("-m", "--multirun") for a in args):
        return
    if any(a.startswith(("hydra/sweeper=", "hydra.sweeper.")) for a in args):
        return  # another sweeper (Optuna: n_trials) decides how many jobs it runs
    count = count_sweep_values(args)
    limits = declared_keys(config_name).get("limits") or {}
    limit = limits.get("max_jobs", 1000) if isinstance(limits, dict) else 1000
    for arg in args:
        key, _, value = arg.lstrip("+").partition("=")
        if key == "limits.max_jobs":
            if not value.strip().isdigit():  # Hydra and the sweeper say what is wrong
                return
            limit = int(value)
    check_sweep_size(count, int(limit))


_PLAIN_VALUE = re.compile(r"^[^()\[\]{}'\"]*$")


def count_sweep_values(args: Sequence[str]) -> int:
    """Jobs of a basic sweep as its command line says them, without Hydra's parser:
    the product of the comma-separated values of every override, a range shorthand
    counted from its bounds (a value in Hydra's own grammar, such as ``range(1,9)``,
    counts as one). Exact for plain lists and ranges, a lower bound otherwise."""
    total = 1
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        if key.startswith(("hydra.", "hydra/", "~")) or not _PLAIN_VALUE.match(value):
            continue
        total *= max(1, sum(range_size(item) for item in value.split(",")))
    return total


# ------------------------------------------------------ density algorithms' memory

# Density algorithms that hold every customer's neighbours within a radius: the radius
# hyperparameter. (OPTICS, when added, with its max_eps: it keeps one neighbourhood at a
# time, so it would need its own estimate before being listed here.)
DENSITY_RADIUS: dict[str, str] = {"sklearn.cluster.DBSCAN": "eps"}
# What scikit-learn's DBSCAN holds per neighbour entry and per customer: an 8-byte index
# per entry in its final lists, plus the tree query's buffers on the way (peak growth
# measured by benchmarks/dbscan_memory.py: 13.2-13.9 bytes per entry at 10k-40k customers),
# and an index array per customer.
BYTES_PER_NEIGHBOUR = 13.0
BYTES_PER_ROW = 200.0
SAMPLE_ROWS = 2000


def neighbour_memory_mb(
    X, radius: float, params: Mapping[str, Any] | None = None, seed: int = 0
) -> tuple[float, float]:
    """(estimated MB of the neighbourhood lists, mean neighbours per customer).

    Neighbours within ``radius`` are counted for a seeded sample of at most
    ``SAMPLE_ROWS`` customers against all of them (a tree's count-only query holds no
    lists), and the mean is scaled to every customer.
    """
    import numpy as np

    params = dict(params or {})
    X = np.asarray(X, dtype=float)
    n = len(X)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    sample = X[rng.choice(n, size=min(SAMPLE_ROWS, n), replace=False)]
    metric = params.get("metric", "euclidean")
    p = params.get("p")
    if metric in ("euclidean", "l2", "minkowski") and (metric != "minkowski" or p in (None, 2)):
        from sklearn.neighbors import KDTree

        counts = KDTree(X).query_radius(sample, r=radius, count_only=True)
    else:
        from sklearn.neighbors import NearestNeighbors

        model = NearestNeighbors(
            radius=radius,
            metric=metric,
            p=2 if p is None else p,
            metric_params=params.get("metric_params"),
        ).fit(X)
        counts = np.diff(model.radius_neighbors_graph(sample, mode="connectivity").indptr)
    mean = float(np.mean(counts))
    return (mean * n * BYTES_PER_NEIGHBOUR + n * BYTES_PER_ROW) / 2**20, mean
