"""The settings editor of New run and Fork from here: every setting of the configuration, grouped
by section (data, model, loss, train), the reference value beside each (the preset's for a new
run, the parent's for a fork), the changed ones highlighted, and the configuration's own verdict
shown inline as the user types.

The values are read exactly as ``--set`` reads them (``vqstudio.config_values.parse_override``)
and the changed ones applied with ``Config.with_overrides``, so the rules and the messages are the
configuration's (``vqstudio.config_checks``) and nowhere else: a refused value shows ``--set``'s
message under its row and in the line at the bottom, and :attr:`valid` goes false. The loss
weights follow the terms the edited configuration has (turning ``loss.adversarial`` on adds its
two weights).
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from vqstudio.app import theme
from vqstudio.app.settings_editor_row import SettingRow
from vqstudio.config import SECTIONS, Config
from vqstudio.config_fields import WEIGHTS_PREFIX, Field, fields, section_help, text_of, value_of
from vqstudio.config_values import parse_override
from vqstudio.errors import ConfigError
from vqstudio.train.settings import is_live

_COLUMNS = ("setting", "value", "", "")


class SettingsEditor(QWidget):
    """Edits a configuration against a reference one (``base``); read :meth:`config`."""

    changed = Signal()  # a value, its verdict or the reference changed

    def __init__(self, base: Config, reference: str = "preset", parent: QWidget | None = None):
        super().__init__(parent)
        self.reference_name = reference
        self._base = base
        self._config: Config | None = base
        self._message = ""
        self._quiet = False  # True while many rows change at once: judged once at the end
        self.rows: dict[str, SettingRow] = {}
        self.tabs = QTabWidget(self)
        self._grids: dict[str, QGridLayout] = {}
        self._next_row: dict[str, int] = {}
        for section in SECTIONS:
            self._add_tab(section)
        self._weights_box = QWidget()
        self._weights_grid = QGridLayout(self._weights_box)
        self._weights_grid.setContentsMargins(0, 8, 0, 0)
        self._weights_at = 0
        self._add_rows(base)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.summary)
        self.validate()

    # -- reading it -----------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        return self._config is not None

    @property
    def message(self) -> str:
        """The configuration's message for the values as they are ("" when they are valid)."""
        return self._message

    def config(self) -> Config | None:
        """The edited configuration, validated; None while a value is refused."""
        return self._config

    @property
    def base(self) -> Config:
        return self._base

    def changes(self) -> dict[str, Any]:
        """The changed settings, ``{key: value}`` as ``with_overrides`` takes them (values that
        do not parse are left as their text, for the configuration to refuse)."""
        return {key: value for key, value, changed in self._read() if changed}

    def override_texts(self) -> list[str]:
        """The changes as ``--set`` arguments (``key=value``), e.g. for a fork."""
        return [f"{key}={self.rows[key].text()}" for key in self.changes()]

    # -- changing it ----------------------------------------------------------------------------

    def set_text(self, key: str, text: str) -> None:
        """Type ``text`` into the setting ``key`` (as the user would)."""
        if key not in self.rows:
            raise KeyError(f"no setting {key!r} in the editor")
        self.rows[key].set_text(text)

    def set_base(self, base: Config) -> None:
        """A new reference (another preset): rows that were not changed take its values; changed
        ones keep what was typed."""
        old = self._base
        self._base = base
        self._quiet = True
        for key, row in self.rows.items():
            field = row.field
            if not row.changed:
                row.set_text(text_of(value_of(base, key), field.kind))
            row.set_reference(text_of(value_of(base, key), field.kind))
        if old.loss.term_names() != base.loss.term_names():
            self._rebuild_weights(base, keep=True)
        self._quiet = False
        self.validate()

    # -- the verdict ----------------------------------------------------------------------------

    def _read(self) -> list[tuple[str, Any, bool]]:
        """(key, value, changed) for every row, each text read as --set reads it."""
        out = []
        for key, row in self.rows.items():
            text = row.text()
            if row.field.kind in ("path", "choice"):
                value = text
            else:
                value = parse_override(f"{key}={text}")[1]
            reference = value_of(self._base, key)
            out.append((key, value, not _same(value, reference)))
        return out

    def validate(self) -> None:
        """Check the values with the configuration's rules and show the verdict."""
        read = self._read()
        changes = {key: value for key, value, changed in read if changed}
        structure = {k: v for k, v in changes.items() if not k.startswith(WEIGHTS_PREFIX)}
        try:  # the terms (and so the weights) of the edited configuration
            terms = self._base.with_overrides(structure).loss.term_names()
        except ConfigError:
            terms = None
        if terms is not None and terms != self._weight_terms():
            self._rebuild_weights(self._base.with_overrides(structure), keep=True)
            read = self._read()
            changes = {key: value for key, value, changed in read if changed}
        inline = None  # the line under the refused field
        try:
            self._config, self._message, culprit = self._base.with_overrides(changes), "", None
        except ConfigError as exc:
            self._config, self._message = None, str(exc)
            culprit = self._culprit(exc.problem, changes)
            inline = field_message(exc.problem, exc.fix, culprit) if culprit else None
        for key, value, changed in read:
            self.rows[key].show_state(changed, inline if key == culprit else None)
        self._show_summary(changes, culprit)
        self.changed.emit()

    def _culprit(self, problem: str, changes: dict[str, Any]) -> str | None:
        """The row a message is about: the key it names first (a changed one if it names
        several), e.g. ``model.hop`` or ``[model] hop``."""
        found = []
        for key in self.rows:
            section, name = key.split(".", 1)
            for form in (key, f"[{section}] {name}"):
                for match in re.finditer(re.escape(form) + r"(?![\w/.])", problem):
                    found.append((key not in changes, match.start(), key))
        return min(found)[2] if found else None

    def _show_summary(self, changes: dict[str, Any], culprit: str | None) -> None:
        for index, section in enumerate(SECTIONS):
            count = sum(1 for k in changes if k.startswith(section + "."))
            bad = culprit is not None and culprit.startswith(section + ".")
            self.tabs.setTabText(index, section + (f" ({count})" if count else "") + (" ⚠" if bad else ""))
        if self._message:
            self.summary.setText(_without_source(self._message))
            self.summary.setStyleSheet(f"color: {theme.ERROR};")
        elif changes:
            self.summary.setText(f"{len(changes)} changed from the {self.reference_name}: "
                                 + ", ".join(changes))
            self.summary.setStyleSheet(f"color: {theme.ACCENT};")
        else:
            self.summary.setText(f"Every setting as the {self.reference_name} has it.")
            self.summary.setStyleSheet(f"color: {theme.TEXT_DIM};")

    # -- building -------------------------------------------------------------------------------

    def _add_tab(self, section: str) -> None:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setHorizontalSpacing(10)
        grid.setColumnStretch(1, 1)
        caption = QLabel(section_help(section))
        caption.setStyleSheet(f"color: {theme.TEXT_DIM};")
        grid.addWidget(caption, 0, 0, 1, 4)
        for col, text in enumerate((*_COLUMNS[:2], self.reference_name, "")):
            header = QLabel(text)
            header.setStyleSheet(f"color: {theme.TEXT_DIM};")
            grid.addWidget(header, 1, col)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        self.tabs.addTab(scroll, section)
        self._grids[section], self._next_row[section] = grid, 2

    def _add_rows(self, base: Config) -> None:
        for field in fields(base):
            if field.key.startswith(WEIGHTS_PREFIX):
                continue
            self._place(field, base, self._grids[field.section], self._next_row[field.section])
            self._next_row[field.section] += 2
        loss = self._grids["loss"]
        loss.addWidget(QLabel("weights"), self._next_row["loss"], 0)
        loss.addWidget(self._weights_box, self._next_row["loss"] + 1, 0, 1, 4)
        loss.setRowStretch(self._next_row["loss"] + 2, 1)
        for section in ("data", "model", "train"):
            self._grids[section].setRowStretch(self._next_row[section], 1)
        self._rebuild_weights(base)

    def _place(self, field: Field, base: Config, grid: QGridLayout, at: int, text: str | None = None) -> None:
        reference = text_of(value_of(base, field.key), field.kind)
        row = SettingRow(field, reference if text is None else text, reference, is_live(field.key),
                         self.validate_soon, self)
        grid.addWidget(row.label, at, 0)
        grid.addWidget(row.widget, at, 1)
        grid.addWidget(row.reference, at, 2)
        grid.addWidget(row.tag, at, 3)
        grid.addWidget(row.message, at + 1, 0, 1, 4)
        self.rows[field.key] = row

    def _weight_terms(self) -> list[str]:
        return [k[len(WEIGHTS_PREFIX):] for k in self.rows if k.startswith(WEIGHTS_PREFIX)]

    def _rebuild_weights(self, config: Config, keep: bool = False) -> None:
        """One row per loss term of ``config``; typed weights of terms that remain are kept."""
        typed = {k: r.text() for k, r in self.rows.items() if k.startswith(WEIGHTS_PREFIX) and r.changed}
        for key in [k for k in self.rows if k.startswith(WEIGHTS_PREFIX)]:
            row = self.rows.pop(key)
            for widget in (row.label, row.widget, row.reference, row.tag, row.message):
                self._weights_grid.removeWidget(widget)
                widget.deleteLater()
        at = 0
        for field in fields(config):
            if field.key.startswith(WEIGHTS_PREFIX):
                # the reference is the base's weight for the term (its default if the base lacks it)
                self._place(field, self._base, self._weights_grid, at, typed.get(field.key) if keep else None)
                at += 2

    def validate_soon(self) -> None:
        """A row changed: judge the values again (cheap: a few ms)."""
        if not self._quiet:
            self.validate()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _without_source(text: str) -> str:
    """A configuration message without the ``override: `` the command line starts it with."""
    return text.split(": ", 1)[1] if text.startswith("override: ") else text


def field_message(problem: str, fix: str | None, key: str) -> str:
    """What is wrong with the field ``key``, for the line under it: the configuration's message
    without the command line's ``override:`` and without the field's own name (the row shows it):
    "7 does not match the encoder ... — set model.hop = 240 ...", "Must be within (0, 1) — ..."."""
    text = _without_source(problem)
    section, name = key.split(".", 1)
    for form in (key, f"[{section}] {name}"):
        if text.startswith(form + " = "):
            text = text[len(form) + 3:]
            break
        if text.startswith(form + " "):
            text = text[len(form) + 1:]
            text = text[:1].upper() + text[1:]
            break
    return f"{text} — {fix}" if fix else text
