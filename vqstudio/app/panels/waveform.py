"""The audition panel's waveform: the clip drawn in seconds, the source being heard over the
original, a loop region and a draggable playhead.

Clicking seeks, dragging the playhead seeks, dragging the region's edges moves the loop; the view
only emits what the user asked for and the panel decides what the player does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QWidget

from vqstudio.app import theme


def _peak(samples: np.ndarray | None) -> float:
    return float(np.max(np.abs(samples))) if samples is not None and samples.size else 0.0


class WaveformView(pg.PlotWidget):
    """The clip's waveform (the original dim behind the selected source), a loop region and a
    draggable playhead. Emits ``seek_requested(seconds)`` on a click or a playhead drag and
    ``loop_changed(start_s, end_s)`` when the region is moved."""

    seek_requested = Signal(float)
    loop_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background=theme.BACKGROUND)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumHeight(120)
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=True, y=False)
        item.showGrid(x=True, y=False, alpha=0.15)
        item.getAxis("left").setWidth(36)
        self._behind = self._curve(theme.TEXT_DIM)
        self._front = self._curve(theme.ORIGINAL_COLOR)
        self.region = pg.LinearRegionItem(
            (0.0, 1.0),
            brush=pg.mkBrush(224, 164, 88, 40),
            hoverBrush=pg.mkBrush(224, 164, 88, 70),
            pen=pg.mkPen(theme.ACCENT, width=1),
        )
        self.region.setZValue(10)
        self.region.setVisible(False)
        self.region.sigRegionChangeFinished.connect(self._on_region)
        self.addItem(self.region)
        self.playhead = pg.InfiniteLine(
            0.0, angle=90, movable=True, pen=pg.mkPen(theme.TEXT, width=1.5),
            hoverPen=pg.mkPen(theme.ACCENT, width=2),
        )
        self.playhead.setZValue(20)
        self.playhead.sigPositionChangeFinished.connect(
            lambda line: self.seek_requested.emit(float(line.value()))
        )
        self.addItem(self.playhead)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.duration = 0.0

    def _curve(self, colour: str) -> pg.PlotDataItem:
        curve = pg.PlotDataItem(pen=pg.mkPen(colour, width=1))
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        self.addItem(curve)
        return curve

    def show(  # noqa: A003  (not QWidget.show: this one takes the samples)
        self, original: np.ndarray | None, front: np.ndarray | None, rate: int, colour: str
    ) -> None:
        """Draw ``front`` [T] (the source being heard, in ``colour``) over ``original`` [T], x in
        seconds; ``front`` None (not computed yet) shows the original faintly; ``original`` None
        clears the view."""
        if original is None:
            self._front.setData([], [])
            self._behind.setData([], [])
            self.duration = 0.0
            return
        x = np.arange(original.shape[0], dtype=np.float64) / rate
        self._front.setPen(pg.mkPen(colour, width=1))
        if front is None or front is original:
            self._behind.setData([], [])
        else:
            self._behind.setData(x, original)
        self._front.setData(x, original if front is None else front)
        self._front.setOpacity(0.35 if front is None else 1.0)
        duration = original.shape[0] / rate
        if duration != self.duration:
            self.duration = duration
            item = self.getPlotItem()
            item.setLimits(xMin=0.0, xMax=duration)
            item.setXRange(0.0, duration, padding=0.0)
            self.region.setBounds((0.0, duration))
            self.playhead.setBounds((0.0, duration))
        peak = max(_peak(original), _peak(front), 0.05) * 1.05
        self.getPlotItem().setYRange(-peak, peak, padding=0.0)

    def set_playhead(self, seconds: float) -> None:
        if not self.playhead.moving and self.playhead.value() != seconds:
            self.playhead.setValue(seconds)

    def _on_region(self) -> None:
        start, end = self.region.getRegion()
        self.loop_changed.emit(float(start), float(end))

    def _on_click(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double() or not self.duration:
            return
        box = self.getPlotItem().getViewBox()
        if not box.sceneBoundingRect().contains(event.scenePos()):
            return
        seconds = box.mapSceneToView(event.scenePos()).x()
        self.seek_requested.emit(min(max(float(seconds), 0.0), self.duration))
