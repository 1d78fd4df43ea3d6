"""A run's stored ``config.yaml`` read as data: checked before anything is resolved or built.

Whoever can write the tracking store can change a run's ``config.yaml``.
``segexp-rerun`` builds the estimators that config names (``hydra.utils.instantiate``
on ``algo`` and ``scaler``), and ``segexp-promote`` reads values from it, so
before either uses it:

- every ``_target_`` anywhere in it (nested in a hyperparameter too) must be a
  scikit-learn estimator, one of segexp's own estimator classes, or a target
  named by the ``algo``/``scaler`` configs of the user's own folder
  (``$SEGEXP_CONF_DIR`` or ``./conf``: the user's code);
- it holds no interpolation (``${...}``): segexp stores configs resolved, and a
  resolver such as ``${oc.env:SECRET}`` would copy the user's environment into
  the re-run or the registered model.

Anything else is a ``ConfigError`` (exit 2) naming the key and what it holds;
nothing has been instantiated at that point. The user's own configs (the
command line, their conf folder) are not checked: their code is theirs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segexp.errors import ConfigError
from segexp.model.storage import user_targets

TARGET_KEY = "_target_"
# segexp's own estimator classes (a stored config may name them; today's configs do not)
SEGEXP_TARGETS = frozenset(
    {
        "segexp.model.pipeline.Log1pColumns",
        "segexp.model.pipeline.OutlierClipper",
        "segexp.model.pipeline.ScaledKNNImputer",
    }
)


@lru_cache(maxsize=1)
def _sklearn_estimators() -> frozenset[type]:
    from sklearn.utils import all_estimators

    return frozenset(cls for _, cls in all_estimators())


def packaged_targets() -> set[str]:
    """The targets of segexp's shipped algo and scaler configs."""
    return user_targets(Path(str(resources.files("segexp.conf"))))


def is_sklearn_estimator(target: str) -> bool:
    """``sklearn.<module>.<Name>`` that resolves to one of scikit-learn's estimator classes.

    Only ``sklearn.`` modules are imported to tell (the installed scikit-learn is trusted).
    """
    module, _, name = target.rpartition(".")
    if not (module == "sklearn" or module.startswith("sklearn.")) or not name.isidentifier():
        return False
    if not all(part.isidentifier() for part in module.split(".")):
        return False
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return False
    return isinstance(found, type) and found in _sklearn_estimators()


def target_allowed(target: Any, user: set[str] | None = None) -> bool:
    if not isinstance(target, str):
        return False
    if target in SEGEXP_TARGETS or target in (user if user is not None else user_targets()):
        return True
    return target in packaged_targets() or is_sklearn_estimator(target)


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, key, value) of every leaf of a plain container."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(node, list):
            dotted = f"{path}[{key}]"
        else:
            dotted = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict | list):
            yield from _walk(value, dotted)
        else:
            yield dotted, key, value


def check_stored_config(cfg: DictConfig, where: str) -> DictConfig:
    """``cfg`` when every ``_target_`` is allowed and nothing is interpolated; else ConfigError.

    ``where`` names the file for the message, e.g. ``run 1a2b...: config.yaml``.
    """
    user = user_targets()
    raw = OmegaConf.to_container(cfg, resolve=False)  # interpolations stay text: nothing runs
    for dotted, key, value in _walk(raw, ""):
        if isinstance(value, str) and "${" in value:
            raise ConfigError(
                f"{where}: key {dotted} holds an interpolation ({value}); segexp stores configs "
                "resolved, so it does not evaluate one from the store (it could read your "
                "environment); re-run with your own config instead"
            )
        if key == TARGET_KEY and not target_allowed(value, user):
            raise ConfigError(
                f"{where}: key {dotted} names {value}, which segexp does not instantiate from a "
                "stored config; allowed: scikit-learn estimators, segexp's own classes and the "
                "_target_ of your own conf/algo or conf/scaler files (add one there if it is "
                "yours); nothing was run"
            )
    return cfg


def load_stored_config(path: Path, where: str) -> DictConfig:
    """A downloaded ``config.yaml``, checked (see the module docstring)."""
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # YAML or OmegaConf grammar error: a broken file
        raise ConfigError(
            f"{where} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{where} is not a mapping of config keys")
    return check_stored_config(cfg, where)
