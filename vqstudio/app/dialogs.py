"""The New run dialog: a preset, every setting of it editable (the settings editor: the preset's
value beside each, the changed ones highlighted, the configuration's message inline), the audio
(``data.path``: a folder, or a file such as a manifest; empty: the demo corpus) and a run folder
(empty: a fresh folder under the default runs folder). Start training stays disabled while a value
is refused."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.settings_editor import SettingsEditor
from vqstudio.config import DEFAULT_PRESET, Config, load_preset, preset_names, preset_summary
from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder


class NewRunDialog(QDialog):
    """Asks for preset, settings and run folder; read them from :meth:`chosen_run` after exec()."""

    def __init__(self, runs_root: Path, preset: str = DEFAULT_PRESET, data: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("New run")
        self.setMinimumSize(760, 640)
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)

        self.preset = QComboBox()
        for name in preset_names():
            self.preset.addItem(name)
            self.preset.setItemData(self.preset.count() - 1, preset_summary(name))
        index = self.preset.findText(preset)
        self.preset.setCurrentIndex(max(index, 0))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("placeholder")
        form.addRow("Preset", self.preset)
        form.addRow("", self.summary)

        self.run = QLineEdit()
        self.run.setPlaceholderText(f"empty: a new folder in {runs_root}")
        form.addRow("Run folder", _with_browse(self.run, "Run folder", self))

        self.editor = SettingsEditor(load_preset(self.preset.currentText()), "preset", self)
        self.data = self.editor.rows["data.path"].input  # the audio: data.path in the editor
        if data:
            self.data.setText(data)
        outer.addWidget(self.editor, 1)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.ERROR};")
        outer.addWidget(self.problem)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Start training")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)

        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.editor.changed.connect(self._judge)
        self.run.textChanged.connect(self._judge)
        self._show_summary()
        self._judge()

    def _preset_chosen(self) -> None:
        self._show_summary()
        self.editor.set_base(load_preset(self.preset.currentText()))

    def _show_summary(self) -> None:
        self.summary.setText(str(self.preset.currentData() or ""))

    def _judge(self) -> None:
        """Start training only with settings the configuration takes and folders that fit."""
        problem = "" if not self.editor.valid else self._folder_problem()
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        self.ok.setEnabled(self.editor.valid and not problem)

    def _folder_problem(self) -> str:
        try:
            self.chosen_run()
        except UserError as exc:
            return str(exc)
        return ""

    def values(self) -> tuple[str, str, str]:
        """(preset, data path or "", run folder or "")."""
        return self.preset.currentText(), self.data.text().strip(), self.run.text().strip()

    def chosen_run(self) -> tuple[Config, Path | None]:
        """The configuration and run folder (None: a fresh default one) the fields ask for.
        Raises UserError for a refused setting, audio that does not exist or a run folder that
        already holds a run."""
        _, data, run = self.values()
        config = self.editor.config()
        if config is None:
            raise UserError(self.editor.message)
        if data:
            from vqstudio.audio.corpus import SOURCE_HINT, source_kind

            if source_kind(data) is None:
                what = "no such folder or file" if not Path(data).exists() else "not audio data"
                raise UserError(f"{data}: {what}", "choose " + SOURCE_HINT)
            config = config.with_overrides({"data.path": str(Path(data).resolve())})
        if run and RunFolder(run).exists():
            raise UserError(f"{run} already holds a run", "open it with Open run…, or choose another folder")
        return config, Path(run) if run else None


def _with_browse(edit: QLineEdit, caption: str, parent: QWidget) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")

    def browse() -> None:
        folder = QFileDialog.getExistingDirectory(parent, caption, edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    button.clicked.connect(browse)
    layout.addWidget(button)
    return row


def ask_new_run(window, current: Config | None) -> None:
    """File > New run: the dialog (starting from ``current``'s preset and data); on OK, stop
    what trains (saving a checkpoint), prepare the new run in ``window`` and train it."""
    preset = (current.preset if current else "") or DEFAULT_PRESET
    data = current.data.path if current else ""
    dialog = NewRunDialog(window.runs_root, preset, data, window)
    if dialog.exec() != NewRunDialog.DialogCode.Accepted:
        return
    try:
        config, run = dialog.chosen_run()
    except UserError as exc:
        window.show_notice(str(exc))
        return
    if window.worker.is_running:
        window.worker.stop(save=True)
    window.set_new_run(config, run)
    window.start_training()
