"""How many quantizer levels the audition decodes with: the first k of the model's N, shown as
"k of N"; all N means "all levels" (``levels`` None)."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QSpinBox, QWidget


class LevelsBox(QSpinBox):
    """A spin box over 1 .. N; ``levels_chosen`` carries the new :attr:`levels` (None: all)."""

    levels_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.count = 0  # N, the model's levels (0: not known yet)
        self.setKeyboardTracking(False)
        self.setToolTip("Decode with only the first k quantizer levels")
        self.valueChanged.connect(lambda _value: self.levels_chosen.emit(self.levels))

    @property
    def levels(self) -> int | None:
        """The first k levels asked for, or None for all of them."""
        return None if self.value() >= self.count else int(self.value())

    def set_count(self, count: int) -> None:
        """A model with ``count`` levels: back to all of them, without emitting."""
        if count == self.count:
            return
        self.count = count
        with QSignalBlocker(self):
            self.setRange(1, max(count, 1))
            self.setSuffix(f" of {count}" if count else "")
            self.setValue(count or 1)

    def set_levels(self, levels: int | None) -> None:
        """Ask for the first ``levels`` (None: all), emitting if it changes."""
        self.setValue(self.count if levels is None else int(levels))
