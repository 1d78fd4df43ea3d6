"""An Agg canvas that draws text from caches: the same pixels, a third less time per plot.

A sweep draws the same strings (tick labels, axis labels, legend entries,
titles) on dozens of figures. Since matplotlib 3.11, Agg shapes every string
with HarfBuzz and rasterises it glyph by glyph with FreeType on every draw:
about 40% of a small plot's rendering time. ``CachingCanvas`` keeps, for the
life of the process, each string's shaped layout and each glyph's bitmap per
sub-pixel position. A glyph moved by whole pixels rasterises to the same
bitmap, so a cached one is drawn exactly where FreeType would draw it: PNG
bytes are identical to stock rendering (tests/test_agg_text.py).

Only the matplotlib versions whose Agg text path this mirrors use the caches
(``SUPPORTED``); any other version renders through stock matplotlib.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.ft2font import RenderMode

MAX_ENTRIES = 50_000  # per cache; a few MB at most, cleared when full


def _supported(version: str) -> bool:
    major, minor = (int(part) for part in version.split(".")[:2])
    internals = hasattr(RendererAgg, "_draw_text_glyphs_and_boxes") and hasattr(
        matplotlib.ft2font.FT2Font, "_render_glyph"
    )
    return (major, minor) == (3, 11) and internals


SUPPORTED = _supported(matplotlib.__version__)

_layouts: dict[tuple, list[tuple]] = {}
_glyphs: dict[tuple, tuple[np.ndarray, int, int]] = {}


def clear() -> None:
    _layouts.clear()
    _glyphs.clear()


def _remember(cache: dict, key: tuple, value):
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[key] = value
    return value


class CachingRenderer(RendererAgg):
    """RendererAgg whose plain (non-math) text comes from the process-wide caches."""

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or not SUPPORTED:
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        font = self._prepare_font(prop)
        flags = get_hinting_flag()
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        size = prop.get_size_in_points()
        layout_key = (font, size, self.dpi, s, flags, _frozen(features), _frozen(language))
        items = _layouts.get(layout_key)
        if items is None:
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
        return self.renderer
