"""Config checks before any run or store is touched, each refusal one line ``<key>: <allowed>;
got <value>``. Light: ``segexp.__main__`` imports it to check a command line before Hydra."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import Container, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydra_plugins.segexp_sweep.user_conf import user_conf_dir
from segexp.conf.schema import SCHEMAS, value
from segexp.engines.catalog import (
    ENGINE_NAMES,
    SPARK,
    SPARK_ALGO_NAMES,
    SPARK_ALGORITHMS,
    SPARK_SCALER_NAMES,
    SPARK_SCALERS,
)
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

# the main config's groups segexp needs (``~mlflow`` removes one: refused with its options)
_GROUPS = ("data", "features", "preprocess", "scaler", "algo", "mlflow", "evaluation", "naming")


def check_schema(cfg: DictConfig, config_name: str, skip: tuple[str, ...] = ()) -> None:
    """Keys that ``+key=``/``~key`` added or removed past OmegaConf, then each field's bounds
    and choices. A user's own config without the schema in its defaults is merged onto it."""
    if not dataclasses.is_dataclass(OmegaConf.get_type(cfg)):
        if config_name not in SCHEMAS:
            return
        try:
            plain = {k: v for k, v in cfg.items() if k != "hydra"}
            merged = OmegaConf.merge(OmegaConf.structured(SCHEMAS[config_name]), plain)
        except OmegaConfBaseException as exc:
            raise ConfigError(omegaconf_line(exc)) from None
        assert isinstance(merged, DictConfig)
        cfg = merged
    _check_node(cfg, "", skip)


def _check_node(node: DictConfig, where: str, skip: tuple[str, ...]) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    specs = {spec.name: spec for spec in dataclasses.fields(schema)}
    for key in map(str, node):
        if key not in specs and f"{where}{key}" != "hydra":
            raise ConfigError(unknown_key_line(f"{where}{key}", list(specs)))
    for name, spec in specs.items():
        key = f"{where}{name}"
        if name not in node:  # removed, or MISSING in the schema and never set
            raise ConfigError(
                f"{key}: {allowed_words(schema, name)}; got nothing "
                f"(the key was removed, e.g. by ~{key}, or its file does not set it)"
            )
        if key in skip or (not spec.metadata and OmegaConf.is_interpolation(node, name)):
            continue  # mlflow.experiment: segexp-${data.name}, resolved where it is used
        try:
            value = node[name]
        except Exception as exc:  # an interpolation that cannot be resolved
            raise ConfigError(f"{key}: cannot be resolved ({first_line(exc)})") from None
        if OmegaConf.is_dict(value):
            _check_node(value, key + ".", skip)
        elif spec.metadata and value is not None and _refused(value, spec.metadata):
            got = value.lower() if value in ("True", "False") else shown(value)
            raise ConfigError(f"{key}: {allowed_words(schema, name)}; got {got}")


def _refused(value: Any, meta: Mapping[str, Any]) -> bool:
    """A value its field's metadata refuses (a text takes no bare true/false, OmegaConf's
    'True' and 'False')."""
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
    low, high = meta.get("low", -math.inf), meta.get("high", math.inf)
    above = meta.get("above", -math.inf)
    return not (math.isfinite(value) and low <= value <= high and value > above)


def check_config_complete(cfg: DictConfig) -> None:
    """Every config group segexp needs was composed (else ConfigError with its options) and
    every value resolves."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None)
    running = HydraConfig.get() if HydraConfig.initialized() else None
    # a task's config has no hydra node: segexp's running app has the choices (a tool such as
    # segexp-rerun running a stored config is another app, with other groups)
    if choices is None and running is not None and running.job.config_name == "config":
        choices = running.runtime.choices
    for group in _GROUPS:
        # the schema fills a removed group with its defaults: Hydra's choices say it
        if group in cfg and (choices is None or choices.get(group) is not None):
            continue
        options = group_options(group)
        raise ConfigError(
            f"{group}: segexp needs this config group, and the command removed it "
            f"(~{group}); keep it or choose an option: {listed(options)}"
        )
    check_resolvable(cfg)


def check_resolvable(cfg: DictConfig) -> None:
    """Every value resolves (``${oc.env:VAR}`` of an unset variable, ``${key}`` of a missing
    key); ConfigError naming the key, what it holds and what to do."""
    try:
        for key in cfg:
            value = cfg[key] if key != "hydra" else None
            if isinstance(value, Container):  # resolved in place: no copy of the config
                OmegaConf.to_container(value, resolve=True)
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
        if removed and removed.group(1) in {f.name for f in dataclasses.fields(SCHEMAS["config"])}:
            name = removed.group(1)
            raise ConfigError(
                f"{name}: the command removed it (~{name}), and {key} refers to it "
                f"({text}); keep {name}"
            ) from None
        var = env.group(1) if env else ""
        hint = f"set {var}, give a default (${{oc.env:{var},<default>}})" if env else ""
        raise ConfigError(
            f"{key}: {text} cannot be resolved ({why}); "
            f"{hint or 'refer to a key that exists,'} or set {key}=<value>"
        ) from None


def check_job_config(cfg: DictConfig) -> None:
    """Every check of a job's config that needs no data; ConfigError on the first problem.
    The schema answers before scikit-learn is imported."""
    check_config_complete(cfg)
    if "algo" not in cfg or not OmegaConf.is_dict(cfg.algo):
        raise ConfigError("algo: an algorithm option (algo=kmeans, algo=dbscan, ...); got none")
    raw = OmegaConf.to_container(cfg.algo, resolve=False)
    assert isinstance(raw, dict)
    takes_k = any(isinstance(v, str) and "${k}" in v for v in raw.values())
    check_schema(cfg, "config", skip=() if takes_k else ("k",))
    k = cfg.get("k")
    if not takes_k and (not isinstance(k, int) or k < 1):  # DBSCAN: k only names the job
        raise ConfigError(f"k: an integer >= 1; got {shown(k)}")
    # scikit-learn (about 1 s) loads only now: segexp.__main__ imports this module
    from segexp.jobs.estimators import check_estimators

    check_estimators(cfg)
    check_engine(cfg)


def check_tool_config(config_name: str, cfg: DictConfig) -> None:
    """A tool's config (``conf/<config_name>.yaml``) against its schema; ConfigError."""
    check_schema(cfg, config_name)
    if "data" in cfg:  # predict, report, rerun compose no data: their run names the data
        check_resolvable(cfg)


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


