"""Transaction log -> one row per customer (recency, frequency, monetary, tenure, order value);
each rule (the docs' data page) counts the lines it removes in ``rfm.*`` metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segexp.data.load import (
    CustomerTable,
    load_customer_table,
    parse_dates,
    to_numeric_columns,
)
from segexp.data.messages import closest, examples, names_of, row_numbers
from segexp.data.read import as_text
from segexp.data.schema import Schema
from segexp.errors import ConfigError, DataError

RFM_COLUMNS = ["recency", "frequency", "monetary", "tenure", "avg_order_value"]
_CHOICES = {
    "returns": ("subtract", "exclude"),
    "missing_customer": ("drop", "error"),
    "duplicates": ("drop", "keep"),
}


@dataclass(frozen=True)
class RfmRules:
    """How a transaction log becomes customers (the ``data.rfm`` config block)."""

    reference_date: str | None = None
    cancel_prefix: str | None = "C"
    returns: str = "subtract"
    missing_customer: str = "drop"
    duplicates: str = "drop"
    date_format: str | None = None
    dayfirst: bool = False

    @classmethod
    def from_config(cls, rfm_cfg: Mapping[str, Any] | None) -> RfmRules:
        """Rules from ``data.rfm``; an unknown key or value is a ConfigError naming it."""
        values = dict(rfm_cfg or {})
        known = sorted(f.name for f in fields(cls))
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"data.rfm.{key}: unknown key{closest(key, known)}; allowed: {', '.join(known)}"
                )
            if value not in _CHOICES.get(key, (value,)):
                raise ConfigError(
                    f"data.rfm.{key}: allowed values are {', '.join(_CHOICES[key])}; got '{value}'"
                )
        reference = values.get("reference_date")
        if reference is not None:
            values["reference_date"] = str(reference)
            try:
                pd.Timestamp(str(reference))
            except ValueError as exc:
                raise ConfigError(
                    f"data.rfm.reference_date: not a date: '{reference}'; "
                    "use YYYY-MM-DD or null for the day after the last transaction"
                ) from exc
        return cls(**values)

    def describe(self) -> str:
        """One line for a tag: which rules produced the table."""
        keys = ("missing_customer", "duplicates", "cancel_prefix", "returns")
        return "; ".join(f"{key}={getattr(self, key)}" for key in keys)


class RfmResult(NamedTuple):
    """The customer table built from a log, the rule counts and the reference day."""

    customers: pd.DataFrame
    counts: dict[str, float]
    reference_date: pd.Timestamp


def _refuse(mask: pd.Series, message: str) -> None:
    """A DataError when any line is flagged (the message names the first of them)."""
    if mask.any():
        raise DataError(message)


def build_rfm(
    transactions: pd.DataFrame,
    rules: RfmRules | None = None,
    source: str = "transactions",
    file_rows: np.ndarray | None = None,
    decimal: str = ".",
) -> RfmResult:
    """Apply the rules (the docs' data page) to a log with canonical column names."""
    rules = rules or RfmRules()
    available = [str(c) for c in transactions.columns]
    needed = ["customer_id", "invoice_id", "invoice_date"]
    for column in needed + ([] if "amount" in available else ["quantity", "unit_price"]):
        if column not in available:
            raise DataError(
                f"{source}: the transaction log has no column '{column}'"
                f"{closest(column, available)}; columns: {', '.join(available)}; it needs "
                "customer_id, invoice_id, invoice_date and quantity + unit_price (or amount): "
                f"add the file's header to data.aliases.{column}"
            )
    tx = transactions.copy()
    tx.index = np.asarray(file_rows) if file_rows is not None else np.arange(2, len(tx) + 2)
    counts: dict[str, float] = {"rfm.rows_read": float(len(tx))}
    tx["customer_id"], tx["invoice_id"] = as_text(tx["customer_id"]), as_text(tx["invoice_id"])
    no_customer = tx["customer_id"].isna()
    if rules.missing_customer == "error":
        _refuse(
            no_customer,
            f"{source}: column 'customer_id' is empty in {row_numbers(no_customer, tx.index)}; "
            "fill the ids, or set data.rfm.missing_customer=drop to leave those lines out",
        )
    counts["rfm.rows_without_customer"] = float(no_customer.sum())
    tx = tx[~no_customer]
    duplicate = tx.duplicated() & (rules.duplicates == "drop")
    counts["rfm.duplicate_rows"] = float(duplicate.sum())
    tx = tx[~duplicate]

    values = [c for c in ("quantity", "unit_price", "amount") if c in tx.columns]
    tx = to_numeric_columns(tx, values, source, tx.index.to_numpy(), decimal)
    for column in ["invoice_id", *values]:
        blank = tx[column].isna()
        _refuse(
            blank,
            f"{source}: column '{column}' is empty in {row_numbers(blank, tx.index)}; "
            "every transaction line needs it: fill those cells or remove the rows",
        )
    tx["invoice_date"] = parse_dates(
        tx["invoice_date"],
        "invoice_date",
        source,
        tx.index.to_numpy(),
        rules.date_format,
        rules.dayfirst,
        "data.rfm.date_format",
    )

    sign = "quantity" if "quantity" in tx.columns else "amount"
    is_return = negative = tx[sign] < 0
    if rules.cancel_prefix:
        is_return = tx["invoice_id"].str.startswith(str(rules.cancel_prefix))
        wrong = negative & ~is_return
        _refuse(
            wrong,
            f"{source}: column '{sign}' is negative in {row_numbers(wrong, tx.index)} "
            f"({examples(tx[sign][wrong])}) of invoices that are not cancellations (ids not "
            f"starting with '{rules.cancel_prefix}'); fix those lines, or set "
            "data.rfm.cancel_prefix=null to treat every negative line as a return",
        )
    if "unit_price" in tx.columns:
        bad_price = tx["unit_price"] < 0
        _refuse(
            bad_price,
            f"{source}: column 'unit_price' is negative in {row_numbers(bad_price, tx.index)}; "
            "prices cannot be negative: record returns as negative quantities",
        )
    line = (tx["amount"] if "amount" in tx.columns else tx["quantity"] * tx["unit_price"]).abs()
    tx["line_value"] = line.where(~is_return, -line)
    tx["is_return"] = is_return
    counts["rfm.return_rows"] = float(is_return.sum())
    if rules.returns == "exclude":
        tx = tx[~tx["is_return"]]

    if rules.reference_date is not None:
        reference = pd.Timestamp(rules.reference_date).normalize()
    else:
        reference = tx["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    after = tx["invoice_date"] >= reference
    counts["rfm.rows_after_reference"] = float(after.sum())
    tx = tx[~after]

    bought = tx[~tx["is_return"]].groupby("customer_id", sort=True)
    days = bought["invoice_date"].agg(["min", "max"]).apply(lambda d: d.dt.normalize())
    frequency = bought["invoice_id"].nunique()
    returned = tx[tx["is_return"]].groupby("customer_id")["line_value"].sum()
    counts["rfm.customers_without_purchase"] = float(len(returned.index.difference(days.index)))
    monetary = bought["line_value"].sum() + returned.reindex(days.index, fill_value=0.0)
    counts["rfm.customers_monetary_clipped"] = float((monetary < 0).sum())
    monetary = monetary.clip(lower=0.0).astype(float)
    customers = pd.DataFrame(
        {
            "customer_id": days.index.astype(object),
            "recency": (reference - days["max"]).dt.days,
            "frequency": frequency,
            "monetary": monetary,
            "tenure": (reference - days["min"]).dt.days,
            "avg_order_value": monetary / frequency,
        }
    ).reset_index(drop=True)
    counts["rfm.customers"] = float(len(customers))
    if customers.empty:
        raise DataError(
            f"{source}: no customer is left after the RFM rules ("
            + ", ".join(f"{k}={int(v)}" for k, v in counts.items())
            + "); check data.rfm.reference_date and the customer id column"
        )
    return RfmResult(customers, counts, reference)


def customers_from_transactions(
    frame: pd.DataFrame,
    data_cfg: Mapping[str, Any],
    source: str,
    file_rows: np.ndarray | None = None,
) -> CustomerTable:
    """The customer table of a ``kind: transactions`` data config (see load_customers)."""
    rules = RfmRules.from_config(data_cfg.get("rfm"))
    decimal = str(data_cfg.get("decimal") or frame.attrs.get("decimal", "."))
    result = build_rfm(frame, rules, source, file_rows, decimal)
    id_column = data_cfg.get("id_column") or "customer_id"
    if id_column != "customer_id":
        raise ConfigError(
            f"data.id_column: a transaction log's customer table is keyed by 'customer_id'; "
            f"got '{id_column}': map the file's header with data.aliases.customer_id instead"
        )
    numeric = names_of(data_cfg.get("numeric")) or list(RFM_COLUMNS)
    settings: dict[str, Any] = {"id_column": "customer_id", "label_column": None, "dates": []}
    settings |= {"numeric": numeric, "categorical": names_of(data_cfg.get("categorical"))}
    settings["non_negative"] = []
    table = load_customer_table(result.customers, settings, source, None, derive=False)
    roles = table.schema.columns if table.schema else ()
    by_log = tuple(replace(c, by="the transaction log (RFM)") for c in roles)
    return replace(
        table,
        schema=Schema(by_log),
        default_features=str(data_cfg.get("default_features") or "rfm"),
        notes=result.counts,
        tags={
            "rfm.reference_date": result.reference_date.strftime("%Y-%m-%d"),
            "rfm.rules": rules.describe(),
        },
    )
