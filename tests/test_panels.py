"""The plot panels on a real RunStore: losses (curves, log-y, toggles, smoothing, change markers,
million-point curves), weights (coalesced snapshots, pending -> applied, with a real training
worker), codebooks (histograms, sorting, history) and spectrograms (a real audio file's probe)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from helpers import tiny_config, write_corpus
from vqstudio.app.panels.codebooks import CodebookPanel, usage_shares
from vqstudio.app.panels.losses import LossPanel, marker_label
from vqstudio.app.panels.spectrograms import (
    DIFFERENCE_LEVELS,
    SPECTRUM_LEVELS,
    SpectrogramPanel,
)
from vqstudio.app.panels.weight_row import NumberBox, slider_to_weight, weight_to_slider
from vqstudio.app.panels.weights import WeightsPanel
from vqstudio.app.store import RunStore
from vqstudio.app.worker import TrainingWorker
from vqstudio.audio.io import read_audio
from vqstudio.config import load_preset

pytestmark = pytest.mark.gui

WAIT_MS = 60_000
CONFIG = load_preset("tiny-cpu")
TERMS = CONFIG.loss.term_names()


def started_store(**info) -> RunStore:
    store = RunStore()
    store.on_started({
        "device": "cpu", "preset": "tiny-cpu", "run_dir": None, "step": 0,
        "weights": CONFIG.loss.resolved_weights(), "term_names": TERMS, "sample_rate": 24000,
        "rvq_levels": 4, "codebook_size": 64, "lr": 3e-4, "balancer": "static", **info,
    })
    return store


def loss_rows(rows: int, start: int = 0, seed: int = 0) -> dict:
    """Scalars as the worker batches them: decaying, noisy, positive losses per term."""
    rng = np.random.default_rng(seed)
    steps = np.arange(start + 1, start + rows + 1, dtype=np.float64) * 10
    terms = {name: (0.05 * (i + 1) + (i + 1) * np.exp(-steps / 2e4)) * np.exp(rng.normal(0, 0.1, rows))
             for i, name in enumerate(TERMS)}
    terms["total"] = sum(terms.values())
    return {"step": steps, "elapsed": steps / 100, "terms": terms, "lr": np.full(rows, 3e-4),
            "grad_norm": rng.uniform(0.1, 2.0, rows), "steps_per_second": 100.0}


def aligned(store: RunStore) -> RunStore:
    n = len(store.steps)
    bad = {name: len(c) for name, c in store.curves.items() if len(c) != n}
    assert not bad, f"RunStore curves not aligned with its {n} steps: {bad}"
    return store


def shown(curve) -> tuple[np.ndarray, np.ndarray]:
    """What the panel handed the curve's plot item (before pyqtgraph's log mapping)."""
    return curve.item.xData, curve.item.yData


def loss_panel(qtbot, store) -> LossPanel:
    aligned(store)
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    return panel


# -- losses -----------------------------------------------------------------------------------


def test_loss_curves_hold_the_data_on_log_y_and_a_term_can_be_hidden(qtbot):
    store = started_store()
    for part in range(3):  # three batches, as the worker's 20 Hz signal delivers them
        store.on_scalars(loss_rows(300, start=300 * part, seed=part))
    aligned(store)
    panel = loss_panel(qtbot, store)

    assert panel.plot_item.ctrl.logYCheck.isChecked()
    assert panel.log_y.isChecked()
    steps = store.steps.view()
    for name in TERMS + ["total"]:
        x, y = shown(panel.curves[name])  # few points: drawn as they are
        np.testing.assert_array_equal(x, steps)
        np.testing.assert_allclose(y, store.curves[name].view(), rtol=1e-6)
        assert panel.is_curve_visible(name)
    assert not panel.is_curve_visible("lr") and not panel.is_curve_visible("grad_norm")

    panel.set_curve_visible("commitment", False)
    assert not panel.is_curve_visible("commitment")
    assert not panel.curves["commitment"].item.isVisible()
    entry = panel.term_list.findItems("commitment", Qt.MatchFlag.MatchExactly)[0]
    assert entry.checkState() == Qt.CheckState.Unchecked
    # The user's choice survives new data.
    store.on_scalars(loss_rows(10, start=900))
    panel.refresh()
    assert not panel.is_curve_visible("commitment")
    entry.setCheckState(Qt.CheckState.Checked)  # ticking it in the list shows it again
    assert panel.is_curve_visible("commitment")
    assert shown(panel.curves["commitment"])[0].shape == (910,)


def test_loss_smoothing_is_an_ema_and_skipped_steps_do_not_poison_it(qtbot):
    store = started_store()
    batch = loss_rows(400)
    batch["terms"]["mrstft"][100] = np.nan  # a non-finite, skipped step
    store.on_scalars(batch)
    panel = loss_panel(qtbot, store)
    panel.set_smoothing(0.9)

    raw = store.curves["mrstft"].view().copy()
    raw[100] = raw[99]  # shown as the value before it
    expected = np.empty_like(raw)
    expected[0] = raw[0]
    for i in range(1, raw.size):
        expected[i] = 0.9 * expected[i - 1] + 0.1 * raw[i]
    y = shown(panel.curves["mrstft"])[1]
    np.testing.assert_allclose(y, expected, rtol=1e-5)

    # New rows continue the same filter instead of restarting it.
    more = loss_rows(50, start=400, seed=3)
    store.on_scalars(more)
    panel.refresh()
    for value in more["terms"]["mrstft"]:
        expected = np.append(expected, 0.9 * expected[-1] + 0.1 * value)
    np.testing.assert_allclose(shown(panel.curves["mrstft"])[1], expected, rtol=1e-5)
    assert panel.smoothing_label.text() == "smoothing 0.900"


def test_a_million_points_are_drawn_as_one_min_max_pair_per_pixel(qtbot):
    store = started_store()
    store.on_scalars(loss_rows(1_000_000))
    panel = loss_panel(qtbot, store)
    values = store.curves["total"].view()
    x, y = shown(panel.curves["total"])
    pixels = panel.view_box.width()
    assert x.dtype == np.float64
    assert pixels <= x.size / 2 <= pixels * 1.5  # (min, max) pairs: one or so per pixel column
    assert y.min() == pytest.approx(values.min(), rel=1e-6)  # every spike is still there
    assert y.max() == pytest.approx(values.max(), rel=1e-6)

    # Zoomed in to 600 steps' worth, the points themselves are drawn.
    panel.plot_item.setXRange(500_000, 506_000, padding=0)
    x, y = shown(panel.curves["total"])
    inside = (x >= 500_000) & (x <= 506_000)
    steps = store.steps.view()
    want = (steps >= 500_000) & (steps <= 506_000)
    np.testing.assert_array_equal(x[inside], steps[want])
    np.testing.assert_allclose(y[inside], values[want], rtol=1e-6)
    assert x.size < 700


def test_changes_get_labelled_markers_at_their_step(qtbot):
    store = started_store()
    store.on_scalars(loss_rows(500))
    store.on_events([
        {"kind": "weights", "step": 1500, "changes": {"mel_l1/1024": [1.0, 2.5]}},
        {"kind": "checkpoint", "step": 2000, "file": "step-2000.safetensors"},
        {"kind": "lr", "step": 3000, "old": 3e-4, "new": 1e-4},
        {"kind": "balancer", "step": 4000, "old": "static", "new": "shares"},
    ])
    panel = loss_panel(qtbot, store)
    labels = {line.value(): line.label.toPlainText() for line in panel.markers}
    assert labels == {
        1500: "mel_l1/1024 1→2.5",
        3000: "lr 0.0003→0.0001",
        4000: "balancer static→shares",
    }
    assert all(line.angle == 90 for line in panel.markers)
    # A change that arrives later adds one marker; nothing else is rebuilt.
    first = panel.markers[0]
    store.on_events([{"kind": "weights", "step": 4500, "changes": {"commitment": [0.25, 0.0]}}])
    panel.refresh()
    assert panel.markers[0] is first
    assert panel.markers[-1].value() == 4500
    assert panel.markers[-1].label.toPlainText() == "commitment 0.25→0"
    assert marker_label({"kind": "replace_dead_codes", "replaced": [3, 0, 2]}) == "replaced 5 dead codes"
    reset = {"kind": "weights", "changes": {"a": [1, 2], "b": [1, 3], "c": [2, 1], "d": [0, 1]}}
    assert marker_label(reset) == "a 1→2; b 1→3 +2 more"
    assert marker_label({"kind": "replace_dead_codes", "replaced": [3], "automatic": True}) is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from CPython 3.12 on")
def test_redrawing_for_long_does_not_use_up_the_references_to_none(qtbot):
    """PySide6 6.12.0 on CPython 3.11 dropped a reference to None per void C++ call, a few hundred
    per redraw, until the interpreter aborted; pyproject.toml excludes it. Redraws must not drift."""
    store = started_store()
    store.on_scalars(loss_rows(200))
    panel = loss_panel(qtbot, store)
    before = sys.getrefcount(None)
    for i in range(50):
        store.on_scalars(loss_rows(2, start=200 + 2 * i))
        panel.refresh()
        panel.grab()
    dropped = before - sys.getrefcount(None)
    assert dropped < 500, f"50 redraws lost {dropped} references to None"


def test_refresh_does_nothing_when_the_store_did_not_change(qtbot):
    store = started_store()
    store.on_scalars(loss_rows(100))
    panel = loss_panel(qtbot, store)
    before = shown(panel.curves["total"])[0]
    panel.refresh()
    assert shown(panel.curves["total"])[0] is before
    store.on_scalars(loss_rows(5, start=100))
    panel.refresh()
    assert shown(panel.curves["total"])[0].size == 105


# -- weights ----------------------------------------------------------------------------------


def test_number_box_reads_zero_and_scientific_and_steps_by_decades(qtbot):
    box = NumberBox(0.0, 1e6)
    qtbot.addWidget(box)
    for text, value in (("0", 0.0), ("2.5", 2.5), ("1e-4", 1e-4), ("3E2", 300.0)):
        assert box.valueFromText(text) == value
        assert box.validate(text, 0)[0].name == "Acceptable"
    assert box.validate("1e", 2)[0].name == "Intermediate"
    assert box.validate("abc", 1)[0].name == "Invalid"
    box.setValue(1e-4)
    assert box.text() == "0.0001"
    box.setValue(0.0)
    box.stepBy(1)
    assert box.value() == pytest.approx(1e-3)
    box.setValue(1.0)
    box.stepBy(10)
    assert box.value() == pytest.approx(10.0)
    assert slider_to_weight(weight_to_slider(2.5)) == pytest.approx(2.5, rel=0.02)
    assert slider_to_weight(weight_to_slider(1.0)) == 1.0


def test_weight_is_pending_until_the_store_reports_it_then_applied(qtbot):
    store = started_store()
    panel = WeightsPanel(store, None)
    qtbot.addWidget(panel)
    panel.refresh()
    assert list(panel.rows) == TERMS
    row = panel.rows["mel_l1/1024"]
    assert row.box.value() == 1.0 and row.enabled.isChecked()

    with qtbot.waitSignal(panel.snapshot_sent, timeout=5000) as sent:
        panel.set_weight("mel_l1/1024", 2.5)
        assert row.status.text() == "pending"
        assert row.slider.value() == weight_to_slider(2.5)
    assert sent.args[0] == {"mel_l1/1024": 2.5}
    panel.refresh()
    assert row.status.text() == "pending"  # sent, not confirmed

    store.on_events([{"kind": "weights", "step": 420, "changes": {"mel_l1/1024": [1.0, 2.5]}}])
    panel.refresh()
    assert row.status.text() == "applied @ step 420"
    assert not row.pending

    # Unticking a term asks for weight 0; a refusal reverts it and says why.
    commitment = panel.rows["commitment"]
    commitment.enabled.setChecked(False)
    assert commitment.box.value() == 0.0 and not commitment.slider.isEnabled()
    panel.flush()
    store.on_events([{"kind": "refused", "step": 421, "setting": "weight commitment",
                      "reason": "unknown loss term"}])
    panel.refresh()
    assert commitment.status.text() == "refused: unknown loss term"
    assert commitment.box.value() == 0.25 and commitment.enabled.isChecked()


def test_reset_to_preset_sends_one_snapshot_of_the_preset_weights(qtbot):
    store = started_store(weights={**CONFIG.loss.resolved_weights(), "commitment": 2.0,
                                   "mrstft": 0.0})
    panel = WeightsPanel(store, None)
    qtbot.addWidget(panel)
    panel.refresh()
    assert panel.rows["mrstft"].box.value() == 0.0
    snapshots = []
    panel.snapshot_sent.connect(snapshots.append)
    panel.reset.click()
    qtbot.waitUntil(lambda: bool(snapshots), timeout=5000)
    qtbot.wait(2 * 150)
    assert snapshots == [{"commitment": 0.25, "mrstft": 1.0}]


def test_slider_drag_reaches_a_real_trainer_as_one_change(qtbot, tmp_path):
    """Panels, store and a real training worker together: a drag is one snapshot and one weight
    event; the row says "applied @ step N" at the event's step; dead-code replacement round-trips."""
    corpus = write_corpus(tmp_path / "data", files=2, seconds=1.0)
    worker = TrainingWorker(probe_seconds=0.5)
    store = RunStore()
    store.attach(worker)
    weights = WeightsPanel(store, worker)
    codebooks = CodebookPanel(store, worker)
    qtbot.addWidget(weights)
    qtbot.addWidget(codebooks)
    snapshots = []
    weights.snapshot_sent.connect(snapshots.append)
    try:
        worker.start(tiny_config(corpus), tmp_path / "run")
        qtbot.waitUntil(lambda: store.current_step >= 2, timeout=WAIT_MS)
        weights.refresh()
        row = weights.rows["mel_l1/256"]
        assert row.box.value() == 1.0

        for position in range(weight_to_slider(1.0), weight_to_slider(3.0) + 1, 3):
            row.slider.setValue(position)  # a drag: one value per mouse move
        final = row.desired
        assert final == pytest.approx(3.0, rel=0.03)
        assert row.status.text() == "pending"

        def applied():
            weights.refresh()
            return row.status.text().startswith("applied")

        qtbot.waitUntil(applied, timeout=WAIT_MS)
        changes = [e for e in store.events if e["kind"] == "weights" and "mel_l1/256" in e["changes"]]
        assert len(changes) == 1
        assert changes[0]["changes"]["mel_l1/256"][1] == final
        assert row.status.text() == f"applied @ step {changes[0]['step']}"
        assert snapshots == [{"mel_l1/256": final}]
        assert store.weights["mel_l1/256"] == final

        qtbot.waitUntil(lambda: store.usage is not None, timeout=WAIT_MS)
        codebooks.refresh()
        codebooks.replace_button.click()

        def replaced():
            codebooks.refresh()
            return codebooks.replace_status.text().startswith("replaced")

        qtbot.waitUntil(replaced, timeout=WAIT_MS)
        event = next(e for e in store.events if e["kind"] == "replace_dead_codes")
        assert codebooks.replace_status.text().endswith(f"@ step {event['step']}")
        assert len(snapshots) == 1
    finally:
        assert worker.stop(save=False)


