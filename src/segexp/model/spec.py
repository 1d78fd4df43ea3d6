"""What a job config asks for, named as params, run names and config keys show it (every
engine), and what each run records about its input (config, MLflow dataset)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from omegaconf import DictConfig, OmegaConf

from segexp.contract import TAG_PREFIX
from segexp.data import SAMPLE_SOURCE, TRANSACTIONS_SAMPLE_SOURCE, CustomerTable
from segexp.errors import DataError
from segexp.model.pipeline import algorithm_params, algorithm_uses, plain_config

log = logging.getLogger("segexp")

TAG_CONFIG_KEY = TAG_PREFIX + "config_key"
SCHEMA_FILE = "schema.json"  # every column's role, as the run saw the table


@dataclass
class JobSpec:
    """What a job config asks for, named the way params and run names show it."""

    algo: str
    scaler: str
    features: str
    columns: list[str]
    uses_k: bool
    k: int
    seed: int
    impute: str
    outliers: str
    hyperparams: dict[str, Any]
    target: str
    preprocess: dict[str, Any] = field(default_factory=dict)

    @property
    def preprocessing(self) -> str:
        """The preprocessing in a run name's words: 'log-clip', 'impute_median'; 'none'."""
        parts = ["log"] if self.preprocess.get("log1p") else []
        parts += [self.outliers] if self.outliers not in ("none", "None", "") else []
        parts += [f"impute_{self.impute}"] if self.impute not in ("none", "None", "") else []
        return "-".join(parts) or "none"

    @property
    def run_name(self) -> str:
        settings = [
            f"{name}{value}"
            for name, value in self.hyperparams.items()
            if isinstance(value, int | float | str) and not isinstance(value, bool)
        ]
        done = [self.preprocessing] if self.preprocessing != "none" else []
        parts = [self.algo, *([f"k{self.k}"] if self.uses_k else settings), self.scaler, *done]
        return "-".join(map(str, [*parts, self.features]))

    def check_customers(self, n_rows: int, source: str) -> None:
        """DataError when the algorithm takes k and the table has fewer customers than k."""
        if self.uses_k and n_rows < self.k:
            hint = "load more"
            if n_rows > 1:
                hint = f"lower k to at most {n_rows} or load more customers"
            plural = "s" * (n_rows != 1)
            raise DataError(f"{source}: {n_rows} customer{plural}, fewer than k={self.k}; {hint}")

    def params(self, data_source: str) -> dict[str, Any]:
        logs = self.preprocess.get("log1p")
        return {
            "algo": self.algo,
            "scaler": self.scaler,
            "features": self.features,
            "feature_columns": ",".join(self.columns),
            "seed": self.seed,
            "impute": self.impute,
            "outliers": self.outliers,
            "log1p": "all" if logs is True else ",".join(map(str, logs or [])) or "none",
            "preprocess": self.preprocessing,
            "data": data_source,
            **({"k": self.k} if self.uses_k else {}),
            **{f"algo.{name}": value for name, value in self.hyperparams.items()},
        }

    def config_key(self, fingerprint: str) -> str:
        """Hash of what determines the result; k is left out when the algorithm ignores it."""
        payload = {**asdict(self), "data": fingerprint}
        if not self.uses_k:
            payload.pop("k")
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


NAMED_GROUPS = ("algo", "scaler", "features")


def _choices(cfg: DictConfig, choices: dict[str, str] | None) -> dict[str, str]:
    """The config-group options the job was composed from, named as on the command line."""
    if choices is not None:
        return dict(choices)
    composed = OmegaConf.select(cfg, "hydra.runtime.choices")  # compose(return_hydra_config)
    if composed:
        return {str(k): str(v) for k, v in composed.items()}
    if GlobalHydra.instance().is_initialized():
        return _matching_options(cfg)
    with initialize_config_module("segexp.conf", version_base="1.3"):
        return _matching_options(cfg)


