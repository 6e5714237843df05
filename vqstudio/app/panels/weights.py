"""The Weights panel: one row per loss term to change its weight while the model trains, the
balancer mode, the learning rate, and each term's live share of the gradient.

A row (:mod:`vqstudio.app.panels.weight_row`) is a tick box, a log-scale slider, a number box,
the term's gradient share and a status: "pending" from the moment the weight is changed until the
trainer confirms it ("applied @ step N"). Changes are coalesced: a drag, a
typed value or "Reset to preset" reaches the worker as one snapshot once the hand rests
(COALESCE_MS), or at the latest MAX_WAIT_MS into a long drag, never as hundreds.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.panels.live_settings import LiveSettingsBox
from vqstudio.app.panels.losses import format_number
from vqstudio.app.panels.weight_row import NumberBox, TermRow, slider_to_weight
from vqstudio.config import default_weight, load_preset
from vqstudio.errors import UserError

COALESCE_MS = 150
MAX_WAIT_MS = 1000
BALANCER_MODES = (("static", "static weights"), ("shares", "gradient shares"))


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


class WeightsPanel(QWidget):
    """Live loss weights, balancer mode and learning rate; sends changes to the worker."""

    snapshot_sent = Signal(dict)  # the weights handed to the worker in one coalesced snapshot

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self.rows: dict[str, TermRow] = {}
        self._version = -1
        self._info: Any = None
        self._events: Any = None
        self._events_seen = 0
        self._applied_step: dict[str, int] = {}
        self._refused: dict[str, str] = {}
        self._lr_pending: float | None = None
        self._balancer_pending: str | None = None
        self._latest_lr: float | None = None  # the newest confirmed change, from the events
        self._latest_balancer: str | None = None

        self._quiet = QTimer(self)  # fires once the changes stop
        self._quiet.setSingleShot(True)
        self._quiet.setInterval(COALESCE_MS)
        self._quiet.timeout.connect(self.flush)
        self._longest = QTimer(self)  # ... or this long after the first unsent change
        self._longest.setSingleShot(True)
        self._longest.setInterval(MAX_WAIT_MS)
        self._longest.timeout.connect(self.flush)

        self.balancer = QComboBox()
        for mode, label in BALANCER_MODES:
            self.balancer.addItem(label, mode)
        self.balancer.setToolTip(
            "static: the weights multiply the losses; gradient shares: each weight sets its term's "
            "share of the gradient at the decoder output (EnCodec-style balancer)"
        )
        self.balancer.currentIndexChanged.connect(self._balancer_chosen)
        self.balancer_status = QLabel("")
        self.lr = NumberBox(1e-9, 10.0)
        self.lr.setToolTip("base learning rate (the schedule scales it); e.g. 3e-4")
        self.lr.valueChanged.connect(self._lr_typed)
        self.lr_status = QLabel("")
        self.reset = QPushButton("Reset to preset")
        self.reset.setToolTip("set every weight back to the preset's value")
        self.reset.clicked.connect(self.reset_to_preset)
        self.shares_caption = QLabel("grad share")
        self.shares_caption.setStyleSheet(f"color: {theme.TEXT_DIM};")

        top = QHBoxLayout()
        top.addWidget(QLabel("balancer"))
        top.addWidget(self.balancer)
        top.addWidget(self.balancer_status)
        top.addSpacing(12)
        top.addWidget(QLabel("learning rate"))
        top.addWidget(self.lr)
        top.addWidget(self.lr_status)
        top.addStretch(1)
        top.addWidget(self.reset)

        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(8)
        self._grid.setColumnStretch(1, 1)
        grid_widget = QWidget()
        grid_outer = QVBoxLayout(grid_widget)
        grid_outer.setContentsMargins(0, 0, 0, 0)
        grid_outer.addLayout(self._grid)
        self.live = LiveSettingsBox(store, worker, grid_widget)  # the other live settings
        grid_outer.addWidget(self.live)
        grid_outer.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_widget)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self._set_controls_enabled(False)

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Follow the store: new terms, confirmed weights, gradient shares; cheap if unchanged."""
        store = self.store
        if store.version == self._version:
            return
        self.live.refresh()
        self._version = store.version
        if store.info is not self._info or store.events is not self._events:
            self._start_run()
        self._read_events()
        for name, row in self.rows.items():
            self._update_row(row)
            row.set_share(store.grad_shares.get(name) if store.grad_shares else None)
        step = getattr(store, "grad_shares_step", None)
        self.shares_caption.setToolTip(
            "each term's share of the gradient norm at the decoder output"
            + (f", measured at step {step}" if store.grad_shares and step is not None else "")
        )
        self._update_lr()
        self._update_balancer()

    def set_weight(self, name: str, weight: float) -> None:
        """Ask for ``weight`` on term ``name``, as typing it into its box does."""
        self.rows[name].box.setValue(float(weight))

    def flush(self) -> None:
        """Send the coalesced changes now (the timers call this)."""
        self._quiet.stop()
        self._longest.stop()
        snapshot = {name: row.desired for name, row in self.rows.items() if row.unsent}
        if not snapshot:
            return
        for name in snapshot:
            self.rows[name].unsent = False
        if self.worker is not None:
            self.worker.set_weights(snapshot)
        self.snapshot_sent.emit(snapshot)

    def preset_weights(self) -> dict[str, float]:
        """The weights "Reset to preset" restores: the run's preset file, else the defaults."""
        names = list(self.rows)
        preset = self.store.info.get("preset") or ""
        try:
            weights = load_preset(preset).loss.resolved_weights() if preset else {}
        except UserError:
            weights = {}
        return {name: float(weights.get(name, default_weight(name))) for name in names}

    def reset_to_preset(self) -> None:
        for name, weight in self.preset_weights().items():
            row = self.rows[name]
            if not _same(row.desired, weight):
                row.show(weight)
                self._ask(row, weight)

    # -- building -----------------------------------------------------------------------------

    def _start_run(self) -> None:
        """A new run (or a loaded one): rebuild the rows for its terms."""
        store = self.store
        self._info, self._events = store.info, store.events
        self._events_seen = 0
        self._applied_step.clear()
        self._refused.clear()
        self._lr_pending = self._balancer_pending = None
        self._latest_lr = self._latest_balancer = None
        names = list(store.info.get("term_names") or store.weights)
        if list(self.rows) != names:
            while self._grid.count():
                widget = self._grid.takeAt(0).widget()
                if widget is not None and widget is not self.shares_caption:
                    widget.deleteLater()
            self.rows.clear()
            for col, text in enumerate(("term", "weight", "", "", "status")):
                header = QLabel(text)
                header.setStyleSheet(f"color: {theme.TEXT_DIM};")
                self._grid.addWidget(header, 0, col)
            self._grid.addWidget(self.shares_caption, 0, 3)
            for i, name in enumerate(names):
                weight = float(store.weights.get(name, default_weight(name)))
                row = TermRow(name, theme.curve_color(i), weight)
                row.enabled.toggled.connect(lambda on, r=row: self._toggled(r, on))
                row.slider.valueChanged.connect(lambda pos, r=row: self._slid(r, pos))
                row.box.valueChanged.connect(lambda value, r=row: self._typed(r, value))
                for col, widget in enumerate((row.enabled, row.slider, row.box, row.share, row.status)):
                    self._grid.addWidget(widget, i + 1, col)
                self.rows[name] = row
        for name, row in self.rows.items():
            row.pending = row.unsent = False
            weight = float(store.weights.get(name, row.desired))
            row.desired = weight
            row.show(weight)
            row.set_status("", theme.TEXT_DIM)
        self._show_lr(float(store.info.get("lr", self.lr.value())))
        self._show_balancer(store.info.get("balancer", "static"))
        self._set_controls_enabled(bool(self.rows))

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.balancer, self.lr, self.reset):
            widget.setEnabled(enabled)

    # -- user changes -------------------------------------------------------------------------

    def _slid(self, row: TermRow, position: int) -> None:
        weight = slider_to_weight(position)
        row.box.blockSignals(True)
        row.box.setValue(weight)
        row.box.blockSignals(False)
        self._ask(row, weight)

    def _typed(self, row: TermRow, weight: float) -> None:
        row.show(weight)
        self._ask(row, weight)

    def _toggled(self, row: TermRow, on: bool) -> None:
        weight = row.last_on if on else 0.0
        row.show(weight)
        self._ask(row, weight)

    def _ask(self, row: TermRow, weight: float) -> None:
        row.desired = weight
        if weight > 0:
            row.last_on = weight
        row.pending = row.unsent = True
        self._refused.pop(row.name, None)
        row.set_status("pending", theme.WARNING)
        self._quiet.start()  # restarts: waits for the hand to rest
        if not self._longest.isActive():
            self._longest.start()

    def _lr_typed(self, value: float) -> None:
        self._lr_pending = value
        self.lr_status.setText("pending")
        self.lr_status.setStyleSheet(f"color: {theme.WARNING};")
        if self.worker is not None:
            self.worker.set_setting("lr", float(value))

    def _balancer_chosen(self, index: int) -> None:
        mode = self.balancer.itemData(index)
        self._balancer_pending = mode
        self.balancer_status.setText("pending")
        self.balancer_status.setStyleSheet(f"color: {theme.WARNING};")
        if self.worker is not None:
            self.worker.set_setting("balancer", mode)

    # -- confirmations ------------------------------------------------------------------------

    def _read_events(self) -> None:
        events = self.store.events
        for event in events[self._events_seen:]:
            kind, step = event.get("kind"), event.get("step")
            if kind == "weights":
                for term in event.get("changes", {}):
                    self._applied_step[term] = step
                    self._refused.pop(term, None)
            elif kind == "refused":
                setting = str(event.get("setting", ""))
                reason = str(event.get("reason", "refused"))
                if setting.startswith("weight "):
                    self._refused[setting[len("weight "):]] = reason
                elif setting == "lr":
                    self._lr_pending = None
                    self.lr_status.setText(f"refused: {reason}")
                    self.lr_status.setStyleSheet(f"color: {theme.ERROR};")
            elif kind == "lr":
                self._latest_lr = float(event.get("new", math.nan))
                if _same(self._lr_pending, self._latest_lr):
                    self._lr_pending = None
                    self.lr_status.setText(f"applied @ step {step}")
                    self.lr_status.setStyleSheet(f"color: {theme.OK};")
            elif kind == "balancer":
                self._latest_balancer = event.get("new")
                if self._balancer_pending == self._latest_balancer:
                    self._balancer_pending = None
                    self.balancer_status.setText(f"applied @ step {step}")
                    self.balancer_status.setStyleSheet(f"color: {theme.OK};")
        self._events_seen = len(events)

    def _update_row(self, row: TermRow) -> None:
        confirmed = self.store.weights.get(row.name)
        if row.name in self._refused and not row.unsent:
            row.pending = False
            row.set_status(f"refused: {self._refused[row.name]}", theme.ERROR)
            if confirmed is not None:
                row.desired = float(confirmed)
                row.show(row.desired)
            return
        if row.unsent:
            return
        step = self._applied_step.get(row.name)
        if row.pending:
            if _same(confirmed, row.desired):
                row.pending = False
                text = f"applied @ step {step}" if step is not None else "applied"
                row.set_status(text, theme.OK)
            return
        if confirmed is not None and not _same(confirmed, row.desired):
            # Changed elsewhere (another client, a restored checkpoint): follow it.
            row.desired = float(confirmed)
            row.show(row.desired)
            if step is not None:
                row.set_status(f"applied @ step {step}", theme.OK)

    def _update_lr(self) -> None:
        if self._lr_pending is None and not self.lr.hasFocus() and self._latest_lr is not None:
            self._show_lr(self._latest_lr)

    def _show_lr(self, value: float) -> None:
        self.lr.blockSignals(True)
        self.lr.setValue(value)
        self.lr.blockSignals(False)
        now = self.store.curves.get("lr")
        current = now.view()[-1] if now is not None and len(now) else math.nan
        if math.isfinite(current) and not _same(current, value):
            self.lr.setToolTip(f"base learning rate; the schedule has it at {format_number(current)} now")

    def _update_balancer(self) -> None:
        if self._balancer_pending is None and self._latest_balancer is not None:
            self._show_balancer(self._latest_balancer)

    def _show_balancer(self, mode: str) -> None:
        index = self.balancer.findData(mode)
        if index >= 0 and index != self.balancer.currentIndex():
            self.balancer.blockSignals(True)
            self.balancer.setCurrentIndex(index)
            self.balancer.blockSignals(False)
