"""Tables in: ``load_customers(cfg.data)`` reads a customer table, a transaction log (one row
per customer, :mod:`segexp.data.rfm`) or a built-in sample, checks it and names its columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segexp.data.features import config_option
from segexp.data.load import (
    CustomerTable,
    canonical_headers,
    load_customer_table,
    validate_feature_table,
)
from segexp.data.read import read_table, read_table_file
from segexp.data.rfm import customers_from_transactions
from segexp.data.samples import generate_mall_sample, generate_transactions
from segexp.errors import DataError

__all__ = ["CustomerTable", "load_customers", "read_table_file", "validate_feature_table"]

SAMPLE_SOURCE = "built-in sample"
TRANSACTIONS_SAMPLE_SOURCE = "built-in transaction sample"
# what a log found by kind=auto keeps of its data config: how the file is read, the RFM rules
_READING_KEYS = "rfm path source_name delimiter encoding quotechar format decimal missing_values"


def looks_like_transactions(
    columns: list[str], source: str, log_cfg: Mapping[str, Any] | None = None
) -> bool:
    """A log has a customer id, an invoice id, a date, and quantity + unit price or an
    amount (headers per the aliases of ``log_cfg``, default the transaction option)."""
    aliases = (log_cfg or config_option("data", "transactions_sample") or {})["aliases"]
    found = set(canonical_headers(columns, aliases, source).values())
    needed = {"customer_id", "invoice_id", "invoice_date"}
    return needed <= found and ({"quantity", "unit_price"} <= found or "amount" in found)


def load_customers(data_cfg: Mapping[str, Any]) -> CustomerTable:
    """The configured data as one row per customer, checked, with canonical names
    (a transaction log's RFM rule counts in ``CustomerTable.notes``)."""
    kind = str(data_cfg.get("kind") or "customers")  # the config schema checks the choices
    path = data_cfg.get("path")
    if path in (None, ""):
        sample, log = dict(data_cfg.get("sample") or {}), kind == "transactions"
        n = int(sample.get("n_customers") or (300 if log else 200))
        generate = generate_transactions if log else generate_mall_sample
        frame = generate(n, int(sample.get("seed", 7)))
        source, file_rows = (TRANSACTIONS_SAMPLE_SOURCE if log else SAMPLE_SOURCE), None
    else:
        # source_name: what runs call the data instead of its path (segexp.run on a DataFrame)
        source = str(data_cfg.get("source_name") or Path(str(path)).expanduser())
        frame, file_rows = read_table(path, data_cfg)
        if frame.empty:
            what = "transaction" if kind == "transactions" else "customer"
            raise DataError(
                f"{source}: the file has a header ({', '.join(map(str, frame.columns))}) but "
                f"no {what} rows; add rows below the header"
            )
    columns = [str(c) for c in frame.columns]
    log_cfg = {}  # kind=auto: the transaction-log data option (aliases, RFM rules), via Hydra
    if kind == "auto" and path:
        log_cfg = config_option("data", "transactions_sample") or {}
    if log_cfg and looks_like_transactions(columns, source, log_cfg):
        kind = "transactions"
        log_cfg.update(
            {k: data_cfg[k] for k in _READING_KEYS.split() if data_cfg.get(k) is not None}
        )
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
