"""The checks of a job's config that need scikit-learn or an engine: fitted on an empty array,
an estimator checks its own hyperparameters (the empty array's refusal means they passed)."""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.segexp_sweep.user_conf import user_conf_dir
from segexp.errors import ConfigError, first_line, shown, unknown_key_line
from segexp.model.evaluation import evaluation_settings
from segexp.model.pipeline import PreprocessOptions, build_scaler

_SKLEARN_MESSAGE = re.compile(
    r"^The '(?P<param>\w+)' parameter of (?P<owner>\w+) must be (?P<allowed>.*)\. "
    r"Got (?P<got>.*) instead\.$",
    re.S,
)
# three plain rows a scaler is fitted on: checks made after scikit-learn's parameter
# constraints (MinMaxScaler's range order) run too, and any refusal is the config's
_SCALER_ROWS = ((0.0, 1.0), (1.0, 0.0), (0.5, 0.5))


def check_estimators(cfg: DictConfig) -> None:
    """Preprocessing, evaluation, the algorithm and the scaler of a job."""
    PreprocessOptions.from_config(cfg.get("preprocess"))
    evaluation_settings(cfg)
    _check_estimator(
        cfg.algo, "algo", "sklearn.cluster.KMeans", lambda n: instantiate(n, _convert_="all")
    )
    if OmegaConf.is_dict(cfg.get("scaler")) and "_target_" in cfg.scaler:
        _check_estimator(
            cfg.scaler, "scaler", "sklearn.preprocessing.StandardScaler", build_scaler, _SCALER_ROWS
        )


def _check_estimator(
    algo: DictConfig,
    where: str,
    example: str,
    build: Callable[[DictConfig], Any],
    rows: Sequence[Sequence[float]] | None = None,
) -> None:
    """An estimator config checked by its class and scikit-learn: built with ``build``, then
    fitted on ``rows`` (any refusal is an error) or on an empty array (only a parameter
    error is)."""
    params = OmegaConf.to_container(algo, resolve=True)  # resolvable: checked before
    assert isinstance(params, dict)
    target = params.pop("_target_", None)
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"{where}._target_: a scikit-learn class path such as {example}; got {shown(target)}"
        )
    try:
        module, _, name = target.strip().rpartition(".")
        cls = getattr(importlib.import_module(module), name)
    except Exception as exc:
        folder = user_conf_dir()  # a class of the user's own: beside their conf/, or PYTHONPATH
        hint = (
            f"besides installed packages, modules are imported from {folder.parent} (the "
            "folder holding conf/): check the module's file name there and the class name, "
            "or set PYTHONPATH to the folder that holds the module"
            if folder is not None
            else "a module of your own is imported from the folder holding your conf/ (run "
            "from there) or from PYTHONPATH (e.g. PYTHONPATH=.)"
        )
        raise ConfigError(
            f"{where}._target_: an importable class path such as {example}; "
            f"got {shown(target)}, which cannot be imported ({first_line(exc)}); {hint}"
        ) from None
    if not inspect.isclass(cls):
        raise ConfigError(
            f"{where}._target_: a class path such as {example}; got {shown(target)}, "
            f"which is a {type(cls).__name__}, not a class"
        )
    owner = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__.startswith("sklearn."):
        owner = f"scikit-learn's {cls.__name__}"
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = None
    if accepted is not None and all(p.kind != p.VAR_KEYWORD for p in accepted.values()):
        for name in map(str, params):
            if not name.startswith("_") and name not in accepted:
                what = f"not a parameter of {owner}"
                raise ConfigError(unknown_key_line(f"{where}.{name}", list(accepted), where, what))
    try:
        estimator = build(algo)
    except Exception as exc:
        raise ConfigError(
            f"{where}: {owner} cannot be created from these values "
            f"({first_line(exc.__cause__ or exc)})"
        ) from None
    if getattr(estimator, "fit", None) is None:
        raise ConfigError(f"{where}._target_: an estimator with a fit method; got {target}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator.fit(np.empty((0, 2)) if rows is None else np.array(rows, dtype=float))
        except Exception as exc:  # without rows, the empty array's refusal: parameters passed
            # InvalidParameterError, recognised by name (its module is private)
            if any(t.__name__ == "InvalidParameterError" for t in type(exc).__mro__):
                raw = OmegaConf.to_container(algo, resolve=False)
                assert isinstance(raw, dict)
                raise ConfigError(_parameter_message(str(exc), raw, where, owner)) from None
            if rows is not None:
                raise ConfigError(f"{where}: {first_line(exc)} ({owner})") from None


def _parameter_message(message: str, raw: Mapping[Any, Any], where: str, owner: str) -> str:
    """scikit-learn's words for a parameter; ``k (algo.n_clusters)`` when it holds ``${k}``."""
    match = _SKLEARN_MESSAGE.match(message.strip())
    if match is None:
        return f"{where}: {first_line(ValueError(message))} ({owner})"
    value = raw.get(match["param"])
    refers = re.fullmatch(r"\$\{([\w.]+)\}", value) if isinstance(value, str) else None
    key = f"{where}.{match['param']}"
    key = f"{refers.group(1)} ({key})" if refers else key
    allowed = " ".join(match["allowed"].split())
    return f"{key}: must be {allowed}; got {match['got']} (scikit-learn's {match['owner']})"
