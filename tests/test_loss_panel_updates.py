"""What the Losses panel paints again as points and results arrive: while the view follows the
run only the columns the new points change are painted, over the image kept from the last paint,
and the picture is the one a whole repaint gives; validation points follow the store."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from test_curve_layer import bare_plot
from vqstudio.app.panels.curve_layer import CurveLayer
from vqstudio.app.panels.losses import LossPanel
from vqstudio.app.store import RunStore

pytestmark = pytest.mark.gui

COLOUR = "#ff8800"


def test_following_repaints_only_the_columns_new_points_change_and_the_same_pixels(qtbot):
    """While the view follows the run, new points change only the last columns: the layer paints
    those again over its kept image, and the picture is the one a whole repaint gives."""
    store = RunStore()
    terms = ["a", "b"]
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {t: 1.0 for t in terms}, "term_names": terms, "sample_rate": 24000,
                      "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static"})
    rng = np.random.default_rng(4)

    def rows(start: int, count: int) -> dict:
        steps = np.arange(start + 1, start + count + 1, dtype=np.float64)
        values = {t: np.exp(rng.normal(-i, 0.3, count)) for i, t in enumerate(terms)}
        values["a"][rng.random(count) < 0.01] = 0.0  # log of zero: a gap in the curve
        return {"step": steps, "elapsed": steps, "terms": values}

    store.on_scalars(rows(0, 200_000))
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.refresh()

    def grabbed() -> np.ndarray:
        image = panel.plot_widget.grab().toImage()
        return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), -1).copy()

    grabbed()
    partial = []
    for _ in range(25):
        store.on_scalars(rows(len(store.steps), 40))
        panel.refresh()
        following = grabbed()
        partial.append(panel.layer.painted_columns)
        panel.layer.changed()  # anything but new points: the whole image is painted again
        whole = grabbed()
        assert panel.layer.painted_columns >= int(panel.view_box.width()) - 1
        assert np.array_equal(following, whole)
    # Most frames painted a few columns (the others: the view grew, or nothing changed).
    assert sum(0 < n < 100 for n in partial) >= 15, partial


def test_the_ends_painted_again_are_the_spans_of_the_whole_curves():
    """Painting only the columns from 12 on takes each curve from the point before column 12:
    three curves that jump into column 12 and end there keep one span each, in their own
    colour, as when the whole curves are taken (not one span of the first curve's)."""
    from vqstudio.app.panels.span_image import strokes

    layer = CurveLayer()
    x = np.concatenate([np.repeat(np.arange(10) + 0.5, 2), [12.5, 12.5]])
    rng = np.random.default_rng(1)
    curves = []
    for k in range(3):
        curve = layer.add(pg.mkPen(COLOUR, width=1), str(k))
        curve.setData(x, 30.0 + 40 * k + rng.uniform(0, 30, x.size))
        curves.append(curve)
    start = int(np.searchsorted(x, 12)) - 1

    def ends(found) -> list:
        spans, curve_of, _ = found
        mine = spans.column >= 12
        return list(zip(curve_of[mine], spans.column[mine], spans.top[mine], spans.bottom[mine]))

    whole = ends(strokes(curves, False, 20, 200, 1.0, 1.0, 0.0, 0.0))
    assert [c for c, *_ in whole] == [0, 1, 2]
    assert ends(strokes(curves, False, 20, 200, 1.0, 1.0, 0.0, 0.0, [start] * 3)) == whole


@pytest.mark.parametrize("jump", [2.3, 2.75, 3.7, 4.45, 7.1])
def test_lines_at_the_columns_painted_again_are_painted_whole(qtbot, jump):
    """Lines (segments longer than a column) at the edge of the columns painted again: one that
    enters them is painted from where it starts (a clipped line has other pixels), one that
    starts there may light a pixel in the column before; the picture is the whole repaint's."""
    widget, item = bare_plot(qtbot)
    layer = CurveLayer()
    layer.route = "spans"
    item.addItem(layer)
    rng = np.random.default_rng(int(jump * 10))
    x = np.concatenate([np.linspace(0, 500, 4000), [500 + jump, 500 + jump + 0.01,
                                                    500 + 2 * jump]])
    curves = [layer.add(pg.mkPen(colour, width=1), colour) for colour in ("#ff8800", "#00ff88")]
    ys = [np.exp(rng.normal(k, 0.4, x.size)) for k in range(2)]
    for curve, y in zip(curves, ys):
        curve.setData(x, y)
    item.setXRange(0, 520, padding=0)
    item.setYRange(-1.5, 2.5, padding=0)
    item.setLogMode(False, True)

    def grabbed() -> np.ndarray:
        image = widget.grab().toImage()
        return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), -1).copy()

    grabbed()
    partial = []
    for step in range(4):
        for curve, y in zip(curves, ys):
            y = y.copy()
            y[-1] *= 1.2 + 0.2 * step  # only the last point moves: the view stays
            curve.setData(x, y)
        following = grabbed()
        partial.append(layer.painted_columns)
        layer.changed()
        assert np.array_equal(following, grabbed()), step
    assert all(0 < n < 100 for n in partial), partial  # of 600 columns (1200 at ratio 2)


def test_validation_points_follow_the_store_and_the_x_mode(qtbot):
    store = RunStore()
    store.on_started({"device": "cpu", "preset": "test", "run_dir": None, "step": 0,
                      "weights": {"a": 1.0}, "term_names": ["a"], "sample_rate": 24000,
                      "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static"})

    def batch(start: int, count: int, validation=None) -> dict:
        steps = np.arange(start + 1, start + count + 1, dtype=np.float64)
        rows = {"step": steps, "elapsed": steps / 10, "terms": {"a": np.exp(-steps / 1e3)}}
        if validation is not None:
            rows["validation"] = {"step": np.asarray(validation[0], dtype=np.float64),
                                  "mel_distance": np.asarray(validation[1], dtype=np.float64)}
        return rows

    store.on_scalars(batch(0, 500, ([100, 300], [2.0, 1.5])))
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.refresh()
    points = lambda: [list(v) for v in panel._validation.getOriginalDataset()]  # noqa: E731
    assert points() == [[100, 300], [2.0, 1.5]]
    store.on_scalars(batch(500, 100))  # rows without a validation keep the points
    panel.refresh()
    assert points() == [[100, 300], [2.0, 1.5]]
    store.on_scalars(batch(600, 100, ([650], [1.2])))
    panel.refresh()
    assert points() == [[100, 300, 650], [2.0, 1.5, 1.2]]
    panel.set_x_mode("time")  # along the training time: where those steps were trained
    np.testing.assert_allclose(points()[0], [10.0, 30.0, 65.0])
    assert points()[1] == [2.0, 1.5, 1.2]
