"""The Live settings group of the Weights panel: the live settings (``train/settings.py``'s table)
that the panel's own rows do not already offer (weights, learning rate and balancer are there):
quantizer dropout, mel normalisation, dead-code threshold, EMA decay and gradient clip. Built from
the table, so the app offers exactly the settings that are live.

A change is posted through the worker (to the trainer's mailbox, or to the control file of a run
another process trains) and shows "pending" until the trainer's event confirms it ("applied @ step
N") or refuses it (the configuration's message, as ``--set`` gives it). The current values come
from the run (``info["live"]``) and then from the events.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QLabel, QLineEdit, QWidget

from vqstudio.app import theme
from vqstudio.config_fields import CHOICES
from vqstudio.train.settings import LIVE, LiveSetting

IN_WEIGHTS_PANEL = ("weights", "lr", "balancer")  # the panel's own rows and top line


def offered() -> list[LiveSetting]:
    """The live settings this group offers."""
    return [s for s in LIVE if s.name not in IN_WEIGHTS_PANEL]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-15)
    except (TypeError, ValueError):
        return False


class LiveSettingsBox(QGroupBox):
    """One row per offered live setting: its control and its status."""

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__("Live settings", parent)
        self.setToolTip("settings that change while the run trains; every other setting needs a "
                        "fork (Run > Fork from here)")
        self.store, self.worker = store, worker
        self.inputs: dict[str, QWidget] = {}
        self.status: dict[str, QLabel] = {}
        self._pending: dict[str, Any] = {}
        self._current: dict[str, Any] = {}
        self._events: Any = None
        self._info: Any = None
        self._seen = 0
        self._version = -1
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(8)
        for i, setting in enumerate(offered()):
            choices = CHOICES.get(setting.key)
            if choices:
                control = QComboBox()
                control.addItems(list(choices))
                control.activated.connect(lambda _i, s=setting: self._asked(s, self.inputs[s.name].currentText()))
            else:
                control = QLineEdit()
                control.setMaximumWidth(110)
                control.editingFinished.connect(lambda s=setting: self._typed(s))
            control.setToolTip(f"{setting.key} (live)")
            status = QLabel("")
            grid.addWidget(QLabel(setting.label), i // 2, 3 * (i % 2))
            grid.addWidget(control, i // 2, 3 * (i % 2) + 1)
            grid.addWidget(status, i // 2, 3 * (i % 2) + 2)
            self.inputs[setting.name], self.status[setting.name] = control, status
        grid.setColumnStretch(2, 1)
        grid.setColumnStretch(5, 1)
        self.setEnabled(False)

    # -- what the user asks ---------------------------------------------------------------------

    def set_value(self, name: str, value: Any) -> None:
        """Ask for ``value`` as using the control does."""
        control = self.inputs[name]
        setting = next(s for s in offered() if s.name == name)
        if isinstance(control, QComboBox):
            control.setCurrentText(str(value))
            self._asked(setting, str(value))
        else:
            control.setText(str(value))
            self._typed(setting)

    def _typed(self, setting: LiveSetting) -> None:
        text = self.inputs[setting.name].text().strip()
        try:
            value: Any = float(text)
        except ValueError:
            value = text  # the trainer refuses it, with the configuration's message
        if setting.name not in self._pending and _same(value, self._current.get(setting.name)):
            return  # focus left without a change
        self._asked(setting, value)

    def _asked(self, setting: LiveSetting, value: Any) -> None:
        self._pending[setting.name] = value
        self._show(setting.name, "pending", theme.WARNING)
        if self.worker is not None:
            self.worker.set_setting(setting.name, value)

    # -- what the run says ----------------------------------------------------------------------

    def refresh(self) -> None:
        store = self.store
        if store.version == self._version:
            return
        self._version = store.version
        if store.info is not self._info or store.events is not self._events:
            self._info, self._events, self._seen = store.info, store.events, 0
            self._pending.clear()
            self._current = dict((store.info or {}).get("live") or {})
            for name in self.status:
                self._show(name, "", theme.TEXT_DIM)
            self.setEnabled(bool(self._current))
        for event in store.events[self._seen:]:
            kind = event.get("kind")
            if kind in self.inputs:
                self._current[kind] = event.get("new")
                if kind in self._pending and _same(self._pending[kind], event.get("new")):
                    del self._pending[kind]
                self._show(kind, f"applied @ step {event.get('step')}", theme.OK)
            elif kind == "refused" and event.get("setting") in self.inputs:
                name = event["setting"]
                self._pending.pop(name, None)
                self._show(name, f"refused: {event.get('reason', '')}", theme.ERROR)
        self._seen = len(store.events)
        for name, control in self.inputs.items():
            if name in self._pending or name not in self._current or control.hasFocus():
                continue
            value = self._current[name]
            if isinstance(control, QComboBox):
                control.setCurrentText(str(value))
            else:
                control.setText(value if isinstance(value, str) else f"{float(value):.6g}")

    def _show(self, name: str, text: str, colour: str) -> None:
        label = self.status[name]
        label.setToolTip(text)
        label.setText(text if len(text) <= 48 else text[:45] + "…")
        label.setStyleSheet(f"color: {colour};")
