"""The Codebooks panel: how each quantizer level uses its codes, and how that changes over time.

Left, one small histogram per level (small multiples, up to 9 levels x 1024 codes): each code's
share of the level's recent uses, in code order or sorted by frequency, with the uniform share 1/K
as a dashed line; a collapsed codebook shows as a few spikes over a flat floor. Right, the
normalised entropy (1 = every code used equally) and the dead fraction of every level against
the step. "Replace dead codes now" asks the trainer to re-seed unused codes from recent encoder
outputs; the trainer's event reports how many per level.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.panels.plotstyle import grid_shape, overlay_title, style_plot, title_html


def usage_shares(usage: np.ndarray) -> np.ndarray:
    """Running use counts ``[L, K]`` -> each code's share of its level's uses ``[L, K]``."""
    usage = np.nan_to_num(np.asarray(usage, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    usage = np.maximum(usage, 0.0)
    totals = usage.sum(axis=1, keepdims=True)
    return np.divide(usage, totals, out=np.zeros_like(usage), where=totals > 0)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n that is >= ``value`` (> 0)."""
    if not value > 0:
        return 1.0
    decade = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * decade >= value * (1 - 1e-12):
            return step * decade
    return 10.0 * decade


def column_peaks(edges: np.ndarray, heights: np.ndarray, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Bars ``edges [K+1], heights [K]`` merged to at most ``pixels`` bars, each the tallest of
    its codes: a single over-used code (a collapsing codebook) stays visible however narrow."""
    merge = -(-heights.shape[0] // max(1, pixels))
    if merge <= 1:
        return edges, heights
    cut = heights.shape[0] // merge * merge
    peaks = heights[:cut].reshape(-1, merge).max(axis=1)
    if cut < heights.shape[0]:
        peaks = np.append(peaks, heights[cut:].max())
    return np.append(edges[:-1:merge], edges[-1]), peaks


def level_color(level: int) -> str:
    return theme.curve_color(level)


MIN_HISTORY_SPAN = 10.0  # steps: a shorter history is drawn from step 0 (see _redraw_history)


class CodebookPanel(QWidget):
    """Per-level code usage histograms, entropy and dead-code fraction over time."""

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self._version = -1
        self._drawn_rows = -1  # codebook_steps rows already drawn
        self._usage: Any = None  # the array drawn last (held, so identity means "unchanged")
        self._codes = 0
        self._heights: list[np.ndarray] = []
        self._grid = (0, 0)
        self._events_seen = 0
        self._events: Any = None
        self.histograms: list[pg.PlotItem] = []
        self.bars: list[pg.PlotDataItem] = []
        self.uniform_lines: list[pg.InfiniteLine] = []
        self.entropy_curves: list[pg.PlotDataItem] = []
        self.dead_curves: list[pg.PlotDataItem] = []

        self.sort_box = QCheckBox("sort by frequency")
        self.sort_box.setToolTip("order each level's codes from most to least used")
        self.sort_box.toggled.connect(self._redraw_histograms)
        self.replace_button = QPushButton("Replace dead codes now")
        self.replace_button.setToolTip(
            "re-seed every unused code from recent encoder outputs (their running statistics "
            "are reset too, so the next update keeps them)"
        )
        self.replace_button.clicked.connect(self.replace_dead_codes)
        self.replace_status = QLabel("")
        self.replace_status.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.summary = QLabel("no codebook figures yet")
        self.summary.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.summary.setToolTip(
            "per level: each code's share of recent uses; the dashed line is uniform use (1/K); "
            "H = entropy / log K; dead = share of codes no longer used"
        )

        self.histogram_view = pg.GraphicsLayoutWidget()
        self.histogram_view.setBackground(theme.BACKGROUND)
        self.history_view = pg.GraphicsLayoutWidget()
        self.history_view.setBackground(theme.BACKGROUND)
        self.entropy_plot = self.history_view.addPlot(row=0, col=0)
        self.dead_plot = self.history_view.addPlot(row=1, col=0)
        for plot, label, tip in (
            (self.entropy_plot, "entropy H",
             "each level's code entropy over log K: 1 = all codes used alike, 0 = one code"),
            (self.dead_plot, "dead fraction", "each level's share of codes no longer used"),
        ):
            style_plot(plot)
            plot.setLabel("left", label)
            plot.getAxis("left").setToolTip(tip)
            plot.setYRange(0.0, 1.0, padding=0.02)
            plot.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")], []])  # never crowded
            plot.enableAutoRange(y=False)
            plot.setMouseEnabled(y=False)
            plot.setLabel("bottom", "step")
        self.dead_plot.setXLink(self.entropy_plot)
        self._history_columns = 1
        self.histogram_view.installEventFilter(self)
        self.history_view.installEventFilter(self)

        top = QHBoxLayout()
        top.addWidget(self.summary)
        top.addStretch(1)
        top.addWidget(self.sort_box)
        top.addWidget(self.replace_status)
        top.addWidget(self.replace_button)
        splitter = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.histogram_view)
        splitter.addWidget(self.history_view)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        self.replace_button.setEnabled(worker is not None)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw when the store holds new codebook figures; cheap otherwise."""
        store = self.store
        if store.version == self._version:
            return
        self._version = store.version
        if store.events is not self._events:
            self._events, self._events_seen = store.events, 0
        self._read_events()
        usage = store.usage
        rows = len(store.codebook_steps)
        if usage is None:
            if self.histograms:
                self._build(0, 0)
                self.summary.setText("no codebook figures yet")
            self._drawn_rows, self._usage = rows, None
            return
        if rows == self._drawn_rows and usage is self._usage:
            return
        self._drawn_rows, self._usage = rows, usage
        levels, codes = np.asarray(usage).shape
        if len(self.histograms) != levels or self._codes != codes:
            self._build(levels, codes)
        self._redraw_histograms()
        self._redraw_history()

    def replace_dead_codes(self) -> None:
        """Ask the trainer to replace the dead codes of every level at its next step."""
        if self.worker is None:
            return
        self.worker.command("replace_dead_codes")
        self.replace_status.setText("pending")
        self.replace_status.setStyleSheet(f"color: {theme.WARNING};")

    def displayed_shares(self, level: int) -> np.ndarray:
        """The heights of ``level``'s codes ``[K]`` as shown (sorted when "sort by frequency" is
        on); narrower than its codes, a plot draws each pixel column's tallest."""
        return self._heights[level].copy() if level < len(self._heights) else np.empty(0)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        # Side by side when there is room, the histories under the histograms when narrow.
        wide = event.size().width() >= 1.4 * event.size().height()
        self.splitter.setOrientation(Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical)
        super().resizeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:
            if watched is self.histogram_view:
                self._arrange_histograms()
            elif watched is self.history_view:
                self._arrange_history()
        return False

    # -- drawing ------------------------------------------------------------------------------

    def _build(self, levels: int, codes: int) -> None:
        """Lay out one histogram per level (a near-square grid) and one history curve each."""
        self.histogram_view.clear()
        self.histograms, self.bars, self.uniform_lines = [], [], []
        for curve in self.entropy_curves:
            self.entropy_plot.removeItem(curve)
        for curve in self.dead_curves:
            self.dead_plot.removeItem(curve)
        self.entropy_curves, self.dead_curves = [], []
        self._codes = codes
        if not levels:
            return
        self._grid = (0, 0)
        for level in range(levels):
            plot = pg.PlotItem()
            style_plot(plot, grid=False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=True, y=False)
            plot.enableAutoRange(y=False)
            plot.getAxis("left").setWidth(38)
            colour = level_color(level)
            # Filled, no outline: at ~5 px per 32 codes an outline is a dense zigzag that costs
            # more to stroke than the fill does.
            bars = pg.PlotDataItem(
                stepMode="center", fillLevel=0.0, pen=None, brush=pg.mkBrush(colour + "c0"),
            )
            plot.addItem(bars)
            plot.vb.sigResized.connect(self._redraw_histograms)
            uniform = pg.InfiniteLine(
                pos=1.0 / codes, angle=0, pen=pg.mkPen(theme.TEXT_DIM, style=Qt.PenStyle.DashLine)
            )
            uniform.setToolTip(f"uniform use: every code 1/{codes}")
            plot.addItem(uniform, ignoreBounds=True)
            plot.setXRange(0, codes, padding=0.01)
            plot.title_item = overlay_title(plot)
            self.histograms.append(plot)
            self.bars.append(bars)
            self.uniform_lines.append(uniform)
            entropy = self.entropy_plot.plot(pen=pg.mkPen(colour))
            dead = self.dead_plot.plot(pen=pg.mkPen(colour))
            self.entropy_curves.append(entropy)
            self.dead_curves.append(dead)
        self._arrange_histograms()

    def _arrange_histograms(self) -> None:
        """Lay the histograms out in the grid whose cells suit the view's current shape."""
        if not self.histograms:
            return
        size = self.histogram_view.size()
        shape = grid_shape(len(self.histograms), size.width(), size.height())
        if shape == self._grid:
            return
        self._grid = shape
        layout = self.histogram_view.ci
        for plot in self.histograms:
            if plot in layout.items:
                layout.removeItem(plot)
        for level, plot in enumerate(self.histograms):
            layout.addItem(plot, row=level // shape[1], col=level % shape[1])

    def _arrange_history(self) -> None:
        """Entropy above dead fraction, or beside it when the view is wide and short."""
        size = self.history_view.size()
        columns = 2 if size.width() >= 2.2 * size.height() else 1
        if columns == self._history_columns:
            return
        self._history_columns = columns
        layout = self.history_view.ci
        for plot in (self.entropy_plot, self.dead_plot):
            layout.removeItem(plot)
        layout.addItem(self.entropy_plot, row=0, col=0)
        layout.addItem(self.dead_plot, row=0 if columns == 2 else 1, col=1 if columns == 2 else 0)

    def _redraw_histograms(self, *_args) -> None:
        usage = self.store.usage
        if usage is None or not self.bars:
            return
        shares = usage_shares(usage)
        entropy = self._latest(self.store.entropy)
        dead = self._latest(self.store.dead_fraction)
        order = self.sort_box.isChecked()
        edges = np.arange(shares.shape[1] + 1, dtype=np.float64)
        self._heights = [np.sort(row)[::-1] if order else row for row in shares]
        for level, (plot, bars) in enumerate(zip(self.histograms, self.bars)):
            heights = self._heights[level]
            bars.setData(*column_peaks(edges, heights, int(plot.vb.width()) or 200))
            # A y-range that moves in 1-2-5 steps, not with every update: a new range costs
            # every axis its labels again.
            top = nice_ceiling(max(float(heights.max(initial=0.0)), 2.0 / heights.shape[0]))
            if plot.vb.viewRange()[1][1] != top:
                plot.setYRange(0.0, top, padding=0.0)
                # Two labels, 0 and the top: a small multiple is ~60 px tall, and the axis's own
                # choice (0.05 apart) overlapped there.
                plot.getAxis("left").setTicks([[(0.0, "0"), (top, f"{top:g}")], []])
            # Two short lines: one line of three figures is cut off in a small multiple.
            first = f"L{level + 1}"
            if entropy is not None and level < entropy.shape[0]:
                first += f" · H {entropy[level]:.2f}"
            second = ""
            if dead is not None and level < dead.shape[0]:
                second = f"<br>dead {dead[level] * 100:.0f}%"
            plot.title_item.setHtml(title_html(first + second, level_color(level), size=8))
        step = self.store.codebook_steps.view()[-1] if len(self.store.codebook_steps) else None
        self.summary.setText(
            f"{shares.shape[0]} levels x {shares.shape[1]} codes"
            + (", by rank" if order else "")
            + (f" · usage @ step {int(step)}" if step is not None else "")
        )

    def _redraw_history(self) -> None:
        steps = np.asarray(self.store.codebook_steps.view(), dtype=np.float64)
        for curves, source in ((self.entropy_curves, self.store.entropy),
                               (self.dead_curves, self.store.dead_fraction)):
            values = source.view()
            n = min(steps.shape[0], values.shape[0])
            for level, curve in enumerate(curves):
                if n and values.ndim == 2 and level < values.shape[1]:
                    curve.setData(steps[:n], values[:n, level])
                else:
                    curve.setData([], [])
        # One record (a run opened at its checkpoint) or a few close ones: autorange would span
        # +-0.2 steps and crowd the axis with colliding labels; show them from step 0 instead.
        if steps.size and steps[-1] - steps[0] < MIN_HISTORY_SPAN:
            self.entropy_plot.setXRange(min(0.0, steps[0]), max(steps[-1], MIN_HISTORY_SPAN), padding=0.05)
        else:
            self.entropy_plot.enableAutoRange(x=True)

    @staticmethod
    def _latest(array) -> np.ndarray | None:
        values = array.view()
        return values[-1] if len(array) and values.ndim == 2 else None

    # -- events -------------------------------------------------------------------------------

    def _read_events(self) -> None:
        events = self.store.events
        for event in events[self._events_seen:]:
            if event.get("kind") == "replace_dead_codes" and not event.get("automatic"):
                replaced = [int(n) for n in event.get("replaced") or []]
                self.replace_status.setText(
                    f"replaced {', '.join(map(str, replaced)) or '0'} codes @ step {event.get('step')}"
                )
                self.replace_status.setStyleSheet(f"color: {theme.OK};")
        self._events_seen = len(events)
