"""A compact chooser of one saved checkpoint to listen through: a run (the run open in the window,
the recent runs, or any run folder chosen) and one of its checkpoints (latest, best, or a step).
It emits the choice as the ``RUN:SELECTOR`` text that ``vqstudio compare`` takes ("" for none);
the checkpoint list is read again each time it is opened, so a checkpoint saved since is there."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSignalBlocker, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QWidget

from vqstudio.app.recent_runs import RecentRuns
from vqstudio.experiments.checkpoint_ref import available
from vqstudio.train.runfolder import RunFolder

NONE, CHOOSE = "", "choose"


class _CheckpointBox(QComboBox):
    """Refills itself (through ``refill``) just before it pops up."""

    def __init__(self, refill, parent=None):
        super().__init__(parent)
        self._refill = refill

    def showPopup(self) -> None:
        self._refill()
        super().showPopup()


class CheckpointChooser(QWidget):
    """``letter`` ("1", "2") names the source; ``changed`` carries ``RUN:SELECTOR`` or ""."""

    changed = Signal(str)

    def __init__(self, letter: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.run_box = QComboBox()
        self.run_box.setMinimumContentsLength(10)
        self.run_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_box.setToolTip(f"The run to hear as {letter}")
        self.run_box.addItem("—", NONE)
        self.run_box.addItem("Choose run folder…", CHOOSE)
        self.step_box = _CheckpointBox(self._fill_steps)
        self.step_box.setToolTip(f"Which checkpoint of that run to hear as {letter}")
        self.step_box.setEnabled(False)
        self.run_box.activated.connect(self._on_run)
        self.step_box.activated.connect(lambda _i: self._emit())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        row.addWidget(QLabel(letter))
        row.addWidget(self.run_box, 1)
        row.addWidget(self.step_box)

    # -- runs -----------------------------------------------------------------------------------

    def add_runs(self, paths) -> None:
        """List run folders (those that still hold a run) before "Choose run folder…"."""
        known = {self.run_box.itemData(i) for i in range(self.run_box.count())}
        with QSignalBlocker(self.run_box):
            for path in map(str, paths):
                if path and path not in known and RunFolder(path).exists():
                    index = self.run_box.count() - 1
                    self.run_box.insertItem(index, Path(path).name, path)
                    self.run_box.setItemData(index, path, 3)  # Qt.ToolTipRole
                    known.add(path)

    def add_recent(self) -> None:
        self.add_runs(RecentRuns(QSettings()).paths())

    @property
    def run(self) -> str:
        data = self.run_box.currentData()
        return data if data not in (NONE, CHOOSE) else ""

    @property
    def ref(self) -> str:
        """The choice as ``RUN:SELECTOR`` ("" for none)."""
        selector = self.step_box.currentData()
        return f"{self.run}:{selector}" if self.run and selector else ""

    def choose(self, run: str | Path, selector: str = "latest") -> None:
        """Pick ``run`` (listed if new) at ``selector`` (latest, best or a step) and emit."""
        self.add_runs([str(run)])
        index = self.run_box.findData(str(run))
        if index < 0:
            raise ValueError(f"{run} is not a run folder")
        self.run_box.setCurrentIndex(index)
        self._fill_steps()
        found = self.step_box.findData(str(selector))
        self.step_box.setCurrentIndex(max(found, 0))
        self._emit()

    def clear(self) -> None:
        self.run_box.setCurrentIndex(0)
        self._fill_steps()
        self._emit()

    def _on_run(self, index: int) -> None:
        if self.run_box.itemData(index) == CHOOSE:
            folder = QFileDialog.getExistingDirectory(self, "Listen through a run", str(Path.home()))
            if folder and RunFolder(folder).exists():
                self.choose(folder)
                return
            self.run_box.setCurrentIndex(0)
        self._fill_steps()
        self._emit()

    # -- checkpoints ----------------------------------------------------------------------------

    def _fill_steps(self) -> None:
        """latest, best (if saved) and every step, newest first; the choice kept if still there."""
        keep = self.step_box.currentData()
        with QSignalBlocker(self.step_box):
            self.step_box.clear()
            if self.run:
                names = available(RunFolder(self.run))
                steps = [n for n in names if n.isdigit()][::-1]
                if steps:
                    self.step_box.addItem("latest", "latest")
                if "best" in names:
                    self.step_box.addItem("best", "best")
                for step in steps:
                    self.step_box.addItem(f"step {step}", step)
                if not self.step_box.count():
                    self.step_box.addItem("no checkpoint yet", NONE)
            self.step_box.setEnabled(self.step_box.count() > 1 or bool(self.run))
            found = self.step_box.findData(keep)
            if found >= 0:
                self.step_box.setCurrentIndex(found)

    def _emit(self) -> None:
        self.changed.emit(self.ref)
