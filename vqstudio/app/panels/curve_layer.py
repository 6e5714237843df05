"""All loss curves of one plot, drawn by one graphics item that paints dense curves fast.

A million-point curve reaches the painter as a min/max envelope (:mod:`~vqstudio.app.panels.
envelope`): one or two short vertical strokes per pixel column. Qt's raster engine paints those
one pixel at a time (8 raw curves across 1400 px: ~13 ms a frame with pyqtgraph's ``drawPath``,
about the same as line segments or a polyline). :class:`CurveLayer` instead turns each curve into
the spans its one-pixel pen covers per column (:mod:`~vqstudio.app.panels.column_spans`) and fills
them as rectangles in an image turned a quarter (:mod:`~vqstudio.app.panels.span_image`), where
every span is a run along a row (~2 ms for the same curves), and draws that image turned back in
one call (Qt's exact rotation). The pixels are those of the stroked polyline to within one at the
ends of a stroke. Longer segments (a zoomed-in view, a gap) are stroked as lines. Thin curves
(smoothed, or few points), a dashed or wide pen, or an export are stroked as paths, as pyqtgraph
does. When only the curves' ends changed since the last paint (new points while the view follows
the run), only the columns from the first changed one on are painted again.

One item for every curve also gives the view one bound to ask for its auto-range instead of one
per curve, and keeps pyqtgraph's per-curve bookkeeping off each change of the view.
:class:`LayerCurve` is one curve's points, pen and visibility.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph import functions as fn
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPen, QTransform

from vqstudio.app.panels.span_image import SpanImage, strokes

# What each way of painting costs (measured at 1145 x 656 px on this project's 2-core machine):
# Qt stroking a one-pixel pen, per pixel it paints; the image's filling, turning and drawing, per
# pixel of the view; one span's rectangle. Thin curves (smoothed, or few points) are cheaper
# stroked; dense ones as spans (8 raw curves: ~13 ms stroked, ~4 ms as spans).
STROKE_NS_PER_PIXEL = 12.0
IMAGE_NS_PER_PIXEL = 1.5
SPAN_NS = 200.0


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
        self.layer.changed(points=True)

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
        self._structure = 0  # counts the changes other than new points
        self._cached: _Drawn | None = None  # what the last paint drew
        self._image = SpanImage()
        self.painted_columns = 0  # how many of the image's columns the last paint painted
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
        self.changed(points=True)

    def changed(self, bounds: bool = True, points: bool = False) -> None:
        """A curve's points (``points``: only they), pen, visibility or order changed: repaint
        (and re-ask the bounds)."""
        self._version += 1
        if not points:
            self._structure += 1
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
        geometry = (sx, sy, tx, ty, width, height, ratio)
        drawn, whole = self._cached, False
        if drawn is None or drawn.geometry != geometry or drawn.version != self._version:
            image, first = None, self._columns_kept(drawn, geometry, shown)
            self.painted_columns = width if first is None else max(0, width - first)
            if first is not None and first >= width:  # nothing in view changed
                image = drawn.image
            elif first is not None:  # the curves' ends changed: only their columns again
                first, starts = _entering(shown, self.log_y, sx, tx, first)
                self.painted_columns = width - first
                found = strokes(shown, self.log_y, width, height, sx, sy, tx, ty, starts)
                image = self._image.render(shown, found, self.log_y, width, height,
                                           sx, sy, tx, ty, first)
            else:
                found = strokes(shown, self.log_y, width, height, sx, sy, tx, ty)
                spans = found[0]
                as_spans = (width * height * IMAGE_NS_PER_PIXEL + spans.column.shape[0] * SPAN_NS
                            < spans.ink() * STROKE_NS_PER_PIXEL)
                if self.route == "spans" or (self.route is None and as_spans):
                    image = self._image.render(shown, found, self.log_y, width, height,
                                               sx, sy, tx, ty)
                    whole = True
            if image is not None:
                image.setDevicePixelRatio(ratio)
            self._cached = _Drawn(geometry, self._version, self._structure, self.route, shown,
                                  [c.shown(self.log_y) for c in shown], image)
        image = self._cached.image
        if image is None:  # thin curves: stroking them is cheaper than the image
            self._paint_paths(painter, shown)
            return
        painter.save()
        if whole:
            # Painted whole (the view moved): the flipped image turned a quarter clockwise onto
            # the view, (X, Y) -> (width - Y, X), in the device-independent pixels the image's
            # ratio scales. Qt's raster engine turns and draws it in one pass (~1.1 ms in the
            # panel), fewer than turning it into another image first (Qt's QImage.transformed,
            # or numpy, ~1.2 ms) and drawing that (0.3 ms).
            painter.setTransform(QTransform(0, 1, -1, 0, (pixels.left() + width) / ratio,
                                            pixels.top() / ratio))
            painter.drawImage(QPointF(0, 0), image)
        else:
            # The same columns as last time but a few (following the run): the turned copy kept
            # beside it, brought up to date in those columns, drawn as it is.
            turned = self._image.turned(width, height)
            turned.setDevicePixelRatio(ratio)
            painter.resetTransform()
            painter.drawImage(QPointF(pixels.left() / ratio, pixels.top() / ratio), turned)
        painter.restore()

    def _columns_kept(self, drawn: "_Drawn | None", geometry: tuple, shown) -> int | None:
        """The first screen column whose pixels the curves' new points change, when the last
        paint's image holds the same curves the same way and in the same view and only their
        points changed, from some point on in each (as when new points arrive while the view
        follows the run); None when the image must be painted whole."""
        if (drawn is None or drawn.image is None or drawn.geometry != geometry
                or drawn.structure != self._structure or drawn.route != self.route
                or drawn.curves != shown or geometry[0] <= 0
                or not all(curve.spannable for curve in shown)):
            return None
        sx, tx = geometry[0], geometry[2]
        first = np.inf
        ascending: dict[int, bool] = {}  # x arrays checked (a run's curves share one)
        for curve, (old_x, old_y) in zip(shown, drawn.arrays):
            x, y = curve.shown(self.log_y)
            if x is old_x and y is old_y:
                continue
            for values in (x, old_x):  # the columns of later points are never to the left
                if id(values) not in ascending:
                    ascending[id(values)] = bool(np.all(values[1:] >= values[:-1]))
                if not ascending[id(values)]:
                    return None
            same = min(x.shape[0], old_x.shape[0])
            differ = (x[:same] != old_x[:same]) | ~((y[:same] == old_y[:same])
                                                    | (np.isnan(y[:same]) & np.isnan(old_y[:same])))
            changed = np.flatnonzero(differ)
            point = int(changed[0]) if changed.size else same  # the first point not as before
            if point == x.shape[0] == old_x.shape[0]:
                continue
            # Its segment from the point before starts in that point's column.
            at = min(x[point - 1], old_x[point - 1]) if point else min(x[0], old_x[0])
            first = min(first, np.floor(at * sx + tx))
        return int(max(first, 0)) if np.isfinite(first) else geometry[4]

    def _paint_paths(self, painter: QPainter, shown) -> None:
        """Each curve stroked as one path in view coordinates (pyqtgraph's way)."""
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for curve in shown:
            x, y = curve.shown(self.log_y)
            painter.setPen(curve.pen)
            painter.drawPath(fn.arrayToQPath(x, y, connect="finite"))


def _entering(shown, log_y: bool, sx: float, tx: float, first: int) -> tuple[int, list[int]]:
    """The first column to paint again, left of ``first`` (the first column a changed stroke
    starts in), and the point each curve's strokes start from. Lines (segments longer than a
    column) are painted whole: each curve enters the columns painted again by a segment within
    one column of its start (Qt strokes a clipped line with other pixels than the whole one),
    and one column more is painted, since Qt's line from a point may light a pixel in the
    column before the point's."""
    pixels = [curve.shown(log_y)[0] * sx + tx for curve in shown]
    while first > 0:
        left = first
        for x in pixels:
            enter = int(np.searchsorted(x, first))
            if 0 < enter < x.shape[0] and np.floor(x[enter]) - np.floor(x[enter - 1]) > 1:
                left = min(left, int(np.floor(x[enter - 1])))
        if left == first:
            break
        first = max(left, 0)
    first = max(first - 1, 0)
    return first, [max(0, int(np.searchsorted(x, first)) - 1) for x in pixels]


def _spannable(pen: QPen) -> bool:
    """Whether ``pen`` paints exactly one opaque pixel across a stroke (spans can stand in)."""
    return (pen.style() == Qt.PenStyle.SolidLine and pen.isCosmetic() and pen.widthF() <= 1.0
            and pen.brush().style() == Qt.BrushStyle.SolidPattern and pen.color().alpha() == 255)


class _Drawn:
    """What a paint drew: in which view (``geometry``: scale, offset, size, pixel ratio), at which
    change counts, the curves and their points, and the image (None: stroked as paths)."""

    def __init__(self, geometry, version, structure, route, curves, arrays, image):
        self.geometry, self.version, self.structure, self.route = geometry, version, structure, route
        self.curves, self.arrays, self.image = curves, arrays, image
