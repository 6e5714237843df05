"""The main window: the docked panels (``panels.PANELS``), menus and toolbar, notice bar, status
bar, redraw timer, and what Start does next (a new run, resuming the one opened, or nothing while
another process trains it and the window follows). It owns the :class:`TrainingWorker` (the only
way to the model) and the :class:`RunStore` (what the panels draw): the store takes the worker's
signals as they come, a ~30 Hz timer asks each panel to ``refresh()``. Its parts: ``dock_layout``,
``menus``, ``recent_runs``, ``run_folders``, ``run_list``, ``run_opening`` (a run's history read in
the background), ``follow``, ``status_bar``. Closing (or
Quit, or a stop signal: see ``main``) stops training at the end of its step and saves a checkpoint.
"""

from __future__ import annotations

import logging
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QWidget

from vqstudio.app import dock_layout
from vqstudio.app.checkpoint_probe import CheckpointProbe
from vqstudio.app.follow import RunFollower
from vqstudio.app.history_reader import HistoryReader
from vqstudio.app.menus import build_menus
from vqstudio.app.notices import NoticeBar
from vqstudio.app.dropped_files import dropped_audio
from vqstudio.app.recent_runs import RecentRuns
from vqstudio.app.run_list import link_runs
from vqstudio.app.run_folders import default_runs_root, new_run_folder, pretty_path, stopped_where
from vqstudio.app.run_opening import RunOpening, opened_message
from vqstudio.app.status_bar import add_readouts, show_run
from vqstudio.app.gui_thread_gc import collect_on_gui_thread
from vqstudio.app.panels import PanelSpec
from vqstudio.app.store import RunStore
from vqstudio.app.worker import TrainingWorker
from vqstudio.config import DEFAULT_PRESET, Config, load_preset
from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder

log = logging.getLogger("vqstudio.app")

REDRAW_INTERVAL_MS = 33  # ~30 Hz
NOTICE_REPEAT_S = 10.0  # the same notice again within this long only counts up


