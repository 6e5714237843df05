"""Notices: a readable line that names a problem and its fix, shown where it happened (above the
panels for the window, under the transport for the audition panel) instead of a dialog.

A notice label's ``severity`` property ("warning" or "error") is what the theme's style sheet
colours it by.
"""

from __future__ import annotations

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