def _matching_options(cfg: DictConfig) -> dict[str, str]:
    """Without the hydra node (compose() in a notebook): per group, the first option in Hydra's
    sources (the user's, then segexp's) with the same ``_target_`` or columns, else 'custom'."""
    sources = GlobalHydra.instance().config_loader().get_sources()
    named = {}
    for group in NAMED_GROUPS:
        key = "columns" if group == "features" else "_target_"
        wanted = OmegaConf.to_container(cfg[group], resolve=False)
        assert isinstance(wanted, dict)  # algo, scaler and features are config groups
        same = (
            name
            for source in sources
            if source.is_group(group)
            for name in sorted(source.list(group, ObjectType.CONFIG))
            if _raw(source, group, name, key) == wanted.get(key)
        )
        named[group] = next(same, "custom")
    return named


def _raw(source: Any, group: str, name: str, key: str) -> Any:
    """``key`` of one option's file, interpolations left as written."""
    node = source.load_config(f"{group}/{name}").config
    raw = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    return raw.get(key) if isinstance(raw, dict) else None


def describe_job(cfg: DictConfig, choices: dict[str, str] | None = None) -> JobSpec:
    """Name the job's parts as the command line chose them; the config's values are checked
    by ``segexp.jobs.validation``, ``features.columns`` by ``resolve_features``."""
    named = _choices(cfg, choices)
    listed = cfg.features.columns
    columns = OmegaConf.to_container(listed, resolve=True) if OmegaConf.is_list(listed) else listed
    uses_k = algorithm_uses(cfg.algo, "k")
    k = cfg.get("k")
    preprocess = cfg.get("preprocess")
    return JobSpec(
        algo=named.get("algo", "algo"),
        scaler=named.get("scaler", "scaler"),
        features=named.get("features", "features"),
        columns=[str(c) for c in columns] if isinstance(columns, list) else [str(columns)],
        uses_k=uses_k,
        k=int(k) if isinstance(k, int) else 0,
        seed=int(cfg.seed),
        impute=str(cfg.preprocess.impute),
        outliers=str(cfg.preprocess.get("outliers", "none")),
        hyperparams=algorithm_params(cfg.algo),
        target=str(cfg.algo._target_),
        # every preprocess option (log1p, imputation, outliers, their settings): its identity
        preprocess={str(key): v for key, v in plain_config(preprocess).items()},
    )


_MLFLOW_TYPES = {"int": "long", "float": "double", "text": "string", "date": "datetime"}


def dataset_of(table: CustomerTable) -> dict[str, str]:
    """The run's input table as an MLflow dataset: named after the file, digest = the data
    fingerprint, source = the file (or the built-in sample), schema and size."""
    source = table.source
    is_file = source not in (SAMPLE_SOURCE, TRANSACTIONS_SAMPLE_SOURCE, "DataFrame")
    columns = table.schema.columns if table.schema is not None else ()
    colspec = [
        {"name": c.column, "type": _MLFLOW_TYPES.get(c.dtype, "string"), "required": False}
        for c in columns
    ]
    rows = len(table.frame)
    return {
        "name": Path(source).name if is_file else source,
        "digest": table.fingerprint,
        "source_type": "local" if is_file else "code",
        "source": json.dumps({"uri": str(Path(source).resolve())} if is_file else {"name": source}),
        "schema": json.dumps({"mlflow_colspec": colspec}),
        "profile": json.dumps({"num_rows": rows, "num_elements": rows * len(table.frame.columns)}),
    }


def show_schema(table: CustomerTable) -> None:
    """Print the table's column roles (a single run, or a sweep's first job)."""
    if table.schema is not None:
        log.info(table.schema.table(table.source))


def resolved_config(cfg: DictConfig) -> dict:
    """The job's config with interpolations resolved, without Hydra's own ``hydra`` node."""
    return {
        str(key): OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in cfg
        if key != "hydra"
    }
