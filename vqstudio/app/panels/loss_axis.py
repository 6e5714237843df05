"""The Losses panel's axes: pyqtgraph's AxisItem, less the work it repeats on every change of the
view while the curves pan, zoom or follow the run.

Each frame of a pan both axes lay out their ticks again (x moved, y follows the data in view).
pyqtgraph's layout measures every tick label with ``QPainter.boundingRect`` and asks the axis
for its own bounding rect once per label (both ~35 times a frame), and every range change sets
the axis title's HTML again (four times a frame) although it reads the same. Here a label's size
is measured once per font and text, the bounds once per layout, and the title only set when its
text changed: the same ticks, labels and title in the same places, about 1 ms less a frame.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QPainter, QPicture

MEASURED_MAX = 4096  # remembered label sizes (per font and text); forgotten all at once beyond


class _MeasuringPainter:
    """Stands in for the painter pyqtgraph lays out the ticks with: ``boundingRect`` of a text
    answered from ``sizes`` when that font and text were measured before; the rest passed on."""

    def __init__(self, painter, sizes: dict):
        self._painter, self._sizes = painter, sizes
        self._font = painter.font().key()

    def setFont(self, font) -> None:  # noqa: N802 (QPainter's names)
        self._painter.setFont(font)
        self._font = self._painter.font().key()

    def boundingRect(self, rect, flags, text):  # noqa: N802
        key = (self._font, rect.x(), rect.y(), rect.width(), rect.height(), int(flags), text)
        found = self._sizes.get(key)
        if found is None:
            if len(self._sizes) >= MEASURED_MAX:
                self._sizes.clear()
            found = self._sizes[key] = self._painter.boundingRect(rect, flags, text)
        return QRectF(found)  # a copy: pyqtgraph adjusts the rect it gets

    def __getattr__(self, name):
        return getattr(self._painter, name)


class LossAxis(pg.AxisItem):
    """An AxisItem that measures each tick label once and sets its title only when it changes."""

    def __init__(self, orientation: str, **kwargs):
        self._sizes: dict = {}
        self._bounds: QRectF | None = None  # held while the ticks are laid out
        self._title: str | None = None
        self._specs: tuple | None = None  # what generateDrawSpecs laid out, drawn each paint
        self._font: QFont | None = None
        super().__init__(orientation, **kwargs)

    def generateDrawSpecs(self, p):  # noqa: N802 (pyqtgraph's name)
        self._bounds = super().boundingRect()
        try:
            return super().generateDrawSpecs(_MeasuringPainter(p, self._sizes))
        finally:
            self._bounds = None

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self._bounds) if self._bounds is not None else super().boundingRect()

    def _updateMaxTextSize(self, x):  # noqa: N802
        # The last step of the layout, and it may resize the axis: its bounds are asked afresh.
        self._bounds = None
        super()._updateMaxTextSize(x)

    def _updateLabel(self) -> None:  # noqa: N802
        title = self.labelString()
        if title != self._title:
            self._title = title
            self.label.setHtml(title)
            self._adjustSize()
        self.picture = None
        self.update()

    def paint(self, p, opt, widget) -> None:
        # pyqtgraph records the axis into a QPicture whenever it changed (every frame of a pan)
        # and plays that back; here the laid-out ticks are kept and drawn straight onto the
        # view, in the font the recording painter would have had.
        if self.picture is None:
            picture = QPicture()
            measuring = QPainter(picture)
            try:
                if self.style["tickFont"]:
                    measuring.setFont(self.style["tickFont"])
                self._font = QFont(measuring.font())
                self._specs = self.generateDrawSpecs(measuring)
            finally:
                measuring.end()
            self.picture = picture  # not None: laid out (pyqtgraph sets None to ask again)
        if self._specs is not None:
            p.setFont(self._font)
            self.drawPicture(p, *self._specs)
