"""Built-in samples generated in code (no download), deterministic per ``(n_customers, seed)``:
Kaggle "Mall Customers"-like customers and a UCI "Online Retail"-like invoice log."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class GeneratingSegment(NamedTuple):
    """One segment of the sample: its share and the normal laws of its columns."""

    name: str
    share: float
    income: tuple[float, float]  # mean, sd in k$
    spending: tuple[float, float]  # mean, sd on 1-100
    age: tuple[float, float]  # mean, sd in years
    female_share: float


SEGMENTS: tuple[GeneratingSegment, ...] = (
    GeneratingSegment("average_customers", 0.40, (55, 7), (50, 6), (43, 13), 0.58),
    GeneratingSegment("careful_high_earners", 0.18, (88, 13), (17, 7), (41, 10), 0.46),
    GeneratingSegment("affluent_big_spenders", 0.20, (87, 13), (82, 7), (32, 4), 0.54),
    GeneratingSegment("young_impulsive_buyers", 0.11, (26, 6), (79, 8), (25, 5), 0.59),
    GeneratingSegment("frugal_low_earners", 0.11, (26, 6), (20, 8), (45, 11), 0.61),
)

MALL_COLUMNS = ["customer_id", "gender", "age", "annual_income", "spending_score", "true_segment"]


def generate_mall_sample(n_customers: int = 200, seed: int = 7) -> pd.DataFrame:
    """Return the sample customer table (canonical column names, string ids)."""
    if n_customers < len(SEGMENTS):
        raise ValueError(f"n_customers must be at least {len(SEGMENTS)}, got {n_customers}")
    rng = np.random.default_rng(seed)
    sizes = [round(segment.share * n_customers) for segment in SEGMENTS]
    sizes[0] += n_customers - sum(sizes)
    parts = []
    for segment, size in zip(SEGMENTS, sizes, strict=True):
        income = np.clip(rng.normal(*segment.income, size), 15, 137)
        spending = np.clip(rng.normal(*segment.spending, size), 1, 99)
        age = np.clip(rng.normal(*segment.age, size), 18, 70)
        female = rng.random(size) < segment.female_share
        columns = {"age": age, "annual_income": income, "spending_score": spending}
        part = pd.DataFrame({k: np.rint(v).astype("int64") for k, v in columns.items()})
        parts.append(
            part.assign(gender=np.where(female, "Female", "Male"), true_segment=segment.name)
        )
    table = pd.concat(parts, ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    width = max(4, len(str(n_customers)))
    table["customer_id"] = [f"{i:0{width}d}" for i in range(1, n_customers + 1)]
    return table[MALL_COLUMNS]


class Archetype(NamedTuple):
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
# Online Retail's columns; shares of invoices later partly returned, of extra lines bought
# without a customer id, of lines exported twice
TRANSACTION_COLUMNS = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice"]
TRANSACTION_COLUMNS += ["CustomerID"]
CANCEL_SHARE, GUEST_SHARE, DUPLICATE_SHARE = 0.04, 0.03, 0.01


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
    n_orders: list[int] = []
    order_time: list[np.ndarray] = []
    for kind in kinds:
        low, high = ARCHETYPES[kind].active
        n_orders.append(1 + rng.poisson(ARCHETYPES[kind].mean_orders - 1))
        order_time.append(rng.uniform(low, high, n_orders[-1]) * days)
    order_customer = np.repeat(np.arange(n_customers), n_orders)
    # whole minutes between 08:00 and 18:00 of the drawn day
    day = np.floor(np.concatenate(order_time)).clip(0, days - 1)
    minute = rng.integers(8 * 60, 18 * 60, len(day))
    when = begin + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minute, unit="min")
    order = np.argsort(when.to_numpy(), kind="stable")
    order_customer, when = order_customer[order], when[order]
    order_kind = kinds[order_customer]

    lines_per_order = 1 + rng.poisson([ARCHETYPES[k].mean_lines - 1 for k in order_kind])
    line_order = np.repeat(np.arange(len(when)), lines_per_order)
    price_level = np.array([ARCHETYPES[k].price_level for k in order_kind])[line_order]
    n_lines = len(line_order)
    lines = pd.DataFrame(
        {
            "InvoiceNo": (536365 + line_order).astype(str),
            "StockCode": (20000 + rng.integers(0, 400, n_lines)).astype(str),
            "Quantity": 1 + rng.geometric(0.35, n_lines),
            "InvoiceDate": when[line_order],
            "UnitPrice": np.round(rng.lognormal(np.log(3.0), 0.6, n_lines) * price_level, 2),
            "CustomerID": (12346 + order_customer[line_order]).astype(str),
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
    guests = lines.sample(frac=GUEST_SHARE, random_state=rng.integers(2**31))
    log = pd.concat([lines, returns, guests.assign(CustomerID=np.nan)], ignore_index=True)
    doubled = log.sample(frac=DUPLICATE_SHARE, random_state=rng.integers(2**31))
    log = pd.concat([log, doubled], ignore_index=True)
    log = log.sort_values(["InvoiceDate", "InvoiceNo"], kind="stable").reset_index(drop=True)
    log["InvoiceDate"] = log["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M")
    log["CustomerID"] = log["CustomerID"].astype(object).where(log["CustomerID"].notna(), np.nan)
    return log[TRANSACTION_COLUMNS]
