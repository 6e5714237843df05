"""The Runs list and the Losses panel comparing runs, with real run folders on disk (a trained run
and a real fork of it from the CLI; generated metrics.csv files for big ones), real widgets
offscreen and the real background reading: forks are listed under their parent, the overlay draws
one curve per ticked run in its colour, the x modes give the right x, and a folder from an older
version or a metrics.csv cut mid-line opens with a notice instead of a crash."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from helpers import TERMS, open_and_wait, run_cli, tiny_sets, train_tiny_run, write_run
from vqstudio.app.panels.losses import LossPanel
from vqstudio.app.panels.runs import RunsPanel
from vqstudio.app.run_list import CURRENT, RunList
from vqstudio.app.store import RunStore
from vqstudio.app.window import MainWindow
from vqstudio.experiments.run_history import read_history

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained run (checkpoints at 4 and 8) and a real fork of it from step 4."""
    root = tmp_path_factory.mktemp("runs")
    base, corpus = train_tiny_run(root, "base", steps=8, checkpoint_every=4)
    fork = root / "fork"
    result = run_cli("train", "--from", f"{base}:4", "--run", str(fork), "--steps", "6",
                     "--data", str(corpus), *tiny_sets(), "--set", "data.batch_size=4")
    assert result.returncode == 0, result.stderr
    return base, fork


def run_list(qtbot) -> tuple[RunStore, RunList]:
    store = RunStore()
    runs = RunList(store)
    return store, runs


def add_and_wait(qtbot, runs: RunList, folder) -> str:
    key = runs.add(folder)
    assert key is not None
    qtbot.waitUntil(lambda: runs.entry(key) is None or not runs.entry(key).loading, timeout=WAIT_MS)
    return key


def test_a_fork_is_listed_under_its_parent(qtbot, trained, tmp_path):
    base, fork = trained
    other = write_run(tmp_path / "other", 50)
    store, runs = run_list(qtbot)
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    panel.set_runs(runs)
    for folder in (fork, other, base):  # the fork first: the tree does not depend on the order
        add_and_wait(qtbot, runs, folder)
    panel.refresh()

    items = panel.items()
    fork_key, base_key = str(fork.resolve()), str(base.resolve())
    assert items[fork_key].parent() is items[base_key]
    assert items[base_key].parent() is None and items[str(other.resolve())].parent() is None
    assert "forked at 4" in items[fork_key].text(0)
    assert items[fork_key].text(1) == "6"  # --steps counts the global step: 5 and 6 trained here
    # Roots in the order opened, each fork right under its parent.
    assert [(e.name, depth) for e, depth in runs.tree()][1:] == [("other", 0), ("base", 0), ("fork", 1)]
    # The start event says how many ranks trained (audio per step counts them all).
    assert next(e for e in runs.entry(base_key).store.events if e["kind"] == "start")["world"] == 1
    assert runs.entry(base_key).store.audio_schedule == [(0.0, 2 * 0.25)]
    assert runs.entry(fork_key).store.audio_schedule == [(0.0, 2 * 0.25), (4.0, 4 * 0.25)]
    colours = {e.colour for e in runs.entries}
    assert len(colours) == len(runs.entries)  # a colour each

    # The parent as the current run: the fork is listed under it, and adding it again is refused.
    store.load_run(base)
    runs.remove(base_key)
    panel.refresh()
    assert panel.items()[fork_key].parent() is panel.items()[CURRENT]
    notices = []
    runs.notice.connect(notices.append)
    assert runs.add(base) is None and "current run" in notices[-1]

    # Unticking a run takes it off the curves.
    items = panel.items()
    items[fork_key].setCheckState(0, Qt.CheckState.Unchecked)
    assert not runs.entry(fork_key).shown and fork_key not in {e.key for e in runs.shown()}


def loss_panel(qtbot, store, runs) -> LossPanel:
    panel = LossPanel(store, None)
    qtbot.addWidget(panel)
    panel.set_runs(runs)
    panel.resize(1000, 500)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    return panel


