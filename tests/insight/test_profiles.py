"""Segment profiles: numbers equal pandas' own groupby results; files a run logs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from segexp.data.samples import generate_mall_sample
from segexp.insight import plots
from segexp.insight.profiles import (
    HEATMAP_PNG,
    PROFILE_CSV,
    PROFILE_MD,
    SEGMENTS_JSON,
    SNAKE_PNG,
    compute_profile,
    segment_names,
    write_profile_files,
    write_profile_plots,
)

FEATURES = ["annual_income", "spending_score"]
NUMERIC = ["annual_income", "spending_score", "age"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_mall_sample()


@pytest.fixture(scope="module")
def noisy_labels(sample) -> np.ndarray:
    """Generating segments as labels, with every 9th customer marked as DBSCAN noise."""
    labels = pd.factorize(sample["true_segment"], sort=True)[0]
    labels[::9] = -1
    return labels


def test_profile_numbers_equal_pandas_groupby(sample, noisy_labels):
    profile = compute_profile(sample, noisy_labels, FEATURES)
    table = profile.table
    grouped = sample[NUMERIC].groupby(noisy_labels)
    order = [*range(5), -1]
    assert list(table.index) == order  # noise last
    assert profile.numeric_columns == NUMERIC  # features first, then other numeric columns

    sizes = pd.Series(noisy_labels).value_counts()
    np.testing.assert_array_equal(table["size"], sizes.reindex(order))
    np.testing.assert_allclose(table["share"], sizes.reindex(order) / len(sample))
    base_mean, base_std = sample[NUMERIC].mean(), sample[NUMERIC].std()
    for column in NUMERIC:
        expected = {
            "mean": grouped[column].mean(),
            "median": grouped[column].median(),
            "q1": grouped[column].quantile(0.25),
            "q3": grouped[column].quantile(0.75),
            "std_diff": (grouped[column].mean() - base_mean[column]) / base_std[column],
            "ratio": grouped[column].mean() / base_mean[column],
        }
        for stat, values in expected.items():
            np.testing.assert_allclose(
                table[f"{column}_{stat}"], values.reindex(order), rtol=1e-12, err_msg=stat
            )
    gender = pd.crosstab(noisy_labels, sample["gender"], normalize="index").reindex(order)
    for value in ("Female", "Male"):
        np.testing.assert_allclose(table[f"gender_{value}_share"], gender[value], rtol=1e-12)
    assert profile.base["size"] == len(sample)
    assert profile.base["columns"]["age"]["median"] == pytest.approx(sample["age"].median())
    assert profile.base["shares"]["gender"]["Female"] == pytest.approx(
        (sample["gender"] == "Female").mean()
    )


def test_noise_is_not_assigned_with_its_share_and_no_profile_or_actions(
    tmp_path, sample, noisy_labels
):
    profile = compute_profile(sample, noisy_labels, FEATURES)
    noise = profile.names[-1]
    assert (noise.name, noise.archetype, noise.description) == ("Not assigned", None, "")
    assert noise.levels == {} and noise.actions == ()
    row = profile.table.loc[-1]
    assert (row["size"], row["share"]) == (23, pytest.approx(0.115))
    assert (row["archetype"], row["description"], row["actions"]) == ("", "", "")
    assert all(row[f"{c}_level"] == "" for c in NUMERIC)  # no level words for noise

    write_profile_files(tmp_path, profile, make_plots=False)
    markdown = (tmp_path / PROFILE_MD).read_text()
    assert "Not assigned: 23 customers (11.5%), left out of every segment" in markdown
    assert "| -1 |" not in markdown and "## -1" not in markdown
    assert "Unassigned" not in markdown and "Not a segment: leave out" not in markdown
    assert markdown.count("Suggested actions:") == 5  # the five segments, not the noise
    document = json.loads((tmp_path / SEGMENTS_JSON).read_text())
    (entry,) = [s for s in document["segments"] if s["id"] == -1]
    assert entry["name"] == "Not assigned" and entry["share"] == pytest.approx(0.115)
    assert (entry["levels"], entry["actions"], entry["description"]) == ({}, [], "")
    assert document["not_assigned"]["text"] == "Not assigned: 23 customers (11.5%)"
    assert plots.segment_names_in(tmp_path)[-1] == "Not assigned"  # what predict names it


def test_without_gender_column_there_is_no_split(sample):
    labels = pd.factorize(sample["true_segment"], sort=True)[0]
    profile = compute_profile(sample.drop(columns=["gender"]), labels, FEATURES)
    assert profile.split_columns == []
    assert not [c for c in profile.table.columns if c.endswith("_share") and c != "share"]


def test_categorical_feature_gets_a_value_split_not_numeric_stats(sample):
    labels = pd.factorize(sample["true_segment"], sort=True)[0]
    profile = compute_profile(sample, labels, [*FEATURES, "gender"], gender_column=None)
    assert profile.split_columns == ["gender"]
    assert "gender_mean" not in profile.table.columns
    shares = profile.table[["gender_Female_share", "gender_Male_share"]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)


def test_write_profile_files_writes_every_file(tmp_path, sample, noisy_labels):
    profile = compute_profile(sample, noisy_labels, FEATURES, None)
    write_profile_files(tmp_path, profile, dpi=80)
    names = segment_names(profile)
    for relative in (PROFILE_CSV, PROFILE_MD, SEGMENTS_JSON, HEATMAP_PNG, SNAKE_PNG):
        assert (tmp_path / relative).is_file(), relative

    written = pd.read_csv(tmp_path / PROFILE_CSV, index_col="segment")
    direct = compute_profile(sample, noisy_labels, FEATURES).table
    assert list(written.index) == list(direct.index)
    np.testing.assert_allclose(written["annual_income_mean"], direct["annual_income_mean"])
    assert written["name"].tolist() == [names[s] for s in written.index]

    document = json.loads((tmp_path / SEGMENTS_JSON).read_text())
    assert [s["id"] for s in document["segments"]] == list(written.index)
    for segment in document["segments"]:
        assert {"id", "name", "archetype", "actions", "levels", "size"} <= set(segment)
        assert segment["name"] == names[segment["id"]]
    assert plots.segment_names_in(tmp_path) == names
    assert len(set(names.values())) == len(names)

    markdown = (tmp_path / PROFILE_MD).read_text()
    for segment, name in names.items():
        assert (f"· {name}" in markdown) == (segment != -1)  # noise: a line, not a section
    assert "| all | All customers | 200 (100%) |" in markdown
    assert "Suggested actions:" in markdown

    heatmap = imread(tmp_path / HEATMAP_PNG)
    snake = imread(tmp_path / SNAKE_PNG)
    assert heatmap.ndim == 3 and heatmap.shape[0] > 100 and heatmap.shape[1] > 300
    assert snake.shape[:2] == (round(3.4 * 80), round(6.4 * 80))  # dpi 80


def test_write_profile_files_can_skip_plots(tmp_path, sample):
    labels = pd.factorize(sample["true_segment"], sort=True)[0]
    profile = compute_profile(sample, labels, FEATURES, {})
    write_profile_files(tmp_path, profile, make_plots=False)
    assert (tmp_path / PROFILE_CSV).is_file()
    assert not (tmp_path / "plots").exists()
    write_profile_plots(folder=tmp_path, profile=profile)  # the deferred-task form
    assert imread(tmp_path / HEATMAP_PNG).shape[1] > 300
    assert imread(tmp_path / SNAKE_PNG).shape[1] > 300


def test_labels_must_align_with_rows(sample):
    with pytest.raises(ValueError, match="labels has 3 entries for 200 customer rows"):
        compute_profile(sample, np.array([0, 1, 0]), FEATURES)
