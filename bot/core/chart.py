"""The /trend picture: a PNG line chart of a :class:`~bot.core.trend.Trend`, made with
matplotlib's Agg backend.

matplotlib is imported inside the functions, never at module level: importing it costs
a few hundred milliseconds, which the bot should not pay at start-up, only on the first
/trend. Drawing uses the object API (``Figure`` + ``FigureCanvasAgg``), not pyplot, so it
holds no global state and can run in a worker thread (the caller uses asyncio.to_thread).

Only dates and numbers are drawn as text by default. A term goes into the legend only if
an installed font has a glyph for each of its characters (a Chinese term needs a CJK
font, which a server often lacks); otherwise the legend says #1, #2 ... and the caption
names the terms.
"""

from __future__ import annotations

import functools
import io
from typing import Any

from bot.core.trend import Trend

WIDTH_PX, HEIGHT_PX, DPI = 1000, 600, 100
MAX_X_LABELS = 12
# matplotlib's fallback font draws a box for every character it lacks: it "covers" all.
_NOT_REAL_FONTS = ("Last Resort",)
# Families that are usually CJK-capable; tried first, so a machine with hundreds of fonts
# reads a few cmaps, not all of them.
_CJK_HINTS = (
    "CJK",
    "Han",
    "Hei",
    "WenQuanYi",
    "Droid Sans Fallback",
    "YaHei",
    "PingFang",
    "Hiragino",
    "SimSun",
    "Ming",
    "Song",
    "Kai",
    "Fang",
    "Gothic",
    "Noto Sans SC",
    "Noto Sans TC",
    "AR PL",
)


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@functools.cache
def _fonts() -> tuple[tuple[str, str], ...]:
    """(family, file) of every installed font, likely CJK families first."""
    from matplotlib import font_manager

    found = [
        (f.name, f.fname)
        for f in font_manager.fontManager.ttflist
        if not f.name.startswith(_NOT_REAL_FONTS)
    ]
    found.sort(key=lambda nf: not any(h.lower() in nf[0].lower() for h in _CJK_HINTS))
    return tuple(found)


def font_for(text: str) -> str | None:
    """The family of an installed font that has every character of ``text``, or None."""
    needed = {ord(c) for c in text if not c.isspace()}
    for family, path in _fonts():
        if needed <= _charmap(path):
            return family
    return None


def legend_labels(terms: tuple[str, ...]) -> tuple[list[str], str | None]:
    """The legend's labels and the font family to draw them in. Terms only when one font
    has all their characters; else #1, #2 ... (the caption then says which is which)."""
    family = font_for("".join(terms))
    if family is None:
        return [f"#{i}" for i in range(1, len(terms) + 1)], None
    return list(terms), family


def _tick_positions(n: int) -> list[int]:
    step = max(1, -(-n // MAX_X_LABELS))
    return list(range(0, n, step))


def render_png(trend: Trend, labels: list[str], family: str | None = None) -> bytes:
    """The chart as PNG bytes, WIDTH_PX × HEIGHT_PX."""
    # The Agg canvas directly: no backend switch, no pyplot, never a window.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from PIL import Image  # matplotlib's own PNG writer

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    periods = trend.periods
    xs = list(range(len(periods)))
    marker = "o" if len(xs) <= 40 else None
    for series, label in zip(trend.series, labels, strict=True):
        ax.plot(xs, [n for _, n in series.counts], marker=marker, linewidth=2, label=label)
    ticks = _tick_positions(len(periods))
    ax.set_xticks(ticks)
    ax.set_xticklabels([periods[i] for i in ticks], rotation=30, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    if len(xs) == 1:
        ax.set_xlim(-1, 1)  # one period: a centred point, not a degenerate axis
    ax.grid(True, alpha=0.3)
    prop: dict[str, Any] = {"family": family} if family else {}
    ax.legend(loc="upper left", prop=prop)
    # Fixed margins, not tight_layout(): that measures every label first, which doubled
    # the drawing time; the labels are dates and small numbers, so the room is known.
    fig.subplots_adjust(left=0.06, right=0.985, top=0.97, bottom=0.13)
    agg: Any = canvas  # some matplotlib releases leave draw/buffer_rgba untyped
    agg.draw()
    width, height = canvas.get_width_height()
    out = io.BytesIO()
    # zlib level 1: a chart is flat colour and compresses well anyway; level 6 (the
    # default) took longer than the drawing for about 20 % fewer bytes. RGB: the chart is
    # opaque, and a quarter fewer bytes to compress.
    image = Image.frombuffer("RGBA", (width, height), agg.buffer_rgba(), "raw", "RGBA", 0, 1)
    image.convert("RGB").save(out, format="png", compress_level=1)
    return out.getvalue()
