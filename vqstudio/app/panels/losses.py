"""The Losses panel: every loss term's curve against the step, log-y, with optional EMA smoothing
and a labelled vertical marker wherever a weight, the learning rate or the balancer changed.

Curves can hold millions of points. Each keeps a private smoothed copy in a
:class:`~vqstudio.app.panels.envelope.MinMaxPyramid`; a redraw hands pyqtgraph only the visible
stretch, reduced to about one (min, max) pair per pixel column, so drawing costs the same at a
thousand points and at a million. New points extend the smoothed copy incrementally (the EMA
carries its filter state), and only a change of the smoothing factor refilters whole curves.

Comparing runs (another run ticked "show on curves" in the Runs list, :mod:`vqstudio.app.run_list`)
the plot overlays the ticked terms of every shown run, a colour per run
(:mod:`~vqstudio.app.panels.loss_overlay`), with their own ticks (the total at first). Along x:
the step, the seconds of audio trained on, or the training time (:mod:`~vqstudio.app.panels.x_axis`).
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsView, QHBoxLayout, QListWidgetItem, QWidget

from vqstudio.app import theme
from vqstudio.app.panels.curve_layer import CurveLayer
from vqstudio.app.panels.loss_axis import LossAxis
from vqstudio.app.panels.loss_markers import (
    ChangeMarker,
    MarkerLayer,
    format_number,
    marker_label,
    marker_line,
)
from vqstudio.app.panels.loss_side import build_side, colour_entry, new_entry, sync_entries
from vqstudio.app.panels.loss_overlay import LossOverlay
from vqstudio.app.panels.plotstyle import style_plot
from vqstudio.app.panels.smoothed_curve import SMOOTHING_MAX, SmoothedCurve, slider_from_smoothing
from vqstudio.app.panels.x_axis import STEP, TIME, X_MODES, XAxis, draw_curves

TOTAL = "total"
HIDDEN_BY_DEFAULT = ("lr", "grad_norm")  # other scales: they would flatten the loss curves
MAX_MARKERS = 200  # the newest ones; older markers are dropped so a long run stays fast
# Every change of the view redraws at once, so only a sliver beyond each edge is drawn: points
# outside the view still cost the painter a stroke each.
VIEW_MARGIN = 0.02


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
        self._validation_key: tuple | None = None  # what the validation points were set from
        self.curves: dict[str, SmoothedCurve] = {}
        self.runs = None  # the Runs list (set_runs); comparing while it shows another run
        self.comparing = False
        self.x_mode = STEP
        self.axis = XAxis(store, STEP)
        self._overlay_terms: list[str] = [TOTAL]  # ticked while comparing, in tick order
        self._runs_changed = False
        self.markers: list[ChangeMarker] = []
        self._hidden: set[str] = set()  # names the user switched off
        self._shown: set[str] = set()  # names the user switched on that start hidden

        self.plot_widget = pg.PlotWidget(
            background=theme.BACKGROUND,
            axisItems={side: LossAxis(side) for side in ("left", "bottom")})
        # The background is one colour: filling it costs less than copying pyqtgraph's cached
        # picture of it (4 MB a frame at full HD).
        self.plot_widget.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
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
        # Every curve, the compared runs' too, in one item (curve_layer.py): above the markers
        # (z -5), under the validation points.
        self.layer = CurveLayer()
        self.plot_item.addItem(self.layer)
        self.marker_layer = MarkerLayer()
        self.plot_item.addItem(self.marker_layer, ignoreBounds=True)
        self.overlay = LossOverlay(self.plot_item, self.layer)

        side_widget = build_side(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(side_widget)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Take in what the store (and the compared runs) gained since the last call and redraw;
        cheap when nothing did."""
        store = self.store
        if self.runs is not None:
            self.runs.sync_current()
            comparing = self.runs.comparing()
            if comparing != self.comparing:
                self._set_comparing(comparing)
        if store.version != self._version:
            self._version = store.version
            self._take_in()
        if self.comparing:
            names = self.overlay.names()
            runs_changed, self._runs_changed = self._runs_changed, False
            if self.overlay.sync(self.runs.shown(), self._overlay_terms, self.smoothing, self.x_mode) \
                    or runs_changed:
                self._sync_overlay_entries(names)
        # Redraws only if the drawn rows changed: points appended beyond a view that the user
        # moved elsewhere cost nothing.
        self._redraw()

    def _take_in(self) -> None:
        store = self.store
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

    def set_runs(self, runs) -> None:
        """Compare with the runs of ``runs`` (a :class:`~vqstudio.app.run_list.RunList`)."""
        self.runs = runs
        runs.changed.connect(self._on_runs_changed)
        self._version = -1

    def set_x_mode(self, mode: str) -> None:
        """Put the step (``"step"``), audio seconds seen (``"audio"``) or training time
        (``"time"``) along x; the view shows the whole run again."""
        if mode == self.x_mode or mode not in X_MODES:
            return
        self.x_mode = mode
        self.axis = XAxis(self.store, mode)
        index = self.x_choice.findData(mode)
        if self.x_choice.currentIndex() != index:
            self.x_choice.setCurrentIndex(index)
        self.plot_item.setLabel("bottom", X_MODES[mode])
        for line in self.markers:
            line.setValue(float(self.axis.at_steps([line.step])[0]))
        self._set_validation()
        self._drawn = None
        self.view_box.enableAutoRange(x=True)
        self.refresh()
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
        self.refresh()
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
        self.axis = XAxis(store, self.x_mode)
        self._drawn = None
        for curve in self.curves.values():
            curve.reset()
            curve.item.setData([], [])
        self.marker_layer.clear()
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
            self.layer.remove(self.curves.pop(name).item)
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
            # The envelope has already clipped the data to the view and reduced it to about one
            # (min, max) pair per pixel column; the layer paints it as spans per column.
            item = self.layer.add(pen, name)
            self.curves[name] = SmoothedCurve(name, item)
            visible = self._single_visible(name)
            item.setVisible(visible and not self.comparing)
            ticked = name in self._overlay_terms if self.comparing else visible
            entry = new_entry(name, colour, ticked)
            self._colour_entry(entry)
            self.term_list.addItem(entry)
        # Drawing order follows the display order (a term that appears late is listed last).
        self.curves = {name: self.curves[name] for name in names if name in self.curves}
        self.layer.put_first([curve.item for curve in self.curves.values()])
        self.term_list.blockSignals(False)
        self._drawn = None  # the new curves are not drawn yet

    def _colour_entry(self, entry: QListWidgetItem) -> None:
        colour_entry(entry, plain=self.comparing)

    def _single_visible(self, name: str) -> bool:
        """Whether the current run's curve ``name`` shows when no other run is compared."""
        return (self._default_visible(name) or name in self._shown) and name not in self._hidden

    def _item_toggled(self, entry: QListWidgetItem) -> None:
        name = entry.data(Qt.ItemDataRole.UserRole)
        visible = entry.checkState() == Qt.CheckState.Checked
        self.term_list.blockSignals(True)
        self._colour_entry(entry)
        self.term_list.blockSignals(False)
        if self.comparing:  # the compared runs' ticks are their own
            if visible and name not in self._overlay_terms:
                self._overlay_terms.append(name)
            elif not visible and name in self._overlay_terms:
                self._overlay_terms.remove(name)
            self.refresh()
            return
        (self._shown if visible else self._hidden).add(name)
        (self._hidden if visible else self._shown).discard(name)
        curve = self.curves.get(name)
        if curve is not None:
            curve.item.setVisible(visible)
            self._drawn = None
            self._redraw()

    # -- comparing runs -----------------------------------------------------------------------

    def _on_runs_changed(self) -> None:
        self._runs_changed = True

    def _set_comparing(self, on: bool) -> None:
        self.comparing = on
        if not on:
            self.overlay.clear()
        for name, curve in self.curves.items():
            curve.item.setVisible(not on and self._single_visible(name))
        self._validation.setVisible(not on)
        self._runs_changed = True
        self._sync_overlay_entries(self.overlay.names())
        self._drawn = None

    def _sync_overlay_entries(self, names: list[str]) -> None:
        """The term list for the mode: comparing, also the names only compared runs have, ticked
        as :attr:`_overlay_terms`; else the current run's, ticked as its curves show."""
        if self.comparing:
            sync_entries(self.term_list, self.curves, names, self._overlay_terms.__contains__, True)
        else:
            sync_entries(self.term_list, self.curves, [], self._single_visible, False)

    def _rebuild(self, curve: SmoothedCurve) -> None:
        """Refilter a whole curve from the store's rows (after the smoothing factor changed)."""
        source = self.store.curves.get(curve.name)
        curve.reset()
        if source is not None:
            curve.consume(source.view()[: len(self.store.steps)], self.smoothing)

    # -- drawing ------------------------------------------------------------------------------

    def _view_changed(self, *_args) -> None:
        self._redraw()

    def _view(self) -> tuple[tuple[float, float] | None, int]:
        """The x-range shown (None while following the run: all of it) and its pixel columns."""
        pixels = int(self.view_box.width()) or 1000
        if self.view_box.autoRangeEnabled()[0]:
            return None, pixels
        left, right = self.view_box.viewRange()[0]
        return (float(left), float(right)), pixels

    def _redraw(self) -> None:
        view, pixels = self._view()
        if self.comparing:
            self.overlay.redraw(view, pixels)
            return
        x = self.axis.values(self._rows)
        n = x.shape[0]
        if view is None or n == 0:
            start, stop = 0, n
        else:
            margin = (view[1] - view[0]) * VIEW_MARGIN
            start, stop = self.axis.rows_between(x, view[0] - margin, view[1] + margin)
            pixels = int(pixels * (1 + 2 * VIEW_MARGIN))
        key = (start, stop, pixels, self.smoothing)
        if key == self._drawn:
            return
        self._drawn = key
        shown = [curve for curve in self.curves.values() if curve.item.isVisible()]
        for curve in shown:
            if curve.stale:
                self._rebuild(curve)
        draw_curves(shown, x, start, stop, pixels)

    def _set_validation(self) -> None:
        steps = getattr(self.store, "validation_steps", None)
        values = getattr(self.store, "validation", None)
        # Handed to pyqtgraph only when they changed (each store change asked: ~0.15 ms a frame
        # while points arrive); along the training time, x of a step moves as time is known.
        key = (id(steps), id(values), len(values) if values is not None else 0, id(self.axis),
               len(self.store.steps) if self.x_mode == TIME else 0)
        if key == self._validation_key:
            return
        self._validation_key = key
        if steps is not None and values is not None and len(values):
            self._validation.setData(self.axis.at_steps(steps.view()), values.view())
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
            self.marker_layer.remove(self.markers.pop(0))

    def _add_marker(self, event: dict[str, Any], text: str) -> None:
        terms = list(self.store.info.get("term_names", []))
        line = marker_line(event, text, terms, len(self.markers))
        if self.x_mode != STEP:
            line.setValue(float(self.axis.at_steps([line.step])[0]))
        self.marker_layer.add(line)
        self.markers.append(line)


__all__ = ["LossPanel", "format_number", "marker_label"]  # the last two are used by other panels
