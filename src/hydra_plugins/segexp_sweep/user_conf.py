"""Put the user's own config folder in front of segexp's packaged configs.

segexp's apps load their configs from the package (``pkg://segexp.conf``).
A project keeps its own groups beside its data: ``conf/algo/bisecting.yaml``,
``conf/data/my_table.yaml``. This search-path plugin puts that folder before
the packaged one, so its files add options to segexp's groups and replace
packaged files of the same name. The folder is ``$SEGEXP_CONF_DIR`` when set,
else ``./conf`` when it exists. Other Hydra apps are left alone. (Hydra's own
``--config-dir`` also works, but adds its folder behind the packaged configs:
it can add options, not replace them.)

The folder holding that ``conf/`` (the project folder) is put on ``sys.path`` too (at the
end: installed packages keep their names), so a ``_target_`` of the user's own config can
name a class of the project: ``_target_: myalgo.TrimmedKMeans`` with ``myalgo.py`` beside
``conf/``. The user's config files are trusted already (docs/trust.md); this trusts the
Python files beside them the same way.
"""

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


def import_project_folder(conf_dir: Path) -> None:
    """Make the modules beside the user's ``conf/`` importable (``_target_: myalgo.Class``)."""
    project = str(conf_dir.parent)
    if project not in sys.path:
        sys.path.append(project)


class SegexpUserConfSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(element.path == PACKAGED for element in search_path.get_path()):
            return  # not a segexp app
        folder = user_conf_dir()
        if folder is None:
            return
        import_project_folder(folder)
        search_path.prepend(
            provider="segexp-user", path=f"file://{folder}", anchor=SearchPathQuery(path=PACKAGED)
        )


VERBOSE_ENV = "SEGEXP_VERBOSE"
LOG_LEVEL_RESOLVER = "segexp.log_level"
_OFF_WORDS = ("", "0", "false", "no", "off", "none", "null")


def _switched_on(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _OFF_WORDS
    return bool(value)


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
