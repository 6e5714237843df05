"""All loss curves of one plot, drawn by one graphics item that paints dense curves fast.

A million-point curve reaches the painter as a min/max envelope (:mod:`~vqstudio.app.panels.
envelope`): one or two short vertical strokes per pixel column. Qt's raster engine paints those
one pixel at a time (8 raw curves across 1400 px: ~13 ms a frame with pyqtgraph's ``drawPath``,
about the same as line segments or a polyline). :class:`CurveLayer` instead turns each curve into
the spans its one-pixel pen covers per column (:mod:`~vqstudio.app.panels.column_spans`) and fills
them as rectangles in an image turned a quarter, where every span is a run along a row (~2 ms for
the same curves), then turns the image back (Qt's exact rotation) and draws it in one call. The pixels are those of
the stroked polyline to within one at the ends of a stroke. Longer segments (a zoomed-in view,
a gap) are stroked as lines. Thin curves (smoothed, or few points), a dashed or wide pen, or an
export are stroked as paths, as pyqtgraph does.

One item for every curve also gives the view one bound to ask for its auto-range instead of one
per curve, and keeps pyqtgraph's per-curve bookkeeping off each change of the view.
:class:`LayerCurve` is one curve's points, pen and visibility.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import shiboken6
from pyqtgraph import functions as fn
from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPen, QTransform

from vqstudio.app.panels.column_spans import column_spans

# What each way of painting costs (measured at 1145 x 656 px on this project's 2-core machine):
# Qt stroking a one-pixel pen, per pixel it paints; the image's filling, turning and drawing, per
# pixel of the view; one span's rectangle. Thin curves (smoothed, or few points) are cheaper
# stroked; dense ones as spans (8 raw curves: ~13 ms stroked, ~4 ms as spans).
STROKE_NS_PER_PIXEL = 12.0
IMAGE_NS_PER_PIXEL = 1.5
SPAN_NS = 200.0
SLACK = 64  # pixels of room beyond the view's size in each image buffer

try:  # pyqtgraph's array of QLineF over a numpy buffer: no Python object per line
    from pyqtgraph.Qt.internals import PrimitiveArray
except ImportError:  # pragma: no cover - older pyqtgraph: a list of objects (slower, same picture)
    PrimitiveArray = None


def _logged(y: np.ndarray) -> np.ndarray:
    """log10 of ``y``, NaN where it is not positive (a log axis cannot show it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.where(y > 0, y, np.nan))


class _Rows:
    """The y of several curves as rows of one array, and its log, taken once for all of them."""

    def __init__(self, ys: np.ndarray):
        self.ys = ys
        self._logged: np.ndarray | None = None

    def logged(self) -> np.ndarray:
        if self._logged is None:
            self._logged = _logged(self.ys)
        return self._logged


class LayerCurve:
    """One curve of a :class:`CurveLayer`: ``xData``/``yData`` as given (y before the log
    mapping), a pen, and whether it shows."""

    def __init__(self, layer: "CurveLayer", pen: QPen, name: str):
        self.layer, self.pen, self.name = layer, pen, name
        self.spannable = _spannable(pen)
        self.xData = np.empty(0)
        self.yData = np.empty(0)
        self._visible = True
        self._rows: tuple[_Rows, int] | None = None  # y is this row of several curves' ys
        self._shown: tuple | None = None  # (log_y, x, y as drawn)

    def setData(self, x, y) -> None:
        self._take(x, y)
        self.layer.changed()

    def _take(self, x, y, rows: tuple[_Rows, int] | None = None) -> None:
        self.xData = np.asarray(x, dtype=np.float64)
        self.yData = np.asarray(y, dtype=np.float64)
        self._rows = rows
        self._shown = None

    def setPen(self, pen: QPen) -> None:
        self.pen = pg.mkPen(pen)
        self.spannable = _spannable(self.pen)
        self.layer.changed(bounds=False)

    def setVisible(self, visible: bool) -> None:
        if bool(visible) != self._visible:
            self._visible = bool(visible)
            self.layer.changed()

    def isVisible(self) -> bool:
        return self._visible

    def shown(self, log_y: bool) -> tuple[np.ndarray, np.ndarray]:
        """x and y in the view's coordinates (log10 of y on a log axis; non-positive: NaN)."""
        if self._shown is None or self._shown[0] != log_y:
            y = self.yData
            if log_y:
                y = _logged(y) if self._rows is None else self._rows[0].logged()[self._rows[1]]
            self._shown = (log_y, self.xData, y)
        return self._shown[1], self._shown[2]


