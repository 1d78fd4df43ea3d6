"""Hydra search-path plugin: the user's ``conf/`` (``$SEGEXP_CONF_DIR``, else ``./conf``)
in front of segexp's packaged configs, and the folder holding it on ``sys.path`` (at the end)
for a ``_target_`` of the project's own (README "Your own configs", docs/trust.md)."""

import os
import sys
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from segexp.conf.schema import register as register_schemas

ENV_VAR = "SEGEXP_CONF_DIR"
PACKAGED = "pkg://segexp.conf"


def user_conf_dir() -> Path | None:
    """The user's config folder, or None when there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    local = Path.cwd() / "conf"
    return local.resolve() if local.is_dir() else None


class SegexpUserConfSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(element.path == PACKAGED for element in search_path.get_path()):
            return  # not a segexp app
        folder = user_conf_dir()
        if folder is None:
            return
        if str(folder.parent) not in sys.path:  # _target_: myalgo.Class beside conf/
            sys.path.append(str(folder.parent))
        search_path.prepend(
            provider="segexp-user", path=f"file://{folder}", anchor=SearchPathQuery(path=PACKAGED)
        )


VERBOSE_ENV = "SEGEXP_VERBOSE"
LOG_LEVEL_RESOLVER = "segexp.log_level"
_OFF_WORDS = ("", "0", "false", "no", "off", "none", "null")


def _switched_on(value: object) -> bool:
    return value.strip().lower() not in _OFF_WORDS if isinstance(value, str) else bool(value)


def log_level(verbose: object = False) -> str:
    """Level of Hydra's own log lines in segexp (conf/hydra/hydra_logging/segexp.yaml):
    INFO with ``verbose=true`` or ``SEGEXP_VERBOSE=1``, else WARNING (no launch lines)."""
    on = _switched_on(verbose) or _switched_on(os.environ.get(VERBOSE_ENV, ""))
    return "INFO" if on else "WARNING"


# Registered where Hydra loads its plugins, before any segexp config is composed (from the
# package or from its folder: initialize_config_dir imports no segexp.conf).
if not OmegaConf.has_resolver(LOG_LEVEL_RESOLVER):
    OmegaConf.register_new_resolver(LOG_LEVEL_RESOLVER, log_level)
register_schemas()
