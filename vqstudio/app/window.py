"""The main window: five docked panels, the training toolbar, the status bar and the redraw timer.

The window owns the :class:`TrainingWorker` (the only way to the model) and the
:class:`RunStore` (what the panels draw). Receiving and drawing are apart: the store takes the
worker's signals as they come; a ~30 Hz timer asks each panel to ``refresh()``, and a panel
redraws only when the store's version moved. Layout, the last run and the recent runs persist in
QSettings; closing the window stops training and saves a checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QToolBar,
    QToolButton,
    QWidget,
)

from vqstudio.app.panels import PANELS, PanelSpec
from vqstudio.app.store import RunStore
from vqstudio.app.worker import TrainingWorker
from vqstudio.audio.io import READ_SUFFIXES
from vqstudio.config import DEFAULT_PRESET, Config, load_preset
from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder

log = logging.getLogger("vqstudio.app")

REDRAW_INTERVAL_MS = 33  # ~30 Hz
MAX_RECENT = 10
NOTICE_REPEAT_S = 10.0  # the same notice again within this long only counts up
SETTINGS_VERSION = 2  # bump when the dock layout changes: older saved states are then ignored
DEFAULT_SIZE = (1560, 960)


def default_runs_root() -> tuple[Path, str]:
    """Where new runs go when the user names no folder: the per-user data folder if writable,
    else ./runs. Returns (folder, a few words saying which)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if base:
        root = Path(base) / "runs"
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-test"
            probe.write_text("")
            probe.unlink()
            return root, "the per-user data folder"
        except OSError:
            pass
    return Path.cwd() / "runs", "./runs (the per-user data folder is not writable)"


