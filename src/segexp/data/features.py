"""Which columns a job clusters on: a list of the file's columns, every numeric one, or the
data's default option.

``features.columns`` is a list of column names (the file's own headers or the
canonical names the data config maps them to), ``all_numeric`` (every numeric
column of the table's schema) or ``default``: the features option the data
config names in ``data.default_features`` when the table has its columns
(``income_spending`` for the Mall table, ``rfm`` for a transaction log), else
``all_numeric``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from segexp.data.load import CustomerTable
from segexp.errors import ConfigError, DataError

ALL_NUMERIC = "all_numeric"
DEFAULT = "default"
PACKAGE_FEATURES = Path(__file__).resolve().parents[1] / "conf" / "features"


def _option_folders() -> list[Path]:
    """Where features options are, in Hydra's order: the user's conf/features, segexp's."""
    from hydra_plugins.segexp_sweep.user_conf import user_conf_dir

    user = user_conf_dir()
    return ([user / "features"] if user is not None else []) + [PACKAGE_FEATURES]


def _option_file(option: str) -> Path | None:
    folders = _option_folders()
    return next((f / f"{option}.yaml" for f in folders if (f / f"{option}.yaml").is_file()), None)


def _options() -> list[str]:
    """The features options there are: segexp's and the user's own conf/features files."""
    return sorted({f.stem for folder in _option_folders() for f in folder.glob("*.yaml")})


def option_columns(option: str) -> list[str] | str | None:
    """The ``columns`` of a features option file (a list, or all_numeric); None if absent."""
    path = _option_file(option)
    if path is None:
        return None
    listed = (yaml.safe_load(path.read_text()) or {}).get("columns")
    if isinstance(listed, list):
        return [str(c) for c in listed]
    return str(listed) if isinstance(listed, str) else None


_LISTED = 12  # columns a message lists


def _available(table: CustomerTable) -> str:
    """The table's other columns with the role the schema gave each (and why)."""
    skip = {table.id_column, table.label_column}
    others = [str(c) for c in table.frame.columns if c not in skip]
    if not others:
        kept = ", ".join(f"{c!r}" for c in (table.id_column, table.label_column) if c)
        return f"the table has no column besides {kept or 'its ids'}"
    more = f", ... ({len(others) - _LISTED} more)" if len(others) > _LISTED else ""
    others = others[:_LISTED]
    if table.schema is None:
        return "columns: " + ", ".join(others) + more
    roles = (table.schema.role(c) for c in others)
    return (
        "columns: "
        + ", ".join(
            f"{r.column} ({r.role}: {r.reason})" if r is not None else c
            for c, r in zip(others, roles, strict=True)
        )
        + more
    )


def _all_numeric(table: CustomerTable) -> list[str]:
    columns = table.numeric
    if not columns:
        raise DataError(
            f"{table.source}: features=all_numeric found no numeric column; "
            f"{_available(table)}; set data.numeric=[...] or features.columns=[...]"
        )
    return columns


def resolve_features(listed: Any, choice: str, table: CustomerTable) -> tuple[str, list[str]]:
    """(the name runs use for the features, the table columns they are)."""
    if listed == DEFAULT:
        option = table.default_features
        if option and _option_file(option) is None:
            raise ConfigError(
                f"data.default_features: a features option ({', '.join(_options())}); "
                f"got {option!r}, which no conf/features file defines"
            )
        columns = option_columns(option) if option else None
        if isinstance(columns, list) and all(c in table.frame.columns for c in columns):
            return str(option), columns
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
    named_option = choice not in (DEFAULT, "features", "custom") and option_columns(choice) == [
        str(c) for c in listed
    ]
    if missing and named_option:
        numeric = ", ".join(table.numeric) or "none"
        raise DataError(
            f"{table.source}: features={choice} needs column(s) {', '.join(missing)}, which "
            f"the table does not have; use features=all_numeric (its numeric columns: "
            f"{numeric}) or features.columns=[...] ({_available(table)})"
        )
    return ("custom" if choice == DEFAULT else choice), columns
