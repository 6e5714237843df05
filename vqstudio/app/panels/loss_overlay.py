"""The Losses panel comparing runs: the same terms of every run ticked "show on curves" in the
Runs list, each run in its colour (a second ticked term dashed, a third dotted ...), and each run's
validation points. One :class:`RunOverlay` per shown run, each with its own smoothed copies in
envelope pyramids (:mod:`~vqstudio.app.panels.smoothed_curve`) and its own x
(:class:`~vqstudio.app.panels.x_axis.XAxis`), so five runs of 100k rows draw at the cost of a few
thousand points each, like one. Their curves are the panel's :class:`~vqstudio.app.panels.
curve_layer.CurveLayer`'s, above the current run's own (hidden while comparing)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from vqstudio.app.panels.curve_layer import CurveLayer
from vqstudio.app.panels.smoothed_curve import SmoothedCurve
from vqstudio.app.panels.x_axis import STEP, XAxis, draw_curves

TERM_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
               Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)
VIEW_MARGIN = 0.02  # as the panel's own curves: a sliver beyond each edge
# Rows a curve takes in per frame: a run of 100k rows that finished loading is smoothed into its
# pyramids over a few frames, not in one long stall of the GUI thread (the rest comes next frame).
TAKE_ROWS = 25_000


class RunOverlay:
    """One run's curves on the comparison plot."""

    def __init__(self, plot_item: pg.PlotItem, layer: CurveLayer, key: str, store, colour: str,
                 mode: str):
        self.plot_item, self.layer, self.key, self.store, self.colour = plot_item, layer, key, store, colour
        self.axis = XAxis(store, mode)
        self.curves: dict[str, SmoothedCurve] = {}
        self._steps = store.steps
        self._rows = 0
        self._version = -1
        self._smoothing = 0.0
        self.validation = plot_item.plot(pen=None, symbol="o", symbolSize=6, symbolPen=None,
                                         symbolBrush=colour)
        self.validation.setZValue(5)

    def rows(self) -> int:
        return len(self.store.steps)

    def sync(self, terms: list[str], smoothing: float) -> bool:
        """Curves for ``terms`` (those this run has), fed with the rows the store gained (at most
        :data:`TAKE_ROWS` a curve per call: :meth:`pending` says whether more wait); returns
        whether anything changed."""
        store, changed = self.store, False
        if (store.steps is not self._steps or smoothing != self._smoothing
                or self.rows() < self._rows):  # reloaded, refiltered, or a resume cut rows
            self._steps, self._smoothing = store.steps, smoothing
            for curve in self.curves.values():
                curve.reset()
            self.axis.reset()
            changed = True
        wanted = [t for t in terms if t in store.curves]
        for name in [n for n in self.curves if n not in wanted]:
            self.layer.remove(self.curves.pop(name).item)
            changed = True
        for index, name in enumerate(wanted):
            style = TERM_STYLES[index % len(TERM_STYLES)]
            curve = self.curves.get(name)
            if curve is None:
                item = self.layer.add(pg.mkPen(self.colour, width=1, style=style), name)
                curve = self.curves[name] = SmoothedCurve(name, item)
                changed = True
            elif curve.item.pen.style() != style:
                curve.item.setPen(pg.mkPen(self.colour, width=1, style=style))
            rows = store.curves[name].view()[: self.rows()]
            if rows.shape[0] > curve.seen:
                curve.consume(rows[curve.seen:curve.seen + TAKE_ROWS], smoothing)
                changed = True
        self._rows = self.rows()
        if store.version != self._version:
            self._version = store.version
            self._set_validation()
            changed = True
        return changed

    def pending(self) -> bool:
        """Whether rows the store holds still wait to be taken in by a curve."""
        return any(curve.seen < self.rows() for curve in self.curves.values())

    def redraw(self, view: tuple[float, float] | None, pixels: int) -> None:
        """Draw the rows inside ``view`` (x left, right; None: the whole run)."""
        rows = self.rows()
        x = self.axis.values(rows)
        if view is None or rows == 0:
            start, stop = 0, rows
        else:
            left, right = view
            margin = (right - left) * VIEW_MARGIN
            start, stop = self.axis.rows_between(x, left - margin, right + margin)
            pixels = int(pixels * (1 + 2 * VIEW_MARGIN))
        draw_curves(list(self.curves.values()), x, start, stop, pixels)

    def _set_validation(self) -> None:
        values = self.store.validation.view()
        if len(values):
            self.validation.setData(self.axis.at_steps(self.store.validation_steps.view()), values)
        else:
            self.validation.setData([], [])

    def remove(self) -> None:
        for curve in self.curves.values():
            self.layer.remove(curve.item)
        self.plot_item.removeItem(self.validation)
        self.curves.clear()


class LossOverlay:
    """Every shown run's :class:`RunOverlay` on one plot, kept in step with the Runs list."""

    def __init__(self, plot_item: pg.PlotItem, layer: CurveLayer):
        self.plot_item, self.layer = plot_item, layer
        self.runs: dict[str, RunOverlay] = {}
        self.mode = STEP
        self._drawn: tuple | None = None

    def names(self) -> list[str]:
        """Every curve name of the shown runs, in first-seen order."""
        names: dict[str, None] = {}
        for overlay in self.runs.values():
            names.update(dict.fromkeys(overlay.store.curves))
        return list(names)

    def sync(self, entries, terms: list[str], smoothing: float, mode: str) -> bool:
        """Match the shown ``entries`` (:class:`~vqstudio.app.run_list.RunEntry`), draw ``terms``;
        returns whether a redraw is due."""
        changed = False
        if mode != self.mode:
            self.mode = mode
            self.clear()
        keys = {e.key for e in entries}
        for key in [k for k in self.runs if k not in keys]:
            self.runs.pop(key).remove()
            changed = True
        for entry in entries:
            overlay = self.runs.get(entry.key)
            if overlay is not None and (overlay.store is not entry.store or overlay.colour != entry.colour):
                overlay.remove()
                overlay = None
            if overlay is None:
                overlay = self.runs[entry.key] = RunOverlay(self.plot_item, self.layer, entry.key,
                                                            entry.store, entry.colour, mode)
                changed = True
            changed |= overlay.sync(terms, smoothing)
        if changed:
            self._drawn = None
        return changed

    def redraw(self, view: tuple[float, float] | None, pixels: int) -> None:
        key = (view, pixels)
        if key == self._drawn:
            return
        self._drawn = key
        for overlay in self.runs.values():
            overlay.redraw(view, pixels)

    def pending(self) -> bool:
        """Whether a shown run still has rows to take in (the next frames take them)."""
        return any(overlay.pending() for overlay in self.runs.values())

    def curve_count(self) -> int:
        return sum(len(o.curves) for o in self.runs.values())

    def clear(self) -> None:
        for overlay in self.runs.values():
            overlay.remove()
        self.runs.clear()
        self._drawn = None
