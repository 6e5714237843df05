"""How every panel's plots look on the dark theme: axis colours, a cheap grid, titles inside
the plot, and the grid of small multiples.

pyqtgraph draws its grid by extending the tick lines across the plot with a translucent pen; on
the raster engine that blending costs several milliseconds a frame at full-HD sizes. An opaque
colour just above the background looks the same and costs a fraction of that.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

from vqstudio.app import theme

GRID_COLOR = "#2b2d32"  # opaque: what the old 15 % translucent grid looked like on BACKGROUND


def style_plot(plot: pg.PlotItem, *, grid: bool = True) -> None:
    """Dark-theme axes (dim text, border-coloured lines) and, optionally, an opaque grid."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(theme.BORDER))
        axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
        if grid and name in ("left", "bottom"):
            axis.setTickPen(pg.mkPen(GRID_COLOR))
            axis.setStyle(tickAlpha=255, maxTickLevel=1)
            axis.setGrid(255)
            # Opaque grid lines must lie under the curves: put the axes (which draw the grid)
            # below the view box (z -100) instead of above it (pyqtgraph's 0.5).
            axis.setZValue(-200)


def title_html(text: str, colour: str = theme.TEXT_DIM, size: int = 9) -> str:
    """A small plot title in the theme's colours."""
    return f'<span style="color:{colour}; font-size:{size}pt">{text}</span>'


def overlay_title(plot: pg.PlotItem, *, right: bool = False) -> pg.TextItem:
    """A title drawn inside the plot's top corner (left or right) on a translucent backing: it
    costs no layout row, which small plots (stacked spectrograms, small multiples) cannot spare.
    Set its text with ``item.setHtml(title_html(...))``."""
    item = pg.TextItem(anchor=(1, 0) if right else (0, 0), fill=pg.mkBrush(theme.BACKGROUND + "b0"))
    item.setParentItem(plot.vb)  # the view box's own coordinates are pixels: a fixed corner
    item.setZValue(1000)

    def place() -> None:
        item.setPos(plot.vb.width() - 2 if right else 2, 2)

    plot.vb.sigResized.connect(place)
    place()
    return item


def grid_shape(count: int, width: float, height: float, aspect: float = 1.6) -> tuple[int, int]:
    """(rows, columns) for ``count`` small plots in ``width`` x ``height`` pixels whose cells come
    closest to ``aspect`` (width / height)."""
    best, best_cost = (count, 1), math.inf
    for columns in range(1, max(1, count) + 1):
        rows = -(-count // columns)
        cell = (max(width, 1.0) / columns) / (max(height, 1.0) / rows)
        cost = abs(math.log(cell / aspect))
        if cost < best_cost - 1e-9:
            best, best_cost = (rows, columns), cost
    return best