def group_options(group: str) -> list[str]:
    """The options of one of segexp's config groups, packaged and the user's own."""
    folders = [Path(__file__).parents[1] / "conf", *filter(None, [user_conf_dir()])]
    return sorted({p.stem for folder in folders for p in (folder / group).glob("*.yaml")})


def check_command_before_hydra(args: Sequence[str], config_name: str = "config") -> None:
    """What the command line alone shows wrong, before Hydra composes: a list of a config
    group's options (Hydra would merge the files into one job); a basic sweep larger than
    ``limits.max_jobs`` (Hydra's parser takes about 10 s to list ``k=1..100000``)."""
    for arg in args:
        group, _, value = arg.partition("=")
        if group in _GROUPS and value.startswith("["):
            names, options = [n.strip() for n in value.strip("[]").split(",")], group_options(group)
            hints = [f"to fit on these columns: features.columns={value}"] * (group == "features")
            if set(names) <= set(options):
                sweep = f"-m {group}={','.join(names)} (segexp.sweep: {group}={tuple(names)!r})"
                hints.insert(0, f"sweep them with {sweep}")
            raise ConfigError(
                f"{group}: one option per job ({listed(options)}); got a list, {arg}"
                + "".join(f"; {hint}" for hint in hints)
            )
    other_sweeper = any(a.startswith(("hydra/sweeper=", "hydra.sweeper.")) for a in args)
    if other_sweeper or not {"-m", "--multirun"} & set(args):
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
    """Jobs of a basic sweep as its command line says them, without Hydra's parser: exact
    for plain lists and ranges, a lower bound otherwise (``range(1,9)`` counts as one)."""
    total = 1
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        if key.startswith(("hydra.", "hydra/", "~")) or not _PLAIN_VALUE.match(value):
            continue
        total *= max(1, sum(range_size(item) for item in value.split(",")))
    return total


# ------------------------------------------------------------------ engines


def _option(cfg: DictConfig, group: str) -> str:
    """The option of a config group the job was composed from (algo=gmm), else its class."""
    chosen = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}")
    if chosen is None and HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get(group)
    if chosen is None:
        target = OmegaConf.select(cfg, f"{group}._target_", default="") or ""
        chosen = str(target).rpartition(".")[2] or group
    return str(chosen)


# Spark's master URLs: yarn, or the local / spark:// / k8s:// forms
_SPARK_MASTER = (
    r"\s*(local|local\[(\d+|\*)(,\d+)?\]|local-cluster\[\d+,\d+,\d+\]"
    r"|spark://[\w.-]+(:\d+)?(,[\w.-]+(:\d+)?)*|k8s://\S+|yarn)\s*"
)


@dataclass
class SklearnEngineConf:
    """engine=sklearn's keys (conf/engine/sklearn.yaml)."""

    name: str = value(choices=ENGINE_NAMES)


@dataclass
class SparkEngineConf(SklearnEngineConf):
    """engine=spark's keys (conf/engine/spark.yaml), checked as the schema's fields are."""

    master: str = value(
        text="a Spark master URL: local, local[*], local[2], local[2,3], spark://host:7077, "
        "k8s://https://host:443 or yarn",
        pattern=_SPARK_MASTER,
    )
    driver_memory: str = value(
        text="a JVM memory size such as 2g or 512m", pattern=r"\s*\d+[kmgtKMGT]?\s*"
    )
    sample_rows: int = value(low=2)
    shuffle_partitions: int = value(low=1)


def check_engine(cfg: DictConfig) -> None:
    """``engine.*``: each engine's own keys (its ``*EngineConf``); with engine=spark,
    an algorithm and scaler Spark has."""
    if "engine" not in cfg or not OmegaConf.is_dict(cfg.engine):
        return  # a config of its own without the group: engine=sklearn
    name = cfg.engine.get("name")
    if name not in ENGINE_NAMES:  # the name picks the keys: an unknown one is said first
        raise ConfigError(
            f"engine.name: {allowed_words(SklearnEngineConf, 'name')}; got {shown(name)}"
        )
    schema = SparkEngineConf if name == SPARK else SklearnEngineConf
    try:  # the schema leaves engine open: each engine's keys are checked here
        engine = OmegaConf.merge({"engine": OmegaConf.structured(schema)}, {"engine": cfg.engine})
    except OmegaConfBaseException as exc:
        raise ConfigError(omegaconf_line(exc)) from None
    _check_node(OmegaConf.select(engine, "engine"), "engine.", ())
    if name != SPARK:
        return
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