# -- codebooks --------------------------------------------------------------------------------


def test_codebook_histograms_sort_by_frequency_and_history_per_level(qtbot):
    rng = np.random.default_rng(0)
    store = started_store()
    levels, codes = 3, 64
    for step in (100, 200, 300):
        usage = rng.gamma(0.5, 10.0, (levels, codes))
        usage[:, :8] = 0.0  # dead codes
        store.on_heavy({"step": step, "codebook": {
            "usage": usage,
            "entropy": np.array([0.5, 0.7, 0.9]) + step / 1e4,
            "dead_fraction": np.array([0.125, 0.1, 0.05]),
        }})
    panel = CodebookPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.refresh()

    shares = usage_shares(usage)
    assert len(panel.histograms) == levels
    for level in range(levels):
        np.testing.assert_allclose(panel.displayed_shares(level), shares[level])
        assert panel.displayed_shares(level).sum() == pytest.approx(1.0)
        x, y = panel.entropy_curves[level].getData()
        np.testing.assert_array_equal(x, [100, 200, 300])
        np.testing.assert_allclose(y, store.entropy.view()[:, level])
        np.testing.assert_allclose(panel.dead_curves[level].getData()[1], store.dead_fraction.view()[:, level])
    panel.entropy_plot.vb.updateAutoRange()  # as the next paint would
    lo, hi = panel.entropy_plot.viewRange()[0]
    assert 90 <= lo <= 100 and 300 <= hi <= 310, (lo, hi)  # a real history: its own span

    panel.sort_box.setChecked(True)
    for level in range(levels):
        shown = panel.displayed_shares(level)
        assert np.all(np.diff(shown) <= 0)  # most used first
        np.testing.assert_allclose(shown, np.sort(shares[level])[::-1])
        np.testing.assert_allclose(shown[-8:], 0.0)  # the dead codes last
    assert panel.histograms[0].title_item.toPlainText() == "L1 · H 0.53\ndead 12%"

    # A run with a 9 x 1024 codebook lays out as a 3 x 3 grid; with fewer pixels than codes, a
    # single over-used code (a collapse) still shows at full height.
    store.on_started({"run_dir": None, "term_names": TERMS, "rvq_levels": 9, "codebook_size": 1024})
    usage = rng.gamma(0.5, 1.0, (9, 1024))
    usage[8, 777] = usage[8].sum()
    store.on_heavy({"step": 400, "codebook": {"usage": usage, "entropy": np.full(9, 0.9),
                                              "dead_fraction": np.zeros(9)}})
    panel.sort_box.setChecked(False)
    panel.refresh()
    assert len(panel.histograms) == 9 and panel.displayed_shares(8).shape == (1024,)
    # its history is one record: drawn from step 0, not over +-0.2 steps of crowded labels
    assert len(panel.entropy_curves[0].getData()[0]) == 1
    lo, hi = panel.entropy_plot.viewRange()[0]
    assert lo <= 0.0 and 400 <= hi < 500
    edges, heights = panel.bars[8].getData()
    assert heights.size < 1024
    assert heights.max() == pytest.approx(usage_shares(usage)[8, 777], rel=1e-6)
    assert edges[np.argmax(heights)] <= 777 < edges[np.argmax(heights) + 1]