class CurveLayer(pg.GraphicsObject):
    """The curves of one plot, painted together in their order (first underneath)."""

    def __init__(self):
        super().__init__()
        self.curves: list[LayerCurve] = []
        self.log_y = False
        self._version = 0
        self._bounds: dict = {}
        self._cached: tuple | None = None  # (key, image or None: paths) of the last paint
        self._flipped = _Pixels()  # the image's memory, kept from one paint to the next
        self.route: str | None = None  # "spans" or "paths" to choose for every paint (tests)

    # -- curves ---------------------------------------------------------------------------------

    def add(self, pen: QPen, name: str = "") -> LayerCurve:
        curve = LayerCurve(self, pg.mkPen(pen), name)
        self.curves.append(curve)
        self.changed()
        return curve

    def remove(self, curve: LayerCurve) -> None:
        if curve in self.curves:
            self.curves.remove(curve)
            self.changed()

    def put_first(self, curves: list[LayerCurve]) -> None:
        """Draw ``curves`` first, in this order (underneath the others)."""
        order = [c for c in curves if c in self.curves]
        order += [c for c in self.curves if c not in order]
        if order != self.curves:
            self.curves = order
            self.changed(bounds=False)

    def set_rows(self, curves: list[LayerCurve], x: np.ndarray, ys: np.ndarray) -> None:
        """New points for several curves sharing one ``x``: ``ys[k]`` is the y of ``curves[k]``;
        one repaint for all of them, and on a log axis one log for all of them."""
        rows = _Rows(np.asarray(ys, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        for number, curve in enumerate(curves):
            curve._take(x, rows.ys[number], (rows, number))
        self.changed()

    def changed(self, bounds: bool = True) -> None:
        """A curve's points, pen, visibility or order changed: repaint (and re-ask the bounds)."""
        self._version += 1
        if bounds:
            self._bounds.clear()
            self.informViewBoundsChanged()
        self.update()

    # -- what pyqtgraph asks of a plot item ------------------------------------------------------

    def setLogMode(self, x_log: bool, y_log: bool) -> None:  # noqa: N802 (pyqtgraph's name)
        if bool(y_log) != self.log_y:
            self.log_y = bool(y_log)
            self.changed()

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):  # noqa: N802
        """(min, max) of the shown curves along ``ax`` (0: x, 1: y) in view coordinates, within
        ``orthoRange`` of the other axis if given; (None, None) when nothing is shown."""
        key = (ax, None if orthoRange is None else tuple(orthoRange))
        if key not in self._bounds:
            pairs = [curve.shown(self.log_y) for curve in self.curves if curve._visible]
            if ax == 1:
                pairs = [(y, x) for x, y in pairs]
            if orthoRange is None:  # a run's curves share one x: each array once
                values = list({id(v): v for v, _ in pairs}.values())
            else:
                values = [v[(o >= orthoRange[0]) & (o <= orthoRange[1])] for v, o in pairs]
            # All curves in one array: a few numpy calls, not a few per curve.
            values = np.concatenate(values) if values else np.empty(0)
            values = values[np.isfinite(values)]
            self._bounds[key] = ((float(values.min()), float(values.max())) if values.size
                                 else (None, None))
        return self._bounds[key]

    def pixelPadding(self) -> float:  # noqa: N802
        """What the auto-range adds around the bounds, in pixels: a one-pixel pen's half
        diagonal, as pyqtgraph's own curves ask (the same view as before this layer)."""
        return 0.7072

    def boundingRect(self) -> QRectF:  # noqa: N802
        view = self.getViewBox()
        return QRectF() if view is None else view.viewRect()

    def viewTransformChanged(self) -> None:  # noqa: N802
        super().viewTransformChanged()
        self.prepareGeometryChange()  # the bounding rect is the view's rect

    # -- painting -------------------------------------------------------------------------------

    def paint(self, painter: QPainter, *_args) -> None:
        transform = painter.transform()
        shown = [c for c in self.curves if c._visible and c.xData.size]
        if not shown:
            return
        # (QTransform.type() > TxScale would say the same, but comparing PySide6 6.11's enums
        # with > crashes the interpreter)
        if self._exportOpts is not False or transform.isRotating():
            self._paint_paths(painter, shown)
            return
        # The image has the device's pixels (two per point on a HiDPI screen): view coordinates
        # -> those pixels, the image's top left at the view's.
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        view = transform.mapRect(self.boundingRect())
        pixels = QRectF(view.left() * ratio, view.top() * ratio,
                        view.width() * ratio, view.height() * ratio).toAlignedRect()
        width, height = pixels.width(), pixels.height()
        if width <= 0 or height <= 0:
            return
        sx, sy = transform.m11() * ratio, transform.m22() * ratio
        tx, ty = transform.dx() * ratio - pixels.left(), transform.dy() * ratio - pixels.top()
        key = (sx, sy, tx, ty, width, height, ratio, self._version)
        if self._cached is None or self._cached[0] != key:
            strokes = self._strokes(shown, width, height, sx, sy, tx, ty)
            spans = strokes[0]
            as_spans = (width * height * IMAGE_NS_PER_PIXEL + spans.column.shape[0] * SPAN_NS
                        < spans.ink() * STROKE_NS_PER_PIXEL)
            image = None
            if self.route == "spans" or (self.route is None and as_spans):
                image = self._render(shown, strokes, width, height, sx, sy, tx, ty)
                image.setDevicePixelRatio(ratio)
            self._cached = (key, image)
        image = self._cached[1]
        if image is None:  # thin curves: stroking them is cheaper than the image
            self._paint_paths(painter, shown)
            return
        painter.save()
        # The flipped image turned a quarter clockwise onto the view: (X, Y) -> (width - Y, X),
        # in the device-independent pixels the image's ratio scales. Qt's raster engine turns
        # and draws it in one pass (~1.1 ms in the panel), fewer than turning it into another
        # image first (Qt's QImage.transformed, or numpy, ~1.2 ms) and drawing that (0.3 ms).
        painter.setTransform(QTransform(0, 1, -1, 0, (pixels.left() + width) / ratio,
                                        pixels.top() / ratio))
        painter.drawImage(QPointF(0, 0), image)
        painter.restore()

    def _strokes(self, shown, width, height, sx, sy, tx, ty):
        """The spans of every curve with a spannable pen, found together (numpy's cost per call
        is paid once, not per curve): (spans, the curve of each span, of each line), the
        curves numbered in ``shown``."""
        xs, ys, offsets, at = [], [], [], 0
        gap = np.full(1, np.nan)
        blocks = []  # runs of curves whose y are rows of one array: mapped to pixels together
        for curve in shown:
            rows = curve._rows[0] if self.log_y and curve._rows is not None else None
            if blocks and rows is not None and blocks[-1][0] is rows and curve.spannable:
                blocks[-1][1].append(curve)
            else:
                blocks.append((rows if curve.spannable else None, [curve]))
        for rows, curves in blocks:
            if rows is None or len(curves) == 1:
                for curve in curves:
                    offsets.append(at)
                    if curve.spannable:
                        x, y = curve.shown(self.log_y)
                        xs += [x * sx + tx, gap]
                        ys += [y * sy + ty, gap]
                        at += x.shape[0] + 1
                continue
            # One x for all; y of each a row, a NaN after each so the curves stay apart.
            count, points = len(curves), curves[0].xData.shape[0]
            x = np.empty((count, points + 1))
            y = np.empty((count, points + 1))
            x[:, :points] = curves[0].xData * sx + tx
            np.multiply(rows.logged()[[c._rows[1] for c in curves]], sy, out=y[:, :points])
            y[:, :points] += ty
            x[:, points] = y[:, points] = np.nan
            offsets += range(at, at + count * (points + 1), points + 1)
            xs.append(x.reshape(-1))
            ys.append(y.reshape(-1))
            at += count * (points + 1)
        spans = column_spans(np.concatenate(xs or [gap]), np.concatenate(ys or [gap]), width, height)
        offsets = np.asarray(offsets)
        return (spans, np.searchsorted(offsets, spans.start, "right") - 1,
                np.searchsorted(offsets, spans.line_start, "right") - 1)

    def _render(self, shown, strokes, width, height, sx, sy, tx, ty) -> QImage:
        """The curves in a ``width`` x ``height`` image with a transparent background."""
        spans, span_curve, line_curve = strokes
        numbers = np.arange(len(shown) + 1)
        span_cut = np.searchsorted(span_curve, numbers)
        line_cut = np.searchsorted(line_curve, numbers)
        # Screen column c is the flipped image's row width - 1 - c and screen row r its column r:
        # turned a quarter clockwise it is the screen's picture (paint() draws it so turned).
        flipped, image = self._flipped.image(height, width)
        flipped.fill(0)
        corners = _rect_corners(spans.top, width - 1 - spans.column, spans.bottom - spans.top + 1)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for number, curve in enumerate(shown):
            pen = curve.pen
            if not curve.spannable:
                x, y = curve.shown(self.log_y)
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
        return image

    def _paint_paths(self, painter: QPainter, shown) -> None:
        """Each curve stroked as one path in view coordinates (pyqtgraph's way)."""
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for curve in shown:
            x, y = curve.shown(self.log_y)
            painter.setPen(curve.pen)
            painter.drawPath(fn.arrayToQPath(x, y, connect="finite"))


def _spannable(pen: QPen) -> bool:
    """Whether ``pen`` paints exactly one opaque pixel across a stroke (spans can stand in)."""
    return (pen.style() == Qt.PenStyle.SolidLine and pen.isCosmetic() and pen.widthF() <= 1.0
            and pen.brush().style() == Qt.BrushStyle.SolidPattern and pen.color().alpha() == 255)


class _Pixels:
    """Room for premultiplied ARGB images up to a size, one numpy buffer kept from one paint to
    the next: the view's size in device pixels changes by one now and then as it pans (its
    edges fall between pixels), and a fresh 3 MB buffer each time costs its page faults."""

    def __init__(self):
        self._buffer = np.zeros((0, 0), dtype=np.uint32)

    def image(self, width: int, height: int) -> tuple[np.ndarray, QImage]:
        """A ``[height, width]`` view of the buffer (its contents left as they were) and a
        ``width`` x ``height`` QImage over the same memory."""
        rows, columns = self._buffer.shape
        if rows < height or columns < width:
            self._buffer = np.zeros((max(rows, height + SLACK), max(columns, width + SLACK)),
                                    dtype=np.uint32)
        array = self._buffer[:height, :width]
        image = QImage(self._buffer.data, width, height, self._buffer.strides[0],  # from row 0
                       QImage.Format.Format_ARGB32_Premultiplied)
        return array, image


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
    third faster than QRectF's path (8.6k spans: 2.0 vs 2.7 ms)."""
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
