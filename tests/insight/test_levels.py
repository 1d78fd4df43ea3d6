"""Level words agree with the numbers on every table shape of the tests.

Property (issue 21.2), over many seeded random segmentations: for every segment and
column, "high" means the segment's mean AND median are above all customers', "low"
means both are below. Means and medians are recomputed here with pandas, not read
from the profile. A majority segment with every column average is the bulk of
customers and gets no targeting action.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segexp.data.samples import generate_mall_sample
from segexp.insight.naming import rank_differences
from segexp.insight.profiles import compute_profile
from tests import tables

SHAPES = {
    "bank_card_usage": lambda folder: pd.read_csv(tables.bank_card_usage(folder)),
    "wholesale": lambda folder: pd.read_csv(tables.wholesale(folder)),
    "marketing_campaign": lambda folder: pd.read_csv(tables.marketing_campaign(folder), sep="\t"),
    "mall_like": lambda folder: pd.read_csv(tables.mall_like(folder, tables.SNAKE_CASE_MALL)),
    "skewed_money": lambda folder: pd.read_csv(tables.skewed_money(folder)),
    "bulk_plus_outliers": lambda folder: pd.read_csv(tables.bulk_plus_outliers(folder)),
    "mall_sample": lambda folder: generate_mall_sample(),
}
DRAWS = 60


def _numeric(frame: pd.DataFrame) -> list[str]:
    ids = {"customer_id", "ID", "CUST_ID"}
    return [
        str(c)
        for c in frame.columns
        if c not in ids and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 1
    ]


def _segmentation(frame: pd.DataFrame, columns: list[str], rng: np.random.Generator):
    """Random labels of one of four kinds: uniform, bins of one column (strong effects),
    bins of a noisy mix of columns, or a few extreme customers alone; some with noise."""
    n = len(frame)
    k = int(rng.integers(2, 9))
    kind = rng.integers(0, 4)
    if kind == 0:
        labels = rng.integers(0, k, n)
    elif kind in (1, 2):
        score = frame[columns[int(rng.integers(len(columns)))]].rank(pct=True).fillna(0.5)
        if kind == 2:
            score = score + rng.normal(0, 0.3, n)
        labels = np.searchsorted(np.sort(rng.random(k - 1)), score.to_numpy())
    else:
        labels = np.zeros(n, dtype=int)
        top = frame[columns[int(rng.integers(len(columns)))]].fillna(0).to_numpy().argsort()
        labels[top[-int(rng.integers(1, 6)) :]] = 1
    if rng.random() < 0.2:
        labels = np.where(rng.random(n) < 0.05, -1, labels)
    return labels


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_high_and_low_agree_with_mean_and_median(tmp_path, shape):
    frame = SHAPES[shape](tmp_path)
    columns = _numeric(frame)
    rng = np.random.default_rng(sum(map(ord, shape)))
    checked = {"high": 0, "low": 0}
    for _ in range(DRAWS):
        labels = _segmentation(frame, columns, rng)
        profile = compute_profile(frame, labels, columns, exclude_columns=())
        values = frame[columns].astype(float)
        for segment in profile.segments:
            if segment == -1:
                continue
            rows = values[labels == segment]
            for column in columns:
                level = profile.names[segment].levels[column]
                mean, median = rows[column].mean(), rows[column].median()
                if level == "high":
                    assert mean > values[column].mean() and median > values[column].median()
                elif level == "low":
                    assert mean < values[column].mean() and median < values[column].median()
                else:
                    assert level == "mid"
                checked[level] = checked.get(level, 0) + 1
    assert checked["high"] > 20 and checked["low"] > 20  # the property was exercised


def test_skewed_money_has_no_high_segment_below_the_average(tmp_path):
    """Five extreme customers lift every money column's mean: a segment of ordinary
    customers that ranks high is not called high when its mean is below all customers'."""
    frame = pd.read_csv(tables.skewed_money(tmp_path))
    labels = np.array(pd.qcut(frame["cash_advance"].rank(method="first"), 3, labels=False))
    labels[frame["cash_advance"].to_numpy().argsort()[-5:]] = 3  # the extreme customers
    profile = compute_profile(frame, labels, tables.SKEWED_MONEY)
    for segment in profile.segments:
        row = profile.table.loc[segment]
        if row["cash_advance_level"] == "high":
            assert row["cash_advance_ratio"] > 1
    assert profile.names[3].levels["cash_advance"] == "high"
    # The top third without the extremes: 0.44x the average, "high" by the old terciles of
    # segment means, average now.
    top_third = profile.table.loc[2]
    assert top_third["cash_advance_ratio"] < 1
    assert top_third["cash_advance_mean"] > frame["cash_advance"].quantile(2 / 3)
    assert profile.names[2].levels["cash_advance"] == "mid"


def test_bulk_of_customers_is_never_a_target(tmp_path):
    frame = pd.read_csv(tables.bulk_plus_outliers(tmp_path))
    labels = np.zeros(len(frame), dtype=int)
    labels[frame["fresh"].to_numpy().argmax()] = 1  # k-means k=2: 439 and 1 customers
    profile = compute_profile(frame, labels, ["fresh", "grocery"])
    bulk = profile.names[0]
    assert set(bulk.levels.values()) == {"mid"}
    assert bulk.name == "Bulk of customers"
    assert bulk.description.startswith("The bulk of customers (100%)")
    assert len(bulk.actions) == 1 and bulk.actions[0].startswith("Not a target")
    assert profile.names[1].levels == {"fresh": "high", "grocery": "high"}


@pytest.mark.parametrize("n_rows", [1, 2, 7, 500])
def test_rank_differences_are_pandas_percentile_ranks_per_segment(n_rows):
    """The sort-based rank differences equal pandas' ``rank(pct=True)`` averaged per segment,
    with ties, NaN and noise labels; a constant or empty column is NaN, not rounding noise."""
    rng = np.random.default_rng(n_rows)
    values = pd.DataFrame(
        {
            "ties": rng.integers(0, 5, n_rows).astype(float),
            "smooth": rng.normal(size=n_rows),
            "constant": np.full(n_rows, 3.0),
            "empty": np.full(n_rows, np.nan),
            "gaps": np.where(np.arange(n_rows) % 3 == 0, np.nan, rng.normal(size=n_rows)),
        }
    )
    labels = rng.integers(-1, 4, n_rows)
    ranks = values.rank(pct=True)
    spread = ranks.std(ddof=0).where(values.nunique() > 1)
    expected = (ranks.groupby(labels).mean() - ranks.mean()) / spread
    got = rank_differences(values, labels)
    pd.testing.assert_frame_equal(got, expected, check_names=False, rtol=1e-9, atol=1e-12)
    assert got[["constant", "empty"]].isna().all().all()
