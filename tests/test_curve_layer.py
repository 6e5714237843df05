"""The curve layer that paints the loss curves as spans per pixel column: the spans are those of
the stroked polyline, the painted picture is pyqtgraph's own stroke to within a pixel, and in the
Losses panel each pixel column of a million-point curve spans the data's min and max there (to
within the neighbouring column)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor

from vqstudio.app.panels.column_spans import column_spans
from vqstudio.app.panels.curve_layer import CurveLayer
from vqstudio.app.panels.losses import LossPanel
from vqstudio.app.store import RunStore

pytestmark = pytest.mark.gui

COLOUR = "#ff8800"


def test_a_vertical_zigzag_is_one_span_per_column_reaching_its_neighbours():
    # Two points per column (a min, a max), as the envelope hands them.
    x = np.repeat(np.arange(10) + 0.5, 2)
    y = np.array([[10.2, 20.7], [25.1, 18.0], [5.5, 12.0], [30.0, 31.9], [14.0, 16.0]] * 2).reshape(-1)
    spans = column_spans(x, y, 100, 100)
    assert np.array_equal(spans.column, np.arange(10))
    assert spans.lines.shape == (0, 4)
    pairs = y.reshape(-1, 2)
    for k in range(10):
        own_top, own_bottom = pairs[k].min(), pairs[k].max()
        # the strokes joining the neighbours cross the boundaries half-way: at most as far as
        # the previous column's last point and the next one's first
        reach = [own_top, own_bottom] + ([pairs[k - 1, 1]] if k else []) + \
            ([pairs[k + 1, 0]] if k < 9 else [])
        assert spans.top[k] <= np.floor(own_top) and spans.bottom[k] >= np.floor(own_bottom)
        assert spans.top[k] >= np.floor(min(reach)) and spans.bottom[k] <= np.floor(max(reach))


def test_long_segments_are_lines_and_a_missing_point_breaks_the_curve():
    x = np.array([0.5, 0.7, 5.5, 5.6, np.nan, 7.5, 7.6])
    y = np.array([1.0, 3.0, 40.0, 42.0, 50.0, 9.0, 8.0])
    spans = column_spans(x, y, 20, 60)
    np.testing.assert_array_equal(spans.lines, [[0.7, 3.0, 5.5, 40.0]])  # 5 columns across
    assert list(spans.column) == [0, 5, 7]
    assert list(spans.top) == [1, 40, 8] and list(spans.bottom) == [3, 42, 9]


def test_spans_outside_the_image_are_dropped_and_cut_at_its_edges():
    x = np.array([-3.5, -3.2, 2.5, 2.5, 4.5, 4.5])
    y = np.array([5.0, 6.0, -50.0, 500.0, 70.0, 80.0])
    spans = column_spans(x, y, 4, 40)
    assert list(spans.column) == [2]  # column 4 is beyond the width, -4 before it
    assert (spans.top[0], spans.bottom[0]) == (0, 39)


def bare_plot(qtbot):
    """A 600 x 300 plot on black without axes: (the widget, its PlotItem)."""
    widget = pg.PlotWidget(background="#000000")
    qtbot.addWidget(widget)
    widget.resize(600, 300)
    item = widget.getPlotItem()
    item.hideAxis("left")
    item.hideAxis("bottom")
    return widget, item


def plot(qtbot, layered: bool, x, y, log_y=True, style=Qt.PenStyle.SolidLine,
         under: str | None = None) -> np.ndarray:
    """The curve painted into a 600 x 300 plot by the layer (as spans, however thin) or by
    pyqtgraph's PlotDataItem, after a solid curve in the colour ``under`` if given (three times
    higher); the pixels of the colour ``under`` if given, else of the curve's (rows, columns)."""
    widget, item = bare_plot(qtbot)
    pen = pg.mkPen(COLOUR, width=1, style=style)
    if layered:
        layer = CurveLayer()
        layer.route = "spans"
        item.addItem(layer)
        if under is not None:
            layer.add(pg.mkPen(under, width=1), "under").setData(x, y * 3)
        layer.add(pen, "curve").setData(x, y)
    else:
        if under is not None:
            item.addItem(pg.PlotDataItem(x, y * 3, pen=pg.mkPen(under, width=1)))
        item.addItem(pg.PlotDataItem(x, y, pen=pen))
    item.setLogMode(False, log_y)
    item.setXRange(float(x[0]), float(x[-1]), padding=0.02)
    item.enableAutoRange(y=True)
    image = widget.grab().toImage()
    colours = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width())
    return colours & 0xFFFFFF == QColor(under or COLOUR).rgb() & 0xFFFFFF


