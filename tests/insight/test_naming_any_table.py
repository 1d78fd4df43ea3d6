"""Names, actions and profiles on tables that are not Mall Customers: bank, wholesale, marketing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from segexp.data.samples import generate_mall_sample
from segexp.errors import ConfigError
from segexp.insight.naming import (
    DEFAULT_NAMING_FILE,
    distinguishing_columns,
    load_naming_config,
    readable_label,
)
from segexp.insight.profiles import compute_profile, profile_markdown, segments_document
from segexp.insight.report import ReportData, render_html

GENERIC_NAMING_FILE = DEFAULT_NAMING_FILE.with_name("generic.yaml")
BANK = [
    "BALANCE",
    "PURCHASES",
    "PURCHASES_FREQUENCY",
    "CASH_ADVANCE",
    "CASH_ADVANCE_TRX",
    "CREDIT_LIMIT",
    "PAYMENTS",
    "TENURE",
]
# segment -> column offsets in standard deviations; a small offset on an early column
# makes it non-mid without setting the segment apart most, so "first columns" would fail.
BANK_DESIGN = {
    0: {"PURCHASES": 3.0, "PURCHASES_FREQUENCY": 3.5, "CASH_ADVANCE": -2.5},
    1: {"CASH_ADVANCE": 3.0, "CASH_ADVANCE_TRX": 3.5, "PURCHASES_FREQUENCY": -2.5},
    2: {"BALANCE": 3.0, "PURCHASES": -0.8, "CREDIT_LIMIT": 3.5, "PAYMENTS": 2.5},
    3: {"BALANCE": -3.0, "CREDIT_LIMIT": -2.5, "TENURE": -3.5},
}
BANK_NAMES = {
    0: "High purchases, high purchases frequency, low cash advance",
    1: "Low purchases frequency, high cash advance, high cash advance transactions",
    2: "High balance, high credit limit, high payments",
    3: "Low balance, low credit limit, new",  # TENURE meets the tenure wording
}
WHOLESALE = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]
NO_RECENCY_WORDS = ("win-back", "dormant", "not bought")


def _blocks(design: dict[int, dict[str, float]], columns: list[str], n: int, seed: int):
    """Rows per segment: N(0, 1) plus the segment's offsets, scaled like money amounts."""
    rng = np.random.default_rng(seed)
    blocks, labels = [], []
    for segment, offsets in design.items():
        block = rng.normal(0.0, 1.0, (n, len(columns)))
        block += np.array([offsets.get(c, 0.0) for c in columns])
        blocks.append(block)
        labels += [segment] * n
    frame = pd.DataFrame(np.vstack(blocks) * 100.0 + 1000.0, columns=columns)
    return frame, np.array(labels)


@pytest.fixture(scope="module")
def bank() -> tuple[pd.DataFrame, np.ndarray]:
    frame, labels = _blocks(BANK_DESIGN, BANK, n=100, seed=11)
    frame.insert(0, "CUST_ID", [f"C{i:05d}" for i in range(len(frame))])
    return frame, labels


def _bank_profile(frame: pd.DataFrame, labels: np.ndarray, naming_cfg=None):
    return compute_profile(
        frame,
        labels,
        BANK,
        naming_cfg=naming_cfg,
        gender_column="gender",
        exclude_columns=("CUST_ID",),
    )


@pytest.fixture(scope="module")
def wholesale() -> tuple[pd.DataFrame, np.ndarray]:
    design = {
        0: {"Grocery": 3.0, "Detergents_Paper": 3.5, "Milk": 2.5},  # retailers
        1: {"Fresh": 3.5, "Frozen": 3.0, "Detergents_Paper": -2.0},  # restaurants
        2: {"Delicassen": 3.5, "Milk": -2.0, "Fresh": -2.5},  # delis
    }
    frame, labels = _blocks(design, WHOLESALE, n=80, seed=5)
    rng = np.random.default_rng(6)
    retail = labels == 0
    frame["Channel"] = np.where(retail, 2, np.where(rng.random(len(frame)) < 0.9, 1, 2))
    frame["Channel_detail"] = np.where(frame["Channel"] == 2, "shop", "horeca")
    frame["Region"] = rng.integers(1, 4, len(frame))
    return frame, labels


