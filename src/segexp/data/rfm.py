"""Transaction log -> one row per customer: recency, frequency, monetary, tenure, order value.

The rules, applied in this order and each counted (``CustomerTable.notes``, logged
as metrics by every run on the table):

1. Rows without a customer id cannot be attributed: dropped (``rfm.missing_customer:
   drop``, counted as ``rfm.rows_without_customer``) or an error (``error``).
2. Exact duplicate rows (every column equal) are export artefacts: dropped
   (``rfm.duplicates: drop``, counted as ``rfm.duplicate_rows``) or kept (``keep``).
3. Returns are the lines of cancelled invoices (id starting with
   ``rfm.cancel_prefix``, ``C`` as in the Online Retail export) or, without a
   prefix, lines with a negative quantity (or amount). A negative quantity on
   any other line is an error. ``rfm.returns: subtract`` (default) takes their
   value off the customer's spend; ``exclude`` drops them. Counted as
   ``rfm.return_rows``. Returns never count as orders or as purchase dates.
4. Lines on or after ``rfm.reference_date`` are dropped (``rfm.rows_after_reference``);
   the default reference date is the day after the last transaction.

Per customer, with days counted between calendar days:
recency = reference day - day of the last purchase; frequency = distinct
purchase invoices; monetary = purchase value minus returns (a net negative
value is clipped to 0 and counted as ``rfm.customers_monetary_clipped``);
tenure = reference day - day of the first purchase; avg_order_value =
monetary / frequency. A customer with returns only has no purchase and is
left out (``rfm.customers_without_purchase``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from segexp.data.load import (
    CustomerTable,
    as_text,
    closest,
    fingerprint_frame,
    parse_dates,
    require_columns,
    row_numbers,
    to_numeric_columns,
)
from segexp.data.messages import names_of
from segexp.data.schema import Schema, infer_schema
from segexp.errors import ConfigError, DataError

RFM_COLUMNS = ["recency", "frequency", "monetary", "tenure", "avg_order_value"]
TRANSACTION_COLUMNS = ("customer_id", "invoice_id", "invoice_date", "quantity", "unit_price")
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
        known = set(cls.__dataclass_fields__)
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"data.rfm.{key}: unknown key{closest(key, sorted(known))}; "
                    f"allowed: {', '.join(sorted(known))}"
                )
        for key, allowed in _CHOICES.items():
            if key in values and values[key] not in allowed:
                raise ConfigError(
                    f"data.rfm.{key}: allowed values are {', '.join(allowed)}; got '{values[key]}'"
                )
        if values.get("reference_date") is not None:
            values["reference_date"] = str(values["reference_date"])
            try:
                pd.Timestamp(values["reference_date"])
            except ValueError as exc:
                raise ConfigError(
                    f"data.rfm.reference_date: not a date: '{values['reference_date']}'; "
                    "use YYYY-MM-DD or null for the day after the last transaction"
                ) from exc
        return cls(**values)

    def describe(self) -> str:
        """One line for a tag: which rules produced the table."""
        return (
            f"missing_customer={self.missing_customer}; duplicates={self.duplicates}; "
            f"cancel_prefix={self.cancel_prefix}; returns={self.returns}"
        )


@dataclass
class RfmResult:
    """The customer table built from a log, the rule counts and the reference day."""

    customers: pd.DataFrame
    counts: dict[str, float] = field(default_factory=dict)
    reference_date: pd.Timestamp | None = None


def _check_columns(frame: pd.DataFrame, source: str) -> None:
    required = ["customer_id", "invoice_id", "invoice_date"]
    if "amount" not in frame.columns:
        required += ["quantity", "unit_price"]
    available = [str(c) for c in frame.columns]
    for column in required:
        if column not in frame.columns:
            raise DataError(
                f"{source}: the transaction log has no column '{column}'"
                f"{closest(column, available)}; columns: {', '.join(available)}; it needs "
                "customer_id, invoice_id, invoice_date and quantity + unit_price (or amount): "
                f"add the file's header to data.aliases.{column}"
            )


def _check_blank(frame: pd.DataFrame, columns: list[str], source: str, rows: np.ndarray):
    for column in columns:
        blank = frame[column].isna().to_numpy()
        if blank.any():
            raise DataError(
                f"{source}: column '{column}' is empty in {row_numbers(blank, rows)}; "
                "every transaction line needs it: fill those cells or remove the rows"
            )


def build_rfm(
    transactions: pd.DataFrame,
    rules: RfmRules | None = None,
    source: str = "transactions",
    file_rows: np.ndarray | None = None,
    decimal: str = ".",
) -> RfmResult:
    """Apply the rules of the module docstring to a log with canonical column names."""
    rules = rules or RfmRules()
    _check_columns(transactions, source)
    tx = transactions.copy().reset_index(drop=True)
    rows = np.asarray(file_rows) if file_rows is not None else np.arange(2, len(tx) + 2)
    counts: dict[str, float] = {"rfm.rows_read": float(len(tx))}

    tx["customer_id"] = as_text(tx["customer_id"])
    tx["invoice_id"] = as_text(tx["invoice_id"])
    no_customer = tx["customer_id"].isna().to_numpy()
    if no_customer.any() and rules.missing_customer == "error":
        raise DataError(
            f"{source}: column 'customer_id' is empty in {row_numbers(no_customer, rows)}; "
            "fill the ids, or set data.rfm.missing_customer=drop to leave those lines out"
        )
    counts["rfm.rows_without_customer"] = float(no_customer.sum())
    tx, rows = tx[~no_customer], rows[~no_customer]

    duplicate = np.zeros(len(tx), dtype=bool)
    if rules.duplicates == "drop":
        duplicate = tx.duplicated().to_numpy()
    counts["rfm.duplicate_rows"] = float(duplicate.sum())
    tx, rows = tx[~duplicate].reset_index(drop=True), rows[~duplicate]

    value_columns = [c for c in ("quantity", "unit_price", "amount") if c in tx.columns]
    tx = to_numeric_columns(tx, value_columns, source, rows, decimal)
    _check_blank(tx, ["invoice_id", *value_columns], source, rows)
    tx["invoice_date"] = parse_dates(
        tx["invoice_date"],
        "invoice_date",
        source,
        rows,
        rules.date_format,
        rules.dayfirst,
        "data.rfm.date_format",
    )

    sign_column = "quantity" if "quantity" in tx.columns else "amount"
    negative = (tx[sign_column] < 0).to_numpy()
    if rules.cancel_prefix:
        is_return = tx["invoice_id"].str.startswith(str(rules.cancel_prefix)).to_numpy()
        wrong = negative & ~is_return
        if wrong.any():
            raise DataError(
                f"{source}: column '{sign_column}' is negative in {row_numbers(wrong, rows)} "
                f"({', '.join(repr(v) for v in tx[sign_column][wrong].head(3))}) of invoices "
                f"that are not cancellations (ids not starting with '{rules.cancel_prefix}'); "
                "fix those lines, or set data.rfm.cancel_prefix=null to treat every negative "
                "line as a return"
            )
    else:
        is_return = negative
    if "unit_price" in tx.columns:
        bad_price = (tx["unit_price"] < 0).to_numpy()
        if bad_price.any():
            raise DataError(
                f"{source}: column 'unit_price' is negative in "
                f"{row_numbers(bad_price, rows)}; prices cannot be negative: record returns "
                "as negative quantities"
            )
    line = tx["amount"] if "amount" in tx.columns else tx["quantity"] * tx["unit_price"]
    tx["line_value"] = np.where(is_return, -line.abs(), line.abs())
    tx["is_return"] = is_return
    counts["rfm.return_rows"] = float(is_return.sum())
    if rules.returns == "exclude":
        tx = tx[~tx["is_return"]]

    if rules.reference_date is not None:
        reference = pd.Timestamp(rules.reference_date).normalize()
    else:
        reference = tx["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    after = (tx["invoice_date"] >= reference).to_numpy()
    counts["rfm.rows_after_reference"] = float(after.sum())
    tx = tx[~after]

    purchases = tx[~tx["is_return"]]
    by_customer = purchases.groupby("customer_id", sort=True)
    first_day = by_customer["invoice_date"].min().dt.normalize()
    last_day = by_customer["invoice_date"].max().dt.normalize()
    frequency = by_customer["invoice_id"].nunique()
    spend = by_customer["line_value"].sum()
    returned = tx[tx["is_return"]].groupby("customer_id")["line_value"].sum()
    counts["rfm.customers_without_purchase"] = float(len(returned.index.difference(spend.index)))
    monetary = spend + returned.reindex(spend.index, fill_value=0.0)
    counts["rfm.customers_monetary_clipped"] = float((monetary < 0).sum())
    monetary = monetary.clip(lower=0.0)
    customers = pd.DataFrame(
        {
            "customer_id": spend.index.astype(object),
            "recency": (reference - last_day).dt.days.to_numpy(),
            "frequency": frequency.to_numpy(),
            "monetary": monetary.to_numpy(dtype=float),
            "tenure": (reference - first_day).dt.days.to_numpy(),
            "avg_order_value": (monetary / frequency).to_numpy(dtype=float),
        }
    )
    counts["rfm.customers"] = float(len(customers))
    if customers.empty:
        raise DataError(
            f"{source}: no customer is left after the RFM rules ("
            + ", ".join(f"{k}={int(v)}" for k, v in counts.items())
            + "); check data.rfm.reference_date and the customer id column"
        )
    return RfmResult(customers=customers, counts=counts, reference_date=reference)


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
    customers = result.customers
    id_column = data_cfg.get("id_column") or "customer_id"
    if id_column != "customer_id":
        raise ConfigError(
            f"data.id_column: a transaction log's customer table is keyed by 'customer_id'; "
            f"got '{id_column}': map the file's header with data.aliases.customer_id instead"
        )
    for key in ("numeric", "categorical"):
        require_columns(customers, names_of(data_cfg.get(key)), f"data.{key}", source)
    assert result.reference_date is not None  # build_rfm always sets it
    numeric = names_of(data_cfg.get("numeric"))
    schema = infer_schema(
        customers,
        {
            "id_column": "customer_id",
            "label_column": None,
            "numeric": numeric or list(RFM_COLUMNS),
            "categorical": names_of(data_cfg.get("categorical")),
            "dates": [],
        },
    )
    schema = Schema(tuple(replace(c, by="the transaction log (RFM)") for c in schema.columns))
    return CustomerTable(
        frame=customers,
        source=source,
        fingerprint=fingerprint_frame(customers),
        id_column="customer_id",
        label_column=None,
        schema=schema,
        default_features=str(data_cfg.get("default_features") or "rfm"),
        notes=result.counts,
        tags={
            "rfm.reference_date": result.reference_date.strftime("%Y-%m-%d"),
            "rfm.rules": rules.describe(),
        },
    )
