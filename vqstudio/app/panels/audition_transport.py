"""The audition panel's transport: the play button, one button per source (A original,
B reconstruction, R residual, 1 and 2 two saved checkpoints, D denoised, each in its waveform
colour; 1, 2 and D are enabled once chosen), Loop and Match loudness, and the keys that drive them
while the panel has focus: Space or P play/pause, A / B / R / 1 / 2 / D pick a source, Tab goes
back to the source heard before.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QEvent, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QButtonGroup, QCheckBox, QHBoxLayout, QPushButton, QSizePolicy, QWidget

from vqstudio.app import theme
from vqstudio.app.panels.audition_readouts import DENOISED, FIRST, SECOND, SOURCE_LETTERS
from vqstudio.app.playback_engine import ORIGINAL, RECONSTRUCTION, RESIDUAL

SOURCE_KEYS = {Qt.Key.Key_A: ORIGINAL, Qt.Key.Key_B: RECONSTRUCTION, Qt.Key.Key_R: RESIDUAL,
               Qt.Key.Key_1: FIRST, Qt.Key.Key_2: SECOND, Qt.Key.Key_D: DENOISED}
PLAY_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_P)
SOURCE_COLORS = {
    ORIGINAL: theme.ORIGINAL_COLOR,
    RECONSTRUCTION: theme.RECONSTRUCTION_COLOR,
    RESIDUAL: theme.RESIDUAL_COLOR,
    FIRST: theme.CURVE_COLORS[2],
    SECOND: theme.CURVE_COLORS[4],
    DENOISED: theme.CURVE_COLORS[9],
}
OPTIONAL_SOURCES = (FIRST, SECOND, DENOISED)  # enabled by set_available()
PLAY, BACK = "play", "back"  # what transport_key() returns besides a source name


def transport_key(event: QKeyEvent) -> str | None:
    """What an unmodified key means to the transport: PLAY, BACK (Tab), a source name, or None
    (not ours)."""
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if mods != Qt.KeyboardModifier.NoModifier:
        return None
    key = event.key()
    if key in PLAY_KEYS:
        return PLAY
    if key == Qt.Key.Key_Tab:
        return BACK
    return SOURCE_KEYS.get(key)


def loop_region(region: tuple[float, float], playhead: float, duration: float) -> tuple[float, float]:
    """The loop to use when Loop is ticked: ``region`` (seconds) if it lies in the clip and was
    moved from the waveform's initial (0, 1); else, the first time, two seconds from the
    playhead (or the clip's last two)."""
    start, end = region
    if 0.0 <= start < end <= duration and (start, end) != (0.0, 1.0):
        return start, end
    here = min(max(playhead, 0.0), duration)
    start = min(here, max(duration - 2.0, 0.0))
    return start, min(start + 2.0, duration)


def button_style(colour: str) -> str:
    """A flat button; checked, it wears its source's colour (the waveform's too)."""
    return (
        f"QPushButton {{ background: {theme.SURFACE}; border: 1px solid {theme.BORDER}; "
        f"border-radius: 3px; padding: 3px 10px; color: {theme.TEXT}; }}"
        f"QPushButton:hover {{ background: {theme.SURFACE_RAISED}; }}"
        f"QPushButton:checked {{ background: {theme.SURFACE_RAISED}; border-color: {colour}; "
        f"color: {colour}; }}"
        f"QPushButton:disabled {{ color: {theme.TEXT_DIM}; border-color: {theme.SURFACE}; }}"
    )


class SourceButton(QPushButton):
    """A source's button whose label may grow ("1  base:400 2/4 levels") without widening the
    panel, which moved the dock splitter by ~20 px each time under Xvfb: its least width is set
    once, from the letter alone, it asks for the whole label's width, and a label longer than
    the room it gets is elided. :attr:`label` is the whole label."""

    def __init__(self, text: str):
        super().__init__(text)
        self.label = text

    def set_label(self, text: str) -> None:
        self.label = text
        self.setText(text)
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        hint, metrics = super().sizeHint(), self.fontMetrics()
        return QSize(hint.width() + metrics.horizontalAdvance(self.label)
                     - metrics.horizontalAdvance(self.text()), hint.height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        metrics = self.fontMetrics()
        padding = super().sizeHint().width() - metrics.horizontalAdvance(self.text())
        room = self.width() - padding
        text = (self.label if metrics.horizontalAdvance(self.label) <= room
                else metrics.elidedText(self.label, Qt.TextElideMode.ElideRight, max(room, 1)) or self.label[:1])
        if text != self.text():
            self.setText(text)


def _button(text: str, tip: str, colour: str = theme.ACCENT, kind: type = QPushButton) -> QPushButton:
    button = kind(text)
    button.setToolTip(tip)
    button.setStyleSheet(button_style(colour))
    # Buttons never take focus: Space must reach the panel, not click the last button used.
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    return button


class Transport(QWidget):
    """The row of controls and the player behind them (``player`` None or unavailable: the
    controls are disabled); ``waveform`` (a WaveformView) seeks and holds the loop region. The
    panel connects the play and source clicks; :meth:`follow` (the redraw timer) shows what the
    player is doing."""

    selection_changed = Signal(str)  # the source now heard
    gains_changed = Signal()  # the loudness-matching gains shown changed
    loop_changed = Signal(float, float)  # the loop played now, in seconds

    def __init__(self, player: Any | None, waveform: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.player, self.waveform = player, waveform
        self.ok: bool | None = None  # whether the player can play (None: not checked yet)
        self.selected = ORIGINAL
        self.previous: str | None = None
        self.playhead = -1.0  # seconds, as of the last follow()
        self.gains: dict | None = None  # shown while matching loudness
        self.play_button = _button("▶  Play", "Play / pause (Space or P)")
        self.source_buttons: dict[str, SourceButton] = {}
        group = QButtonGroup(self)
        group.setExclusive(True)
        for name, label in ((ORIGINAL, "original"), (RECONSTRUCTION, "reconstruction"),
                            (RESIDUAL, "residual"), (FIRST, "checkpoint 1"),
                            (SECOND, "checkpoint 2"), (DENOISED, "denoised")):
            letter = SOURCE_LETTERS[name]
            button = _button(f"{letter}  {label}", f"Listen to the {label} ({letter}; "
                             "Tab goes back to the previous one)", SOURCE_COLORS[name], SourceButton)
            button.setCheckable(True)
            group.addButton(button)
            self.source_buttons[name] = button
            if name in OPTIONAL_SOURCES:
                button.set_label(letter)
                button.setMinimumWidth(QPushButton.sizeHint(button).width())  # the letter's
                button.setEnabled(False)
        self.source_buttons[ORIGINAL].setChecked(True)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Repeat the shaded region (drag its edges on the waveform)")
        self.match_box = QCheckBox("Match loudness")
        self.match_box.setToolTip("Play every source at the original's RMS (boosts up to +12 dB)")
        for box in (self.loop_box, self.match_box):
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.loop_box.toggled.connect(self._loop_toggled)
        self.match_box.toggled.connect(self._match_toggled)
        waveform.seek_requested.connect(self._seek)
        waveform.loop_changed.connect(self._loop_moved)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.play_button)
        row.addSpacing(8)
        for button in self.source_buttons.values():
            row.addWidget(button)
        row.addSpacing(8)
        row.addWidget(self.loop_box)
        row.addWidget(self.match_box)
        row.addStretch(1)

    def check_player(self) -> bool:
        """Enable the controls if the player can play; True if that changed."""
        ok = bool(self.player is not None and self.player.available)
        if ok == self.ok:
            return False
        self.ok = ok
        for widget in (self.play_button, self.loop_box, self.match_box):
            widget.setEnabled(ok)
        return True

    def unavailable_reason(self) -> str:
        if self.player is not None and self.player.unavailable_reason:
            return self.player.unavailable_reason
        return "Audio playback is off — no audio player was created"

    def follow(self) -> bool:
        """Play/pause label, selection and gains as the player has them now; True if the
        playhead moved."""
        player = self.player
        self.play_button.setText("❚❚  Pause" if player.is_playing else "▶  Play")
        if player.selected != self.selected and player.selected in SOURCE_COLORS:
            self._show_selected(player.selected)
        gains = player.gains if self.match_box.isChecked() else None
        if gains != self.gains:
            self.gains = gains
            self.gains_changed.emit()
        moved, self.playhead = player.playhead != self.playhead, player.playhead
        return moved

    def set_available(self, name: str, available: bool, tip: str = "") -> None:
        """Enable (or disable) the button of an optional source; ``tip`` says what it is."""
        button = self.source_buttons[name]
        button.setEnabled(available)
        letter = SOURCE_LETTERS[name]
        button.set_label(f"{letter}  {tip}" if available and tip else letter)
        button.setToolTip(f"Listen to {tip or 'this source'} ({letter})" if available else
                          "Choose it in the row below first")

    def key_event(self, event: QEvent, play: Callable[[], None]) -> bool:
        """Handle a ShortcutOverride or KeyPress that is a transport key (True), else False. On a
        press: ``play()``, Tab back, or a source; the override is accepted, so the key is ours
        while the panel has focus even if the window binds Space to training."""
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        action = transport_key(event)
        if action is None:
            return False
        if kind == QEvent.Type.KeyPress:  # before QWidget.event would turn Tab into a focus change
            if action == BACK:
                self.back()
            elif action != PLAY:
                self.select(action)
            elif not event.isAutoRepeat():
                play()
        event.accept()
        return True

    def toggle(self) -> None:
        if self.ok:
            self.player.toggle()

    def select(self, name: str) -> None:
        """Hear ``name`` from the same playhead."""
        if name not in SOURCE_COLORS:
            raise ValueError(f"unknown source {name!r}")
        if not self.source_buttons[name].isEnabled() and name in OPTIONAL_SOURCES:
            return  # 1, 2 or D before it is chosen
        if name != self.selected:
            self.previous = self.selected
        if self.ok:
            self.player.select(name)
        self._show_selected(name)

    def back(self) -> None:
        """The source heard before the current one (Tab)."""
        if self.previous is not None:
            self.select(self.previous)

    def _show_selected(self, name: str) -> None:
        self.selected = name
        self.source_buttons[name].setChecked(True)
        self.selection_changed.emit(name)

    def set_loop(self, start_s: float, end_s: float) -> None:
        """Loop ``[start_s, end_s)`` (either order) and tick Loop."""
        start, end = sorted((float(start_s), float(end_s)))
        self.waveform.region.setVisible(True)
        with QSignalBlocker(self.loop_box):
            self.loop_box.setChecked(True)
        self.waveform.region.setRegion((start, end))  # its change signal reaches the player

    def _loop_toggled(self, on: bool) -> None:
        region = self.waveform.region
        region.setVisible(on)
        if not on:
            if self.ok:
                self.player.clear_loop()
            return
        duration = self.waveform.duration
        if not duration:
            return
        start, end = loop_region(region.getRegion(), self.playhead, duration)
        region.setRegion((start, end))
        self._loop_moved(start, end)

    def _loop_moved(self, start: float, end: float) -> None:
        if self.loop_box.isChecked():
            if self.ok:
                self.player.set_loop(start, end)
            self.loop_changed.emit(start, end)

    def _seek(self, seconds: float) -> None:
        if self.ok:
            self.player.seek(seconds)

    def _match_toggled(self, on: bool) -> None:
        if self.ok:
            self.player.loudness_match = on