def _wholesale_profile(frame: pd.DataFrame, labels: np.ndarray, value_labels=None):
    return compute_profile(
        frame,
        labels,
        WHOLESALE,
        naming_cfg=None,
        gender_column="gender",
        exclude_columns=(),
        categorical_columns=("Channel", "Channel_detail", "Region"),
        value_labels=value_labels,
    )


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("PURCHASES_FREQUENCY", "purchases frequency"),
        ("CashAdvanceTrx", "cash advance trx"),
        ("Detergents_Paper", "detergents paper"),
        ("Income (k$)", "income"),
        ("Spending Score (1-100)", "spending score"),
        ("NumWebPurchases", "num web purchases"),
        ("CustomerID", "customer id"),
        ("Year_Birth", "year birth"),
        ("annual_income", "annual income"),
        ("(k$)", "k"),
    ],
)
def test_readable_label_turns_headers_into_words(header, words):
    assert readable_label(header) == words


def test_bank_segments_are_named_by_the_columns_that_set_them_apart(bank):
    frame, labels = bank
    profile = _bank_profile(frame, labels)
    diffs = profile.std_diffs()
    for segment, offsets in BANK_DESIGN.items():
        strongest = diffs.loc[segment].abs().nlargest(3).index
        designed = {c for c, v in offsets.items() if abs(v) >= 2}
        assert set(strongest) == designed  # the data are as designed
        assert profile.names[segment].name == BANK_NAMES[segment]
        assert profile.names[segment].archetype is None
    # PURCHASES is away from mid in segment 2 but separates it less than PAYMENTS does.
    assert profile.names[2].levels["PURCHASES"] == "low"
    names = [n.name for n in profile.names.values()]
    assert len(set(names)) == len(names)
    assert not any("_" in name for name in names)


def test_distinguishing_columns_prefer_away_from_mid_then_larger_difference_then_order():
    config = dataclasses.replace(load_naming_config(None), max_name_parts=2)
    columns = ["a", "b", "c", "d"]
    levels = {"a": "mid", "b": "high", "c": "low", "d": "high"}
    assert distinguishing_columns(
        levels, columns, config, {"a": 3.0, "b": 0.5, "c": -0.9, "d": 0.8}
    ) == ["c", "d"]
    tied = {"a": 1.0, "b": 1.0, "c": -1.0, "d": 1.0}
    assert distinguishing_columns(levels, columns, config, tied) == ["b", "c"]
    assert distinguishing_columns(levels, ["d", "c", "b", "a"], config, tied) == ["d", "c"]


def test_name_from_profiled_lets_columns_that_were_not_features_name_segments(bank):
    frame, labels = bank
    features = ["BALANCE", "TENURE"]
    by_features = compute_profile(frame, labels, features, exclude_columns=("CUST_ID",))
    profiled = dataclasses.replace(load_naming_config(None), name_from="profiled")
    by_all = compute_profile(frame, labels, features, profiled, exclude_columns=("CUST_ID",))
    assert by_all.numeric_columns[:2] == features  # features first, then the others
    assert "cash advance" not in by_features.names[1].name
    assert by_all.names[1].name == BANK_NAMES[1]
    with pytest.raises(ConfigError, match="name_from: allowed values are features, profiled"):
        load_naming_config(
            {"default_words": {"low": "L", "mid": "M", "high": "H"}, "name_from": "x"}
        )


def test_bank_names_do_not_depend_on_label_ids(bank):
    frame, labels = bank
    renumbered = np.array([7, 3, 5, 1])[labels]
    first = _bank_profile(frame, labels)
    second = _bank_profile(frame, renumbered)
    assert {s: first.names[s].name for s in BANK_DESIGN} == {
        s: second.names[int(new)].name for s, new in enumerate([7, 3, 5, 1])
    }


def test_two_segments_alike_on_every_level_still_get_unique_readable_names(bank):
    frame, labels = bank
    heavy = frame[labels == 0].assign(PURCHASES=lambda f: f["PURCHASES"] + 100.0)  # +1 sd
    heavy_labels = np.full(len(heavy), 4)
    profile = _bank_profile(pd.concat([frame, heavy]), np.concatenate([labels, heavy_labels]))
    assert profile.names[0].levels == profile.names[4].levels
    assert profile.names[0].name == f"{BANK_NAMES[0]} (lower purchases)"
    assert profile.names[4].name == f"{BANK_NAMES[0]} (higher purchases)"
    names = [n.name for n in profile.names.values()]
    assert len(set(names)) == len(names)


