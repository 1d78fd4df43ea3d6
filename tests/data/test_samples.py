import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from segexp.data import load_customers
from segexp.data.samples import MALL_COLUMNS as COLUMNS
from segexp.data.samples import SEGMENTS, generate_mall_sample


def test_sample_is_deterministic_and_shaped_like_the_mall_table():
    first, second = generate_mall_sample(), generate_mall_sample()
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == COLUMNS
    assert len(first) == 200
    assert first["customer_id"].is_unique and first["customer_id"].iloc[0] == "0001"
    assert set(first["gender"]) == {"Female", "Male"}
    assert first["age"].between(18, 70).all()
    assert first["annual_income"].between(15, 137).all()
    assert first["spending_score"].between(1, 99).all()
    assert set(first["true_segment"]) == {s.name for s in SEGMENTS}


def test_sample_seed_changes_the_draw():
    assert not generate_mall_sample(seed=1).equals(generate_mall_sample(seed=2))


def test_sample_segments_are_recoverable_by_kmeans():
    table = generate_mall_sample()
    points = StandardScaler().fit_transform(table[["annual_income", "spending_score"]])
    labels = KMeans(5, n_init=10, random_state=0).fit_predict(points)
    assert adjusted_rand_score(table["true_segment"], labels) > 0.9


def test_kaggle_file_loads_to_canonical_columns(make_config, mall_csv):
    cfg = make_config([f"data.path={mall_csv}"])
    table = load_customers(cfg.data)
    assert {"customer_id", "gender", "age", "annual_income", "spending_score"} <= set(
        table.frame.columns
    )
    assert table.frame["customer_id"].iloc[0] == "0001"
    assert len(table.frame) == 200
    assert pd.api.types.is_numeric_dtype(table.frame["annual_income"])
    assert table.label_column is None
    assert len(table.fingerprint) == 16
