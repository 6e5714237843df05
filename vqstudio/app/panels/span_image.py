"""The image the curve layer fills with its curves' spans (:mod:`~vqstudio.app.panels.
column_spans`), turned a quarter so that each pixel column of the screen is a row: Qt's raster
engine fills a row of pixels in one go, a column one pixel at a time.

Screen column ``c`` is the image's row ``width - 1 - c`` and screen row ``r`` its column ``r``;
:class:`~vqstudio.app.panels.curve_layer.CurveLayer` draws it turned back. The image's memory is
kept from one paint to the next, so when only the curves' ends changed (new points while the
view follows the run, the view itself unchanged), only the columns from the first changed one on
are cleared and painted again: the same pixels as painting everything, at the cost of a few
columns.
"""

from __future__ import annotations

import numpy as np
import shiboken6
from pyqtgraph import functions as fn
from PySide6.QtCore import QLineF, QRect, Qt
from PySide6.QtGui import QImage, QPainter

from vqstudio.app.panels.column_spans import column_spans

SLACK = 64  # pixels of room beyond the view's size in the kept buffers
TURN_BLOCK = 64  # rows of the image turned back at a time

try:  # pyqtgraph's array of QLineF over a numpy buffer: no Python object per line
    from pyqtgraph.Qt.internals import PrimitiveArray
except ImportError:  # pragma: no cover - older pyqtgraph: a list of objects (slower, same picture)
    PrimitiveArray = None


def strokes(shown, log_y: bool, width: int, height: int, sx, sy, tx, ty, starts=None):
    """The spans of every curve of ``shown`` with a spannable pen, found together (numpy's cost
    per call is paid once, not per curve), from point ``starts[k]`` of curve ``k`` on (all
    points if None): (spans, the curve of each span, of each line), curves numbered in
    ``shown``. ``x * sx + tx`` and ``y * sy + ty`` map view coordinates to the image's pixels."""
    xs, ys, offsets, at = [], [], [], 0
    # After each curve, a gap with a short stroke in a column left of the image between NaNs:
    # column_spans merges consecutive strokes of one column even across a gap, and without it
    # a curve ending in a column the next one starts in (two curves' last points, when only
    # their ends are painted again) would be one span in the first curve's colour.
    gap_x, gap_y = np.array([np.nan, -10.5, -10.4, np.nan]), np.array([np.nan, 0.0, 0.0, np.nan])
    apart = gap_x.shape[0]
    blocks = []  # runs of curves whose y are rows of one array: mapped to pixels together
    for number, curve in enumerate(shown):
        rows = curve._rows[0] if log_y and curve._rows is not None else None
        first = 0 if starts is None else int(starts[number])
        if (blocks and rows is not None and curve.spannable and blocks[-1][0] is rows
                and blocks[-1][1] == first):
            blocks[-1][2].append(curve)
        else:
            blocks.append((rows if curve.spannable else None, first, [curve]))
    for rows, first, curves in blocks:
        if rows is None or len(curves) == 1:
            for curve in curves:
                offsets.append(at)
                if curve.spannable:
                    x, y = curve.shown(log_y)
                    xs += [x[first:] * sx + tx, gap_x]
                    ys += [y[first:] * sy + ty, gap_y]
                    at += x.shape[0] - first + apart
            continue
        # One x for all; y of each a row, the gap after each.
        count, points = len(curves), curves[0].xData.shape[0] - first
        x = np.empty((count, points + apart))
        y = np.empty((count, points + apart))
        x[:, :points] = curves[0].xData[first:] * sx + tx
        np.multiply(rows.logged()[[c._rows[1] for c in curves], first:], sy, out=y[:, :points])
        y[:, :points] += ty
        x[:, points:], y[:, points:] = gap_x, gap_y
        offsets += range(at, at + count * (points + apart), points + apart)
        xs.append(x.reshape(-1))
        ys.append(y.reshape(-1))
        at += count * (points + apart)
    spans = column_spans(np.concatenate(xs or [gap_x]), np.concatenate(ys or [gap_y]), width, height)
    offsets = np.asarray(offsets)
    return (spans, np.searchsorted(offsets, spans.start, "right") - 1,
            np.searchsorted(offsets, spans.line_start, "right") - 1)


