"""The Losses panel: every loss term's curve against the step, log-y, with optional EMA smoothing
and a labelled vertical marker wherever a weight, the learning rate or the balancer changed.

Curves can hold millions of points. Each keeps a private smoothed copy in a
:class:`~vqstudio.app.panels.envelope.MinMaxPyramid`; a redraw hands pyqtgraph only the visible
stretch, reduced to about one (min, max) pair per pixel column, so drawing costs the same at a
thousand points and at a million. New points extend the smoothed copy incrementally (the EMA
carries its filter state), and only a change of the smoothing factor refilters whole curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.panels.loss_markers import format_number, marker_label, marker_line
from vqstudio.app.panels.plotstyle import style_plot
from vqstudio.app.panels.smoothed_curve import (
    SMOOTHING_MAX,
    SmoothedCurve,
    slider_from_smoothing,
    smoothing_from_slider,
)

TOTAL = "total"
HIDDEN_BY_DEFAULT = ("lr", "grad_norm")  # other scales: they would flatten the loss curves
MAX_MARKERS = 200  # the newest ones; older markers are dropped so a long run stays fast
# Every change of the view redraws at once, so only a sliver beyond each edge is drawn: points
# outside the view still cost the painter a stroke each.
VIEW_MARGIN = 0.02
COLOUR_ROLE = Qt.ItemDataRole.UserRole + 1


class LossPanel(QWidget):
    """Loss curves (one per term, plus the total), log-y, EMA smoothing, change markers."""

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self.smoothing = 0.0
        self._version = -1
        self._info: Any = None
        self._steps: Any = None
        self._events: Any = None
        self._rows = 0
        self._events_seen = 0
        self._drawn: tuple | None = None
        self._search_rows = -1
        self._search = np.empty(0)
        self._sorted = True
        self.curves: dict[str, SmoothedCurve] = {}
        self.markers: list[pg.InfiniteLine] = []
        self._hidden: set[str] = set()  # names the user switched off
        self._shown: set[str] = set()  # names the user switched on that start hidden

        self.plot_widget = pg.PlotWidget(background=theme.BACKGROUND)
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setLogMode(False, True)
        style_plot(self.plot_item)
        self.plot_item.setLabel("bottom", "step")
        self.plot_item.setLabel("left", "loss")
        self.view_box = self.plot_item.getViewBox()
        self.view_box.sigXRangeChanged.connect(self._view_changed)
        self.view_box.sigResized.connect(self._view_changed)
        self._validation = self.plot_item.plot(
            pen=None, symbol="o", symbolSize=6, symbolBrush=theme.ACCENT, symbolPen=None
        )
        self._validation.setZValue(5)

        self.term_list = QListWidget()
        self.term_list.setToolTip("Tick a curve to show it")
        self.term_list.itemChanged.connect(self._item_toggled)
        self.log_y = QCheckBox("log y")
        self.log_y.setChecked(True)
        self.log_y.toggled.connect(lambda on: self.plot_item.setLogMode(False, on))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 1000)
        self.smoothing_slider.setToolTip(
            "Exponential moving average of the shown curves (0 = raw, 0.999 = heavy); the data "
            "itself is kept raw"
        )
        self.smoothing_label = QLabel()
        self._smoothing_proxy = pg.SignalProxy(
            self.smoothing_slider.valueChanged, delay=0.05, rateLimit=15,
            slot=lambda args: self.set_smoothing(smoothing_from_slider(args[0])),
        )
        self.smoothing_slider.valueChanged.connect(
            lambda v: self.smoothing_label.setText(f"smoothing {smoothing_from_slider(v):.3f}")
        )
        self.smoothing_label.setText("smoothing 0.000")

        side = QVBoxLayout()
        side.addWidget(QLabel("curves"))
        side.addWidget(self.term_list, 1)
        side.addWidget(self.smoothing_label)
        side.addWidget(self.smoothing_slider)
        side.addWidget(self.log_y)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(190)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(side_widget)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Take in what the store gained since the last call and redraw; cheap when nothing did."""
        store = self.store
        if store.version == self._version:
            return
        self._version = store.version
        if (store.info is not self._info or store.steps is not self._steps
                or store.events is not self._events or len(store.steps) < self._rows):
            self._reset()
        self._sync_curve_list()
        steps_n = len(store.steps)
        for name, curve in self.curves.items():
            source = store.curves.get(name)
            if source is None:
                continue
            rows = source.view()[: steps_n]
            if rows.shape[0] > curve.seen:
                curve.consume(rows[curve.seen:], self.smoothing)
        self._rows = steps_n
        self._add_markers()
        self._set_validation()
        # Redraws only if the drawn rows changed: points appended beyond a view that the user
        # moved elsewhere cost nothing.
        self._redraw()

    def set_smoothing(self, alpha: float) -> None:
        """EMA factor 0..0.999 applied to the shown curves (refilters whole curves once)."""
        alpha = min(max(float(alpha), 0.0), SMOOTHING_MAX)
        if alpha == self.smoothing:
            return
        self.smoothing = alpha
        if self.smoothing_slider.value() != slider_from_smoothing(alpha):
            self.smoothing_slider.blockSignals(True)
            self.smoothing_slider.setValue(slider_from_smoothing(alpha))
            self.smoothing_slider.blockSignals(False)
        self.smoothing_label.setText(f"smoothing {alpha:.3f}")
        for curve in self.curves.values():
            curve.stale = True
        self._drawn = None
        self._redraw()

    def set_curve_visible(self, name: str, visible: bool) -> None:
        """Show or hide one curve, as its tick box does."""
        for i in range(self.term_list.count()):
            item = self.term_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
                return

    def is_curve_visible(self, name: str) -> bool:
        curve = self.curves.get(name)
        return curve is not None and curve.item.isVisible()

    # -- curves -------------------------------------------------------------------------------

    def _reset(self) -> None:
        store = self.store
        self._info, self._steps, self._events = store.info, store.steps, store.events
        self._rows = self._events_seen = 0
        self._search_rows = -1
        self._drawn = None
        for curve in self.curves.values():
            curve.reset()
            curve.item.setData([], [])
        for line in self.markers:
            self.plot_item.removeItem(line)
        self.markers.clear()

    def _ordered_names(self) -> list[str]:
        terms = list(self.store.info.get("term_names", []))
        names = [n for n in terms if n in self.store.curves]
        if TOTAL in self.store.curves:
            names.append(TOTAL)
        names += sorted(n for n in self.store.curves if n not in names)
        return names

    def _default_visible(self, name: str) -> bool:
        terms = self.store.info.get("term_names")
        part_of = name.split("/")[0] if "/" in name else None  # mrstft/sc, mel/tanh_saturation
        if name in HIDDEN_BY_DEFAULT or part_of in ("mrstft", "mel", "val"):
            return False  # other scales, and the logged parts of a term
        return terms is None or name in terms or name == TOTAL

    def _sync_curve_list(self) -> None:
        names = self._ordered_names()
        if list(self.curves) == names:
            return
        terms = list(self.store.info.get("term_names", []))
        self.term_list.blockSignals(True)
        for name in [n for n in self.curves if n not in names]:  # another run's terms
            self.plot_item.removeItem(self.curves.pop(name).item)
            for entry in self.term_list.findItems(name, Qt.MatchFlag.MatchExactly):
                self.term_list.takeItem(self.term_list.row(entry))
        for index, name in enumerate(names):
            if name in self.curves:
                continue
            if name == TOTAL:
                colour = theme.TOTAL_COLOR
            else:
                colour = theme.curve_color(terms.index(name) if name in terms else index)
            # Width 1, the total too: a wider pen takes the raster engine's slow stroker (x4).
            pen = pg.mkPen(colour, width=1)
            if name in HIDDEN_BY_DEFAULT:
                pen.setStyle(Qt.PenStyle.DashLine)
            item = pg.PlotDataItem(pen=pen, name=name)
            # The envelope has already clipped the data to the view and reduced it to about one
            # (min, max) pair per pixel column. pyqtgraph's own clip-to-view, downsampling and
            # dynamic-range passes would redo that on every change of the view, before the
            # envelope's new data replaces it anyway: half of a pan's cost, for nothing.
            item.setDownsampling(auto=False)
            item.setClipToView(False)
            item.setDynamicRangeLimit(None)
            self.plot_item.addItem(item)
            self.curves[name] = SmoothedCurve(name, item)
            visible = (self._default_visible(name) or name in self._shown) and name not in self._hidden
            item.setVisible(visible)
            entry = QListWidgetItem(name)
            entry.setData(Qt.ItemDataRole.UserRole, name)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            entry.setData(COLOUR_ROLE, colour)
            self._colour_entry(entry)
            self.term_list.addItem(entry)
        # Drawing order follows the display order (a term that appears late is listed last).
        self.curves = {name: self.curves[name] for name in names if name in self.curves}
        self.term_list.blockSignals(False)
        self._drawn = None  # the new curves are not drawn yet

    @staticmethod
    def _colour_entry(entry: QListWidgetItem) -> None:
        """A shown curve's name in its colour, a hidden one's dimmed (the dark theme's unticked
        boxes are hard to see, the names are not)."""
        colour = QColor(entry.data(COLOUR_ROLE))
        if entry.checkState() != Qt.CheckState.Checked:
            colour = QColor.fromRgbF(*(0.45 * c + 0.55 * b for c, b in zip(
                colour.getRgbF()[:3], QColor(theme.BACKGROUND).getRgbF()[:3])))
        entry.setForeground(colour)

    def _item_toggled(self, entry: QListWidgetItem) -> None:
        name = entry.data(Qt.ItemDataRole.UserRole)
        visible = entry.checkState() == Qt.CheckState.Checked
        self.term_list.blockSignals(True)
        self._colour_entry(entry)
        self.term_list.blockSignals(False)
        (self._shown if visible else self._hidden).add(name)
        (self._hidden if visible else self._shown).discard(name)
        curve = self.curves.get(name)
        if curve is not None:
            curve.item.setVisible(visible)
            self._drawn = None
            self._redraw()

    def _rebuild(self, curve: SmoothedCurve) -> None:
        """Refilter a whole curve from the store's rows (after the smoothing factor changed)."""
        source = self.store.curves.get(curve.name)
        curve.reset()
        if source is not None:
            curve.consume(source.view()[: len(self.store.steps)], self.smoothing)

    # -- drawing ------------------------------------------------------------------------------

    def _view_changed(self, *_args) -> None:
        self._redraw()

    def _visible_rows(self, x: np.ndarray) -> tuple[int, int, int]:
        """Store rows to draw (the visible x-range plus a margin) and the pixel columns for them."""
        pixels = int(self.view_box.width()) or 1000
        n = x.shape[0]
        if self.view_box.autoRangeEnabled()[0] or n == 0:
            return 0, n, pixels  # following the run: everything is in view
        left, right = self.view_box.viewRange()[0]
        margin = (right - left) * VIEW_MARGIN
        search = self._search_steps(x)
        start = max(0, int(np.searchsorted(search, left - margin, "left")) - 1)
        stop = min(n, int(np.searchsorted(search, right + margin, "right")) + 1)
        return start, stop, int(pixels * (1 + 2 * VIEW_MARGIN))

    def _search_steps(self, x: np.ndarray) -> np.ndarray:
        """The steps, made sorted for searching: after a restore from a checkpoint they step back
        (then a running maximum, recomputed only when rows were added)."""
        n, done = x.shape[0], self._search_rows
        if done != n:
            if done <= 0 or done > n or not self._sorted:
                self._sorted = bool(np.all(x[1:] >= x[:-1]))
            else:  # only the new rows need checking
                self._sorted = bool(np.all(x[done:] >= x[done - 1 : n - 1]))
            self._search = x if self._sorted else np.maximum.accumulate(x)
            self._search_rows = n
        return self._search

    def _redraw(self) -> None:
        x = self.store.steps.view()[: self._rows]
        start, stop, pixels = self._visible_rows(x)
        key = (start, stop, pixels, self.smoothing)
        if key == self._drawn:
            return
        self._drawn = key
        for curve in self.curves.values():
            if not curve.item.isVisible():
                continue
            if curve.stale:
                self._rebuild(curve)
            if curve.first is None:
                curve.item.setData([], [])
                continue
            index, y = curve.pyramid.envelope(start - curve.first, stop - curve.first, pixels)
            curve.item.setData(x[index + curve.first], y)

    def _set_validation(self) -> None:
        steps = getattr(self.store, "validation_steps", None)
        values = getattr(self.store, "validation", None)
        if steps is not None and values is not None and len(values):
            self._validation.setData(np.asarray(steps.view(), np.float64), values.view())
        else:
            self._validation.setData([], [])

    # -- markers ------------------------------------------------------------------------------

    def _add_markers(self) -> None:
        events = self.store.events
        for event in events[self._events_seen:]:
            text = marker_label(event)
            if text is None or "step" not in event:
                continue
            self._add_marker(event, text)
        self._events_seen = len(events)
        while len(self.markers) > MAX_MARKERS:
            self.plot_item.removeItem(self.markers.pop(0))

    def _add_marker(self, event: dict[str, Any], text: str) -> None:
        terms = list(self.store.info.get("term_names", []))
        line = marker_line(event, text, terms, len(self.markers))
        self.plot_item.addItem(line, ignoreBounds=True)
        self.markers.append(line)


__all__ = ["LossPanel", "format_number", "marker_label"]  # the last two are used by other panels
