"""A deterministic synthetic transaction log, so RFM works on a fresh clone with no download.

The log looks like the UCI "Online Retail" export it imitates: one row per
invoice line with ``InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
CustomerID``; cancellations are invoices ``C<number>`` with negative
quantities; guest purchases have no ``CustomerID``; a few lines are exported
twice (exact duplicates). Customers are drawn from five documented behaviour
archetypes (champions, loyal, new, at risk, occasional), so recency, frequency
and monetary value have real structure to segment. Same ``(n_customers, seed)``,
same log.

``python -m segexp.transactions_sample --out transactions.csv`` writes it as a
CSV for demos and for trying ``data.path`` with a file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
FIRST_INVOICE = 536365
FIRST_CUSTOMER = 12346
CANCEL_SHARE = 0.04  # share of invoices later partly returned
GUEST_SHARE = 0.03  # extra lines bought without a customer id
DUPLICATE_SHARE = 0.01  # lines exported twice


@dataclass(frozen=True)
class Archetype:
    """One kind of customer: how many orders, when active, basket size, price level."""

    name: str
    share: float
    mean_orders: float
    active: tuple[float, float]  # window as fractions of the period
    mean_lines: float
    price_level: float


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("champions", 0.15, 18.0, (0.0, 1.0), 4.0, 1.4),
    Archetype("loyal", 0.25, 8.0, (0.0, 1.0), 3.0, 1.0),
    Archetype("new", 0.15, 2.0, (0.85, 1.0), 3.0, 1.0),
    Archetype("at_risk", 0.20, 6.0, (0.0, 0.45), 3.0, 1.1),
    Archetype("occasional", 0.25, 1.5, (0.0, 1.0), 2.0, 0.8),
)


def generate_transactions(
    n_customers: int = 300, seed: int = 7, start: str = "2024-01-01", days: int = 365
) -> pd.DataFrame:
    """The synthetic transaction log (text dates and ids, as read from a CSV export)."""
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    rng = np.random.default_rng(seed)
    begin = pd.Timestamp(start)
    shares = np.array([a.share for a in ARCHETYPES])
    kinds = rng.choice(len(ARCHETYPES), size=n_customers, p=shares / shares.sum())

    order_customer, order_time, order_kind = [], [], []
    for customer, kind in enumerate(kinds):
        archetype = ARCHETYPES[kind]
        n_orders = 1 + rng.poisson(archetype.mean_orders - 1)
        low, high = archetype.active
        order_customer.extend([customer] * n_orders)
        order_time.extend(rng.uniform(low, high, n_orders) * days)
        order_kind.extend([kind] * n_orders)
    order_customer = np.array(order_customer)
    order_kind = np.array(order_kind)
    # whole minutes between 08:00 and 18:00 of the drawn day
    day = np.floor(np.array(order_time)).clip(0, days - 1)
    minute = rng.integers(8 * 60, 18 * 60, len(day))
    when = begin + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minute, unit="min")
    order = np.argsort(when.to_numpy(), kind="stable")
    order_customer, order_kind, when = order_customer[order], order_kind[order], when[order]
    invoice = FIRST_INVOICE + np.arange(len(when))

    lines_per_order = 1 + rng.poisson([ARCHETYPES[k].mean_lines - 1 for k in order_kind])
    line_order = np.repeat(np.arange(len(when)), lines_per_order)
    price_level = np.array([ARCHETYPES[k].price_level for k in order_kind])[line_order]
    lines = pd.DataFrame(
        {
            "InvoiceNo": invoice[line_order].astype(str),
            "StockCode": (20000 + rng.integers(0, 400, len(line_order))).astype(str),
            "Quantity": 1 + rng.geometric(0.35, len(line_order)),
            "InvoiceDate": when[line_order],
            "UnitPrice": np.round(
                rng.lognormal(np.log(3.0), 0.6, len(line_order)) * price_level, 2
            ),
            "CustomerID": (FIRST_CUSTOMER + order_customer[line_order]).astype(str),
        }
    )

    returned = lines.drop_duplicates("InvoiceNo").sample(
        frac=CANCEL_SHARE, random_state=rng.integers(2**31)
    )
    returns = returned.assign(
        InvoiceNo="C" + returned["InvoiceNo"],
        Quantity=-rng.integers(1, returned["Quantity"].to_numpy() + 1),
        InvoiceDate=np.minimum(
            returned["InvoiceDate"] + pd.to_timedelta(rng.integers(1, 20, len(returned)), "D"),
            begin + pd.Timedelta(days=days) - pd.Timedelta(minutes=1),
        ),
    )
    guests = lines.sample(frac=GUEST_SHARE, random_state=rng.integers(2**31)).assign(
        CustomerID=np.nan
    )
    log = pd.concat([lines, returns, guests], ignore_index=True)
    doubled = log.sample(frac=DUPLICATE_SHARE, random_state=rng.integers(2**31))
    log = pd.concat([log, doubled], ignore_index=True)
    log = log.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable").reset_index(drop=True)
    log["InvoiceDate"] = log["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M")
    log["CustomerID"] = log["CustomerID"].astype(object).where(log["CustomerID"].notna(), np.nan)
    return log[COLUMNS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segexp.transactions_sample",
        description="Write the synthetic transaction log as a CSV file.",
    )
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--customers", type=int, default=300, help="number of customers")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    args = parser.parse_args(argv)
    if args.customers < 1:
        print(
            f"segexp: error: --customers must be at least 1; got {args.customers}", file=sys.stderr
        )
        return 2
    log = generate_transactions(n_customers=args.customers, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log.to_csv(out, index=False)
    print(f"wrote {len(log)} transaction lines of {args.customers} customers to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