@pytest.mark.parametrize("points", [300, 5_000])  # a few pixels apart; a dense zigzag
def test_the_layer_paints_what_pyqtgraph_strokes(qtbot, points):
    rng = np.random.default_rng(points)
    x = np.arange(points, dtype=np.float64)
    y = np.exp(-x / points) * np.exp(rng.normal(0, 0.3, points))
    ours, theirs = plot(qtbot, True, x, y), plot(qtbot, False, x, y)
    # The same pixels but for a few at the ends of strokes (Qt's stroker leaves out the pixel at
    # some turning points of a polyline; the spans keep it).
    assert (ours & theirs).sum() >= 0.98 * theirs.sum()
    assert (ours & ~theirs).sum() <= 0.02 * theirs.sum()
    columns = np.flatnonzero(theirs.any(axis=0) & ours.any(axis=0))
    assert columns.size >= 0.98 * np.flatnonzero(theirs.any(axis=0)).size
    rows = np.arange(ours.shape[0])[:, None]
    top = lambda lit: np.where(lit, rows, 10**6).min(axis=0)[columns]  # noqa: E731
    bottom = lambda lit: np.where(lit, rows, -1).max(axis=0)[columns]  # noqa: E731
    assert np.mean(np.abs(top(ours) - top(theirs)) <= 1) >= 0.9
    assert np.mean(np.abs(bottom(ours) - bottom(theirs)) <= 1) >= 0.9


def test_a_dashed_curve_among_spans_is_stroked_not_filled(qtbot):
    rng = np.random.default_rng(3)
    x = np.arange(5000, dtype=np.float64)
    y = np.exp(-x / 5000) * np.exp(rng.normal(0, 0.3, x.size))
    dashed = Qt.PenStyle.DashLine
    ours, theirs = (plot(qtbot, layered, x, y, style=dashed, under="#0000ff") for layered in (True, False))
    # The solid curve drawn before it keeps its pixels: the dashed path is not filled with it
    assert abs(int(ours.sum()) - int(theirs.sum())) <= 0.03 * theirs.sum()
    # and the dashed curve's ink is pyqtgraph's (the dash pattern's phase differs pixel by pixel).
    ours, theirs = (plot(qtbot, layered, x, y, style=dashed) for layered in (True, False))
    assert abs(int(ours.sum()) - int(theirs.sum())) <= 0.1 * theirs.sum()


@pytest.mark.parametrize("route", ["spans", "paths"])
def test_each_column_of_a_million_point_curve_shows_the_datas_min_and_max_near_it(qtbot, route):
    n = 1_000_000
    rng = np.random.default_rng(1)
    steps = np.arange(1, n + 1, dtype=np.float64)
    values = np.exp(-steps / 3e5) * np.exp(rng.normal(0, 0.2, n))
    store = RunStore()
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {"a": 1.0}, "term_names": ["a"], "sample_rate": 24000,
                      "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static"})
    store.on_scalars({"step": steps, "elapsed": steps / 40, "terms": {"a": values}})
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.refresh()
    panel.curves["a"].item.setPen(pg.mkPen(COLOUR, width=1))
    panel.layer.route = route
    for left, right in [(0, n), (250_000, 400_000)]:
        panel.plot_item.setXRange(left, right, padding=0)
        panel.refresh()
        image = panel.plot_widget.grab().toImage()
        lit = (np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width())
               & 0xFFFFFF) == QColor(COLOUR).rgb() & 0xFFFFFF
        # The data in the widget's pixels, as the view maps it.
        vb = panel.view_box
        origin = vb.mapViewToDevice(QPointF(0.0, 0.0))
        unit = vb.mapViewToDevice(QPointF(1.0, 1.0))
        px = origin.x() + steps * (unit.x() - origin.x())
        py = origin.y() + np.log10(values) * (unit.y() - origin.y())
        column = np.floor(px).astype(np.int64)
        inside = (px >= vb.mapViewToDevice(QPointF(left, 0)).x() + 2) & \
                 (px < vb.mapViewToDevice(QPointF(right, 0)).x() - 2)
        cols = np.unique(column[inside])
        low = np.full(image.width(), np.inf)
        high = np.full(image.width(), -np.inf)
        np.minimum.at(low, column[inside], py[inside])
        np.maximum.at(high, column[inside], py[inside])
        rows = np.arange(lit.shape[0])[:, None]
        top = np.where(lit, rows, 10**6).min(axis=0)
        bottom = np.where(lit, rows, -1).max(axis=0)
        # The envelope places each run of points (up to a column wide) at its first point's x,
        # which may lie in the column before; the stroke to the next run reaches half-way.
        for c in cols[2:-2]:
            # The column's data drawn there or next door ...
            near = slice(c - 1, c + 2)
            assert np.floor(low[c]) >= top[near].min() - 1, c
            assert np.floor(high[c]) <= bottom[near].max() + 1, c
            # ... and no ink beyond the data of the columns around it.
            around = slice(c - 1, c + 3)
            assert top[c] >= np.floor(low[around].min()) - 1, c
            assert bottom[c] <= np.floor(high[around].max()) + 1, c


