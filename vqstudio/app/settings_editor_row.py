"""One row of the settings editor: the setting's name, an input for its value (a tick box, a list
of the allowed choices, or a text box read the way ``--set`` reads it), the reference value (the
preset's, or the parent run's) beside it, a "live" tag for settings that can also change while the
run trains, and an inline message when the configuration refuses the value."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QToolButton,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.config_fields import Field


class SettingRow:
    """The widgets of one setting; the editor lays them out and reads :meth:`text`."""

    def __init__(self, field: Field, text: str, reference: str, live: bool,
                 on_change: Callable[[], None], parent: QWidget):
        self.field = field
        self.label = QLabel(field.name)
        tip = f"{field.key}" + (f": {field.help}" if field.help else "")
        self.label.setToolTip(tip + (" (can also change while the run trains)" if live else ""))
        self.input = self._make_input(text, on_change, parent)
        self.input.setToolTip(self.label.toolTip())
        self.widget = self._with_browse(parent) if field.kind == "path" else self.input
        if isinstance(self.input, QLineEdit):
            self.input.setPlaceholderText(self.empty_means())
        self.reference = QLabel()
        self.reference.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.set_reference(reference)
        self.tag = QLabel("live" if live else "")
        self.tag.setStyleSheet(f"color: {theme.OK};")
        self.tag.setToolTip("can also change while the run trains (Live settings)" if live else "")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {theme.ERROR};")
        self.message.hide()
        self.changed = False

    # -- the value ------------------------------------------------------------------------------

    def text(self) -> str:
        """The value as typed (a tick box: ``true``/``false``; a choice: its name)."""
        if isinstance(self.input, QCheckBox):
            return "true" if self.input.isChecked() else "false"
        if isinstance(self.input, QComboBox):
            return self.input.currentText()
        return self.input.text()

    def set_text(self, text: str) -> None:
        if isinstance(self.input, QCheckBox):
            self.input.setChecked(text.strip().lower() == "true")
        elif isinstance(self.input, QComboBox):
            index = self.input.findText(text)
            if index < 0:  # a value the list does not have (an older run's): shown, and refused
                self.input.addItem(text)
                index = self.input.count() - 1
            self.input.setCurrentIndex(index)
        else:
            self.input.setText(text)

    def set_reference(self, text: str) -> None:
        self.reference_text = text
        shown = text if len(text) <= 40 else text[:37] + "…"
        self.reference.setText(shown if text else self.empty_means())
        self.reference.setToolTip(text or self.empty_means())

    def empty_means(self) -> str:
        """How an empty value reads: "(empty: the built-in demo corpus)" where the setting's help
        says what empty means, else "(empty)"."""
        found = re.search(r"empty means ([^;.]+)", self.field.help or "")
        return f"(empty: {found.group(1).strip()})" if found else "(empty)"

    # -- how it looks ---------------------------------------------------------------------------

    def show_state(self, changed: bool, error: str | None) -> None:
        """Highlight a changed value; show the configuration's message under a refused one."""
        if (changed, error) == getattr(self, "_shown", None):
            return  # restyling every row on every keystroke costs more than the check
        self._shown = (changed, error)
        self.changed = changed
        colour = theme.ERROR if error else theme.ACCENT if changed else None
        self.label.setStyleSheet(f"color: {colour}; font-weight: bold;" if colour else "")
        border = f"border: 1px solid {colour};" if colour else ""
        if isinstance(self.input, QLineEdit):
            self.input.setStyleSheet(border)
        self.input.setProperty("changed", changed)
        if error:
            self.message.setText(error)
            self.message.show()
        else:
            self.message.hide()
            self.message.clear()

    # -- building -------------------------------------------------------------------------------

    def _make_input(self, text: str, on_change: Callable[[], None], parent: QWidget) -> QWidget:
        field = self.field
        if field.kind == "bool":
            box = QCheckBox(parent)
            box.setChecked(text == "true")
            box.toggled.connect(lambda _on: on_change())
            return box
        if field.kind == "choice":
            combo = QComboBox(parent)
            combo.addItems(list(field.choices))
            self.input = combo
            self.set_text(text)
            combo.currentIndexChanged.connect(lambda _i: on_change())
            return combo
        edit = QLineEdit(text, parent)
        if field.kind == "path":
            edit.setPlaceholderText("empty: the built-in demo corpus")
        edit.textChanged.connect(lambda _t: on_change())
        return edit

    def _with_browse(self, parent: QWidget) -> QWidget:
        """The path box with a Browse button that picks a folder of audio or a file (a manifest
        or a prepared dataset)."""
        row = QWidget(parent)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.input, 1)
        button = QToolButton(row)
        button.setText("Browse…")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(button)
        start = lambda: self.input.text() or str(Path.home())  # noqa: E731
        menu.addAction("Folder of audio…", lambda: self._chosen(
            QFileDialog.getExistingDirectory(parent, "Folder of audio files", start())))
        menu.addAction("File (manifest or prepared dataset)…", lambda: self._chosen(
            QFileDialog.getOpenFileName(parent, "Manifest or prepared dataset", start())[0]))
        button.setMenu(menu)
        layout.addWidget(button)
        self.browse = button
        return row

    def _chosen(self, path: str) -> None:
        if path:
            self.input.setText(path)
