"""Plots: reusing one figure per kind draws exactly what a fresh figure draws."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

from segexp import plots
from segexp.sample import generate_mall_sample


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


def test_reused_figures_draw_the_same_pixels_as_fresh_ones(tmp_path, monkeypatch):
    fresh = []
    for i, case in enumerate(CASES):
        plots._KEPT.clear()  # a new figure for every plot
        fresh.append(_render(tmp_path / f"fresh{i}", case, f"case {i}"))
    plots._KEPT.clear()
    for i, case in enumerate(CASES):  # each figure reused after the previous case
        reused = _render(tmp_path / f"reused{i}", case, f"case {i}")
        assert reused.keys() == fresh[i].keys() == {"segments.png", "silhouette.png", "profile.png"}
        for name, data in reused.items():
            assert data == fresh[i][name], f"case {i}: {name} differs when the figure is reused"


def test_figures_outside_the_reuse_block_are_new_objects():
    features, points, labels, *_ = CASES[0]
    first = plots.segments_scatter(features, points, labels, "a")
    second = plots.segments_scatter(features, points, labels, "b")
    assert first is not second


def test_metric_vs_k_marks_each_criterion(tmp_path):
    table = pd.DataFrame({"k": [2, 3, 4, 5], "inertia": [40.0, 20.0, 12.0, 10.0]})
    fig = plots.metric_vs_k(table, "inertia", "elbow", marks={"elbow": 3, "consensus": 3})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["elbow: k=3", "consensus: k=3"]
    assert plots.save(fig, tmp_path / "e.png").stat().st_size > 1000


@pytest.mark.parametrize("dpi", [60, 80])
def test_run_plots_writes_three_pngs(tmp_path, dpi):
    features, points, labels, per_customer, scored = CASES[1]
    plots.run_plots(tmp_path, features, points, labels, per_customer, scored, "", "t", dpi)
    for name in ("segments", "silhouette", "profile"):
        data = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        assert width == round(4.8 * dpi)
    assert np.isfinite(per_customer).all()


def test_reused_profile_figures_draw_the_same_pixels(tmp_path):
    from segexp.profiles import compute_profile, write_profile_plots

    table = generate_mall_sample()
    cases = [
        (c[2], cols)
        for c, cols in zip(
            CASES,
            [
                ["annual_income", "spending_score"],
                ["age", "annual_income", "spending_score"],
                ["annual_income", "spending_score"],
                ["age", "spending_score"],
            ],
            strict=True,
        )
    ]

    def render(folder, labels, columns):
        folder.mkdir(parents=True)
        write_profile_plots(folder, compute_profile(table, labels, columns, {}))
        return {p.name: p.read_bytes() for p in sorted((folder / "plots").glob("*.png"))}

    fresh = []
    for i, (labels, columns) in enumerate(cases):
        plots._KEPT.clear()
        fresh.append(render(tmp_path / f"fresh{i}", labels, columns))
    plots._KEPT.clear()
    for i, (labels, columns) in enumerate(cases):
        reused = render(tmp_path / f"reused{i}", labels, columns)
        assert reused.keys() == {"profile_heatmap.png", "snake.png"}
        for name, data in reused.items():
            assert data == fresh[i][name], f"case {i}: {name} differs when the figure is reused"


def test_reused_metric_vs_k_draws_the_same_pixels(tmp_path):
    tables = [
        (pd.DataFrame({"k": [2, 3, 4, 5, 6], "inertia": [50.0, 30, 18, 15, 13]}), {"elbow": 4}),
        (pd.DataFrame({"k": [3, 5, 7], "inertia": [9.0, 4, 3]}), {"elbow": 5, "consensus": 5}),
    ]

    def draw(folder):
        for i, (table, marks) in enumerate(tables):
            fig = plots.metric_vs_k(table, "inertia", f"t{i}", marks=marks)
            plots.save(fig, folder / f"{i}.png")
        return [(folder / f"{i}.png").read_bytes() for i in range(len(tables))]

    fresh = draw(tmp_path / "fresh")
    plots._KEPT.clear()
    with plots.reused_figures():
        reused = draw(tmp_path / "reused")
    assert reused == fresh
