"""Plots: every run and sweep figure is drawn, for every kind of segmentation, at deck
quality: pixel sizes, readable text, human titles, named legends off the data, centroids,
units, one marker per agreed k with a note for a criterion without one, a colorbar."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from matplotlib.text import Text
from omegaconf import OmegaConf
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

from segexp.data.samples import generate_mall_sample
from segexp.insight import plots, profiles
from segexp.model.selection import KSelection, select_k

CONFIG = Path(plots.__file__).resolve().parents[1] / "conf" / "config.yaml"
OLD_SIZE = (384, 288)  # px of every plot before: 4.8 x 3.6 in at 80 dpi


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
RUN_NAME = "kmeans-k5-standard-income_spending"


@pytest.fixture(scope="module")
def run():
    """A real k=5 fit of the sample on income and spending, its profile and names."""
    table = generate_mall_sample()
    columns = ["annual_income", "spending_score"]
    points = StandardScaler().fit_transform(table[columns])
    labels = KMeans(5, n_init=4, random_state=0).fit_predict(points)
    profile = profiles.compute_profile(table, labels, columns)
    return table[columns], points, labels, profile, profiles.segment_names(profile)


def _render(folder, case, title):
    features, points, labels, per_customer, scored_labels = case
    plots.run_plots(folder, features, points, labels, per_customer, scored_labels, "", title)
    return {p.name: p.read_bytes() for p in sorted((folder / "plots").glob("*.png"))}


def _extent(artist):
    return artist.get_window_extent(artist.figure.canvas.get_renderer())


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


# --- sizes and text -------------------------------------------------------------------


def _every_kind(run, tmp_path):
    """Plot kind -> figure, for every figure segexp saves."""
    features, points, labels, profile, names = run
    per_customer = silhouette_samples(points, labels)
    sweep = pd.DataFrame({"k": [2, 3, 4, 5, 6], "inertia": [90, 60, 30, 12, 10.0]})
    distances = np.sort(np.random.default_rng(0).random(200))
    return {
        "segments": plots.segments_scatter(features, points, labels, RUN_NAME, names),
        "segments_pca": plots.segments_scatter(*CASES[1][:3], "gmm-k7-robust-all_numeric"),
        "silhouette": plots.silhouette_diagram(per_customer, labels, RUN_NAME, names=names),
        "silhouette_missing": plots.silhouette_diagram(None, None, RUN_NAME, "one segment"),
        "elbow": plots.metric_vs_k(sweep, "inertia", "elbow: kmeans / standard / rfm", {}),
        "k_distance": plots.k_distance_figure(distances, 5, 0.4, 0.3, "dbscan-eps0.3-none-rfm"),
        "heatmap": profiles.profile_heatmap(profile),
        "snake": profiles.snake_plot(profile),
    }


def test_config_dpi_is_the_plots_default():
    assert OmegaConf.load(CONFIG).plots.dpi == plots.DEFAULT_DPI == 150


def test_saved_plots_have_twice_the_old_pixels(run, tmp_path):
    for kind, fig in _every_kind(run, tmp_path).items():
        path = plots.save(fig, tmp_path / f"{kind}.png", plots.DEFAULT_DPI)
        height, width = imread(path).shape[:2]
        if kind == "snake":  # 6.4 x 3.4 in (tests/insight/test_profiles.py pins its inches)
            assert (width, height) == (960, 510), kind
            continue
        assert width >= 2 * OLD_SIZE[0] and height >= 2 * OLD_SIZE[1], (kind, width, height)
        assert (width, height) >= (960, 720), (kind, width, height)


def test_every_text_is_at_least_9_points(run, tmp_path):
    for kind, fig in _every_kind(run, tmp_path).items():
        fig.canvas.draw()  # ticks exist once drawn
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert len(texts) >= 3, kind
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 9]
        assert not small, (kind, small)


@pytest.mark.parametrize("dpi", [60, 80])
def test_run_plots_writes_two_pngs_at_the_dpi(tmp_path, dpi):
    features, points, labels, per_customer, scored = CASES[1]
    plots.run_plots(tmp_path, features, points, labels, per_customer, scored, "", "t", dpi)
    for name in ("segments", "silhouette"):
        data = (tmp_path / "plots" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        assert height == round(plots.HEIGHT * dpi)
        assert width >= round(plots.WIDTH * dpi)
    assert np.isfinite(per_customer).all()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_run_plots_draw_every_case(tmp_path, case):
    files = _render(tmp_path, CASES[case], f"case {case}")
    assert set(files) == {"segments.png", "silhouette.png"}
    assert all(data.startswith(b"\x89PNG") for data in files.values())


# --- titles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, title",
    [
        (RUN_NAME, "K-Means, k=5 · standard scaling · income & spending"),
        (
            "gmm-k3-minmax-age_income_spending",
            "Gaussian mixture, k=3 · min-max scaling · age, income & spending",
        ),
        (
            "dbscan-eps0.3-min_samples5-robust-rfm",
            "DBSCAN, eps=0.3, min_samples=5 · robust scaling · recency, frequency & monetary",
        ),
        (
            "agglomerative-k4-none-all_numeric",
            "Agglomerative (Ward), k=4 · no scaling · all numeric columns",
        ),
        (
            "minibatch_kmeans-k6-standard-income_spending",
            "Mini-batch K-Means, k=6 · standard scaling · income & spending",
        ),
        (
            "elbow: kmeans / standard / income_spending",
            "Elbow: K-Means · standard scaling · income & spending",
        ),
        ("case 0", "case 0"),
        ("t", "t"),
    ],
)
def test_run_names_read_as_words(name, title):
    assert plots.human_title(name) == title


def test_figures_carry_the_human_title(run):
    features, points, labels, _, names = run
    fig = plots.segments_scatter(features, points, labels, RUN_NAME, names)
    assert fig.texts[0].get_text() == "K-Means, k=5 · standard scaling · income & spending"
    assert fig.texts[0].get_fontsize() >= 10


def test_a_long_title_stays_inside_the_figure():
    name = "dbscan-eps0.3-min_samples5-standard-age_income_spending"
    fig = plots.k_distance_figure(np.linspace(0, 1, 50), 5, 0.4, 0.3, name)
    fig.canvas.draw()
    title = _extent(fig.texts[0])
    assert title.x0 >= 0 and title.x1 <= fig.bbox.x1
    assert fig.texts[0].get_fontsize() >= 10


# --- the segments scatter -------------------------------------------------------------


def test_segments_legend_has_the_names_and_sits_off_the_data(run):
    features, points, labels, _, names = run
    fig = plots.segments_scatter(features, points, labels, RUN_NAME, names)
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert _legend_texts(legend) == [names[s] for s in sorted(names)]
    fig.canvas.draw()
    assert _extent(legend).x0 >= _extent(ax).x1  # right of the axes, nothing covered
    assert _extent(legend).x1 <= fig.bbox.x1


def test_noise_is_named_not_assigned_and_listed_last():
    features, points, labels, per_customer, scored = CASES[2]
    names = {int(s): f"Name {s}" for s in np.unique(labels) if s != -1}
    fig = plots.segments_scatter(features, points, labels, "dbscan-eps0.25-standard-x", names)
    texts = _legend_texts(fig.axes[0].get_legend())
    assert texts == [names[s] for s in sorted(names)] + ["Not assigned (noise)"]


def test_run_plots_take_the_names_from_the_runs_segments_json(run, tmp_path):
    _, _, _, profile, names = run
    profiles.write_profile_files(tmp_path, profile, make_plots=False)
    assert plots.segment_names_in(tmp_path) == names
    assert plots.segment_names_in(tmp_path / "missing") == {}


def test_one_centroid_marker_per_segment_at_its_mean(run):
    features, points, labels, _, names = run
    fig = plots.segments_scatter(features, points, labels, RUN_NAME, names)
    (centres,) = [c for c in fig.axes[0].collections if c.get_gid() == "centroids"]
    xy = features.to_numpy(dtype=float)
    expected = [xy[labels == s].mean(axis=0) for s in sorted(set(labels))]
    np.testing.assert_allclose(centres.get_offsets(), expected)
    assert len(centres.get_offsets()) == len(names) == 5
    assert centres.get_linewidths()[0] > 0  # an edge: visible on top of its points


def test_noise_gets_no_centroid():
    features, points, labels, _, _ = CASES[2]
    fig = plots.segments_scatter(features, points, labels, "t")
    (centres,) = [c for c in fig.axes[0].collections if c.get_gid() == "centroids"]
    assert len(centres.get_offsets()) == len(set(labels) - {-1})


def test_axes_carry_units_or_the_explained_variance(run):
    features, points, labels, _, names = run
    ax = plots.segments_scatter(features, points, labels, RUN_NAME, names).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("annual income (k$)", "spending score (1-100)")
    pca = plots.segments_scatter(*CASES[1][:3], "t").axes[0]
    assert re.fullmatch(r"PC1 \(\d+% of variance\)", pca.get_xlabel())
    assert re.fullmatch(r"PC2 \(\d+% of variance\)", pca.get_ylabel())
    assert plots.axis_label("Annual Income (k$)") == "annual income (k$)"
    assert plots.axis_label("CashAdvanceTrx") == "cash advance trx"


def test_silhouette_legend_names_the_segments_off_the_data(run):
    features, points, labels, _, names = run
    fig = plots.silhouette_diagram(silhouette_samples(points, labels), labels, "t", names=names)
    legend = fig.axes[0].get_legend()
    assert _legend_texts(legend) == [names[s] for s in sorted(names)]
    fig.canvas.draw()
    assert not _overlap(_extent(legend), _extent(fig.axes[0]))


# --- k selection ----------------------------------------------------------------------

SWEEP = pd.DataFrame(
    {
        "k": [2, 3, 4, 5, 6, 7],
        "inertia": [400.0, 250.0, 160.0, 60.0, 52.0, 47.0],
        "silhouette": [0.40, 0.45, 0.50, 0.60, 0.55, 0.50],
        "calinski_harabasz": [100.0, 120.0, 150.0, 170.0, 180.0, 175.0],
        "davies_bouldin": [0.9, 0.8, 0.7, 0.5, 0.6, 0.7],
        "gap": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # keeps rising: the gap rule finds no k
        "gap_sk": [0.01] * 6,
    }
)


def _k_legend(fig):
    return fig.axes[0].get_legend()


def _marks(fig):
    return [line for line in fig.axes[0].get_lines() if line.get_gid() == "k_mark"]


def test_agreeing_criteria_share_one_marker_that_lists_them():
    marks = {"elbow": 5, "silhouette": 5, "gap": 5, "calinski_harabasz": 3}
    fig = plots.metric_vs_k(SWEEP, "inertia", "elbow", marks=marks)
    assert _legend_texts(_k_legend(fig)) == [
        "k=3: Calinski-Harabasz",
        "k=5: elbow, silhouette, gap",
    ]
    lines = _marks(fig)
    assert [list(line.get_xdata()) for line in lines] == [[3], [5]]
    assert list(lines[1].get_ydata()) == [60.0]  # on the curve at its k
    assert len({line.get_markerfacecolor() for line in lines}) == 2
    assert len({line.get_marker() for line in lines}) == 2


def test_consensus_is_listed_after_the_criteria_that_made_it():
    fig = plots.metric_vs_k(SWEEP, "silhouette", "t", marks={"consensus": 5, "elbow": 5})
    assert _legend_texts(_k_legend(fig)) == ["k=5: elbow, consensus"]
    assert len(_marks(fig)) == 1


def test_the_legend_of_k_marks_is_below_the_axes():
    fig = plots.metric_vs_k(SWEEP, "inertia", "t", marks={"elbow": 5, "silhouette": 4})
    fig.canvas.draw()
    assert _extent(_k_legend(fig)).y1 <= _extent(fig.axes[0]).y0
    assert _extent(_k_legend(fig)).y1 <= _extent(fig.axes[0].xaxis.label).y0  # under it


def test_a_criterion_without_a_k_gets_a_visible_note():
    selection = select_k(SWEEP)  # the real rules: the gap keeps rising
    assert "gap" in selection.undefined and "gap" not in selection.recommended
    fig = plots.metric_vs_k(SWEEP, "silhouette", "silhouette vs k: a / standard / b", selection)
    notes = [t for t in fig.texts if t.get_gid() == "no_k_note"]
    assert [t.get_text() for t in notes] == [
        "no k: gap statistic (the gap keeps rising up to the largest k swept; sweep larger k)"
    ]
    fig.canvas.draw()
    note = _extent(notes[0])
    assert fig.bbox.x0 <= note.x0 and note.x1 <= fig.bbox.x1 and note.y0 >= fig.bbox.y0
    assert not _overlap(note, _extent(fig.axes[0]))
    assert not _overlap(note, _extent(_k_legend(fig)))
    assert notes[0].get_fontsize() >= 9


def test_notes_wrap_long_reasons():
    reason = "the elbow needs inertia at 3 or more k values; got 2 " * 3
    marks = KSelection(recommended={"silhouette": 5}, undefined={"elbow": reason.strip()})
    fig = plots.metric_vs_k(SWEEP, "inertia", "t", marks=marks)
    (text,) = [t.get_text() for t in fig.texts if t.get_gid() == "no_k_note"]
    assert text.startswith("no k: elbow (the elbow needs")
    assert "\n    " in text  # wrapped inside the figure's width, continued indented
    assert all(plots.text_width(line, 9) <= plots.WIDTH - 0.4 for line in text.split("\n"))
    assert fig.get_figheight() >= plots.HEIGHT


def test_no_marks_draw_the_curve_alone():
    fig = plots.metric_vs_k(SWEEP, "inertia", "t")
    assert _k_legend(fig) is None and not _marks(fig)
    assert not [t for t in fig.texts if t.get_gid() == "no_k_note"]


# --- profile figures ------------------------------------------------------------------


def test_heatmap_has_a_labelled_colorbar_and_the_raw_means(run):
    _, _, _, profile, _ = run
    fig = profiles.profile_heatmap(profile)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "difference from all customers (sd)"
    cells = {t.get_text() for t in fig.axes[0].texts}
    for segment in profile.segments:
        assert f"{profile.table.loc[segment, 'annual_income_mean']:.1f}" in cells
    assert f"{profile.base['columns']['spending_score']['mean']:.1f}" in cells  # all customers
    image = fig.axes[0].images[0]
    assert image.get_array().shape == (len(profile.segments) + 1, len(profile.numeric_columns))


def test_heatmap_of_a_wide_table_shows_readable_rotated_columns():
    table = generate_mall_sample()
    rng = np.random.default_rng(3)
    for i in range(30):
        table[f"PurchasesInstallmentsFrequency{i}"] = rng.normal(size=len(table))
    labels = KMeans(4, n_init=2, random_state=0).fit_predict(
        StandardScaler().fit_transform(table[["annual_income", "spending_score"]])
    )
    profile = profiles.compute_profile(table, labels, ["annual_income", "spending_score"])
    fig = profiles.profile_heatmap(profile)
    columns = fig.axes[0].get_xticklabels()
    assert len(columns) == 20  # the features, then the columns that differ most
    assert columns[0].get_text() == "annual income (k$)"
    assert any(t.get_text().startswith("purchases installments frequency") for t in columns)
    assert {t.get_rotation() for t in columns} == {35.0}
    assert any("20 of 33 columns shown" in t.get_text() for t in fig.texts)
    fig.canvas.draw()
    assert _extent(columns[0]).y1 <= _extent(fig.axes[0]).y0  # under the cells

    snake = profiles.snake_plot(profile)  # 6.4 x 3.4 in: fewer columns, labels cut to fit
    labels = snake.axes[0].get_xticklabels()
    assert len(labels) == 12
    assert any("…" in t.get_text() and t.get_text().endswith("*") for t in labels)
    snake.canvas.draw()
    for label in labels:
        box = _extent(label)
        assert box.x0 >= 0 and box.y0 >= 0, label.get_text()


def test_snake_plot_keeps_its_legend_off_the_lines(run):
    _, _, _, profile, names = run
    fig = profiles.snake_plot(profile)
    legend = fig.axes[0].get_legend()
    assert _legend_texts(legend) == [f"{s} · {names[s]}" for s in sorted(names)]
    fig.canvas.draw()
    assert _extent(legend).x0 >= _extent(fig.axes[0]).x1
