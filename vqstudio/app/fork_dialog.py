"""Fork from here (Run menu): a new run folder from a checkpoint of the current run (latest, best
or a step) with settings changed in the settings editor, seeded with the run's configuration.

On OK the window's training stops (saving, so "latest" is the step reached), the fork is written by
:func:`vqstudio.experiments.fork.fork_run` in a background thread (it loads a checkpoint and, for a
structural change, builds two models), and the new run is opened and trained. The fork's one-line
summary of what carried over is shown in the notice bar. :func:`fork_from_here` is the entry point
(also for a remedy that needs a fork: pass its ``overrides``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.settings_editor import SettingsEditor
from vqstudio.config_fields import text_of
from vqstudio.errors import UserError
from vqstudio.experiments.checkpoint_ref import available
from vqstudio.experiments.fork import Fork, change_kind, fork_run
from vqstudio.train.runfolder import RunFolder


def fork_folder_for(parent: Path) -> Path:
    """A free sibling folder name for a fork of ``parent``: ``<name>-fork``, ``<name>-fork-2`` ..."""
    for n in range(1, 1000):
        candidate = parent.parent / (f"{parent.name}-fork" + (f"-{n}" if n > 1 else ""))
        if not candidate.exists():
            return candidate
    raise UserError(f"no free fork folder name beside {parent}", "type a run folder for the fork")


class ForkDialog(QDialog):
    """Asks which checkpoint, which settings and which folder; read :meth:`chosen` after exec()."""

    def __init__(self, run_dir: Path, training: bool = False, overrides: dict[str, Any] | None = None,
                 checkpoint: str = "latest", parent: QWidget | None = None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.setWindowTitle(f"Fork {self.run_dir.name}")
        self.setMinimumSize(760, 640)
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)

        self.checkpoint = QComboBox()
        latest = "latest (the step reached: saved when you fork)" if training else "latest"
        self.checkpoint.addItem(latest, "latest")
        for name in reversed(available(RunFolder(self.run_dir))):
            self.checkpoint.addItem("best (lowest validation distance)" if name == "best" else f"step {name}", name)
        index = self.checkpoint.findData(checkpoint)
        self.checkpoint.setCurrentIndex(max(index, 0))
        form.addRow("From checkpoint", self.checkpoint)
        self.folder = QLineEdit(str(fork_folder_for(self.run_dir)))
        form.addRow("New run folder", self.folder)

        self.editor = SettingsEditor(RunFolder(self.run_dir).load_config(), "parent", self)
        for key, value in (overrides or {}).items():
            self.editor.set_text(key, value if isinstance(value, str) else text_of(value))
        outer.addWidget(self.editor, 1)
        self.carry = QLabel()
        self.carry.setWordWrap(True)
        outer.addWidget(self.carry)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Fork and train")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.editor.changed.connect(self._judge)
        self.folder.textChanged.connect(self._judge)
        self._judge()

    def _judge(self) -> None:
        """What will carry over, per change, and whether the fork can be asked for."""
        folder = Path(self.folder.text().strip()) if self.folder.text().strip() else None
        problem = ""
        if folder is None:
            problem = "type a folder for the fork"
        elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            problem = f"{folder} already exists and is not empty — fork into a new folder"
        changes = self.editor.changes()
        if problem or not self.editor.valid:
            self.carry.setText(problem)
            self.carry.setStyleSheet(f"color: {theme.ERROR};")
        elif not changes:
            self.carry.setText("No setting changed: the fork continues the parent exactly.")
            self.carry.setStyleSheet(f"color: {theme.TEXT_DIM};")
        else:
            kinds = [change_kind(k) for k in changes]
            structural = kinds.count("structural")
            self.carry.setText(
                ", ".join(f"{k} ({kind})" for k, kind in zip(changes, kinds)) + ": "
                + ("model tensors that no longer fit start fresh; the rest carries over"
                   if structural else "model and optimizer state carry over"))
            self.carry.setStyleSheet(f"color: {theme.ACCENT};")
        self.ok.setEnabled(self.editor.valid and not problem)

    def chosen(self) -> tuple[str, Path, list[str]]:
        """(``RUN:CKPT`` for fork_run, the new folder, the ``--set`` texts)."""
        if not self.editor.valid:
            raise UserError(self.editor.message)
        source = f"{self.run_dir}:{self.checkpoint.currentData()}"
        return source, Path(self.folder.text().strip()), self.editor.override_texts()


class ForkJob(QObject):
    """``fork_run`` in a background thread; ``done(Fork)`` or ``failed(str)`` in the GUI thread."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, source: str, folder: Path, overrides: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.thread = threading.Thread(target=self._run, args=(source, folder, overrides),
                                       name="vqstudio-fork", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self, source: str, folder: Path, overrides: list[str]) -> None:
        try:
            self.done.emit(fork_run(source, folder, overrides))
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug: say so, keep the window
            self.failed.emit(f"The fork failed: {type(exc).__name__}: {exc}")


def fork_from_here(window, checkpoint: str = "latest", overrides: dict[str, Any] | None = None,
                   dialog_hook=None) -> ForkJob | None:
    """Ask for a fork of the window's run and, on OK, write it off the GUI thread, then open and
    train it. ``dialog_hook(dialog)`` (tests) runs before the dialog is shown. Returns the job."""
    run_dir = getattr(window, "_run_dir", None)
    if run_dir is None or not RunFolder(run_dir).exists():
        window.show_notice("Nothing to fork yet: open a run, or train one until it has a checkpoint")
        return None
    training = window.worker.is_running
    if not training and not available(RunFolder(run_dir)):
        window.show_notice(f"{run_dir} has no checkpoint yet — train it (or press Ctrl+S while it trains)")
        return None
    dialog = ForkDialog(Path(run_dir), training, overrides, checkpoint, window)
    if dialog_hook is not None:
        dialog_hook(dialog)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    try:
        source, folder, sets = dialog.chosen()
    except UserError as exc:
        window.show_notice(str(exc))
        return None
    if window.worker.is_running:
        window.statusBar().showMessage("Saving a checkpoint before forking…")
        window.worker.stop(save=True)  # so that "latest" is the step reached
    job = ForkJob(source, folder, sets, window)
    window.statusBar().showMessage(f"Forking {Path(run_dir).name} into {folder}…")

    def done(fork: Fork) -> None:
        job.thread.join()
        window.open_run(fork.run.path)
        window.start_training()
        window.show_notice(fork.summary)

    def failed(text: str) -> None:
        job.thread.join()
        window.show_notice(text)

    job.done.connect(done)
    job.failed.connect(failed)
    window.fork_job = job
    job.start()
    return job


def can_fork(window) -> bool:
    """Whether Fork from here has a run to fork (the Run menu enables it from this)."""
    run_dir = getattr(window, "_run_dir", None)
    return run_dir is not None and RunFolder(run_dir).exists()
