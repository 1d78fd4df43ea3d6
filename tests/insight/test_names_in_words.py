"""Names, categories and actions people can use (issue 21.3, 21.5, 21.7) on built tables.

Unique names that read as plain words (no '#', no header jargon); coded values by their
labels; a 0/1 column as a rate against all customers; categories as top values with
their lift; actions that name the column and level that triggered them, from a vocabulary
of what columns mean, never the same list for segments whose levels differ.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import mall_data_cfg
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from segexp.data import load_customers
from segexp.data.features import resolve_features
from segexp.insight.naming import DEFAULT_NAMING_FILE, load_naming_config
from segexp.insight.profiles import compute_profile, profile_markdown, segments_document
from tests import tables

CONFIG = load_naming_config(None)
CHANNELS = {"Channel": {1: "Horeca", 2: "Retail"}}
JARGON = re.compile(r"\b(mnt|prc|trx|num|freq|qty|amt)\b|_|#", re.IGNORECASE)


def _kmeans(frame: pd.DataFrame, columns: list[str], k: int) -> np.ndarray:
    values = frame[columns].astype(float)
    scaled = StandardScaler().fit_transform(values.fillna(values.median()))
    return KMeans(k, n_init=10, random_state=0).fit_predict(scaled)


@pytest.fixture(scope="module")
def wholesale(tmp_path_factory):
    """The wholesale customers table loaded as a run loads it, segmented on its defaults."""
    path = tables.wholesale_customers(tmp_path_factory.mktemp("wholesale"))
    table = load_customers(mall_data_cfg(path=str(path), value_labels=CHANNELS))
    _, features = resolve_features("default", "default", table)
    labels = _kmeans(table.frame, features, 4)
    profile = compute_profile(
        table.frame,
        labels,
        features,
        categorical_columns=table.categorical,
        value_labels=CHANNELS,
    )
    return table, features, labels, profile


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    frame = pd.read_csv(tables.card_jargon(tmp_path_factory.mktemp("card")))
    labels = _kmeans(frame, tables.CARD_JARGON, 4)
    profile = compute_profile(frame, labels, tables.CARD_JARGON, exclude_columns=("CUST_ID",))
    return frame, labels, profile


def _traits_named(action: str) -> list[str]:
    """The traits an action says triggered it: '... (high cash advance)' or 'Target on a and b'."""
    if action.startswith("Target on "):
        return re.split(r", | and ", action.removeprefix("Target on "))
    trigger = re.search(r"\(([^()]*)\)$", action)
    assert trigger, f"action names no trigger: {action!r}"
    return trigger.group(1).split(", ")


def _check_actions(profile) -> None:
    """Every action names columns at the segment's own levels; segments whose levels differ
    never share an action list."""
    defaults = {a.text for a in CONFIG.default_actions} | {CONFIG.bulk_action}
    segments = [s for s in profile.segments if s != -1]
    for s in segments:
        named = profile.names[s]
        traits = {CONFIG.trait(c, lv) for c, lv in named.levels.items()}
        for action in named.actions:
            if action in defaults:
                assert all(lv == "mid" for lv in named.levels.values()) or len(named.actions) == 1
                continue
            assert set(_traits_named(action)) <= traits, (action, named.levels)
    for i, a in enumerate(segments):
        for b in segments[i + 1 :]:
            first, second = profile.names[a], profile.names[b]
            if first.levels != second.levels:
                assert set(first.actions) != set(second.actions), (first.name, second.name)


def test_wholesale_names_are_unique_words_and_use_derived_columns(wholesale):
    table, features, labels, profile = wholesale
    assert features[-2:] == ["tenure", "age"]  # from Customer_Since and Year_Birth
    names = [n.name for n in profile.names.values()]
    assert len(set(names)) == len(names)
    assert not [n for n in names if JARGON.search(n)]
    _check_actions(profile)


def test_wholesale_codes_read_as_labels_with_their_lift(wholesale):
    table, _, labels, profile = wholesale
    frame = table.frame
    markdown = profile_markdown(profile)
    assert "Channel: 1" not in markdown and "Channel: 2" not in markdown
    retail_all = float((frame["Channel"] == 2).mean())
    retail_rows = (frame["Channel"] == 2).groupby(labels).mean()
    top = int(retail_rows.idxmax())  # the most retail segment
    share = float(retail_rows[top])
    text = segments_document(profile)["segments"][profile.segments.index(top)]["categories"]
    assert text["Channel"].startswith(f"Retail {share:.0%} ({share / retail_all:.1f}x)")
    assert f"Channel: {text['Channel']}" in markdown
    assert profile.base["shares"]["Channel"] == pytest.approx(
        {"Horeca": 1 - retail_all, "Retail": retail_all}
    )


def test_zero_one_response_reads_as_a_rate_against_all_customers(wholesale):
    table, _, labels, profile = wholesale
    response = table.frame["Response"]
    overall = response.mean()
    assert profile.flag_columns == ["Response"]
    document = segments_document(profile)
    assert document["flag_columns"] == ["Response"]
    for entry in document["segments"]:
        rate = response[labels == entry["id"]].mean()
        assert entry["categories"]["Response"] == f"{rate:.0%} vs {overall:.0%} overall"
        sd = response.std(ddof=0)
        level = (
            "high" if rate - overall >= 0.3 * sd else "low" if overall - rate >= 0.3 * sd else "mid"
        )
        assert entry["levels"]["Response"] == level
    markdown = profile_markdown(profile)
    assert f"vs {overall:.0%} overall" in markdown
    assert "Response: 0 " not in markdown  # never "85% 0"
    responders = [e for e in document["segments"] if e["levels"]["Response"] == "high"]
    assert responders and all(
        any(a.endswith("(high response)") for a in e["actions"]) for e in responders
    )


def test_the_words_around_rates_and_lists_come_from_the_naming_config(wholesale):
    """The sentence frame stays in the config's language: a rate and a list's last item."""
    table, features, labels, _ = wholesale
    spanish = {
        "rate_format": "{rate} frente a {overall} en total",
        "list_format": "{items} y {last}",
    }
    profile = compute_profile(
        table.frame,
        labels,
        features,
        {**yaml.safe_load(DEFAULT_NAMING_FILE.read_text()), **spanish},
        categorical_columns=table.categorical,
        value_labels=CHANNELS,
    )
    rates = [e["categories"]["Response"] for e in segments_document(profile)["segments"]]
    assert all(" frente a " in r and r.endswith(" en total") and " vs " not in r for r in rates)
    targeting = [a for n in profile.names.values() for a in n.actions if "," in a or " y " in a]
    lists = [a for a in targeting if a.startswith("Target on ")]
    assert lists and all(" y " in a and " and " not in a for a in lists), lists


def test_card_jargon_headers_read_as_plain_words(card):
    _, _, profile = card
    names = [n.name for n in profile.names.values()]
    assert len(set(names)) == len(names)
    assert not [n for n in names if JARGON.search(n)], names
    text = " ".join(names + [a for n in profile.names.values() for a in n.actions])
    assert "spend on wines" in text or "share of full payment" in text
    assert "trx" not in text.lower() and "mnt" not in text.lower()


def test_card_actions_follow_what_each_column_means(card):
    frame, labels, profile = card
    _check_actions(profile)
    by_level = {s: profile.names[s].levels for s in profile.segments}
    cash = [s for s, lv in by_level.items() if lv["CASH_ADVANCE"] == "high"]
    assert cash
    for s in cash:
        advance = [a for a in profile.names[s].actions if a.startswith("Offer an instalment plan")]
        assert advance and re.search(r"\(high cash advance( transactions)?\)$", advance[0])
    for s, lv in by_level.items():
        if "high" not in lv.values() or lv["CASH_ADVANCE"] != "high":
            assert not [a for a in profile.names[s].actions if "instalment plan" in a]
    payers = [s for s, lv in by_level.items() if lv["PRC_FULL_PAYMENT"] == "high"]
    assert payers and all(
        any(a.endswith("(high share of full payment)") for a in profile.names[s].actions)
        for s in payers
    )


def test_display_labels_rename_columns_by_config(card):
    frame, labels, _ = card
    raw = yaml.safe_load(DEFAULT_NAMING_FILE.read_text())
    raw["columns"]["MntWines"] = {"label": "wine spend"}
    profile = compute_profile(
        frame, labels, tables.CARD_JARGON, load_naming_config(raw), exclude_columns=("CUST_ID",)
    )
    text = " ".join(n.name for n in profile.names.values())
    assert "wine spend" in text and "spend on wines" not in text


SHAPES = {
    "bank_card_usage": (tables.bank_card_usage, ","),
    "wholesale": (tables.wholesale, ","),
    "wholesale_customers": (tables.wholesale_customers, ","),
    "card_jargon": (tables.card_jargon, ","),
    "marketing_campaign": (tables.marketing_campaign, "\t"),
    "skewed_money": (tables.skewed_money, ","),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_random_segmentations_get_unique_names_and_distinct_actions(tmp_path, shape):
    build, sep = SHAPES[shape]
    frame = pd.read_csv(build(tmp_path), sep=sep)
    ids = {"customer_id", "ID", "CUST_ID"}
    columns = [
        str(c)
        for c in frame.columns
        if c not in ids and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 2
    ]
    flags = [str(c) for c in frame.columns if frame[c].nunique() == 2]
    rng = np.random.default_rng(sum(map(ord, shape)))
    for _ in range(25):
        k = int(rng.integers(2, 9))
        score = frame[columns].rank(pct=True).to_numpy() @ rng.normal(0, 1, len(columns))
        labels = np.searchsorted(np.quantile(score, np.sort(rng.random(k - 1))), score)
        profile = compute_profile(
            frame, labels, columns, categorical_columns=flags, exclude_columns=tuple(ids)
        )
        names = [n.name for n in profile.names.values()]
        assert len({n.casefold() for n in names}) == len(names), names
        assert not [n for n in names if "#" in n]
        _check_actions(profile)