def test_actions_come_from_what_columns_mean_and_name_their_trigger(bank, wholesale):
    frame, labels = bank
    bank_profile = _bank_profile(frame, labels)
    transactors = bank_profile.names[0].actions
    # strongest column first; one action per meaning; the trigger names column and level
    assert transactors[0].endswith("(high purchases frequency)")
    assert transactors[1].startswith("Premium ranges") and transactors[1].endswith(
        "(high purchases)"
    )
    assert transactors[-1] == "Target on low cash advance"  # no vocabulary action for it
    revolvers = bank_profile.names[1].actions
    assert revolvers[0].startswith("Offer an instalment plan")
    assert revolvers[0].endswith("(high cash advance transactions)")
    assert bank_profile.names[3].actions[0] == (
        "Onboarding series and a second-purchase offer for new customers (low tenure)"
    )
    lists = [set(n.actions) for n in bank_profile.names.values()]
    assert all(a != b for i, a in enumerate(lists) for b in lists[i + 1 :])

    shop_frame, shop_labels = wholesale
    shops = _wholesale_profile(shop_frame, shop_labels)
    for named in shops.names.values():  # spend by product: no column says what it means
        assert named.actions == (f"Target on {_joined_traits(named.name)}",)
    for profile in (bank_profile, shops):  # neither table has a recency-like column
        for named in profile.names.values():
            assert not [a for a in named.actions if any(w in a.lower() for w in NO_RECENCY_WORDS)]


def _joined_traits(name: str) -> str:
    parts = [p.lower() for p in name.split(", ")]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def test_win_back_is_suggested_only_when_the_table_has_a_recency_like_column():
    sample = generate_mall_sample()
    labels, segments = pd.factorize(sample["true_segment"], sort=True)
    careful = list(segments).index("careful_high_earners")
    features = ["annual_income", "spending_score"]
    without = compute_profile(sample, labels, features).names[careful]
    days = np.random.default_rng(3).integers(1, 400, len(sample))
    with_recency = compute_profile(
        sample.assign(DaysSinceLastPurchase=days), labels, features
    ).names[careful]
    assert without.name == with_recency.name == "Careful high earners"
    win_back = "Win-back of dormant accounts with a time-limited incentive"
    assert without.actions and not [a for a in without.actions if a.startswith(win_back)]
    assert f"{win_back} (high income, low spending)" in with_recency.actions


def test_action_requirements_are_columns_or_roles_matched_by_header_words():
    config = load_naming_config(None)
    assert config.supports("recency", ["Recency"])
    assert config.supports("recency", ["days_since_last_order"])
    assert not config.supports("recency", ["PURCHASES_FREQUENCY", "TENURE"])
    assert config.supports("CREDIT_LIMIT", ["CREDIT_LIMIT"])
    assert not config.supports("CREDIT_LIMIT", ["BALANCE"])
    words = {"default_words": {"low": "Low", "mid": "Mid", "high": "High"}}
    custom = load_naming_config(
        {
            **words,
            "default_actions": ["Always", {"text": "Only with limits", "requires": "CREDIT_LIMIT"}],
        }
    )
    assert custom.allowed(custom.default_actions, ["BALANCE"]) == ("Always",)
    assert custom.allowed(custom.default_actions, ["CREDIT_LIMIT"]) == (
        "Always",
        "Only with limits",
    )
    with pytest.raises(ConfigError, match=r"default_actions\[0\]: expected a text"):
        load_naming_config({**words, "default_actions": [{"txt": "typo"}]})


def test_generic_action_must_use_traits():
    with pytest.raises(ConfigError, match="generic_action: expected a text using {traits}"):
        load_naming_config(
            {"default_words": {"low": "L", "mid": "M", "high": "H"}, "generic_action": "Target"}
        )