def test_markers_are_painted_at_their_step_with_their_label_and_hover_shows_the_tooltip(qtbot):
    steps = np.arange(1, 5001, dtype=np.float64)
    store = RunStore()
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {"a": 1.0, "b": 1.0}, "term_names": ["a", "b"],
                      "sample_rate": 24000, "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4,
                      "balancer": "static"})
    store.on_scalars({"step": steps, "elapsed": steps / 40,
                      "terms": {"a": 1 + 0 * steps, "b": 2 + 0 * steps}})
    store.on_events([{"kind": "weights", "step": 1000, "changes": {"b": [1.0, 2.5]}},
                     {"kind": "lr", "step": 4000, "old": 3e-4, "new": 1e-4}])
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.refresh()
    for name in ("a", "b", "total"):
        panel.set_curve_visible(name, False)  # nothing but the markers on the plot
    panel.plot_item.setRange(xRange=(0, 5000), yRange=(-1, 1), padding=0)
    panel.refresh()
    image = panel.plot_widget.grab().toImage()
    pixels = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width())
    vb = panel.view_box
    for marker in panel.markers:
        colour = QColor(marker.colour).rgb() & 0xFFFFFF
        lit = (pixels & 0xFFFFFF) == colour
        column = int(vb.mapViewToDevice(QPointF(marker.value(), 0)).x())
        top = int(vb.mapViewToDevice(QPointF(marker.value(), vb.viewRange()[1][1])).y())
        bottom = int(vb.mapViewToDevice(QPointF(marker.value(), vb.viewRange()[1][0])).y())
        line = lit[top:bottom, column]
        assert 0.5 < line.mean() < 0.9  # dashed, across the view
        # the label: text in (antialiased shades of) the marker's colour beside the line, on the
        # side of the view's middle
        rgb = np.stack([(pixels >> shift) & 0xFF for shift in (16, 8, 0)], axis=-1).astype(int)
        want = np.array([(colour >> shift) & 0xFF for shift in (16, 8, 0)])
        label = (np.abs(rgb - want).max(axis=-1) < 70)[top:bottom].sum(axis=0)
        beside = label[column + 3: column + 80] if marker.value() < 2500 else label[column - 80: column - 3]
        assert beside.sum() > 40
    # Hovering near a line shows its tooltip; elsewhere none.
    layer = panel.marker_layer

    class Hover:  # what pyqtgraph's scene hands hoverEvent: a position in the item's coordinates
        def __init__(self, x, exit=False):
            self.x, self.exit = x, exit

        def pos(self):
            return QPointF(self.x, 0.0)

        def isExit(self):
            return self.exit

    layer.hoverEvent(Hover(1000.0 + 2 * vb.viewPixelSize()[0]))
    assert layer.toolTip() == "step 1000:\nb 1 → 2.5"
    layer.hoverEvent(Hover(2500.0))
    assert layer.toolTip() == ""