# -- spectrograms -----------------------------------------------------------------------------


def probe_audio(tmp_path, sr: int = 24000, seconds: float = 2.0) -> np.ndarray:
    """A 1 kHz tone at -6 dBFS with quiet noise, written to a WAV file and read back."""
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.5 * np.sin(2 * np.pi * 1000.0 * t) * (t < seconds / 2) + 1e-4 * rng.normal(size=t.size)
    sf.write(tmp_path / "probe.wav", wave.astype(np.float32), sr)
    return read_audio(tmp_path / "probe.wav", sr)


def drag(qtbot, plot, view, start_s: float, end_s: float) -> None:
    """Press on the time axis position ``start_s`` of ``plot`` and drag to ``end_s``."""
    ymid = plot.vb.viewRange()[1][1] / 2

    def at(seconds):
        scene = plot.vb.mapViewToScene(QPointF(seconds, ymid))
        return view.mapFromScene(scene)

    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(start_s))
    for i in range(1, 11):
        QTest.mouseMove(viewport, at(start_s + (end_s - start_s) * i / 10), 5)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(end_s))


def test_spectrograms_of_a_real_probe_share_axes_with_fixed_levels(qtbot, tmp_path):
    sr = 24000
    original = probe_audio(tmp_path, sr)
    hiss = np.random.default_rng(1).normal(0, 0.01, original.size).astype(np.float32)
    store = started_store()
    panel = SpectrogramPanel(store, None)
    qtbot.addWidget(panel)
    panel.resize(900, 750)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.placeholder.isVisible() and not panel.view.isVisible()
    store.on_probe({"step": 500, "sample_rate": sr, "original": original,
                    "reconstruction": original + hiss})
    panel.refresh()
    assert panel.view.isVisible()

    images = panel.images
    shapes = {image.image.shape for image in images.values()}
    assert shapes == {(1024 // 2 + 1, original.size // 256 + 1)}  # [bins, frames]
    assert tuple(images["original"].levels) == SPECTRUM_LEVELS
    assert tuple(images["reconstruction"].levels) == SPECTRUM_LEVELS
    assert tuple(images["difference"].levels) == DIFFERENCE_LEVELS
    assert all(image.lut.shape[0] == 256 for image in images.values())
    assert panel.spectrum_bar.levels() == SPECTRUM_LEVELS

    # Axes in seconds and Hz: the tone's peak sits at 1 kHz and -6 dBFS, in the first second.
    spectrum = images["original"].image
    bin_hz = sr / 1024
    peak_bin, peak_frame = np.unravel_index(np.argmax(spectrum), spectrum.shape)
    assert peak_bin * bin_hz == pytest.approx(1000.0, abs=bin_hz)
    assert spectrum.max() == pytest.approx(-6.0, abs=1.5)
    assert peak_frame * 256 / sr < 1.0
    rect = images["original"].mapRectToParent(images["original"].boundingRect())
    assert rect.right() == pytest.approx(original.size / sr, abs=0.02)
    assert rect.bottom() == pytest.approx(sr / 2, abs=bin_hz)
    # The added hiss shows as red where the original is quiet (the second, silent second).
    quiet = images["difference"].image[:, -20:]
    assert np.median(quiet) > 10.0
    assert panel.plots[1].vb.linkedView(0) is panel.plots[0].vb  # zoom one, all follow
    assert panel.titles["reconstruction"].toPlainText() == "reconstruction @ step 500"

    # A perfect reconstruction differs nowhere.
    store.on_probe({"step": 600, "sample_rate": sr, "original": original, "reconstruction": original})
    panel.refresh()
    assert np.abs(images["difference"].image).max() == 0.0
    assert panel.titles["reconstruction"].toPlainText() == "reconstruction @ step 600"

    # The loop region covers the clip; dragging its band moves it and tells the audition panel.
    assert panel.region() == pytest.approx((0.0, original.size / sr))
    panel.set_region(0.5, 1.0)
    with qtbot.waitSignal(panel.region_selected, timeout=5000) as selected:
        drag(qtbot, panel.plots[0], panel.view, 0.75, 1.25)
    start, end = selected.args
    assert end - start == pytest.approx(0.5, abs=1e-6)
    assert start == pytest.approx(1.0, abs=0.05)
    assert all(r.getRegion() == pytest.approx((start, end)) for r in panel.regions)

    panel.set_playhead(1.25)
    assert all(line.isVisible() and line.value() == 1.25 for line in panel.playheads)
    panel.set_playhead(None)
    assert not any(line.isVisible() for line in panel.playheads)
