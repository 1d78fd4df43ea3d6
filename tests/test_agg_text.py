"""The caching Agg canvas draws exactly the pixels of matplotlib's own canvas."""

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import StandardScaler

from segexp import agg_text, plots
from segexp.profiles import compute_profile, profile_heatmap, snake_plot
from segexp.sample import generate_mall_sample

pytestmark = pytest.mark.skipif(
    not agg_text.SUPPORTED, reason="this matplotlib version renders text without the caches"
)


def _png(fig, canvas_class) -> bytes:
    canvas_class(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _figures():
    table = generate_mall_sample()
    columns = ["age", "annual_income", "spending_score"]
    points = StandardScaler().fit_transform(table[columns])
    labels = KMeans(6, n_init=4, random_state=0).fit_predict(points)
    profile = compute_profile(table, labels, columns, {})
    elbow = pd.DataFrame({"k": [2, 3, 4, 5], "inertia": [40.0, 20.0, 12.0, 10.0]})
    yield "scatter", lambda: plots.segments_scatter(table[columns], points, labels, "kmeans-k6")
    yield (
        "silhouette",
        lambda: plots.silhouette_diagram(silhouette_samples(points, labels), labels, "kmeans-k6"),
    )
    yield "profile", lambda: plots.segment_profile_bars(table[columns], labels, "kmeans-k6")
    yield "heatmap", lambda: profile_heatmap(profile)
    yield "snake", lambda: snake_plot(profile)
    yield "elbow", lambda: plots.metric_vs_k(elbow, "inertia", "elbow", marks={"elbow": 3})


@pytest.mark.parametrize(
    "name,make", list(_figures()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_segexp_figures_are_byte_identical(name, make):
    agg_text.clear()
    stock = _png(make(), FigureCanvasAgg)
    cold = _png(make(), agg_text.CachingCanvas)
    warm = _png(make(), agg_text.CachingCanvas)
    assert cold == stock, f"{name}: first cached drawing differs from matplotlib's"
    assert warm == stock, f"{name}: drawing from a warm cache differs from matplotlib's"


def _text_sampler(antialiased: bool) -> Figure:
    fig = Figure(figsize=(3.3, 2.1))
    rng = np.random.default_rng(7)
    for i in range(24):  # fractional positions: every sub-pixel phase path is taken
        fig.text(
            rng.uniform(0.02, 0.9),
            rng.uniform(0.02, 0.9),
            ["Ag 10", "fi ffl -0.37", "segment 3\nsecond line", "Ünïcode é"][i % 4],
            rotation=[0, 90, 30, -45][i % 4],
            fontsize=[6, 7.5, 9, 13][i // 6],
            antialiased=antialiased,
        )
    return fig


@pytest.mark.parametrize("antialiased", [True, False])
def test_rotated_sized_and_aliased_text_is_byte_identical(antialiased):
    agg_text.clear()
    stock = _png(_text_sampler(antialiased), FigureCanvasAgg)
    for _ in range(2):
        assert _png(_text_sampler(antialiased), agg_text.CachingCanvas) == stock


def test_the_caches_are_used_and_bounded(monkeypatch):
    agg_text.clear()
    _png(_text_sampler(True), agg_text.CachingCanvas)
    assert agg_text._layouts and agg_text._glyphs
    agg_text.clear()
    monkeypatch.setattr(agg_text, "MAX_ENTRIES", 5)
    assert _png(_text_sampler(True), agg_text.CachingCanvas) == _png(
        _text_sampler(True), FigureCanvasAgg
    )
    assert len(agg_text._layouts) <= 5 and len(agg_text._glyphs) <= 5


def test_math_text_falls_back_to_matplotlib():
    def make():
        fig = Figure(figsize=(2, 1))
        fig.text(0.1, 0.4, r"$\sigma^2 = 1.5$ and plain")
        return fig

    assert _png(make(), agg_text.CachingCanvas) == _png(make(), FigureCanvasAgg)


def test_font_rcparams_changed_between_drawings_are_honoured():
    import matplotlib

    def make():
        fig = Figure(figsize=(2.4, 1.2))
        fig.text(0.05, 0.4, "Same words 123")
        return fig

    def save(fig) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    agg_text.clear()
    cached = make()
    agg_text.CachingCanvas(cached)  # one canvas, so one renderer kept across both drawings
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Sans"]}):
        first = save(cached)
        assert first == _png(make(), FigureCanvasAgg)
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Sans Mono"]}):
        second = save(cached)
        assert second == _png(make(), FigureCanvasAgg)
    assert first != second
