"""The built-in sample: 200 mall customers generated in code, no download needed.

Same columns and value ranges as the Kaggle "Mall Customers" table (canonical
names), drawn from five documented generating segments on the income x
spending plane, the structure that table is known for. ``true_segment`` keeps
each customer's generating segment so runs can be scored against ground truth.
The draw is deterministic for a given ``(n_customers, seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class GeneratingSegment:
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

COLUMNS = ["customer_id", "gender", "age", "annual_income", "spending_score", "true_segment"]


def _segment_sizes(n_customers: int) -> list[int]:
    sizes = [int(round(seg.share * n_customers)) for seg in SEGMENTS]
    sizes[0] += n_customers - sum(sizes)
    return sizes


def generate_mall_sample(n_customers: int = 200, seed: int = 7) -> pd.DataFrame:
    """Return the sample customer table (canonical column names, string ids)."""
    if n_customers < len(SEGMENTS):
        raise ValueError(f"n_customers must be at least {len(SEGMENTS)}, got {n_customers}")
    rng = np.random.default_rng(seed)
    parts = []
    for segment, size in zip(SEGMENTS, _segment_sizes(n_customers), strict=True):
        income = np.clip(rng.normal(*segment.income, size), 15, 137)
        spending = np.clip(rng.normal(*segment.spending, size), 1, 99)
        age = np.clip(rng.normal(*segment.age, size), 18, 70)
        female = rng.random(size) < segment.female_share
        parts.append(
            pd.DataFrame(
                {
                    "gender": np.where(female, "Female", "Male"),
                    "age": np.rint(age).astype("int64"),
                    "annual_income": np.rint(income).astype("int64"),
                    "spending_score": np.rint(spending).astype("int64"),
                    "true_segment": segment.name,
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    width = max(4, len(str(n_customers)))
    table.insert(0, "customer_id", [f"{i:0{width}d}" for i in range(1, n_customers + 1)])
    return table[COLUMNS]
