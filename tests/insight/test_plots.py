"""Plots: every run and sweep figure is drawn, for every kind of segmentation."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

from segexp.data.samples import generate_mall_sample
from segexp.insight import plots


def _case(k, columns, noise=False):
    table = generate_mall_sample()
    features = table[columns]
    points = StandardScaler().fit_transform(features)
    if noise:
        labels = DBSCAN(eps=0.25, min_samples=6).fit_predict(points)
    else:
        labels = KMeans(k, n_init=4, random_state=0).fit_predict(points)
    scored = labels != -1
    per_customer = silhouette_samples(points[scored], labels[scored])
    return features, points, labels, per_customer, labels[scored]


CASES = [
    _case(3, ["annual_income", "spending_score"]),
    _case(7, ["age", "annual_income", "spending_score"]),
    _case(0, ["annual_income", "spending_score"], noise=True),
    _case(2, ["age", "spending_score"]),
]


def _render(folder, case, title):
    features, points, labels, per_customer, scored_labels = case
    plots.run_plots(folder, features, points, labels, per_customer, scored_labels, "", title)
    return {p.name: p.read_bytes() for p in sorted((folder / "plots").glob("*.png"))}


def test_metric_vs_k_marks_each_criterion(tmp_path):
    table = pd.DataFrame({"k": [2, 3, 4, 5], "inertia": [40.0, 20.0, 12.0, 10.0]})
    fig = plots.metric_vs_k(table, "inertia", "elbow", marks={"elbow": 3, "consensus": 3})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["elbow: k=3", "consensus: k=3"]
    assert plots.save(fig, tmp_path / "e.png").stat().st_size > 1000


@pytest.mark.parametrize("dpi", [60, 80])
def test_run_plots_writes_two_pngs_at_the_dpi(tmp_path, dpi):
    features, points, labels, per_customer, scored = CASES[1]
    plots.run_plots(tmp_path, features, points, labels, per_customer, scored, "", "t", dpi)
    for name in ("segments", "silhouette"):
        data = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        assert width == round(4.8 * dpi)
    assert np.isfinite(per_customer).all()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_run_plots_draw_every_case(tmp_path, case):
    files = _render(tmp_path, CASES[case], f"case {case}")
    assert set(files) == {"segments.png", "silhouette.png"}
    assert all(data.startswith(b"\x89PNG") for data in files.values())
