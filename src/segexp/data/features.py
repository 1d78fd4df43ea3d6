"""Which columns a job clusters on: a list, ``all_numeric``, or ``default`` (the option
``data.default_features`` names when the table has its columns, else ``all_numeric``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from hydra import initialize_config_module
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from segexp.data.load import CustomerTable
from segexp.errors import CONFIG_PATH, ConfigError, DataError

ALL_NUMERIC = "all_numeric"
DEFAULT = "default"
_LISTED = 12  # columns a message lists


@contextmanager
def _config_loader() -> Iterator[ConfigLoader]:
    """Hydra's config loader: the running app's, else one on segexp's configs."""
    hydra = GlobalHydra.instance()
    module = CONFIG_PATH.removeprefix("pkg://")
    started = hydra.is_initialized()
    with nullcontext() if started else initialize_config_module(module, version_base="1.3"):
        yield hydra.config_loader()


def config_option(group: str, name: str) -> dict[str, Any] | None:
    """An option file of a config group, found on Hydra's search path (the user's conf/
    first, then segexp's); None if there is none."""
    with _config_loader() as loader:
        for source in loader.get_sources():
            if source.is_config(f"{group}/{name}"):
                loaded = OmegaConf.to_container(source.load_config(f"{group}/{name}").config)
                assert isinstance(loaded, dict)  # an option file is a mapping
                return {str(k): v for k, v in loaded.items() if k != "defaults"}
    return None


def _available(table: CustomerTable) -> str:
    """The table's other columns with the role the schema gave each (and why)."""
    others = [str(c) for c in table.frame.columns if c not in {table.id_column, table.label_column}]
    if not others:
        kept = ", ".join(f"{c!r}" for c in (table.id_column, table.label_column) if c)
        return f"the table has no column besides {kept or 'its ids'}"
    more = f", ... ({len(others) - _LISTED} more)" if len(others) > _LISTED else ""
    roles = [table.schema.role(c) if table.schema else None for c in others[:_LISTED]]
    pairs = zip(others[:_LISTED], roles, strict=True)
    shown = [f"{r.column} ({r.role}: {r.reason})" if r else c for c, r in pairs]
    return "columns: " + ", ".join(shown) + more


def _all_numeric(table: CustomerTable) -> list[str]:
    if not table.numeric:
        raise DataError(
            f"{table.source}: features=all_numeric found no numeric column; "
            f"{_available(table)}; set data.numeric=[...] or features.columns=[...]"
        )
    return table.numeric


def resolve_features(listed: Any, choice: str, table: CustomerTable) -> tuple[str, list[str]]:
    """(the name runs use for the features, the table columns they are); ``listed`` is the
    composed ``features.columns``, ``choice`` the features option the job was composed with."""
    if listed == DEFAULT:
        option = table.default_features
        found = config_option("features", option) if option else None
        if option and found is None:
            with _config_loader() as loader:
                options = ", ".join(loader.get_group_options("features"))
            raise ConfigError(
                f"data.default_features: a features option ({options}); "
                f"got {option!r}, which no conf/features file defines"
            )
        columns = (found or {}).get("columns")
        if isinstance(columns, list) and all(c in table.frame.columns for c in columns):
            return str(option), [str(c) for c in columns]
        return ALL_NUMERIC, _all_numeric(table)
    if listed == ALL_NUMERIC:
        return (ALL_NUMERIC if choice in (DEFAULT, "features") else choice), _all_numeric(table)
    if not isinstance(listed, list):
        raise ConfigError(
            "features.columns: a list of column names (e.g. [age, spending_score]), "
            f"all_numeric or default; got {listed!r}"
        )
    if not listed:
        raise ConfigError("features.columns: list at least one column; got an empty list")
    columns = [table.column_named(str(c)) for c in listed]
    missing = [c for c in columns if c not in table.frame.columns]
    if missing and choice not in (DEFAULT, "features", "custom"):  # a named option's columns
        raise DataError(
            f"{table.source}: features={choice} needs column(s) {', '.join(missing)}, which "
            f"the table does not have; use features=all_numeric (its numeric columns: "
            f"{', '.join(table.numeric) or 'none'}) or features.columns=[...] "
            f"({_available(table)})"
        )
    return ("custom" if choice == DEFAULT else choice), columns
