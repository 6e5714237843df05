"""Notices: a readable line that names a problem and its fix, shown where it happened (above the
panels for the window, under the transport for the audition panel) instead of a dialog.

A notice label's ``severity`` property ("warning" or "error") is what the theme's style sheet
colours it by.
"""

from __future__ import annotations

import logging
import math
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QToolBar, QWidget

log = logging.getLogger("vqstudio.app")


def notice_label() -> QLabel:
    """A hidden, wrapping, selectable label styled as a notice."""
    label = QLabel()
    label.setObjectName("notice")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


def show_notice(label: QLabel, text: str, severity: str = "warning") -> None:
    """Show ``text`` in ``label`` with ``severity``'s colour; an empty text hides it."""
    label.setText(text)
    label.setProperty("severity", severity)
    label.style().unpolish(label)  # a dynamic property only restyles once re-polished
    label.style().polish(label)
    label.setVisible(bool(text))


class NoticeCounter:
    """Counts repeats of one notice text: the same text again within ``repeat_s`` seconds reads
    "(×2)", "(×3)" ... instead of flashing anew."""

    def __init__(self, repeat_s: float = 10.0):
        self.repeat_s = repeat_s
        self._seen: dict[str, tuple[float, int]] = {}

    def text(self, text: str) -> str:
        now = time.monotonic()
        last, count = self._seen.get(text, (-math.inf, 0))
        count = count + 1 if now - last < self.repeat_s else 1
        self._seen[text] = (now, count)
        return text + (f"  (×{count})" if count > 1 else "")


class NoticeBar(QToolBar):
    """The window's notice line above the panels, with Dismiss; hidden while empty. The same
    notice again within NoticeCounter's ``repeat_s`` counts up instead of flashing anew."""

    def __init__(self, parent: QWidget | None = None, repeat_s: float = 10.0):
        super().__init__("Notices", parent)
        self.setObjectName("toolbar-notices")
        self.setMovable(False)
        self.toggleViewAction().setVisible(False)  # shown by notices, not by the user
        self._counter = NoticeCounter(repeat_s)
        self.label = QLabel()
        self.label.setObjectName("notice")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addWidget(self.label)
        self.addAction("Dismiss").triggered.connect(self.dismiss)
        self.hide()

    def notify(self, text: str) -> None:
        log.warning("notice: %s", text)
        self.label.setText(self._counter.text(text))
        self.show()

    def dismiss(self) -> None:
        self.label.clear()
        self.hide()
