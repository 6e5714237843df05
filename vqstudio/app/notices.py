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
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolBar, QWidget

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


class _BarLabel(QLabel):
    """A wrapping label that takes the bar's whole width: a toolbar lays widgets out by their
    size hint, which for a wrapping QLabel is a narrow column (a fork's notice was 194 px wide
    and 98 px tall in a 1500 px window, squeezing the panels below)."""

    def sizeHint(self) -> QSize:
        bar = self.parentWidget()
        width = max(200, (bar.width() if bar is not None else 800) - 120)  # room for Dismiss
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:
        return QSize(100, self.sizeHint().height())


class NoticeBar(QToolBar):
    """The window's notice line above the panels, with Dismiss; hidden while empty. The same
    notice again within NoticeCounter's ``repeat_s`` counts up instead of flashing anew."""

    def __init__(self, parent: QWidget | None = None, repeat_s: float = 10.0):
        super().__init__("Notices", parent)
        self.setObjectName("toolbar-notices")
        self.setMovable(False)
        self.toggleViewAction().setVisible(False)  # shown by notices, not by the user
        self._counter = NoticeCounter(repeat_s)
        self.label = _BarLabel()
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.label.setObjectName("notice")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addWidget(self.label)
        self.addAction("Dismiss").triggered.connect(self.dismiss)
        self.hide()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.label.updateGeometry()  # its hint follows the bar's width

    def notify(self, text: str) -> None:
        log.warning("notice: %s", text)
        self.label.setText(self._counter.text(text))
        self.show()

    def dismiss(self) -> None:
        self.label.clear()
        self.hide()
