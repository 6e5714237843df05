"""The audition panel's clip list: the training probe first, then the run's corpus files and any
file opened or dropped, and "Open audio file…" last. Items carry PROBE, OPEN_FILE or a file path
as their data."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from vqstudio.audio.io import READ_SUFFIXES

PROBE = "probe"
OPEN_FILE = "open"


class ClipChooser(QComboBox):
    """A combo box of clips; ``activated`` says which item the user picked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self.setToolTip("What to listen to: the training probe, a corpus file, or any "
                        "audio file (you can also drop one on the window)")
        self.addItem("Training probe", PROBE)
        self.addItem("Open audio file…", OPEN_FILE)

    def name_probe(self, probe_file: str | None) -> None:
        """Say which corpus file the training probe is cut from."""
        self.setItemText(0, f"Training probe ({Path(probe_file).name})" if probe_file else "Training probe")

    def add_files(self, files) -> None:
        """List audio files before "Open audio file…", keeping those already listed."""
        known = {self.itemData(i) for i in range(self.count())}
        with QSignalBlocker(self):
            for path in map(str, files):
                if path not in known:
                    self._insert(Path(path).name, path)
                    known.add(path)

    def show_choice(self, path: str | None, name: str = "") -> None:
        """Show the probe (``path`` None) or the file ``path`` (listed as ``name`` if new) as
        the current item, without emitting anything."""
        want = PROBE if path is None else path
        index = self.findData(want)
        with QSignalBlocker(self):
            if index < 0:
                index = self._insert(name or Path(path).name, want)
            self.setCurrentIndex(index)

    def _insert(self, name: str, path: str) -> int:
        index = self.count() - 1
        self.insertItem(index, name, path)
        self.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        return index


def ask_for_audio_file(parent: QWidget, folder: Path) -> str:
    """The file dialog for "Open audio file…"; "" when cancelled."""
    suffixes = " ".join(f"*{s}" for s in READ_SUFFIXES)
    path, _ = QFileDialog.getOpenFileName(parent, "Audition an audio file", str(folder),
                                          f"Audio files ({suffixes})")
    return path
