"""Change markers on the loss curves: a labelled vertical line wherever a live setting changed
(a weight, the learning rate, the balancer, the mel norm ...: train/settings.py's table), dead
codes were replaced by hand, or training was restored after a non-finite step. What the label
says, the marker itself, and the one item that draws them all."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter

from vqstudio.app import theme
from vqstudio.train.settings import SETTINGS

MARKER_POSITIONS = (0.95, 0.8, 0.65, 0.5, 0.35)  # label heights, cycled so neighbours don't overlap
LABEL_FLAGS = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter  # (an enum | costs µs)


def format_number(value: Any) -> str:
    """Short form of a weight or rate: 1, 2.5, 0.0003, 3e-05."""
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return str(value)


def marker_label(event: dict[str, Any]) -> str | None:
    """The text a change event's marker carries, e.g. ``"mel_l1/1024 1→2.5"``; None for events
    that get no marker (checkpoints, pauses, automatic dead-code replacements ...)."""
    kind = event.get("kind")
    if kind == "weights":
        changes = [f"{term} {format_number(old)}→{format_number(new)}"
                   for term, (old, new) in event.get("changes", {}).items()]
        if len(changes) > 2:  # e.g. "Reset to preset": the tooltip has them all
            return f"{changes[0]}; {changes[1]} +{len(changes) - 2} more"
        return "; ".join(changes) or None
    if kind in SETTINGS and kind != "weights":  # lr, balancer, mel norm, EMA decay ... (train/settings.py)
        label = SETTINGS[kind].label
        return f"{label} {format_number(event.get('old'))}→{format_number(event.get('new'))}"
    if kind == "replace_dead_codes" and not event.get("automatic"):
        replaced = event.get("replaced") or []
        return f"replaced {sum(int(n) for n in replaced)} dead codes"
    if kind == "restored":
        return f"restored {event.get('file') or 'last good state'} (lr ×{format_number(event.get('lr_scale', 1))})"
    return None


class MarkerText:
    """A marker's label as the panel and its tests read it."""

    def __init__(self, text: str):
        self.text = text

    def toPlainText(self) -> str:  # noqa: N802 (the name QGraphicsTextItem gives it)
        return self.text


class ChangeMarker:
    """One change marker: where it stands along x (``value``; ``step`` is the change's step),
    its colour, label (``label.toPlainText()``), label height (a fraction of the view from the
    bottom) and tooltip. Drawn by the :class:`MarkerLayer` it is added to."""

    angle = 90  # vertical, as an InfiniteLine at 90 degrees

    def __init__(self, step: float, colour: str, text: str, position: float, tooltip: str,
                 event_kind: str | None):
        self.step, self.colour, self.position, self.event_kind = step, colour, position, event_kind
        self.label = MarkerText(text)
        self.tooltip = tooltip
        self.layer: MarkerLayer | None = None
        self._value = float(step)
        self.pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)
        self.text_colour = QColor(colour)

    def value(self) -> float:
        return self._value

    def setValue(self, value: float) -> None:  # noqa: N802
        self._value = float(value)
        if self.layer is not None:
            self.layer.update()

    def toolTip(self) -> str:  # noqa: N802
        return self.tooltip


def marker_line(event: dict[str, Any], text: str, terms: list[str], index: int) -> ChangeMarker:
    """The dashed vertical line for one change ``event`` labelled ``text``: coloured as the term
    it changed (one term) or red for a restore; ``index`` staggers the label heights."""
    colour = theme.TEXT_DIM
    changes = event.get("changes", {})
    if event.get("kind") == "weights" and len(changes) == 1 and next(iter(changes)) in terms:
        colour = theme.curve_color(terms.index(next(iter(changes))))
    elif event.get("kind") == "restored":
        colour = theme.ERROR
    short = text if len(text) <= 60 else text[:57] + "…"
    full = "\n".join(f"{term} {format_number(a)} → {format_number(b)}"
                     for term, (a, b) in changes.items()) if changes else text
    return ChangeMarker(float(event["step"]), colour, short,
                        MARKER_POSITIONS[index % len(MARKER_POSITIONS)],
                        f"step {event['step']}:\n{full}", event.get("kind"))