class MainWindow(QMainWindow):
    """VQ Studio's window. ``settings`` defaults to the user's QSettings (tests pass their own);
    ``player`` is the A/B player for the audition panel (None: no audio)."""

    closing = Signal()  # the window is about to close (still showing everything)

    def __init__(self, settings: QSettings | None = None, player: Any = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        collect_on_gui_thread()  # before any of our threads starts (gui_thread_gc.py)
        self.settings = settings if settings is not None else QSettings()
        self.player = player
        self.worker = TrainingWorker(self)
        self.store = RunStore(self)
        self.store.attach(self.worker)
        self.runs_root, self.runs_root_note = default_runs_root()
        self.recent = RecentRuns(self.settings)

        # What Start does next: train ``_config`` into ``_run_dir`` (a new run), or resume it.
        self._config: Config | None = None
        self._run_dir: Path | None = None
        self._resume = False
        self._trained = False  # whether a run was started (or resumed) in this window
        self._shown_version = -1
        self._panel_failures: set[str] = set()

        self.setWindowTitle("VQ Studio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.panels, self.docks = dock_layout.build_docks(self, self._make_panel)
        self._link_panels()
        self.history_reader = HistoryReader(self)  # run folders read off the GUI thread
        self.runs = link_runs(self)  # the runs compared beside this one (run_list.py)
        build_menus(self)
        self.addToolBarBreak()
        self.notice_bar = NoticeBar(self, NOTICE_REPEAT_S)
        self.notice_label = self.notice_bar.label
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.notice_bar)
        self.status_labels = add_readouts(self.statusBar())
        self.opening = RunOpening(self, self.history_reader)  # Open run's reading and progress
        self.probe = CheckpointProbe(self)  # a run not trained here shows its latest checkpoint
        self.follower = RunFollower(self)  # a run another process trains is followed (follow.py)
        self._needs_proportions = dock_layout.restore_layout(self, self.settings)

        self.worker.state_changed.connect(self._on_state)
        self.worker.error.connect(self.show_notice)
        self.worker.started.connect(self._on_started)
        self.worker.finished.connect(self._on_finished)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()
        self._update_actions()

    # -- construction ---------------------------------------------------------------------------

    def _link_panels(self) -> None:
        """The spectrograms show the training probe: a region dragged there loops the audition
        clip, and the audition's playhead and loop are drawn there."""
        spectrograms, audition = self.panels.get("spectrograms"), self.panels.get("audition")
        diagnosis = self.panels.get("diagnosis")
        if hasattr(diagnosis, "window_ref"):  # Listen drives the audition; Fork opens the dialog
            diagnosis.window_ref = self
            diagnosis.audition = audition if hasattr(audition, "set_loop") else None
        if not (hasattr(spectrograms, "region_selected") and hasattr(audition, "set_loop")):
            return  # one of them failed to start
        spectrograms.region_selected.connect(audition.set_loop)
        audition.playhead_changed.connect(spectrograms.set_playhead)
        audition.loop_changed.connect(spectrograms.set_region)

    def _make_panel(self, spec: PanelSpec) -> QWidget:
        """The panel, or a label saying why it is missing (the window always opens)."""
        try:
            cls = getattr(import_module(f"vqstudio.app.panels.{spec.module}"), spec.cls)
            if spec.key == "audition":
                return cls(self.store, self.worker, self.player, self)
            return cls(self.store, self.worker, self)
        except Exception as exc:
            log.error("the %s panel failed to start:\n%s", spec.title, traceback.format_exc())
            reason = f"failed to start: {type(exc).__name__}: {exc}"
        label = QLabel(f"{spec.title} panel: {reason}")
        label.setObjectName("placeholder")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        return label

    # -- layout and settings --------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._needs_proportions:  # dock sizes only take once the window has its size
            self._needs_proportions = False
            dock_layout.default_proportions(self, self.docks)

    def reset_layout(self) -> None:
        """Every panel back, docked where it starts (View > Reset layout)."""
        dock_layout.reset_layout(self, self.docks)

    def recent_runs(self) -> list[str]:
        return self.recent.paths()

    def last_run(self) -> Path | None:
        """The run last trained or opened, if its folder still holds a run."""
        return self.recent.last()

    # -- what to train --------------------------------------------------------------------------

    def set_new_run(self, config: Config, run_dir: str | Path | None = None) -> None:
        """Make Start train ``config`` from scratch, into ``run_dir`` (or a new default folder).
        A ``run_dir`` that already holds a run is opened instead (and resumed by Start)."""
        if run_dir is not None and RunFolder(run_dir).exists():
            self.open_run(Path(run_dir))
            return
        self.follower.stop()
        self.opening.cancel()
        self.probe.forget()
        self._config, self._run_dir, self._resume = config, Path(run_dir) if run_dir else None, False
        self.store.preview(config, self._run_dir)
        where = self._run_dir or self.runs_root / f"{config.preset or 'custom'}-<time>"
        data = config.data.path or "the demo corpus"
        self._set_title()
        self.statusBar().showMessage(
            f"Ready: {config.preset or 'custom'} on {data}. Press Space or Start to train. "
            f"Run folder: {pretty_path(where)}"
            + ("" if self._run_dir else f" (in {self.runs_root_note})")
        )

    def open_run(self, run_dir: str | Path) -> bool:
        """Show a run's curves from its folder, read in the background (``run_opening.py``: the
        window stays responsive, the status bar shows progress); Start resumes it from its latest
        checkpoint. False, with a notice, if its configuration does not load."""
        run_dir = Path(run_dir)
        try:
            config = RunFolder(run_dir).load_config()
        except UserError as exc:
            self.show_notice(str(exc))
            return False
        if self.worker.is_running:
            self.worker.stop(save=True)
        self._config, self._run_dir, self._resume = config, run_dir, True
        if not self.follower.open(run_dir):  # another process trains it: follow it (follow.py)
            self.opening.read(run_dir, self._opened)
        self.recent.remember(run_dir)
        self._set_title()
        self._update_actions()
        return True

    def _opened(self, history) -> None:
        self.store.load_history(history)
        self.statusBar().showMessage(opened_message(history.path, self.store.current_step))
        self.probe.hear(history.path)  # Spectrograms, Codebooks: what its latest checkpoint does

    def _set_title(self) -> None:
        name = self._run_dir.name if self._run_dir else "new run"
        preset = self._config.preset if self._config else ""
        self.setWindowTitle(f"VQ Studio — {name}" + (f" ({preset})" if preset else ""))

    # -- actions --------------------------------------------------------------------------------

    def start_training(self) -> None:
        """Start the prepared run (or resume the opened one). Idle only."""
        if self.worker.is_running:
            return
        if self.follower.refuses_start():  # followed: trained elsewhere
            return
        if self.opening.busy:  # it resumes the run opening: once its rows are in the store
            self.opening.when_open(self.start_training)
            return
        if self._config is None:
            self.set_new_run(load_preset(DEFAULT_PRESET))
        try:
            if self._resume and self._run_dir is not None:
                self.worker.open_run(self._run_dir)
            else:
                if self._run_dir is None:
                    self._run_dir = new_run_folder(self.runs_root, self._config.preset)
                self.worker.start(self._config, self._run_dir)
                self._resume = True  # from now on Start continues this run
        except RuntimeError as exc:
            self.show_notice(str(exc))
            return
        self._trained = True
        self.recent.remember(self._run_dir)
        self._set_title()
        self.statusBar().showMessage(f"Training into {pretty_path(self._run_dir)}")

    def toggle_training(self) -> None:
        """Start, pause or resume (the Start/Pause button and Space)."""
        if self.worker.is_stopping:
            return
        if not self.worker.is_running:
            self.start_training()
        else:
            self.worker.toggle()
        self._update_actions()

    def stop_training(self) -> None:
        """Ask training to stop and save a checkpoint; the window stays responsive."""
        if self.worker.is_running and not self.worker.is_stopping:
            self.worker.stop(save=True, wait=False)
            self.statusBar().showMessage("Stopping: saving a checkpoint…")
            self._update_actions()

    def save_checkpoint(self) -> None:
        if not self.worker.is_running and not self.follower.active:
            self.show_notice("Nothing to save: no run is training. Start or open a run first.")
            return
        self.worker.command("save_checkpoint")
        self.statusBar().showMessage("Checkpoint requested (saved between two steps)", 5000)

    def save_checkpoint_on_signal(self) -> None:
        """SIGUSR1: a checkpoint now if training, and go on."""
        if self.worker.is_running:
            self.save_checkpoint()
            log.warning("SIGUSR1: saving a checkpoint at the end of the step")
        else:
            log.warning("SIGUSR1: nothing is training, so there is no checkpoint to save")

    def stopped_where(self) -> str:
        """After closing: where training stopped and its last checkpoint (one line)."""
        if self._run_dir is None or not self._trained:
            return "nothing was training; closed"
        return stopped_where(self._run_dir, self.store.current_step)

    def new_run_dialog(self) -> None:
        """File > New run: the dialog, then train what it asks (``dialogs.ask_new_run``)."""
        from vqstudio.app.dialogs import ask_new_run

        ask_new_run(self, self._config)

    def open_run_dialog(self) -> None:
        start = str(self._run_dir.parent if self._run_dir else self.runs_root)
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            self.open_run(Path(folder))

    # -- notices and status ---------------------------------------------------------------------

    def show_notice(self, text: str) -> None:
        """A readable notice above the panels; repeats within a few seconds only count up."""
        self.notice_bar.notify(text)

    def clear_notice(self) -> None:
        self.notice_bar.dismiss()

    def _on_state(self, state: str) -> None:
        self._update_actions()

    def _on_started(self, info: dict) -> None:
        self.statusBar().showMessage(
            f"Training {info.get('preset') or 'custom'} on {info.get('device')} into "
            f"{pretty_path(info.get('run_dir'))}"
        )

    def _on_finished(self) -> None:
        if self.worker.is_stopping or not self.worker.is_running:
            self.worker.stop()  # joins the ending thread (not a run started since)
        self.statusBar().showMessage(
            f"Stopped at step {self.store.current_step}; checkpoint saved in {pretty_path(self._run_dir)}"
        )
        self._update_actions()

    def _update_actions(self) -> None:
        running, paused, stopping = self.worker.is_running, self.worker.is_paused, self.worker.is_stopping
        if not running:
            label = "Resume" if self._resume else "Start"
        else:
            label = "Resume" if paused else "Pause"
        self.start_action.setText(label)
        self.start_action.setEnabled(not stopping and not self.follower.active)
        self.stop_action.setEnabled(running and not stopping)
        self.save_action.setEnabled((running or self.follower.active) and not stopping)
        if stopping:
            state = "stopping"
        elif running:
            state = "paused" if paused else "training"
        else:
            state = "following" if self.follower.active else "idle"
        self.status_labels["state"].setText(state)

    def redraw(self) -> None:
        """The ~30 Hz frame: each panel redraws if it has something new; then the status bar."""
        for key, panel in self.panels.items():
            refresh = getattr(panel, "refresh", None)
            if refresh is None:
                continue
            try:
                refresh()
            except Exception:
                if key not in self._panel_failures:  # log once, keep the other panels drawing
                    self._panel_failures.add(key)
                    log.error("the %s panel failed to redraw:\n%s", key, traceback.format_exc())
        if self.store.version != self._shown_version:
            self._shown_version = self.store.version
            self._update_status()

    def _update_status(self) -> None:
        show_run(self.status_labels, self.store)
        self._update_actions()

    # -- drag and drop --------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_audio(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_audio(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.set_audition_clip(path)

    def set_audition_clip(self, path: str | Path, also: list[Path] | tuple = ()) -> None:
        """Use an audio file as the audition clip (what a drop on the window does); list the
        files ``also`` in the clip chooser too."""
        panel = self.panels.get("audition")
        setter = getattr(panel, "set_clip_from_file", None)
        if setter is None:
            self.show_notice("The audition panel is not available, so the file cannot be auditioned")
            return
        try:
            setter(str(path))
        except UserError as exc:
            self.show_notice(str(exc))
        if also:
            panel.add_files([str(p) for p in also])

    # -- closing --------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.emit()
        dock_layout.save_layout(self, self.settings)
        self.follower.stop()
        self.opening.cancel()
        self.history_reader.wait(10.0)
        if self.worker.is_running:
            self.statusBar().showMessage("Saving a checkpoint…")
            if not self.worker.stop(save=True):
                self.show_notice("Training did not stop in time; closing anyway")
        self.redraw_timer.stop()
        if hasattr(self.panels.get("diagnosis"), "stop"):
            self.panels["diagnosis"].stop()  # its diagnosis or verify thread
        if hasattr(self.panels.get("audition"), "close_sources"):
            self.panels["audition"].close_sources()  # its checkpoint inference thread
        if self.player is not None:
            self.player.close()
        super().closeEvent(event)