def test_the_overlay_draws_one_curve_per_ticked_run_in_its_colour(qtbot, tmp_path):
    folders = [write_run(tmp_path / f"run{i}", 300 + 100 * i, seed=i) for i in range(3)]
    store, runs = run_list(qtbot)
    store.load_run(folders[0])  # the current run
    keys = [add_and_wait(qtbot, runs, f) for f in folders[1:]]
    panel = loss_panel(qtbot, store, runs)

    assert panel.comparing
    assert set(panel.overlay.runs) == {CURRENT, *keys}
    for key, overlay in panel.overlay.runs.items():
        entry = runs.entry(key)
        assert list(overlay.curves) == ["total"]  # the total at first
        item = overlay.curves["total"].item
        assert item.pen.color().name() == entry.colour
        x, y = item.xData, item.yData  # few rows: drawn as they are
        np.testing.assert_array_equal(x, entry.store.steps.view())
        np.testing.assert_allclose(y, entry.store.curves["total"].view(), rtol=1e-6)
    assert not any(c.item.isVisible() for c in panel.curves.values())  # the single-run curves

    # Ticking a second term adds one dashed curve per run; unticking a run removes its curves.
    entry = panel.term_list.findItems("commitment", Qt.MatchFlag.MatchExactly)[0]
    entry.setCheckState(Qt.CheckState.Checked)
    assert panel.overlay.curve_count() == 6
    assert panel.overlay.runs[keys[0]].curves["commitment"].item.pen.style() == Qt.PenStyle.DashLine
    runs.set_shown(keys[1], False)
    panel.refresh()
    assert set(panel.overlay.runs) == {CURRENT, keys[0]} and panel.overlay.curve_count() == 4

    # No other run shown: back to the current run's own curves, coloured by term.
    runs.set_shown(keys[0], False)
    panel.refresh()
    assert not panel.comparing and panel.overlay.curve_count() == 0
    assert panel.is_curve_visible("total") and panel.is_curve_visible("waveform_mse")


def test_a_zoomed_overlay_draws_each_runs_envelope_of_the_view(qtbot, tmp_path):
    folders = [write_run(tmp_path / f"big{i}", 20_000, seed=i) for i in range(2)]
    store, runs = run_list(qtbot)
    keys = [add_and_wait(qtbot, runs, f) for f in folders]
    panel = loss_panel(qtbot, store, runs)
    panel.plot_item.setXRange(5_000, 6_000, padding=0)
    panel.refresh()
    for key in keys:
        item = panel.overlay.runs[key].curves["total"].item
        rows = runs.entry(key).store
        x = item.xData
        assert x.size <= 2 * 1.5 * 1.04 * panel.view_box.width() + 4  # about a pair per pixel
        assert x.min() >= 4_900 and x.max() <= 6_100
        inside = (rows.steps.view() >= x.min()) & (rows.steps.view() <= x.max())
        values = rows.curves["total"].view()[inside]
        assert np.isclose(item.yData.max(), values.max(), rtol=1e-6)
        assert np.isclose(item.yData.min(), values.min(), rtol=1e-6)


def test_x_is_the_step_the_audio_seen_or_the_training_time(qtbot, tmp_path):
    parent = write_run(tmp_path / "parent", 100, batch=2, segment=0.25)
    fork = write_run(tmp_path / "fork", 50, batch=8, segment=0.5, start=61,
                     forked_from={"run": str(parent), "checkpoint": "step-00000060.pt", "step": 60})
    store, runs = run_list(qtbot)
    keys = [add_and_wait(qtbot, runs, f) for f in (parent, fork)]
    panel = loss_panel(qtbot, store, runs)
    steps_parent, steps_fork = np.arange(1, 101.0), np.arange(61, 111.0)

    def drawn(key):
        return panel.overlay.runs[key].curves["total"].item.xData

    np.testing.assert_array_equal(drawn(keys[1]), steps_fork)
    panel.x_choice.setCurrentIndex(panel.x_choice.findData("audio"))
    assert panel.x_mode == "audio" and panel.plot_item.getAxis("bottom").labelText == "audio seconds seen"
    np.testing.assert_allclose(drawn(keys[0]), steps_parent * 2 * 0.25)
    # The fork's first 60 steps were its parent's, at the parent's batch; then 8 x 0.5 s a step.
    np.testing.assert_allclose(drawn(keys[1]), 60 * 0.5 + (steps_fork - 60) * 4.0)
    panel.set_x_mode("time")
    np.testing.assert_allclose(drawn(keys[0]), steps_parent * 0.25 + 10.0)
    np.testing.assert_allclose(drawn(keys[1]), steps_fork * 0.25 + 10.0)
    panel.set_x_mode("step")
    np.testing.assert_array_equal(drawn(keys[0]), steps_parent)