class MarkerLayer(pg.GraphicsObject):
    """Every change marker of a plot, painted by one item: a dashed line across the view and a
    label on a translucent backing, right of the line in the view's left half and left of it in
    the right half; hovering near a line shows its tooltip.

    One pyqtgraph InfiniteLine with its label per marker costs ~0.4 ms on each change of the
    view (the label re-places itself, the line re-measures its bounds), three times a frame while
    panning and y follows the data: 10 markers took a quarter of a redraw, 200 would take
    several frames. Here a change of the view costs nothing until the paint, which draws only
    the markers in view."""

    def __init__(self):
        super().__init__()
        self.markers: list[ChangeMarker] = []
        self.setZValue(-5)  # under the curves
        self.setAcceptHoverEvents(True)
        self._fill = pg.mkBrush(theme.BACKGROUND + "c0")
        self._measured: tuple = (None, None, {})  # (font key, its metrics, label widths)

    def add(self, marker: ChangeMarker) -> None:
        marker.layer = self
        self.markers.append(marker)
        self.update()

    def remove(self, marker: ChangeMarker) -> None:
        if marker in self.markers:
            self.markers.remove(marker)
            marker.layer = None
            self.update()

    def clear(self) -> None:
        for marker in self.markers:
            marker.layer = None
        self.markers.clear()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        view = self.getViewBox()
        return QRectF() if view is None else view.viewRect()

    def viewTransformChanged(self) -> None:  # noqa: N802
        super().viewTransformChanged()
        self.prepareGeometryChange()  # the bounding rect is the view's rect

    def paint(self, painter: QPainter, *_args) -> None:
        if not self.markers:
            return
        transform = painter.transform()
        view = transform.mapRect(self.boundingRect())  # the view in device pixels
        if view.width() <= 0 or transform.isRotating():
            return
        font = painter.font().key()
        if self._measured[0] != font:  # label sizes, measured once per font and text
            self._measured = (font, QFontMetrics(painter.font()), {})
        _, metrics, widths = self._measured
        margin = 4  # the label's text document's margin, as a pyqtgraph TextItem has
        height = metrics.height() + 2 * margin
        left_edge, right_edge = view.left() - 1, view.right() + 1
        top, bottom, middle = view.top(), view.bottom(), view.center().x()
        scale, offset = transform.m11(), transform.dx()
        painter.save()
        painter.resetTransform()
        for marker in self.markers:
            x = scale * marker.value() + offset
            if not left_edge <= x <= right_edge:
                continue
            x = float(int(x))
            painter.setPen(marker.pen)
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
            text = marker.label.text
            width = widths.get(text)
            if width is None:
                width = widths[text] = metrics.horizontalAdvance(text) + 2 * margin
            centre_y = bottom - marker.position * view.height()
            box = QRectF(x if x < middle else x - width, centre_y - height / 2, width, height)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._fill)
            painter.drawRect(box)
            painter.setPen(marker.text_colour)
            painter.drawText(box.adjusted(margin, margin, -margin, -margin), LABEL_FLAGS, text)
        painter.restore()

    def hoverEvent(self, event) -> None:  # noqa: N802 (pyqtgraph's hover protocol)
        """Show the tooltip of a marker within 4 pixels of the pointer."""
        text = ""
        view = self.getViewBox()
        if view is not None and not event.isExit():
            pointer = event.pos().x()
            per_pixel = abs(view.viewPixelSize()[0]) or 1.0
            near = [m for m in self.markers if abs(m.value() - pointer) <= 4 * per_pixel]
            if near:
                text = min(near, key=lambda m: abs(m.value() - pointer)).tooltip
        if text != self.toolTip():
            self.setToolTip(text)
