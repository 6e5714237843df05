"""Notices: a readable line that names a problem and its fix, shown where it happened (above the
panels for the window, under the transport for the audition panel) instead of a dialog.

A notice label's ``severity`` property ("warning" or "error") is what the theme's style sheet
colours it by.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


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
