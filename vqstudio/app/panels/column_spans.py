"""A curve in device pixels split into what a one-pixel pen paints in each pixel column.

A dense loss curve (a million points reduced to min/max pairs, one or two per pixel column) is
nearly all short vertical strokes. Qt's raster engine paints a vertical stroke one pixel at a time,
so a noisy band of 8 curves costs ~13 ms a frame however it is stroked (a path, a polyline, line
segments). The same pixels as runs along a row are cheap: :class:`~vqstudio.app.panels.curve_layer.
CurveLayer` fills these spans as rectangles in a transposed image, where each column is a row.

Every segment between two neighbouring points that stays within one pixel column, or crosses into
the next, becomes one or two spans: the rows from its top to its bottom in each column it touches
(split where it crosses the column boundary, each row to the column its centre lies in). Consecutive spans in one column are one connected
stroke, so they merge into one. A segment reaching further (a gap in the data, a zoomed-in view
with points several pixels apart) is left as a line for the painter to stroke: those are few and
cost pixels only along their length. Non-finite points (log of a zero) break the curve, as
pyqtgraph's ``connect="finite"`` does.

No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ColumnSpans:
    """What to paint: ``column[k]`` from row ``top[k]`` to ``bottom[k]`` inclusive (int64, inside
    the image, in the curve's order), starting at the curve's point ``start[k]``; and the
    segments ``lines`` ``[m, 4]`` (x0, y0, x1, y1 in pixels) too long to be spans, from the points
    ``line_start``. A point with no finite neighbour paints nothing (as in pyqtgraph)."""

    column: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    start: np.ndarray
    lines: np.ndarray
    line_start: np.ndarray

    def ink(self) -> int:
        """About how many pixels all this paints."""
        lengths = np.abs(self.lines[:, 2:] - self.lines[:, :2]).max(axis=1, initial=0)
        return int((self.bottom - self.top + 1).sum() + lengths.sum())


def column_spans(x: np.ndarray, y: np.ndarray, width: int, height: int) -> ColumnSpans:
    """The spans a one-pixel pen paints along the polyline through ``(x[i], y[i])`` (device pixels,
    pixel ``c`` covering ``[c, c + 1)``) in a ``width`` x ``height`` image, and the longer segments."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    empty = np.empty(0, dtype=np.int64)
    if x.shape[0] == 0:
        return ColumnSpans(empty, empty, empty, empty, np.empty((0, 4)), empty)
    finite = np.isfinite(x) & np.isfinite(y)
    x0, y0, x1, y1 = x[:-1], y[:-1], x[1:], y[1:]
    valid = finite[:-1] & finite[1:]
    with np.errstate(invalid="ignore"):
        c = np.floor(x)  # NaN where x is: compares false below
        c0, c1 = c[:-1], c[1:]
        reach = np.abs(c1 - c0)
        near = valid & (reach <= 1)
        far = valid & (reach > 1)
    lines = np.column_stack([x0[far], y0[far], x1[far], y1[far]])
    line_start = np.flatnonzero(far)

    # Each near segment: a piece in its first column up to the boundary, and (if it crosses one)
    # a piece in the next column from there, interleaved so the pieces keep the curve's order.
    # Where it crosses, a row goes to the column its centre lies in (as Qt's stroker decides):
    # the first column ends half a row short of the crossing height, the next starts half a row
    # past it, never beyond the segment's own ends.
    crosses = near & (reach == 1)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    with np.errstate(divide="ignore", invalid="ignore"):
        middle = y0 + (y1 - y0) * (np.maximum(c0, c1) - x0) / (x1 - x0)
    half = np.where(y1 > y0, 0.5, -0.5)
    end_first = np.where(crosses, np.minimum(np.maximum(middle - half, low), high), y1)
    start_next = np.minimum(np.maximum(middle + half, low), high)
    segments = y0.shape[0]
    piece_col = np.empty(2 * segments)
    piece_top = np.empty(2 * segments)
    piece_bottom = np.empty(2 * segments)
    keep = np.empty(2 * segments, dtype=bool)
    piece_col[0::2], piece_col[1::2] = c0, c1
    piece_top[0::2], piece_top[1::2] = np.minimum(y0, end_first), np.minimum(start_next, y1)
    piece_bottom[0::2], piece_bottom[1::2] = np.maximum(y0, end_first), np.maximum(start_next, y1)
    keep[0::2], keep[1::2] = near, crosses
    kept = np.flatnonzero(keep)
    piece_col, top, bottom = piece_col[kept], piece_top[kept], piece_bottom[kept]
    if kept.shape[0]:
        # Consecutive pieces in one column are one connected stroke: one span.
        starts = np.flatnonzero(np.diff(piece_col, prepend=np.nan) != 0)
        column, start = piece_col[starts], kept[starts] // 2
        top = np.minimum.reduceat(top, starts)
        bottom = np.maximum.reduceat(bottom, starts)
    else:
        column, start = piece_col, kept
    inside = (column >= 0) & (column < width) & (bottom >= 0) & (top < height)
    column, top, bottom, start = column[inside], top[inside], bottom[inside], start[inside]
    top = np.maximum(np.floor(top), 0).astype(np.int64)
    bottom = np.minimum(np.floor(bottom), height - 1).astype(np.int64)
    return ColumnSpans(column.astype(np.int64), top, bottom, start, lines, line_start)