def new_run_folder(root: Path, preset: str) -> Path:
    """``root/<preset>-<timestamp>``, with a suffix if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{preset or 'custom'}-{stamp}"
    n = 2
    while path.exists():
        path = root / f"{preset or 'custom'}-{stamp}-{n}"
        n += 1
    return path


def pretty_path(path: str | Path | None) -> str:
    """A path as a person reads it: the home folder as ~."""
    if path is None:
        return ""
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text


def format_elapsed(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class MainWindow(QMainWindow):
    """VQ Studio's window. ``settings`` defaults to the user's QSettings (tests pass their own);
    ``player`` is the A/B player for the audition panel (None: no audio)."""

    def __init__(self, settings: QSettings | None = None, player: Any = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.player = player
        self.worker = TrainingWorker(self)
        self.store = RunStore(self)
        self.store.attach(self.worker)
        self.runs_root, self.runs_root_note = default_runs_root()

        # What Start does next: train ``_config`` into ``_run_dir`` (a new run), or resume it.
        self._config: Config | None = None
        self._run_dir: Path | None = None
        self._resume = False
        self._notices: dict[str, tuple[float, int]] = {}
        self._shown_version = -1
        self._panel_failures: set[str] = set()

        self.setWindowTitle("VQ Studio")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._build_toolbar()
        self._build_notice_bar()
        self._build_status_bar()
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self._build_docks()
        self._restore_layout()

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

    def _build_toolbar(self) -> None:
        bar = QToolBar("Training", self)
        bar.setObjectName("toolbar-training")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

        self.start_action = QAction("Start", self)
        self.start_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.start_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.start_action.setToolTip("Start, pause or resume training (Space)")
        self.start_action.triggered.connect(self.toggle_training)
        bar.addAction(self.start_action)

        self.stop_action = QAction("Stop", self)
        self.stop_action.setToolTip("Stop training and save a checkpoint")
        self.stop_action.triggered.connect(self.stop_training)
        bar.addAction(self.stop_action)
        bar.addSeparator()

        self.new_action = QAction("New run…", self)
        self.new_action.setShortcut(QKeySequence.StandardKey.New)
        self.new_action.triggered.connect(self.new_run_dialog)
        bar.addAction(self.new_action)

        self.open_action = QAction("Open run…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_run_dialog)
        bar.addAction(self.open_action)

        self.recent_menu = QMenu("Recent runs", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        recent = QToolButton(self)
        recent.setText("Recent runs")
        recent.setMenu(self.recent_menu)
        recent.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(recent)
        bar.addSeparator()

        self.save_action = QAction("Save checkpoint", self)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_action.setToolTip("Save a checkpoint now (Ctrl+S)")
        self.save_action.triggered.connect(self.save_checkpoint)
        bar.addAction(self.save_action)
        self.toolbar = bar

    def _build_notice_bar(self) -> None:
        self.addToolBarBreak()
        bar = QToolBar("Notices", self)
        bar.setObjectName("toolbar-notices")
        bar.setMovable(False)
        self.notice_label = QLabel()
        self.notice_label.setObjectName("notice")
        self.notice_label.setWordWrap(True)
        self.notice_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.notice_label)
        dismiss = QAction("Dismiss", self)
        dismiss.triggered.connect(self.clear_notice)
        bar.addAction(dismiss)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.hide()
        self.notice_bar = bar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.status_labels: dict[str, QLabel] = {}
        for key, tip in (
            ("state", "training state"),
            ("device", "where the model trains"),
            ("step", "global step"),
            ("elapsed", "time spent training this run"),
            ("speed", "optimisation steps per second"),
            ("audio", "seconds of audio trained on per second"),
        ):
            label = QLabel()
            label.setToolTip(tip)
            status.addPermanentWidget(label)
            self.status_labels[key] = label

    def _build_docks(self) -> None:
        area = Qt.DockWidgetArea
        for spec in PANELS:
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(f"dock-{spec.key}")
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            )
            panel = self._make_panel(spec)
            dock.setWidget(panel)
            self.panels[spec.key] = panel
            self.docks[spec.key] = dock
        d = self.docks
        # Two columns, so that the window fits a laptop screen: what is trained (curves over the
        # weights that shape them) on the left, what it sounds like (spectrograms, codebooks,
        # the A/B player) on the right.
        self.addDockWidget(area.LeftDockWidgetArea, d["losses"])
        self.addDockWidget(area.RightDockWidgetArea, d["spectrograms"])
        self.splitDockWidget(d["losses"], d["weights"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["spectrograms"], d["codebooks"], Qt.Orientation.Vertical)
        self.splitDockWidget(d["codebooks"], d["audition"], Qt.Orientation.Vertical)

    def _default_proportions(self) -> None:
        d, width, height = self.docks, self.width(), self.height()
        self.resizeDocks([d["losses"], d["spectrograms"]], [width // 2, width // 2], Qt.Orientation.Horizontal)
        self.resizeDocks([d["losses"], d["weights"]], [int(height * 0.64), int(height * 0.36)],
                         Qt.Orientation.Vertical)
        self.resizeDocks([d["spectrograms"], d["codebooks"], d["audition"]],
                         [int(height * 0.37), int(height * 0.33), int(height * 0.30)], Qt.Orientation.Vertical)

    def _make_panel(self, spec: PanelSpec) -> QWidget:
        """The panel, or a label saying why it is missing (the window always opens)."""
        try:
            module = import_module(f"vqstudio.app.panels.{spec.module}")
            cls = getattr(module, spec.cls)
            if spec.key == "audition":
                return cls(self.store, self.worker, self.player, self)
            return cls(self.store, self.worker, self)
        except ModuleNotFoundError as exc:
            if exc.name != f"vqstudio.app.panels.{spec.module}":
                raise
            reason = "not built yet"
        except Exception as exc:
            log.error("the %s panel failed to start:\n%s", spec.title, traceback.format_exc())
            reason = f"failed to start: {type(exc).__name__}: {exc}"
        label = QLabel(f"{spec.title} panel: {reason}")
        label.setObjectName("placeholder")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        return label

    # -- settings -------------------------------------------------------------------------------

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry() if self.screen() else None
            width, height = DEFAULT_SIZE
            if screen is not None:
                width, height = min(width, int(screen.width() * 0.95)), min(height, int(screen.height() * 0.92))
            self.resize(width, height)
        state = self.settings.value("window/state")
        self._needs_proportions = state is None or not self.restoreState(state, SETTINGS_VERSION)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._needs_proportions:  # dock sizes only take once the window has its size
            self._needs_proportions = False
            self._default_proportions()

    def _save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(SETTINGS_VERSION))
        self.settings.sync()

    def recent_runs(self) -> list[str]:
        value = self.settings.value("runs/recent", [])
        if isinstance(value, str):  # QSettings returns a one-item list as a string
            value = [value]
        return [str(v) for v in value or []]

    def _remember_run(self, run_dir: Path) -> None:
        path = str(Path(run_dir).resolve())
        recent = [path] + [p for p in self.recent_runs() if p != path]
        self.settings.setValue("runs/recent", recent[:MAX_RECENT])
        self.settings.setValue("runs/last", path)
        self.settings.sync()

    def last_run(self) -> Path | None:
        """The run last trained or opened, if its folder still holds a run."""
        value = self.settings.value("runs/last")
        if value and RunFolder(value).exists():
            return Path(value)
        return None

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        runs = [p for p in self.recent_runs() if RunFolder(p).exists()]
        for path in runs:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_run(Path(p)))
        if not runs:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear list")
            clear.triggered.connect(lambda: self.settings.setValue("runs/recent", []))

    # -- what to train --------------------------------------------------------------------------

    def set_new_run(self, config: Config, run_dir: str | Path | None = None) -> None:
        """Make Start train ``config`` from scratch, into ``run_dir`` (or a new default folder).
        A ``run_dir`` that already holds a run is opened instead (and resumed by Start)."""
        if run_dir is not None and RunFolder(run_dir).exists():
            self.open_run(Path(run_dir))
            return
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
        """Show a run's curves from its folder; Start resumes it from its latest checkpoint."""
        run_dir = Path(run_dir)
        if self.worker.is_running:
            self.worker.stop(save=True)
        try:
            self.store.load_run(RunFolder(run_dir))
            config = RunFolder(run_dir).load_config()
        except UserError as exc:
            self.show_notice(str(exc))
            return False
        self._config, self._run_dir, self._resume = config, run_dir, True
        self._remember_run(run_dir)
        self._set_title()
        self.statusBar().showMessage(
            f"Opened {pretty_path(run_dir)} at step {self.store.current_step}. Press Space or Start to resume."
        )
        self._update_actions()
        return True

    def _set_title(self) -> None:
        name = self._run_dir.name if self._run_dir else "new run"
        preset = self._config.preset if self._config else ""
        self.setWindowTitle(f"VQ Studio — {name}" + (f" ({preset})" if preset else ""))

    # -- actions --------------------------------------------------------------------------------

    def start_training(self) -> None:
        """Start the prepared run (or resume the opened one). Idle only."""
        if self.worker.is_running:
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
        self._remember_run(self._run_dir)
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
        if not self.worker.is_running:
            self.show_notice("Nothing to save: no run is training. Start or open a run first.")
            return
        self.worker.command("save_checkpoint")
        self.statusBar().showMessage("Checkpoint requested (saved between two steps)", 5000)

    def new_run_dialog(self) -> None:
        from vqstudio.app.dialogs import NewRunDialog

        preset = (self._config.preset if self._config else "") or DEFAULT_PRESET
        data = self._config.data.path if self._config else ""
        dialog = NewRunDialog(self.runs_root, preset, data, self)
        if dialog.exec() != NewRunDialog.DialogCode.Accepted:
            return
        preset, data, run = dialog.values()
        try:
            config = load_preset(preset)
            if data:
                if not Path(data).is_dir():
                    raise UserError(f"{data}: no such folder", "choose a folder of audio files")
                config = config.with_overrides({"data.path": str(Path(data).resolve())})
            if run and RunFolder(run).exists():
                raise UserError(f"{run} already holds a run", "open it with Open run…, or choose another folder")
        except UserError as exc:
            self.show_notice(str(exc))
            return
        if self.worker.is_running:
            self.worker.stop(save=True)
        self.set_new_run(config, Path(run) if run else None)
        self.start_training()

    def open_run_dialog(self) -> None:
        start = str(self._run_dir.parent if self._run_dir else self.runs_root)
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            self.open_run(Path(folder))

    # -- notices and status ---------------------------------------------------------------------

    def show_notice(self, text: str) -> None:
        """A readable notice above the panels; repeats within a few seconds only count up."""
        now = time.monotonic()
        last, count = self._notices.get(text, (-math.inf, 0))
        count = count + 1 if now - last < NOTICE_REPEAT_S else 1
        self._notices[text] = (now, count)
        log.warning("notice: %s", text)
        self.notice_label.setText(text + (f"  (×{count})" if count > 1 else ""))
        self.notice_bar.show()

    def clear_notice(self) -> None:
        self.notice_label.clear()
        self.notice_bar.hide()

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
        self.start_action.setEnabled(not stopping)
        self.stop_action.setEnabled(running and not stopping)
        self.save_action.setEnabled(running and not stopping)
        if stopping:
            state = "stopping"
        elif running:
            state = "paused" if paused else "training"
        else:
            state = "idle"
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
        s, labels = self.store, self.status_labels
        labels["device"].setText(s.info.get("device") or "–")
        labels["step"].setText(f"step {s.current_step}")
        labels["elapsed"].setText(format_elapsed(s.current_elapsed))
        sps, aps = s.steps_per_second, s.audio_seconds_per_second
        labels["speed"].setText(f"{sps:.2f} steps/s" if math.isfinite(sps) else "– steps/s")
        labels["audio"].setText(f"{aps:.1f} audio-s/s" if math.isfinite(aps) else "– audio-s/s")
        self._update_actions()

    # -- drag and drop --------------------------------------------------------------------------

    @staticmethod
    def _dropped_audio(event) -> Path | None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in READ_SUFFIXES:
                return Path(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_audio(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_audio(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.set_audition_clip(path)

    def set_audition_clip(self, path: str | Path) -> None:
        """Use an audio file as the audition clip (what a drop on the window does)."""
        panel = self.panels.get("audition")
        setter = getattr(panel, "set_clip_from_file", None)
        if setter is None:
            self.show_notice("The audition panel is not available, so the file cannot be auditioned")
            return
        try:
            setter(str(path))
        except UserError as exc:
            self.show_notice(str(exc))

    # -- closing --------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_layout()
        if self.worker.is_running:
            self.statusBar().showMessage("Saving a checkpoint…")
            if not self.worker.stop(save=True):
                self.show_notice("Training did not stop in time; closing anyway")
        self.redraw_timer.stop()
        for panel in self.panels.values():
            close = getattr(panel, "shutdown", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.error("a panel failed to shut down:\n%s", traceback.format_exc())
        if self.player is not None:
            self.player.close()
        super().closeEvent(event)
