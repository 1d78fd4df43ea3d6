"""A run's stored ``config.yaml`` read as data, checked before rerun or promote use it.

Whoever can write the store can change it, so every ``_target_`` must be a scikit-learn
estimator, one of segexp's own classes or a target of the user's own conf folder, and no
value may be an interpolation (``${oc.env:SECRET}`` would copy the environment): docs/trust.md.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from sklearn.utils import all_estimators

from segexp.errors import ConfigError
from segexp.model.storage import user_targets

# segexp's own estimator classes (a stored config may name them; today's configs do not)
SEGEXP_TARGETS = frozenset(
    {
        "segexp.model.pipeline.Log1pColumns",
        "segexp.model.pipeline.OutlierClipper",
        "segexp.model.pipeline.ScaledKNNImputer",
    }
)
_SKLEARN_TARGET = re.compile(r"sklearn(\.[A-Za-z_]\w*)*\.[A-Za-z_]\w*")


@cache
def _sklearn_estimators() -> frozenset[type]:
    return frozenset(cls for _, cls in all_estimators())


def is_sklearn_estimator(target: str) -> bool:
    """``sklearn.<module>.<Name>`` naming one of scikit-learn's estimator classes (only
    ``sklearn`` modules are imported to tell)."""
    if not _SKLEARN_TARGET.fullmatch(target):
        return False
    module, _, name = target.rpartition(".")
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
    shipped = user_targets(Path(str(resources.files("segexp.conf"))))
    return target in shipped or is_sklearn_estimator(target)


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, key, value) of every leaf of a plain container."""
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        dotted = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}"
        dotted = dotted if path else str(key)
        if isinstance(value, dict | list):
            yield from _walk(value, dotted)
        else:
            yield dotted, key, value


def check_stored_config(cfg: DictConfig, where: str) -> DictConfig:
    """``cfg`` when every ``_target_`` is allowed and nothing is interpolated; else ConfigError
    naming ``where`` (e.g. ``run 1a2b...: config.yaml``) and the key."""
    user = user_targets()
    raw = OmegaConf.to_container(cfg, resolve=False)  # interpolations stay text: nothing runs
    for dotted, key, value in _walk(raw, ""):
        if isinstance(value, str) and "${" in value:
            raise ConfigError(
                f"{where}: key {dotted} holds an interpolation ({value}); segexp stores configs "
                "resolved, so it does not evaluate one from the store (it could read your "
                "environment); re-run with your own config instead"
            )
        if key == "_target_" and not target_allowed(value, user):
            raise ConfigError(
                f"{where}: key {dotted} names {value}, which segexp does not instantiate from a "
                "stored config; allowed: scikit-learn estimators, segexp's own classes and the "
                "_target_ of your own conf/algo or conf/scaler files (add one there if it is "
                "yours); nothing was run"
            )
    return cfg


def load_stored_config(path: Path, where: str) -> DictConfig:
    """A downloaded ``config.yaml``, checked (``check_stored_config``)."""
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # YAML or OmegaConf grammar error: a broken file
        raise ConfigError(
            f"{where} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        ) from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{where} is not a mapping of config keys")
    return check_stored_config(cfg, where)
