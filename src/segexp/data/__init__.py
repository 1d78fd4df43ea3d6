"""Tables in: read a customer table or a transaction log, check it, name its columns.

``load_customers(cfg.data)`` is the one entry: it picks the reader by the
data's ``kind`` (``customers``: :mod:`segexp.data.load`; ``transactions``: the
log is read by the same reader and turned into one row per customer by
:mod:`segexp.data.rfm`), or generates a built-in sample (:mod:`segexp.data.samples`)
when no ``path`` is set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from segexp.data.load import (
    CustomerTable,
    canonical_headers,
    load_customer_table,
    validate_feature_table,
)
from segexp.data.read import read_table, read_table_file
from segexp.data.rfm import customers_from_transactions
from segexp.data.samples import generate_mall_sample, generate_transactions
from segexp.errors import ConfigError, DataError

__all__ = ["CustomerTable", "load_customers", "read_table_file", "validate_feature_table"]

SAMPLE_SOURCE = "built-in sample"
TRANSACTIONS_SAMPLE_SOURCE = "built-in transaction sample"
KINDS = ("auto", "customers", "transactions")
TRANSACTIONS_CONFIG = (
    Path(__file__).resolve().parents[1] / "conf" / "data" / "transactions_sample.yaml"
)
# what a transaction log's data config takes from the config it was read with: how the
# file is read, and the RFM rules (every data option has them, so hints name keys that exist)
_READING_KEYS = (
    "rfm",
    "path",
    "source_name",
    "delimiter",
    "encoding",
    "quotechar",
    "format",
    "decimal",
    "missing_values",
)


def read_source(
    data_cfg: Mapping[str, Any], kind: str
) -> tuple[pd.DataFrame, str, np.ndarray | None]:
    """The raw table (file or built-in sample), its source name and its file row numbers."""
    path = data_cfg.get("path")
    if path in (None, ""):
        sample_cfg = dict(data_cfg.get("sample") or {})
        if kind == "transactions":
            frame = generate_transactions(
                n_customers=int(sample_cfg.get("n_customers", 300)),
                seed=int(sample_cfg.get("seed", 7)),
            )
            return frame, TRANSACTIONS_SAMPLE_SOURCE, None
        frame = generate_mall_sample(
            n_customers=int(sample_cfg.get("n_customers", 200)),
            seed=int(sample_cfg.get("seed", 7)),
        )
        return frame, SAMPLE_SOURCE, None
    # source_name: what runs call the data instead of its path (segexp.run/sweep on a DataFrame)
    source = str(data_cfg.get("source_name") or Path(str(path)).expanduser())
    frame, file_rows = read_table(path, data_cfg)
    what = "transaction" if kind == "transactions" else "customer"
    if frame.empty:
        raise DataError(
            f"{source}: the file has a header ({', '.join(map(str, frame.columns))}) but no "
            f"{what} rows; add rows below the header"
        )
    return frame, source, file_rows


_LOADED: dict[str, CustomerTable] = {}  # jobs of one sweep in one process share the table
_LOADED_MAX = 4


def _load_key(data_cfg: Mapping[str, Any]) -> str | None:
    """The data config plus the file's identity and modification time; None: do not cache."""
    try:
        container = (
            OmegaConf.to_container(data_cfg, resolve=True)
            if OmegaConf.is_config(data_cfg)
            else dict(data_cfg)
        )
        key = json.dumps(container, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None
    assert isinstance(container, dict)  # data_cfg is a mapping, so is its container
    path = container.get("path")
    if path:
        try:
            stat = Path(str(path)).expanduser().stat()
        except OSError:
            return None  # reading it will raise the user-facing error
        key += f"|{Path(str(path)).expanduser().resolve()}|{stat.st_mtime_ns}|{stat.st_size}"
    return key


def load_customers(data_cfg: Mapping[str, Any]) -> CustomerTable:
    """Load the configured data as one row per customer, checked, with canonical names.

    ``kind: customers`` (default) reads a customer table; ``kind: transactions``
    reads a transaction log and builds recency/frequency/monetary features
    (see :mod:`segexp.data.rfm`), whose rule counts land in ``CustomerTable.notes``.
    The table is kept for the next job of a sweep with the same data config and an
    unchanged file; callers copy rows before changing them.
    """
    key = _load_key(data_cfg)
    if key is not None and key in _LOADED:
        return _LOADED[key]
    table = _load_uncached(data_cfg)
    if key is not None:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = table
    return table


def transaction_defaults() -> dict[str, Any]:
    """The packaged transaction-log data config (aliases, RFM rules, default features)."""
    return copy.deepcopy(_packaged_transaction_config())


@lru_cache(maxsize=1)
def _packaged_transaction_config() -> dict[str, Any]:
    loaded = OmegaConf.to_container(OmegaConf.load(TRANSACTIONS_CONFIG), resolve=True)
    assert isinstance(loaded, dict)  # the packaged file is a mapping
    return {str(k): v for k, v in loaded.items()}


def looks_like_transactions(columns: list[str], source: str) -> bool:
    """A customer id that repeats is no customer table: a log has a customer id, an invoice
    id, a date, and quantity + unit price or an amount (headers per the packaged aliases)."""
    aliases = transaction_defaults()["aliases"]
    found = set(canonical_headers(columns, aliases, source).values())
    needed = {"customer_id", "invoice_id", "invoice_date"}
    return needed <= found and ({"quantity", "unit_price"} <= found or "amount" in found)


def _load_uncached(data_cfg: Mapping[str, Any]) -> CustomerTable:
    kind = str(data_cfg.get("kind") or "customers")
    if kind not in KINDS:
        raise ConfigError(f"data.kind: allowed values are {', '.join(KINDS)}; got '{kind}'")
    frame, source, file_rows = read_source(data_cfg, "customers" if kind == "auto" else kind)
    columns = [str(c) for c in frame.columns]
    if kind == "auto" and data_cfg.get("path") and looks_like_transactions(columns, source):
        kind = "transactions"
        log_cfg = transaction_defaults()
        log_cfg.update({k: data_cfg[k] for k in _READING_KEYS if data_cfg.get(k) is not None})
        data_cfg = log_cfg
    aliases = dict(data_cfg.get("aliases") or {})
    renames = canonical_headers(columns, aliases, source)
    if kind != "transactions" and 2 * len(renames) < len(aliases):
        renames = {}  # not a table of this vocabulary: its own headers are the names
    frame = frame.rename(columns=renames)
    if kind == "transactions":
        return customers_from_transactions(frame, data_cfg, source, file_rows)
    headers = {canonical: header for header, canonical in renames.items()}
    return load_customer_table(frame, data_cfg, source, file_rows, headers)