def test_mall_rules_meet_the_raw_kaggle_headers():
    sample = generate_mall_sample()
    labels, segments = pd.factorize(sample["true_segment"], sort=True)
    raw = sample.rename(
        columns={
            "annual_income": "Annual Income (k$)",
            "spending_score": "Spending Score (1-100)",
            "age": "Age",
        }
    )
    profile = compute_profile(raw, labels, ["Annual Income (k$)", "Spending Score (1-100)"])
    named = {segments[s]: profile.names[s].name for s in profile.segments}
    assert named["careful_high_earners"] == "Careful high earners"
    assert named["young_impulsive_buyers"] == "Young big spenders"  # the rule on age met Age


def test_generic_vocabulary_is_a_naming_choice(make_config):
    composed = load_naming_config(make_config(["naming=generic"]).naming)
    assert composed == load_naming_config(GENERIC_NAMING_FILE)
    assert composed.archetypes == ()
    assert composed != load_naming_config(None)


def test_generic_vocabulary_names_mall_segments_by_their_columns():
    sample = generate_mall_sample()
    labels, segments = pd.factorize(sample["true_segment"], sort=True)
    profile = compute_profile(
        sample, labels, ["annual_income", "spending_score"], naming_cfg=GENERIC_NAMING_FILE
    )
    careful = profile.names[list(segments).index("careful_high_earners")]
    assert careful.archetype is None
    assert careful.name == "High annual income, low spending score"
    assert careful.actions == (
        "Entry offers and bundles on what they already buy to grow their spend "
        "(low spending score)",
        "Target on high annual income",
    )
    assert all(n.archetype is None for n in profile.names.values())


def test_marketing_table_uses_its_headers_and_recency_wording():
    design = {
        0: {"Income": 3.0, "MntWines": 3.5, "NumWebPurchases": 2.5},
        1: {"Recency": 3.5, "MntWines": -2.5, "NumWebPurchases": -2.0},
        2: {"Year_Birth": 3.0, "Income": -2.5, "Recency": -2.0},
    }
    columns = ["Income", "Recency", "MntWines", "NumWebPurchases", "Year_Birth"]
    frame, labels = _blocks(design, columns, n=60, seed=9)
    rng = np.random.default_rng(10)
    frame["Education"] = rng.choice(["Graduation", "PhD", "Master"], len(frame))
    frame["Marital_Status"] = rng.choice(["Married", "Single"], len(frame))
    profile = compute_profile(frame, labels, [*columns, "Education", "Marital_Status"])
    assert profile.split_columns == ["Education", "Marital_Status"]
    assert profile.names[0].name == "High income, high spend on wines, high number of web purchases"
    assert profile.names[1].name == "Lapsed, low spend on wines, low number of web purchases"
    assert profile.names[2].name == "Low income, recent, high year birth"
    markdown = profile_markdown(profile)
    assert "Marital_Status: " in markdown
    assert "gender" not in markdown.lower()


def test_wholesale_profile_markdown_and_report_render_coded_categories_as_splits(wholesale):
    frame, labels = wholesale
    profile = _wholesale_profile(frame, labels, {"Channel": {1: "Horeca", 2: "Retail"}})
    assert profile.numeric_columns == WHOLESALE
    assert profile.split_columns == ["Channel", "Channel_detail", "Region"]
    names = [n.name for n in profile.names.values()]
    assert len(set(names)) == len(names)
    assert profile.names[0].name == "High milk, high grocery, high detergents paper"
    assert not [n for n in names if "channel" in n.lower() or "region" in n.lower()]

    markdown = profile_markdown(profile)
    assert "| Detergents_Paper |" in markdown
    assert "## 0 · High milk, high grocery, high detergents paper" in markdown
    retail_channel = profile.table.loc[0, "Channel_Retail_share"]
    assert retail_channel == 1.0
    lift = 1.0 / (frame["Channel"] == 2).mean()  # segment share / all customers' share
    assert f"Channel: Retail 100% ({lift:.1f}x)\n" in markdown  # Channel_detail stays out
    assert f"Channel_detail: shop 100% ({lift:.1f}x)\n" in markdown
    assert "gender" not in markdown.lower()

    document = segments_document(profile)
    page = render_html(
        ReportData(
            run_id="r1",
            run_name="wholesale",
            experiment_id="0",
            params={},
            metrics={},
            tags={},
            start_time=None,
            table=profile.table,
            document=document,
        )
    )
    assert "<p>Channel: Horeca 0%, Retail 100%</p>" in page
    assert "High milk, high grocery, high detergents paper" in page