class SpanImage:
    """The turned image of a layer's curves, its memory kept between paints."""

    def __init__(self):
        self._buffer = np.zeros((0, 0), dtype=np.uint32)
        self._screen = np.zeros((0, 0), dtype=np.uint32)  # the image turned back, kept too
        self._stale: int | None = 0  # its first column out of date (None: all up to date)

    def _image(self, width: int, height: int) -> tuple[np.ndarray, QImage]:
        """A ``[height, width]`` view of the buffer (its contents left as they were) and a
        ``width`` x ``height`` premultiplied ARGB QImage over the same memory. The view's size
        in device pixels changes by one now and then as it pans (its edges fall between
        pixels): the buffer has room to spare, since a fresh 3 MB one costs its page faults."""
        self._buffer, grown = _room(self._buffer, width, height)
        if grown:
            self._stale = 0
        return self._buffer[:height, :width], _over(self._buffer, width, height)

    def render(self, shown, found, log_y: bool, width: int, height: int, sx, sy, tx, ty,
               first_column: int = 0) -> QImage:
        """The curves ``shown`` (their ``found`` :func:`strokes`) on a transparent background in
        the screen's columns from ``first_column`` on; the image's other columns are left as the
        last render painted them (the caller knows they did not change)."""
        spans, span_curve, line_curve = found
        if first_column > 0:  # only the spans in the columns painted again
            mine = spans.column >= first_column
            keep = np.flatnonzero(mine)
            span_curve = span_curve[keep]
            top, bottom, column = spans.top[keep], spans.bottom[keep], spans.column[keep]
        else:
            top, bottom, column = spans.top, spans.bottom, spans.column
        numbers = np.arange(len(shown) + 1)
        span_cut = np.searchsorted(span_curve, numbers)
        line_cut = np.searchsorted(line_curve, numbers)
        flipped, image = self._image(height, width)
        rows = width - first_column  # the image's rows painted again
        flipped[:rows].fill(0)
        corners = _rect_corners(top, width - 1 - column, bottom - top + 1)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        if first_column > 0:
            painter.setClipRect(QRect(0, 0, height, rows))
        for number, curve in enumerate(shown):
            pen = curve.pen
            if not curve.spannable:
                x, y = curve.shown(log_y)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)  # a path is filled with the brush
                painter.drawPath(fn.arrayToQPath(y * sy + ty, width - (x * sx + tx), connect="finite"))
                continue
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(pen.color())
            _draw_rects(painter, corners, span_cut[number], span_cut[number + 1])
            lines = spans.lines[line_cut[number]:line_cut[number + 1]]
            if lines.shape[0]:
                painter.setPen(pen)
                x0, y0, x1, y1 = lines.T
                _draw_lines(painter, np.column_stack([y0, width - x0, y1, width - x1]))
        painter.end()
        self._stale = first_column if self._stale is None else min(self._stale, first_column)
        return image

    def turned(self, width: int, height: int) -> QImage:
        """The last render turned back to the screen's ``width`` x ``height``: a copy kept up to
        date column by column (numpy, blocks of 64 rows: ~1.2 ms for all of 1145 x 657 in the
        panel, a few columns for a few). Drawing it costs ~0.3 ms against ~1.1-2 ms for Qt to
        draw the render turned, so it pays when the same columns are drawn again."""
        self._screen, grown = _room(self._screen, width, height)
        stale = 0 if grown else self._stale
        if stale is not None and stale < width:
            flipped, screen = self._buffer[:width, :height], self._screen[:height, :width]
            rows = width - stale  # screen column c is the flipped row width - 1 - c
            for first in range(0, rows, TURN_BLOCK):
                last = min(first + TURN_BLOCK, rows)
                screen[:, width - last:width - first] = flipped[first:last][::-1].T
        self._stale = None
        return _over(self._screen, width, height)


def _room(buffer: np.ndarray, width: int, height: int) -> tuple[np.ndarray, bool]:
    """``buffer``, or a larger one with room to spare if it cannot hold ``width`` x ``height``
    pixels; and whether it is a new one."""
    rows, columns = buffer.shape
    if rows >= height and columns >= width:
        return buffer, False
    return np.zeros((max(rows, height + SLACK), max(columns, width + SLACK)), np.uint32), True


def _over(buffer: np.ndarray, width: int, height: int) -> QImage:
    """A ``width`` x ``height`` premultiplied ARGB QImage over ``buffer``'s memory from row 0."""
    return QImage(buffer.data, width, height, buffer.strides[0],
                  QImage.Format.Format_ARGB32_Premultiplied)


def _rect_corners(left, top, width) -> np.ndarray:
    """One-pixel-high rectangles ``(left[k], top[k], width[k], 1)`` as QRect's own layout
    (int x1, y1, x2, y2 each), for :func:`_draw_rects`."""
    corners = np.empty((left.shape[0], 4), dtype=np.int32)
    corners[:, 0], corners[:, 1] = left, top
    corners[:, 2], corners[:, 3] = left + width - 1, top
    return corners


def _draw_rects(painter: QPainter, corners: np.ndarray, first: int, stop: int) -> None:
    """Fill the rectangles ``corners[first:stop]`` (:func:`_rect_corners`).

    Handed to Qt as one array of QRect: the raster engine fills integer rectangles directly, a
    third faster than QRectF's path (8.6k spans: 2.0 vs 2.7 ms); the cost is ~150 ns a
    rectangle whatever its length."""
    if stop > first:
        start = corners.ctypes.data + int(first) * corners.strides[0]
        painter.drawRects(shiboken6.wrapInstance(start, QRect), int(stop - first))


def _draw_lines(painter: QPainter, lines: np.ndarray) -> None:
    """Stroke the segments ``lines`` ``[m, 4]`` (x0, y0, x1, y1)."""
    if PrimitiveArray is None:
        painter.drawLines([QLineF(*row) for row in lines])
        return
    array = PrimitiveArray(QLineF, 4)
    array.resize(lines.shape[0])
    array.ndarray()[:] = lines
    painter.drawLines(*array.drawargs())
