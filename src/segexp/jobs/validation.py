"""Configuration checked before any run or store is touched.

The keys and types of segexp's configs are declared once, as structured configs
(``segexp.conf.schema``): OmegaConf refuses a wrong type or an unknown key while
Hydra composes the config. What is left is checked here, each refusal one line
(``segexp.errors.omegaconf_line`` words OmegaConf's own)::

    <key>: <what is allowed>; got <value received>

``check_job_config(cfg)`` checks a composed job config (``conf/config.yaml``) and
``check_tool_config(name, cfg)`` a tool's (``conf/compare.yaml``, ...): the keys that
Hydra's ``+key=`` added or ``~key`` removed (Hydra adds and removes keys past the
schema; the config is merged onto its schema again, so OmegaConf says so), the bounds
and choices a type cannot say (the schema's field metadata), and the cross-field
checks: ``k`` against the algorithm, the engine's keys, the preprocess and evaluation
values (``segexp.model``).

Hyperparameters are checked by scikit-learn itself: the configured estimator is
instantiated (as ``segexp.model.pipeline`` does) and fitted on an empty array.
scikit-learn checks every parameter against its constraints at the start of
``fit``, before it looks at the data, and raises ``InvalidParameterError`` (a
``ValueError``) naming the parameter, what it allows and what it got; only that
error is turned into the one-line message (``algo.eps: must be a float in the
range (0.0, inf); got -1 (scikit-learn's DBSCAN)``). The empty array's own
refusal means the parameters passed.

``neighbour_memory_mb`` estimates what a density algorithm's neighbourhood lists
(DBSCAN) hold, for ``limits.max_neighbour_memory_mb`` (see ``segexp.jobs.job``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from segexp.conf.schema import SCHEMAS
from segexp.errors import (
    ConfigError,
    allowed_words,
    default_config,
    first_line,
    listed,
    omegaconf_line,
    shown,
    unknown_key_line,
)
from segexp.jobs.ranges import range_size

# ------------------------------------------------------------------ the schema


def check_schema(cfg: DictConfig, config_name: str, skip: tuple[str, ...] = ()) -> None:
    """The config against its structured config (``segexp.conf.schema``): the keys that
    Hydra's ``+key=`` added or ``~key`` removed (Hydra adds and removes keys past
    OmegaConf's struct checks), then each field's bounds and choices. A user's own
    ``conf/<config_name>.yaml`` without the schema in its defaults is merged onto it
    here, so OmegaConf refuses its wrong types and unknown keys the same way."""
    if not dataclasses.is_dataclass(OmegaConf.get_type(cfg)):
        try:  # registered when Hydra read segexp's packaged configs
            schema = ConfigStore.instance().load(f"{config_name}_schema.yaml").node
        except Exception:
            return
        own = {k: v for k, v in cfg.items() if k != "hydra"}
        try:
            merged = OmegaConf.merge(schema, own)
        except OmegaConfBaseException as exc:
            raise ConfigError(omegaconf_line(exc)) from None
        assert isinstance(merged, DictConfig)  # the schema is a mapping
        cfg = merged
    _check_node(cfg, "", skip)


def _check_node(node: DictConfig, where: str, skip: tuple[str, ...]) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    specs = dataclasses.fields(schema)
    for key in map(str, node):
        if not any(spec.name == key for spec in specs) and f"{where}{key}" != "hydra":
            raise ConfigError(unknown_key_line(f"{where}{key}", schema))
    for spec in specs:
        key = f"{where}{spec.name}"
        if spec.name not in node:  # removed, or MISSING in the schema and never set
            raise ConfigError(
                f"{key}: {allowed_words(schema, spec.name)}; got nothing "
                f"(the key was removed, e.g. by ~{key}, or its file does not set it)"
            )
        if key in skip or (not spec.metadata and OmegaConf.is_interpolation(node, spec.name)):
            continue  # mlflow.experiment: segexp-${data.name}, resolved where it is used
        try:
            value = node[spec.name]
        except Exception as exc:  # an interpolation that cannot be resolved
            raise ConfigError(f"{key}: cannot be resolved ({first_line(exc)})") from None
        if OmegaConf.is_dict(value):
            _check_node(value, key + ".", skip)
        elif spec.metadata and value is not None and _refused(value, spec.metadata):
            got = value.lower() if value in ("True", "False") else shown(value)
            raise ConfigError(f"{key}: {allowed_words(schema, spec.name)}; got {got}")


def _refused(value: Any, meta: Mapping[str, Any]) -> bool:
    """A value its field's metadata refuses. A text field takes no bare true/false, which
    OmegaConf turns into the texts 'True' and 'False'."""
    if "mapping" in meta:
        return True  # a mapping was checked as a section; anything else is refused
    if "choices" in meta:
        return value not in meta["choices"]
    if isinstance(value, str):
        if "text" in meta and (not value.strip() or value in ("True", "False")):
            return True
        return "pattern" in meta and re.fullmatch(meta["pattern"], value) is None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    return (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    )


# --------------------------------------------------------------- hyperparameters

_SKLEARN_MESSAGE = re.compile(
    r"^The '(?P<param>\w+)' parameter of (?P<owner>\w+) must be (?P<allowed>.*)\. "
    r"Got (?P<got>.*) instead\.$",
    re.S,
)


def _is_parameter_error(exc: BaseException) -> bool:
    """scikit-learn's InvalidParameterError, recognised by name (its module is private)."""
    return any(t.__name__ == "InvalidParameterError" for t in type(exc).__mro__)