def test_a_cut_line_or_an_older_versions_folder_opens_with_a_notice(qtbot, tmp_path):
    cut = write_run(tmp_path / "cut", 40, cut=True)
    old = write_run(tmp_path / "old", 30)
    text = (old / "config.toml").read_text().replace("[model]", "[model]\nwindow_kind = \"hann\"", 1)
    (old / "config.toml").write_text(text)  # a setting this version does not know
    (old / "metrics.csv").write_text((old / "metrics.csv").read_text().replace("elapsed", "elapsed_s", 1))
    with (old / "events.jsonl").open("a") as handle:
        handle.write("not json\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    store, runs = run_list(qtbot)
    notices = []
    runs.notice.connect(notices.append)

    cut_key = add_and_wait(qtbot, runs, cut)
    assert len(runs.entry(cut_key).store.steps) == 40
    assert any("cut line" in n and "cut" in n for n in notices)
    old_key = add_and_wait(qtbot, runs, old)
    entry = runs.entry(old_key)
    assert entry is not None and len(entry.store.curves["total"]) == 30
    assert any("does not load here" in n and "window_kind" in n for n in entry.notices)
    assert any("no elapsed column" in n for n in entry.notices)
    assert any("events.jsonl" in n for n in entry.notices)
    assert runs.add(empty) is not None  # read in the background, then refused with a notice
    qtbot.waitUntil(lambda: any("not a run folder" in n for n in notices), timeout=WAIT_MS)
    assert [e.name for e in runs.entries] == ["new run", "cut", "old"]
    # Drawn, in every x mode (the old run has no training time: drawn there as nothing, no error).
    panel = loss_panel(qtbot, store, runs)
    for mode in ("audio", "time", "step"):
        panel.set_x_mode(mode)
        assert panel.overlay.runs[cut_key].curves["total"].item.xData.size == 40


def test_a_big_run_is_read_in_the_background(qtbot, tmp_path):
    big = write_run(tmp_path / "big", 100_000)
    store, runs = run_list(qtbot)
    key = runs.add(big)
    entry = runs.entry(key)
    assert entry.loading and len(entry.store.steps) == 0  # add() returned before reading it
    assert entry not in runs.shown()
    qtbot.waitUntil(lambda: not entry.loading, timeout=WAIT_MS)
    assert len(entry.store.steps) == 100_000 and entry.notices == []
    history = read_history(big)
    np.testing.assert_array_equal(entry.store.curves["total"].view(), history.columns["total"])


def test_the_window_has_a_runs_panel_that_compares_with_the_opened_run(qtbot, trained, tmp_path):
    base, fork = trained
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, player=None)
    qtbot.addWidget(window)
    window.show()
    try:
        open_and_wait(qtbot, window, base)
        panel = window.panels["runs"]
        add_and_wait(qtbot, window.runs, fork)
        window.redraw()
        assert panel.items()[str(fork.resolve())].parent() is panel.items()[CURRENT]
        losses = window.panels["losses"]
        assert losses.comparing and set(losses.overlay.runs) == {CURRENT, str(fork.resolve())}
        compare = window.panels["compare"]  # its checkpoints are looked up in the background
        qtbot.waitUntil(lambda: (window.redraw(), compare.refs() == [f"{base}:latest", f"{fork}:latest"])[1],
                        timeout=60_000)
        for chooser in window.panels["audition"].extra.choosers.values():  # heard as 1 or 2 too
            assert chooser.run_box.findData(str(fork)) >= 0
        chooser.choose(fork, "latest")
        assert chooser.ref == f"{fork}:latest"
    finally:
        window.close()


def test_the_window_keeps_ticking_while_five_big_runs_are_added(qtbot, tmp_path):
    """5 x 100k rows read in the background and taken in by the Losses panel in slices: a 10 ms
    QTimer on the GUI thread is never kept waiting by 150 ms of the GUI thread's own work."""
    import shutil
    import time

    from PySide6.QtCore import QTimer

    first = write_run(tmp_path / "big0", 100_000)
    folders = [first] + [tmp_path / f"big{i}" for i in range(1, 5)]
    for folder in folders[1:]:
        shutil.copytree(first, folder)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), player=None)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(300)  # the window's first layout and paint are not what is measured
    losses = window.panels["losses"]
    gaps: list[tuple[float, float]] = []  # (GUI-thread CPU, wall) between two ticks
    last = [time.thread_time(), time.perf_counter()]

    def tick() -> None:
        now = [time.thread_time(), time.perf_counter()]
        gaps.append((now[0] - last[0], now[1] - last[1]))
        last[:] = now

    ticker = QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(tick)
    ticker.start()
    try:
        keys = [window.runs.add(f) for f in folders]
        qtbot.waitUntil(lambda: all(not window.runs.entry(k).loading for k in keys)
                        and set(keys) <= set(losses.overlay.runs) and not losses.overlay.pending(),
                        timeout=120_000)
        qtbot.wait(100)  # the last frame painted
    finally:
        ticker.stop()
    for key in keys:
        assert all(curve.seen == 100_000 for curve in losses.overlay.runs[key].curves.values())
    cpu, wall = max(g[0] for g in gaps), max(g[1] for g in gaps)
    assert len(gaps) > 20
    assert cpu < 0.150, f"the GUI thread worked {cpu * 1e3:.0f} ms without a tick (wall {wall * 1e3:.0f} ms)"
    print(f"longest gap between ticks: GUI-thread CPU {cpu * 1e3:.0f} ms, wall {wall * 1e3:.0f} ms")
