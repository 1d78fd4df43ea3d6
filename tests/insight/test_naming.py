"""Segment names: levels against the whole base, archetype rules, uniqueness, editable wording."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from segexp.data.samples import generate_mall_sample
from segexp.errors import ConfigError
from segexp.insight.naming import (
    DEFAULT_NAMING_FILE,
    load_naming_config,
    name_segments,
)
from segexp.insight.profiles import compute_profile

FEATURES = ["annual_income", "spending_score"]

# generating segment -> (expected levels, archetype name, descriptive name)
EXPECTED = {
    "average_customers": (
        {"annual_income": "mid", "spending_score": "mid"},
        "Average customers",
        "Average income, average spending",
    ),
    "careful_high_earners": (
        {"annual_income": "high", "spending_score": "low"},
        "Careful high earners",
        "High income, low spending",
    ),
    "affluent_big_spenders": (
        {"annual_income": "high", "spending_score": "high"},
        "Affluent big spenders",
        "High income, high spending",
    ),
    "young_impulsive_buyers": (
        {"annual_income": "low", "spending_score": "high", "age": "low"},
        "Young big spenders",
        "Low income, high spending",
    ),
    "frugal_low_earners": (
        {"annual_income": "low", "spending_score": "low"},
        "Frugal low earners",
        "Low income, low spending",
    ),
}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_mall_sample()


def _true_labels(sample: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    codes, names = pd.factorize(sample["true_segment"], sort=True)
    return codes, list(names)


def test_default_config_loads_from_file_and_from_composed_hydra_config(make_config):
    from_file = load_naming_config(DEFAULT_NAMING_FILE)
    composed = load_naming_config(make_config().naming)
    assert from_file == composed
    assert from_file.min_difference == 0.3
    assert "careful_high_earners" in [a.key for a in from_file.archetypes]
    assert all(a.actions for a in from_file.archetypes)
    # An empty naming config means the shipped defaults.
    assert load_naming_config({}) == from_file


def test_levels_need_ranks_mean_and_median_on_the_same_side():
    # x: 1..30; segment 3 holds one extreme customer (1000) among low values: its mean is
    # above all customers' but its ranks and median are below, so it is not "high".
    x = np.r_[np.arange(1.0, 31.0), [1000.0, 2.0, 2.5, 3.0]]
    labels = np.r_[np.repeat([0, 1, 2], 10), [3, 3, 3, 3]]
    frame = pd.DataFrame({"x": x})
    ranks = frame["x"].rank(pct=True)
    rank_diff = (ranks.groupby(labels).mean() - ranks.mean()) / ranks.std(ddof=0)
    means, medians = frame["x"].groupby(labels).mean(), frame["x"].groupby(labels).median()
    assert means[3] > x.mean() and medians[3] < np.median(x) and rank_diff[3] < 0
    # Segment 2 (21..30) ranks high, but the extreme customer lifts the mean of all
    # customers (43.3) above its mean (25.5): the words would disagree with the numbers.
    assert means[2] < x.mean() and rank_diff[2] > 1
    levels = compute_profile(frame, labels, ["x"]).table["x_level"]
    assert levels.tolist() == ["low", "mid", "mid", "mid"]
    without = compute_profile(frame[labels < 3], labels[labels < 3], ["x"]).table["x_level"]
    assert without.tolist() == ["low", "mid", "high"]


@pytest.mark.parametrize("segment", sorted(EXPECTED))
def test_each_generating_segment_gets_its_level_words(sample, segment):
    labels, names = _true_labels(sample)
    profile = compute_profile(sample, labels, FEATURES)
    named = profile.names[names.index(segment)]
    levels, archetype_name, description = EXPECTED[segment]
    assert {c: named.levels[c] for c in levels} == levels
    assert named.name == archetype_name
    assert named.description == description
    assert named.actions


def test_kmeans_k5_segments_get_the_generating_segments_names(sample):
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(sample[FEATURES])
    labels = KMeans(5, n_init=10, random_state=42).fit_predict(scaled)
    profile = compute_profile(sample, labels, FEATURES)
    majority = pd.crosstab(labels, sample["true_segment"]).idxmax(axis=1)
    got = {majority[s]: profile.names[s].name for s in profile.segments}
    assert got == {segment: spec[1] for segment, spec in EXPECTED.items()}


def test_names_are_reproducible_and_do_not_depend_on_label_ids(sample):
    labels, names = _true_labels(sample)
    first = compute_profile(sample, labels, FEATURES)
    shifted = compute_profile(sample, labels + 10, FEATURES)
    again = compute_profile(sample, labels, FEATURES)
    assert {s: n.name for s, n in first.names.items()} == {
        s - 10: n.name for s, n in shifted.names.items()
    }
    assert first.table.equals(again.table)


def test_two_segments_on_the_same_levels_get_unique_names(sample):
    labels, names = _true_labels(sample)
    careful = names.index("careful_high_earners")
    rows = np.flatnonzero(labels == careful)
    incomes = sample["annual_income"].to_numpy()[rows]
    split = labels.copy()
    split[rows[incomes > np.median(incomes)]] = 99  # richer half of the same archetype
    # without age, whose level now differs between the halves and would qualify them first
    profile = compute_profile(sample.drop(columns=["age"]), split, FEATURES)
    assert profile.names[careful].levels == profile.names[99].levels
    all_names = [n.name for n in profile.names.values()]
    assert len(set(all_names)) == len(all_names)
    assert profile.names[careful].name == "Careful high earners (lower income)"
    assert profile.names[99].name == "Careful high earners (higher income)"


def test_colliding_names_use_a_differing_level_then_gender_then_size_never_a_number():
    config = load_naming_config(None)
    same = {"annual_income": "mid", "spending_score": "mid"}
    levels = pd.DataFrame(
        [
            {**same, "age": "low"},
            {**same, "age": "high"},
            {**same, "age": "mid"},
            {**same, "age": "mid"},
            {**same, "age": "mid"},
        ],
        index=[0, 1, 2, 3, 4],
    )
    sizes = {0: 10, 1: 10, 2: 5, 3: 30, 4: 20}
    named = name_segments(levels, config, FEATURES, sizes)
    assert named[0].name == "Average customers (young)"
    assert named[1].name == "Average customers (older)"
    # 2, 3, 4 share every level and nothing else tells them apart: their sizes do.
    assert named[3].name == "Average customers (middle-aged, 30 customers)"
    assert named[4].name == "Average customers (middle-aged, 20 customers)"
    assert named[2].name == "Average customers (middle-aged, 5 customers)"
    assert not any("#" in n.name for n in named.values())

    pair = levels.loc[[2, 3]]
    shares = {2: {"Female": 0.8, "Male": 0.2}, 3: {"Female": 0.3, "Male": 0.7}}
    by_gender = name_segments(pair, config, FEATURES, sizes, gender_shares=shares)
    assert by_gender[2].name == "Average customers (mostly women)"
    assert by_gender[3].name == "Average customers (mostly men)"


def test_alike_segments_with_a_small_gap_are_told_apart_by_it_not_by_their_size():
    config = load_naming_config(None)
    same = {"annual_income": "mid", "spending_score": "mid", "age": "mid"}
    levels = pd.DataFrame([same, same, {**same, "annual_income": "high"}], index=[0, 1, 2])
    # 0 and 1: under relative_min_gap (0.25 sd) apart on every column
    diffs = pd.DataFrame(
        [{"annual_income": 0.05, "spending_score": 0.0, "age": 0.02},
         {"annual_income": -0.10, "spending_score": 0.01, "age": 0.0},
         {"annual_income": 1.2, "spending_score": 0.0, "age": 0.0}],
        index=[0, 1, 2],
    )  # fmt: skip
    named = name_segments(levels, config, FEATURES, {0: 35, 1: 35, 2: 30}, std_diffs=diffs)
    assert named[0].name != named[1].name
    assert "customers)" not in named[0].name and "customers)" not in named[1].name
    # the widest gap is income's: the segment above the other is the "higher" one
    assert "higher" in named[0].name and "income" in named[0].name
    assert "lower" in named[1].name and "income" in named[1].name


def test_descriptive_name_when_no_archetype_matches():
    words = {"default_words": {"low": "Low", "mid": "Mid", "high": "High"}}
    levels = pd.DataFrame([{"annual_income": "high", "spending_score": "low"}], index=[0])
    bare = name_segments(levels, load_naming_config(words), FEATURES, {0: 5})
    assert bare[0].archetype is None
    assert bare[0].name == "High annual income, low spending score"  # no labels: column names
    assert bare[0].actions == ()
    labelled = load_naming_config(
        {
            **words,
            "columns": {"annual_income": {"label": "income"}, "spending_score": {"label": "spend"}},
            "default_actions": ["Loyalty programme"],
        }
    )
    named = name_segments(levels, labelled, FEATURES, {0: 5})
    assert named[0].name == "High income, low spend"
    assert named[0].actions == ("Loyalty programme",)


def test_editing_the_vocabulary_file_changes_names_without_code(tmp_path, sample):
    edited = tmp_path / "naming.yaml"
    shutil.copy(DEFAULT_NAMING_FILE, edited)
    text = edited.read_text()
    text = text.replace("name: Careful high earners", "name: Cautious wealthy")
    text = text.replace("- Value-for-money promotions", "- Coupons every week, value-for-money")
    text = text.replace(
        "default_words: {low: Low, mid: Average, high: High}",
        "default_words: {low: Modest, mid: Typical, high: Top}",
    )
    edited.write_text(text)
    labels, names = _true_labels(sample)
    before = compute_profile(sample, labels, FEATURES)
    after = compute_profile(sample, labels, FEATURES, naming_cfg=edited)
    careful = names.index("careful_high_earners")
    frugal = names.index("frugal_low_earners")
    assert before.names[careful].name == "Careful high earners"
    assert after.names[careful].name == "Cautious wealthy"
    assert after.names[careful].description == "Top income, modest spending"
    assert after.names[frugal].actions[0].startswith("Coupons every week")
    assert after.table.loc[careful, "name"] == "Cautious wealthy"


def test_rules_need_every_column_they_name(sample):
    """Without age in the table, the young-spenders rule cannot match; the next one does."""
    labels, names = _true_labels(sample)
    profile = compute_profile(sample.drop(columns=["age"]), labels, FEATURES)
    assert profile.names[names.index("young_impulsive_buyers")].name == "Budget big spenders"


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            {"archetypes": [{"name": "X", "when": {"annual_income": "hgh"}}]},
            ["archetypes[0].when.annual_income", "low, mid, high", "'hgh'"],
        ),
        ({"levels": {"cuts": [0.3, 0.7]}}, ["levels.cuts", "no such key", "min_difference"]),
        ({"levels": {"min_difference": 0}}, ["levels.min_difference", "> 0"]),
        ({"qualifier_format": "{name}"}, ["qualifier_format", "{qualifier}", "'{name}'"]),
        ({"action_format": "{action}"}, ["action_format", "{trigger}", "'{action}'"]),
        (
            {"meanings": {"tenure": {"words": ["tenure"], "hi": "x"}}},
            ["meanings.tenure.hi", "no such key", "words, low and high"],
        ),
        ({"default_words": {"low": "Low"}}, ["default_words", "missing mid, high"]),
        (
            {"archetypes": [{"name": "A", "when": {}, "actions": [{"VIP": "offers"}]}]},
            ["archetypes[0].actions[0]", "expected a text", "quote texts that contain ': '"],
        ),
    ],
)
def test_bad_naming_config_is_a_one_line_config_error(edit, fragments):
    base = {"default_words": {"low": "Low", "mid": "Mid", "high": "High"}}
    with pytest.raises(ConfigError) as info:
        load_naming_config({**base, **edit})
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_naming_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist"):
        load_naming_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("archetypes:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_naming_config(broken)
    assert str(broken) in str(info.value) and "not valid YAML" in str(info.value)
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text(
        "default_words: {low: Low, mid: Mid, high: High}\n"
        "archetypes:\n  - name: A\n    when: {}\n    actions:\n      - VIP: early access\n"
    )
    with pytest.raises(ConfigError) as info:
        load_naming_config(unquoted)
    assert f"{unquoted}:archetypes[0].actions[0]" in str(info.value)
