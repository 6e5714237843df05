"""The New run dialog: a preset, a folder of audio (empty: the demo corpus) and a run folder
(empty: a fresh folder under the default runs folder)."""

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
    QWidget,
)

from vqstudio.config import DEFAULT_PRESET, Config, load_preset, preset_names, preset_summary
from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder


class NewRunDialog(QDialog):
    """Asks for preset, data folder and run folder; read them from :meth:`values` after exec()."""

    def __init__(self, runs_root: Path, preset: str = DEFAULT_PRESET, data: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("New run")
        self.setMinimumWidth(560)
        form = QFormLayout(self)

        self.preset = QComboBox()
        for name in preset_names():
            self.preset.addItem(name)
            self.preset.setItemData(self.preset.count() - 1, preset_summary(name))
        index = self.preset.findText(preset)
        self.preset.setCurrentIndex(max(index, 0))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("placeholder")
        self.preset.currentIndexChanged.connect(self._show_summary)
        self._show_summary()
        form.addRow("Preset", self.preset)
        form.addRow("", self.summary)

        self.data = QLineEdit(data)
        self.data.setPlaceholderText("empty: the built-in demo corpus")
        form.addRow("Audio folder", _with_browse(self.data, "Folder of audio files", self))

        self.run = QLineEdit()
        self.run.setPlaceholderText(f"empty: a new folder in {runs_root}")
        form.addRow("Run folder", _with_browse(self.run, "Run folder", self))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start training")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _show_summary(self) -> None:
        self.summary.setText(str(self.preset.currentData() or ""))

    def values(self) -> tuple[str, str, str]:
        """(preset, data folder or "", run folder or "")."""
        return self.preset.currentText(), self.data.text().strip(), self.run.text().strip()

    def chosen_run(self) -> tuple[Config, Path | None]:
        """The configuration and run folder (None: a fresh default one) the fields ask for.
        Raises UserError for a data folder that does not exist or a run folder that holds a run."""
        preset, data, run = self.values()
        config = load_preset(preset)
        if data:
            if not Path(data).is_dir():
                raise UserError(f"{data}: no such folder", "choose a folder of audio files")
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
