"""The main window, offscreen, with real panels, a real worker and real run folders: it opens with
every panel docked, Space starts and pauses training, closing stops training and leaves a
checkpoint, an opened run shows its curves from metrics.csv and resumes, settings persist, and an
audio file dropped on the window becomes the audition clip."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from helpers import answer_next_dialog, open_and_wait, tiny_config, train_tiny_run, write_run
from vqstudio.app.panels import PANELS
from vqstudio.app.window import MainWindow
from vqstudio.train.runfolder import RunFolder

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings, player=None)
    win.worker.probe_seconds = 0.5
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()  # idempotent; stops a worker a failing test left running


def _wait_for_step(qtbot, win, step: int) -> None:
    qtbot.waitUntil(lambda: win.store.current_step >= step, timeout=WAIT_MS)


def test_window_opens_with_every_panel_docked(window):
    assert set(window.docks) == {spec.key for spec in PANELS}
    for spec in PANELS:
        dock = window.docks[spec.key]
        assert dock.windowTitle() == spec.title
        assert window.dockWidgetArea(dock) != Qt.DockWidgetArea.NoDockWidgetArea
        assert not dock.isFloating() and dock.isVisible()
        # The real panel, not the placeholder shown while a panel's module is missing.
        assert type(dock.widget()).__name__ == spec.cls, f"{spec.title}: {dock.widget()}"


def test_space_starts_pauses_and_resumes_training(qtbot, window, corpus, tmp_path):
    window.set_new_run(tiny_config(corpus), tmp_path / "run")
    assert window.start_action.text() == "Start"
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_Space)
    assert window.worker.is_running
    _wait_for_step(qtbot, window, 2)

    QTest.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.status_labels["state"].text() == "paused", timeout=WAIT_MS)
    assert window.start_action.text() == "Resume"
    qtbot.waitUntil(lambda: any(e["kind"] == "pause" for e in window.store.events), timeout=WAIT_MS)
    paused_at = window.store.current_step

    QTest.keyClick(window, Qt.Key.Key_Space)
    _wait_for_step(qtbot, window, paused_at + 2)
    assert window.start_action.text() == "Pause"
    assert window.status_labels["device"].text() == "cpu"
    assert window.status_labels["step"].text().startswith("step ")


def test_closing_stops_training_and_leaves_a_checkpoint(qtbot, window, corpus, tmp_path):
    run = tmp_path / "run"
    window.set_new_run(tiny_config(corpus), run)
    window.start_training()
    _wait_for_step(qtbot, window, 3)
    window.close()
    assert not window.worker.is_running
    latest = (run / "checkpoints" / "latest.json")
    assert latest.is_file()
    stopped = [e for e in RunFolder(run).read_events() if e["kind"] == "checkpoint"]
    assert stopped and stopped[-1]["step"] >= 3


def _trained_run(run, corpus, steps: int):
    """A run folder trained headless for ``steps`` steps, with a checkpoint there."""
    from vqstudio.train.trainer import Trainer

    trainer = Trainer(tiny_config(corpus), run)
    for _ in trainer.steps(until=steps):
        pass
    trainer.save_checkpoint()
    trainer.close()
    return run


def test_open_run_shows_curves_from_metrics_and_resumes(qtbot, window, corpus, tmp_path):
    run = _trained_run(tmp_path / "earlier", corpus, 6)

    open_and_wait(qtbot, window, run)
    columns = RunFolder(run).read_metrics()
    np.testing.assert_array_equal(window.store.steps.view(), columns["step"])
    np.testing.assert_allclose(window.store.curves["total"].view(), columns["total"])
    np.testing.assert_allclose(window.store.curves["mel_l1/256"].view(), columns["mel_l1/256"])
    assert window.store.current_step == 6
    assert window.start_action.text() == "Resume"
    assert "resumes from its checkpoint at step 6" in window.statusBar().currentMessage()

    with qtbot.waitSignal(window.worker.started, timeout=WAIT_MS) as started:
        window.start_action.trigger()
    assert started.args[0]["step"] == 6
    _wait_for_step(qtbot, window, 8)
    assert window.store.steps.view()[:6].tolist() == columns["step"]  # kept, then extended


def test_an_opened_run_shows_what_its_latest_checkpoint_does(qtbot, window, tmp_path):
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.corpus_eval import load_model
    from vqstudio.model.inference import reconstruct

    run, corpus = train_tiny_run(tmp_path, steps=8, checkpoint_every=4)
    open_and_wait(qtbot, window, run)  # opened, not trained here, not followed
    assert not window.follower.active and not window.worker.is_running
    # Spectrograms, Codebooks and the audition's probe clip show the checkpoint at step 8,
    # heard on the probe's own thread, while nothing trains.
    qtbot.waitUntil(lambda: window.store.probe.get("reconstruction") is not None, timeout=WAIT_MS)
    probe = window.store.probe
    assert probe["step"] == window.probe.step == 8 and Path(probe["file"]).parent == corpus
    model, step = load_model(resolve_ref(f"{run}:latest"))
    assert step == 8
    np.testing.assert_allclose(probe["reconstruction"], reconstruct(model, probe["original"], None),
                               atol=1e-5)  # what that checkpoint makes of the clip
    levels = int(window.store.info["rvq_levels"])
    assert window.store.usage.shape[0] == levels and window.store.codebook_steps.view().tolist() == [8]
    window.redraw()
    assert window.panels["spectrograms"].probe_step == 8
    assert "usage @ step 8" in window.panels["codebooks"].summary.text()
    audition = window.panels["audition"]
    qtbot.waitUntil(lambda: audition.clip is not None and audition.clip.reconstruction is not None,
                    timeout=WAIT_MS)
    assert audition.clip.is_probe
    assert not window.worker.is_running and window.start_action.text() == "Resume"

    # A new run prepared meanwhile is not shown the old run's probe; one without a checkpoint
    # asks for none.
    window.set_new_run(tiny_config(corpus), tmp_path / "fresh")
    assert window.store.probe == {} and not window.probe.busy
    assert not window.probe.hear(tmp_path / "fresh")


def test_a_big_run_opens_in_the_background_with_progress_while_the_window_keeps_ticking(qtbot, window, tmp_path):
    big = write_run(tmp_path / "big", 100_000)
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    shown = []  # the status bar's progress bar, as the user sees it
    window.history_reader.progress.connect(lambda _key, _share: shown.append(window.opening.bar.value()))
    timer.start()
    assert window.open_run(big)
    assert len(window.store.steps) == 0 and window.opening.busy  # it returned before reading
    assert window.opening.bar.isVisible() and "Opening" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.opening.busy, timeout=WAIT_MS)
    timer.stop()
    assert len(window.store.steps) == 100_000 and window.store.current_step == 100_000
    assert not window.opening.bar.isVisible() and "curves to step 100000" in window.statusBar().currentMessage()
    assert len(shown) >= 5 and shown == sorted(shown)  # it moved forward, step by step
    assert len(ticks) >= 10  # the event loop went on while the file was read and parsed


def test_layout_and_last_run_persist(qtbot, settings, corpus, tmp_path):
    run = tmp_path / "run"
    first = MainWindow(settings, player=None)
    qtbot.addWidget(first)
    first.show()
    first.resize(first.width(), 480)
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.docks["codebooks"])
    first.set_new_run(tiny_config(corpus), run)
    first.start_training()
    _wait_for_step(qtbot, first, 1)
    height = first.height()  # 480, or the panels' minimum if that is more
    first.close()

    second = MainWindow(settings, player=None)
    qtbot.addWidget(second)
    assert second.height() == height  # (the offscreen screen is too narrow to check widths)
    assert second.dockWidgetArea(second.docks["codebooks"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert second.dockWidgetArea(second.docks["weights"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert second.last_run() == run.resolve()
    assert str(run.resolve()) in second.recent_runs()
    second.close()


def test_an_audio_file_dropped_on_the_window_becomes_the_audition_clip(qtbot, window, corpus):
    path = corpus / "clip0.wav"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    with warnings.catch_warnings():  # PySide marks the QPoint constructor deprecated, no other
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()
    assert window.panels["audition"].clip.path == str(path)


def test_a_run_error_is_a_notice_and_the_window_stays(qtbot, window, tmp_path):
    window.set_new_run(tiny_config(tmp_path / "missing-folder"), tmp_path / "run")
    with qtbot.waitSignal(window.worker.finished, timeout=WAIT_MS):
        window.start_training()
    qtbot.waitUntil(lambda: not window.notice_bar.isHidden(), timeout=WAIT_MS)
    assert "missing-folder" in window.notice_label.text()
    assert window.isVisible() and not window.worker.is_running


# -- the menu bar ------------------------------------------------------------------------------


def _menu_texts(window, key):
    return [a.text().replace("&", "") for a in window.menus[key].actions() if not a.isSeparator()]


def test_the_menu_bar_has_file_run_view_and_help(window):
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Run", "View", "Help"]
    assert _menu_texts(window, "file") == ["New run…", "Open run…", "Recent runs", "Save checkpoint", "Quit"]
    assert _menu_texts(window, "run") == ["Start", "Stop", "Fork from here…"]
    assert _menu_texts(window, "view") == [spec.title for spec in PANELS] + ["Reset layout"]
    assert _menu_texts(window, "help") == ["Keyboard shortcuts", "About VQ Studio"]
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"


def test_a_panel_closed_with_its_button_comes_back_from_view_and_reset_restores_all(qtbot, window):
    codebooks, losses = window.docks["codebooks"], window.docks["losses"]
    codebooks.close()  # what its title bar's close button does
    assert not codebooks.isVisible() and not window.panel_actions["codebooks"].isChecked()
    window.panel_actions["codebooks"].trigger()
    assert codebooks.isVisible() and window.panel_actions["codebooks"].isChecked()

    codebooks.close()
    losses.setFloating(True)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.docks["weights"])
    window.reset_layout_action.trigger()
    for spec in PANELS:
        dock = window.docks[spec.key]
        assert dock.isVisible() and not dock.isFloating(), spec.key
    left = {k for k, d in window.docks.items()
            if window.dockWidgetArea(d) == Qt.DockWidgetArea.LeftDockWidgetArea}
    assert left == {"losses", "weights"}


def test_run_menu_starts_saves_and_stops_with_a_checkpoint_at_the_step_reached(qtbot, window, corpus, tmp_path):
    run = tmp_path / "run"
    window.set_new_run(tiny_config(corpus), run)
    window.start_action.trigger()
    _wait_for_step(qtbot, window, 2)
    window.save_action.trigger()
    qtbot.waitUntil(lambda: any(e["kind"] == "checkpoint" for e in window.store.events), timeout=WAIT_MS)
    with qtbot.waitSignal(window.worker.finished, timeout=WAIT_MS):
        window.stop_action.trigger()
    qtbot.waitUntil(lambda: not window.worker.is_running, timeout=WAIT_MS)
    last = [e for e in RunFolder(run).read_events() if e["kind"] == "checkpoint"][-1]
    assert last["step"] == window.store.current_step
    assert window.start_action.text() == "Resume"


def test_quit_while_training_saves_a_checkpoint(qtbot, window, corpus, tmp_path):
    run = tmp_path / "run"
    window.set_new_run(tiny_config(corpus), run)
    window.start_training()
    _wait_for_step(qtbot, window, 3)
    window.quit_action.trigger()
    assert not window.isVisible() and not window.worker.is_running
    last = [e for e in RunFolder(run).read_events() if e["kind"] == "checkpoint"][-1]
    assert last["step"] >= 3 and (run / "checkpoints" / "latest.json").is_file()


def test_about_names_the_versions_and_the_device_and_shortcuts_list_the_keys(window):
    import platform

    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    from vqstudio.version import __version__

    window.about_action.trigger()
    text = window.about_box.text()
    for needed in (__version__, platform.python_version(), torch.__version__, qVersion(),
                   PySide6.__version__, "device", "cpu"):
        assert needed in text, needed
    window.shortcuts_action.trigger()
    assert "Ctrl+Q" in window.shortcuts_box.text() and "Space" in window.shortcuts_box.text()


def test_recent_runs_menu_opens_a_run(qtbot, window, corpus, tmp_path):
    run = _trained_run(tmp_path / "earlier", corpus, 2)
    window.recent.remember(run)
    window.recent_menu.aboutToShow.emit()
    entry = next(a for a in window.recent_menu.actions() if a.text() == str(run.resolve()))
    entry.trigger()
    qtbot.waitUntil(lambda: not window.opening.busy, timeout=WAIT_MS)
    assert window.store.current_step == 2 and window.windowTitle().startswith("VQ Studio — earlier")


def test_command_line_paths_are_a_run_folder_and_audio_files(qtbot, window, corpus, tmp_path):
    from vqstudio.app.main import sort_paths
    from vqstudio.errors import UserError

    run = RunFolder.create(tmp_path / "run", tiny_config(corpus)).path
    wavs = [corpus / "clip0.wav", corpus / "clip1.flac"]
    assert sort_paths([str(wavs[0]), str(run), str(wavs[1])]) == (run, [p.resolve() for p in wavs])
    for bad, says in ((corpus, "not a run folder"), (tmp_path / "nope.wav", "no such file"),
                      (run / "config.toml", "not an audio file")):
        with pytest.raises(UserError, match=says):
            sort_paths([str(bad)])

    window.set_audition_clip(wavs[0], also=[wavs[1]])  # what `vqstudio app a.wav b.flac` does
    audition = window.panels["audition"]
    assert audition.clip.path == str(wavs[0])
    assert audition.clip_box.findData(str(wavs[1])) >= 0


def test_the_spectrograms_and_the_audition_panel_share_the_loop_and_the_playhead(window):
    spectrograms, audition = window.panels["spectrograms"], window.panels["audition"]
    spectrograms.region_selected.emit(1.5, 0.5)  # a band dragged on the spectrograms' time axis
    assert audition.loop_box.isChecked()
    assert audition.waveform.region.getRegion() == pytest.approx((0.5, 1.5))
    audition.playhead_changed.emit(1.25)  # the probe is playing
    assert spectrograms.playheads[0].isVisible() and spectrograms.playheads[0].value() == 1.25
    audition.loop_changed.emit(0.25, 0.75)  # the loop moved on the waveform
    assert spectrograms.region() == pytest.approx((0.25, 0.75))


def _answer_next_dialog(qtbot, answer) -> None:
    answer_next_dialog(answer)


def test_file_new_run_trains_what_the_dialog_asks_and_refuses_a_bad_folder(qtbot, window, corpus, tmp_path):
    def fill(dialog, data, run):
        dialog.preset.setCurrentIndex(dialog.preset.findText("tiny-cpu"))
        dialog.data.setText(str(data))
        dialog.run.setText(str(run))
        dialog.accept()

    _answer_next_dialog(qtbot, lambda d: fill(d, tmp_path / "no-such-folder", tmp_path / "a"))
    window.new_action.trigger()
    assert "no-such-folder: no such folder" in window.notice_label.text()
    assert not window.worker.is_running

    _answer_next_dialog(qtbot, lambda d: fill(d, corpus, tmp_path / "b"))
    window.new_action.trigger()
    assert window.worker.is_running
    _wait_for_step(qtbot, window, 1)
    assert RunFolder(tmp_path / "b").load_config().data.path == str(corpus.resolve())


def test_file_open_run_opens_the_folder_chosen(qtbot, window, corpus, tmp_path):
    run = _trained_run(tmp_path / "earlier", corpus, 2)

    def choose(dialog):
        dialog.setDirectory(str(run))
        dialog.accept()

    _answer_next_dialog(qtbot, choose)
    window.open_action.trigger()
    qtbot.waitUntil(lambda: not window.opening.busy, timeout=WAIT_MS)
    assert window.store.run_dir == run and window.store.current_step == 2
