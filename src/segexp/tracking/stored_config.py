"""A run's stored ``config.yaml`` read as data and checked: whoever can write the store can
change it, so only known ``_target_``s and no interpolations (docs/trust.md)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from itertools import takewhile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from sklearn.utils import all_estimators

from segexp.errors import ConfigError
from segexp.model.storage import user_targets

# segexp's own estimator classes a config may name (every other shipped target is scikit-learn's;
# tests/tools/test_trust.py checks that each shipped _target_ is allowed)
SEGEXP_TARGETS = frozenset(
    {
        "segexp.model.mixed.KPrototypesClusterer",
        "segexp.model.pipeline.Log1pColumns",
        "segexp.model.pipeline.OutlierClipper",
        "segexp.model.pipeline.ScaledKNNImputer",
    }
)


@cache
def _sklearn_targets() -> frozenset[str]:
    """Each scikit-learn estimator class by its module and by its public package (the module's
    parts before the first private one): ``sklearn.cluster._kmeans.KMeans``
    and ``sklearn.cluster.KMeans``."""
    names = set()
    for _, cls in all_estimators():
        public = takewhile(lambda part: not part.startswith("_"), cls.__module__.split("."))
        names |= {f"{cls.__module__}.{cls.__name__}", f"{'.'.join(public)}.{cls.__name__}"}
    return frozenset(names)


def target_allowed(target: Any, user: set[str] | None = None) -> bool:
    """segexp's own classes, scikit-learn's estimators and the user's own conf's targets."""
    mine = user if user is not None else user_targets()
    return isinstance(target, str) and (
        target in SEGEXP_TARGETS or target in mine or target in _sklearn_targets()
    )


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, key, value) of every leaf of a plain container."""
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        dotted = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}".lstrip(".")
        if isinstance(value, dict | list):
            yield from _walk(value, dotted)
        else:
            yield dotted, key, value


def check_stored_config(cfg: DictConfig, where: str) -> DictConfig:
    """``cfg`` when every ``_target_`` is allowed and nothing is interpolated; else ConfigError
    naming ``where`` (e.g. ``run 1a2b...: config.yaml``) and the key."""
    user = user_targets()
    raw = OmegaConf.to_container(cfg, resolve=False)  # interpolations stay text: nothing runs
    for dotted, key, value in _walk(raw):
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