def _import_hint() -> str:
    """Where segexp looks for a class of the user's own: beside their conf/, or PYTHONPATH."""
    from hydra_plugins.segexp_sweep.user_conf import user_conf_dir

    folder = user_conf_dir()
    if folder is not None:
        return (
            f"besides installed packages, modules are imported from {folder.parent} (the "
            "folder holding conf/): check the module's file name there and the class name, "
            "or set PYTHONPATH to the folder that holds the module"
        )
    return (
        "a module of your own is imported from the folder holding your conf/ (run from "
        "there) or from PYTHONPATH (e.g. PYTHONPATH=.)"
    )


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
    except Exception as exc:
        raise ConfigError(
            f"{where}._target_: an importable class path such as {example}; "
            f"got {shown(target)}, which cannot be imported ({first_line(exc)}); "
            f"{_import_hint()}"
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
    raise ConfigError(f"{key}: not a parameter of {owner}{hint}; available: {listed(available)}")


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


# the main config's groups segexp needs (``~mlflow`` removes one: refused with its options)
_GROUPS = ("data", "features", "preprocess", "scaler", "algo", "mlflow", "evaluation", "naming")


def main_config_keys() -> set[str]:
    """The main config's own keys and groups, as its schema declares them."""
    return {f.name for f in dataclasses.fields(SCHEMAS["config"])}


def check_config_complete(cfg: DictConfig) -> None:
    """The config groups segexp needs are there and every value resolves."""
    check_groups_present(cfg)
    check_resolvable(cfg)


def check_groups_present(cfg: DictConfig) -> None:
    """Every config group segexp needs was composed (``~mlflow`` removes one); ConfigError
    with its options. (A removed key of the main config is the schema's to say.)"""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None)
    for group in _GROUPS:
        # the schema fills a removed group with its defaults: Hydra's choices say it
        if group not in cfg or (choices is not None and choices.get(group) is None):
            folders = _group_folders(group)
            options = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
            raise ConfigError(
                f"{group}: segexp needs this config group, and the command removed it "
                f"(~{group}); keep it or choose an option: {listed(options)}"
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
        if removed and removed.group(1) in main_config_keys():
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

    The schema's checks come before scikit-learn is imported, so most mistakes answer
    at once; the groups and the algorithm's hyperparameters after.
    """
    check_groups_present(cfg)
    if "algo" not in cfg or not OmegaConf.is_dict(cfg.algo):
        raise ConfigError("algo: an algorithm option (algo=kmeans, algo=dbscan, ...); got none")
    takes_k = _refers_to(cfg.algo, "k")
    check_schema(cfg, "config", skip=() if takes_k else ("k",))
    k = cfg.get("k")
    if not takes_k and (not isinstance(k, int) or k < 1):  # DBSCAN: k only names the job
        raise ConfigError(f"k: an integer >= 1; got {shown(k)}")
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


# Spark's master URLs: yarn, or the local / spark:// / k8s:// forms
SPARK_MASTER = re.compile(
    r"local|local\[(\d+|\*)(,\d+)?\]|local-cluster\[\d+,\d+,\d+\]"
    r"|spark://[\w.-]+(:\d+)?(,[\w.-]+(:\d+)?)*|k8s://\S+|yarn"
)
# engine=spark's keys a type cannot say: (what is allowed, the test)
_SPARK_VALUES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "master": (
        "a Spark master URL: local, local[*], local[2], local[2,3], spark://host:7077, "
        "k8s://https://host:443 or yarn",
        lambda v: isinstance(v, str) and SPARK_MASTER.fullmatch(v.strip()) is not None,
    ),
    "driver_memory": (
        "a JVM memory size such as 2g or 512m",
        lambda v: isinstance(v, str) and re.fullmatch(r"\d+[kmgt]?", v.strip().lower()) is not None,
    ),
    "sample_rows": ("an integer >= 2", lambda v: type(v) is int and v >= 2),
    "shuffle_partitions": ("an integer >= 1", lambda v: type(v) is int and v >= 1),
}


def check_engine(cfg: DictConfig) -> None:
    """``engine.*``: each engine takes its own keys (``segexp.engines.catalog``), so the
    group stays open in the schema; with engine=spark, an algorithm and scaler Spark has."""
    from segexp.engines.catalog import (
        ENGINE_KEYS,
        SPARK,
        SPARK_ALGO_NAMES,
        SPARK_ALGORITHMS,
        SPARK_SCALER_NAMES,
        SPARK_SCALERS,
    )

    if "engine" not in cfg or not OmegaConf.is_dict(cfg.engine):
        return  # a config of its own without the group: engine=sklearn
    name = cfg.engine.get("name")
    if name not in ENGINE_KEYS:
        raise ConfigError(
            f"engine.name: one of {', '.join(map(repr, ENGINE_KEYS))}; got {shown(name)}"
        )
    for key in cfg.engine:
        if str(key) not in ENGINE_KEYS[name]:
            near = difflib.get_close_matches(str(key), ENGINE_KEYS[name], n=1)
            hint = f" (did you mean engine.{near[0]}?)" if near else ""
            raise ConfigError(
                f"engine.{key}: no such config key{hint}; available under engine: "
                f"{listed(ENGINE_KEYS[name])}"
            )
    if name != SPARK:
        return
    for key, (allowed, test) in _SPARK_VALUES.items():
        if not test(cfg.engine.get(key)):
            raise ConfigError(f"engine.{key}: {allowed}; got {shown(cfg.engine.get(key))}")
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
    """A tool's config (``conf/<config_name>.yaml``) against its schema; ConfigError."""
    check_schema(cfg, config_name)
    if "data" in cfg:  # predict, report, rerun compose no data: their run names the data
        check_resolvable(cfg)  # (and mlflow.experiment, segexp-${data.name}, is not used)


# ------------------------------------------------------------------ sweep limits


def max_jobs(cfg: DictConfig | None, default: int = 1000) -> int:
    limit = OmegaConf.select(cfg, "limits.max_jobs") if cfg is not None else None
    if limit is None:
        return default
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"limits.max_jobs: an integer >= 1; got {shown(limit)}")
    return limit


# Hydra's parser lists a sweep of this many values quickly; above it, the count is
# checked against the config's limits.max_jobs before Hydra (the user's conf/ included)
QUICK_SWEEP_JOBS = 1000


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
    limit = count
    if count > QUICK_SWEEP_JOBS:  # the sweeper counts again; this spares Hydra's parser
        limit = max_jobs(default_config(config_name, [], multirun=True), QUICK_SWEEP_JOBS)
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