def test_points_arriving_while_following_are_painted_at_once(qtbot):
    store = RunStore()
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {"a": 1.0}, "term_names": ["a"], "sample_rate": 24000,
                      "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static"})
    rng = np.random.default_rng(2)
    steps = np.arange(1, 200_001, dtype=np.float64)
    store.on_scalars({"step": steps, "elapsed": steps, "terms": {"a": np.exp(rng.normal(0, 0.2, steps.size))}})
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.refresh()
    panel.curves["a"].item.setPen(pg.mkPen(COLOUR, width=1))
    colour = QColor(COLOUR).rgb() & 0xFFFFFF

    def painted() -> np.ndarray:
        image = panel.plot_widget.grab().toImage()
        pixels = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width())
        return (pixels & 0xFFFFFF) == colour

    before = painted()
    # A spike far above the rest arrives: the view follows and the new column shows it.
    more = np.arange(200_001, 200_101, dtype=np.float64)
    store.on_scalars({"step": more, "elapsed": more, "terms": {"a": np.full(more.size, 1e3)}})
    panel.refresh()
    after = painted()
    def highest_columns(lit: np.ndarray) -> np.ndarray:
        rows, columns = np.nonzero(lit)
        return columns[rows <= rows.min() + 3]

    assert highest_columns(before).min() < 0.5 * before.shape[1]  # noise peaks all along
    assert highest_columns(after).min() > 0.95 * after.shape[1]  # the spike, at the right edge


def test_on_a_hidpi_screen_the_spans_are_device_pixels(tmp_path):
    """Two device pixels per point (QT_SCALE_FACTOR=2, in a process of its own): the layer's image
    has the device's pixels, and its picture is pyqtgraph's there too."""
    script = tmp_path / "hidpi.py"
    script.write_text(
        "import numpy as np, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_curve_layer as t\n"
        "class Bot:\n"
        "    def addWidget(self, widget): pass\n"
        "rng = np.random.default_rng(5)\n"
        "x = np.arange(5000.0); y = np.exp(-x / 5000) * np.exp(rng.normal(0, 0.3, x.size))\n"
        "ours, theirs = t.plot(Bot(), True, x, y), t.plot(Bot(), False, x, y)\n"
        "print(app.primaryScreen().devicePixelRatio(), ours.shape[1], (ours & theirs).sum() / theirs.sum(),"
        " (ours & ~theirs).sum() / theirs.sum())\n")
    env = dict(os.environ, QT_SCALE_FACTOR="2", QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    ratio, width, shared, extra = (float(v) for v in done.stdout.split())
    assert ratio == 2.0 and width == 1200  # the 600-point-wide plot grabbed at device pixels
    assert shared >= 0.98 and extra <= 0.02


def test_the_layers_over_the_view_leave_pan_and_zoom_to_it(qtbot):
    """The curve and marker layers cover the whole view; a wheel zooms and a drag pans it."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QMouseEvent, QWheelEvent
    from PySide6.QtWidgets import QApplication

    store = RunStore()
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {"a": 1.0}, "term_names": ["a"], "sample_rate": 24000,
                      "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static"})
    steps = np.arange(1, 100_001, dtype=np.float64)
    store.on_scalars({"step": steps, "elapsed": steps,
                      "terms": {"a": np.exp(np.random.default_rng(4).normal(0, 0.2, steps.size))}})
    store.on_events([{"kind": "lr", "step": 50_000, "old": 3e-4, "new": 1e-4}])
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    qtbot.waitUntil(lambda: panel.view_box.viewRange()[0][1] > 90_000)  # the run in view
    viewport = panel.plot_widget.viewport()
    centre = QPointF(500, 250)
    left, right = panel.view_box.viewRange()[0]
    QApplication.sendEvent(viewport, QWheelEvent(
        centre, viewport.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    qtbot.wait(10)
    zoomed = panel.view_box.viewRange()[0]
    assert zoomed[1] - zoomed[0] < 0.9 * (right - left)

    def mouse(kind, x, buttons):
        at = QPointF(x, 250)
        QApplication.sendEvent(viewport, QMouseEvent(kind, at, viewport.mapToGlobal(at),
                                                     Qt.MouseButton.LeftButton, buttons,
                                                     Qt.KeyboardModifier.NoModifier))

    mouse(QEvent.Type.MouseButtonPress, 600, Qt.MouseButton.LeftButton)
    for x in range(590, 399, -10):
        mouse(QEvent.Type.MouseMove, x, Qt.MouseButton.LeftButton)
    mouse(QEvent.Type.MouseButtonRelease, 400, Qt.MouseButton.NoButton)
    qtbot.wait(10)
    panned = panel.view_box.viewRange()[0]
    assert panned[0] > zoomed[0] + 0.1 * (zoomed[1] - zoomed[0])  # dragged left: later steps
    panel.refresh()
    assert panel.curves["a"].item.xData[0] > zoomed[0]  # and the curve follows the view
