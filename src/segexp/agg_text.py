"""An Agg canvas that draws text from caches: the same pixels, in far less time.

A sweep draws the same strings (tick labels, axis labels, legend entries,
titles) on dozens of figures. Since matplotlib 3.11, Agg shapes every string
with HarfBuzz and rasterises it glyph by glyph with FreeType on every draw,
and measures it again on every new figure: about half of a small plot's
rendering time. ``CachingCanvas`` keeps, for the life of the process, each
string's shaped layout and measured size, each font's line metrics, and each
glyph's bitmap per sub-pixel position. A glyph moved by whole pixels
rasterises to the same bitmap, so a cached one is drawn exactly where FreeType
would draw it: PNG bytes are identical to stock rendering
(tests/test_agg_text.py).

Keys hold what matplotlib's own result depends on: the font properties (by
their hash, which is how matplotlib compares them), the dpi, the hinting
flags, the font-selection rcParams and the thread (matplotlib keeps fonts per
thread). Only the matplotlib versions whose Agg text path this mirrors use the
caches (``SUPPORTED``); any other version renders through stock matplotlib.
"""

from __future__ import annotations

import math
import threading

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import fontManager, get_font
from matplotlib.ft2font import RenderMode

MAX_ENTRIES = 50_000  # per cache; a few MB at most, cleared when full


def _supported(version: str) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    internals = hasattr(RendererAgg, "_draw_text_glyphs_and_boxes") and hasattr(
        matplotlib.ft2font.FT2Font, "_render_glyph"
    )
    return (major, minor) == (3, 11) and internals


SUPPORTED = _supported(matplotlib.__version__)

# Everything that decides which font file a FontProperties resolves to, besides the
# properties themselves (matplotlib.font_manager.findfont and get_font).
_FONT_RC = (
    "font.serif",
    "font.sans-serif",
    "font.cursive",
    "font.fantasy",
    "font.monospace",
    "text.hinting_factor",
    "text.kerning_factor",
)

_layouts: dict[tuple, list[tuple]] = {}
_glyphs: dict[tuple, tuple[np.ndarray, int, int]] = {}
_sizes: dict[tuple, tuple[float, float, float]] = {}
_line_metrics: dict[tuple, tuple] = {}


def clear() -> None:
    for cache in (_layouts, _glyphs, _sizes, _line_metrics):
        cache.clear()


def _context() -> tuple:
    rc = matplotlib.rcParams
    fonts = tuple(tuple(v) if isinstance(v, list) else v for v in (rc[k] for k in _FONT_RC))
    return (threading.get_ident(), fonts)


def _remember(cache: dict, key: tuple, value):
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[key] = value
    return value


class CachingRenderer(RendererAgg):
    """RendererAgg whose plain (non-math) text comes from the process-wide caches."""

    def __init__(self, width, height, dpi):
        super().__init__(width, height, dpi)
        self.context = _context()

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath or not SUPPORTED:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (self.context, hash(prop), self.dpi, s, get_hinting_flag())
        size = _sizes.get(key)
        if size is None:
            size = _remember(_sizes, key, super().get_text_width_height_descent(s, prop, ismath))
        return size

    def _get_font_height_metrics(self, prop):
        """Ascent, descent and line gap, as Text._get_layout reads them from the font."""
        if not SUPPORTED:
            return None, None, None
        key = (self.context, hash(prop), self.dpi)
        metrics = _line_metrics.get(key)
        if metrics is None:
            metrics = _remember(_line_metrics, key, _font_line_metrics(prop, self.dpi))
        return metrics

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or not SUPPORTED:
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        flags = get_hinting_flag()
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        size = prop.get_size_in_points()
        layout_key = (
            self.context,
            hash(prop),
            self.dpi,
            s,
            flags,
            _frozen(features),
            _frozen(language),
        )
        items = _layouts.get(layout_key)
        if items is None:
            font = self._prepare_font(prop)
            shaped = font._layout(s, flags=flags, features=features, language=language)
            items = _remember(
                _layouts,
                layout_key,
                [(item.ft_object, item.glyph_index, item.x, item.y) for item in shaped],
            )
        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
        matrix_key = tuple(matrix.ravel().tolist())
        antialiased = gc.get_antialiased()
        mode = RenderMode.NORMAL if antialiased else RenderMode.MONO
        height = self.height
        for ft_object, glyph_index, dx, dy in items:
            # FreeType positions in 26.6 fixed point, as _draw_text_glyphs_and_boxes does.
            px = round(0x40 * (x + dx * cos - dy * sin))
            py = round(0x40 * (height - y + dx * sin + dy * cos))
            glyph_key = (
                ft_object,
                size,
                self.dpi,
                glyph_index,
                matrix_key,
                px & 63,
                py & 63,
                flags,
                mode,
            )
            cached = _glyphs.get(glyph_key)
            if cached is None:
                ft_object.set_size(size, self.dpi)
                ft_object._set_transform(matrix, [px, py])
                bitmap = ft_object._render_glyph(glyph_index, flags, mode)
                buffer = bitmap.buffer if antialiased else bitmap.buffer * 0xFF
                cached = _remember(
                    _glyphs, glyph_key, (buffer, bitmap.left - (px >> 6), bitmap.top - (py >> 6))
                )
            buffer, left, top = cached
            self._renderer.draw_text_image(
                buffer, left + (px >> 6), int(height) - (top + (py >> 6)) + buffer.shape[0], 0, gc
            )


def _font_line_metrics(prop, dpi: float) -> tuple:
    """matplotlib.text.Text._get_layout's own reading of the font's line metrics."""
    font = get_font(fontManager._find_fonts_by_props(prop))
    for table_name, gap_key, ascent_key, descent_key in (
        ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
        ("hhea", "lineGap", "ascent", "descent"),
    ):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
        scale = 1 / units_per_em * prop.get_size_in_points() * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[gap_key] * scale
    return None, None, None


def _frozen(value):
    return tuple(value) if isinstance(value, list) else value


class CachingCanvas(FigureCanvasAgg):
    """FigureCanvasAgg drawing with a CachingRenderer."""

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = CachingRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        else:
            self.renderer.context = _context()  # rcParams may have changed since
        return self.renderer
