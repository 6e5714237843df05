"""The audition panel: hear what the codec does to one clip.

Pick a clip (the training probe, a corpus file, or an audio file dropped on the window), then
switch between the original (A), the reconstruction (B) and their residual (R) at the same
playhead, loop a region of the waveform, match loudness, and decode with only the first k
quantizer levels. Reconstructions of anything but the latest probe are asked of the training
worker (``worker.command("reconstruct", ...)``), which runs them between steps with the current
weights; the answers come back on ``worker.result`` and are matched by id, so a late answer for a
clip no longer shown is dropped.

Keys (while the panel has focus): Space or P play/pause, A / B / R pick a source, Tab goes back to
the source heard before. The panel takes Space before any window-wide shortcut does (it accepts
the ShortcutOverride), so Space means "play" here and "train" elsewhere.

Receiving and drawing are apart: ``refresh()`` (the window's 30 Hz timer) moves the playhead line
and, only when the store's version moved, picks up a new probe or run information.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.panels.waveform import WaveformView
from vqstudio.app.playback_engine import ORIGINAL, RECONSTRUCTION, RESIDUAL, fit_length, rms
from vqstudio.audio.io import READ_SUFFIXES, audio_info, read_audio, resample
from vqstudio.config import DEMO_DIR
from vqstudio.errors import UserError

MAX_CLIP_S = 20.0
MAX_LISTED_FILES = 500  # a huge corpus lists its first files; any file can still be opened
# A file is reconstructed again as training moves on, but not more often than this: a 20 s clip
# through a large model costs the training thread real time.
FILE_REFRESH_S = 10.0
PROBE = "probe"
OPEN_FILE = "open"
RECONSTRUCT_TAG = "audition"

SOURCE_KEYS = {Qt.Key.Key_A: ORIGINAL, Qt.Key.Key_B: RECONSTRUCTION, Qt.Key.Key_R: RESIDUAL}
PLAY_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_P)
SOURCE_LETTERS = {ORIGINAL: "A", RECONSTRUCTION: "B", RESIDUAL: "R"}
SOURCE_COLORS = {
    ORIGINAL: theme.ORIGINAL_COLOR,
    RECONSTRUCTION: theme.RECONSTRUCTION_COLOR,
    RESIDUAL: theme.RESIDUAL_COLOR,
}


@dataclass
class Clip:
    """The clip being auditioned: ``original`` [T] float32 at ``rate``; ``reconstruction`` [T]
    at the same rate once it is known (for the view; the player holds its own copies)."""

    name: str
    path: str | None  # None for the training probe
    original: np.ndarray
    rate: int
    reconstruction: np.ndarray | None = None
    about: str = ""  # where the reconstruction came from: "step 1200, 2 of 4 levels"

    @property
    def is_probe(self) -> bool:
        return self.path is None

    @property
    def residual(self) -> np.ndarray | None:
        if self.reconstruction is None:
            return None
        return self.original - self.reconstruction


def _list_audio(folder: Path) -> list[str]:
    """Audio files under ``folder`` by relative path (hidden ones skipped), at most
    MAX_LISTED_FILES; nothing if it cannot be read."""
    found: list[str] = []
    try:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.suffix.lower() in READ_SUFFIXES and not any(p.startswith(".") for p in parts):
                found.append(str(path))
                if len(found) >= MAX_LISTED_FILES:
                    break
    except OSError:
        pass
    return found


def _button_style(colour: str) -> str:
    """A flat button; checked, it wears its source's colour (the waveform's too)."""
    return (
        f"QPushButton {{ background: {theme.SURFACE}; border: 1px solid {theme.BORDER}; "
        f"border-radius: 3px; padding: 3px 10px; color: {theme.TEXT}; }}"
        f"QPushButton:hover {{ background: {theme.SURFACE_RAISED}; }}"
        f"QPushButton:checked {{ background: {theme.SURFACE_RAISED}; border-color: {colour}; "
        f"color: {colour}; }}"
        f"QPushButton:disabled {{ color: {theme.TEXT_DIM}; border-color: {theme.SURFACE}; }}"
    )


def _db(value: float) -> str:
    return f"{20 * math.log10(value):+.1f} dB" if value > 0 else "−∞ dB"


def _dbfs(samples: np.ndarray | None) -> str:
    if samples is None:
        return "—"
    level = rms(samples)
    return f"{20 * math.log10(level):.1f}" if level > 0 else "−∞"


class AuditionPanel(QWidget):
    """Listen to the original, the reconstruction and the residual of a clip.

    ``store`` is the :class:`~vqstudio.app.store.RunStore` (``info``, ``probe``, ``version``),
    ``worker`` the :class:`~vqstudio.app.worker.TrainingWorker` that reconstructs clips (``None``:
    only the probe's own reconstruction), ``player`` the :class:`~vqstudio.app.player.ABPlayer`
    (``None`` or unavailable: the transport is disabled with a message, the rest works). The
    window owns and closes the player.
    """

    # For the spectrogram panel, which shows the training probe: the playhead in seconds while
    # the probe is the clip, -1 (hide it) while another clip is; and the loop region moved here.
    playhead_changed = Signal(float)
    loop_changed = Signal(float, float)

    def __init__(self, store: Any, worker: Any, player: Any | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker, self.player = store, worker, player
        self.clip: Clip | None = None
        self.selected = ORIGINAL
        self._previous: str | None = None
        self._levels: int | None = None  # None: all levels
        self._pending: tuple[int, Clip, int | None] | None = None  # (command id, clip, levels)
        self._requested_at = -math.inf
        self._seen_version = -1
        self._seen_info: dict | None = None
        self._seen_probe: dict | None = None
        self._model_rate = 0
        self._max_levels = 0
        self._last_playhead = -1.0
        self._probe_playhead = -1.0  # what playhead_changed said last
        self._player_ok: bool | None = None
        self._gains_shown: dict | None = None

        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()
        if worker is not None:
            worker.result.connect(self._on_result)
        self.refresh()

    # -- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.clip_box = QComboBox()
        self.clip_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.clip_box.setMinimumContentsLength(18)
        self.clip_box.setToolTip("What to listen to: the training probe, a corpus file, or any "
                                 "audio file (you can also drop one on the window)")
        self.clip_box.addItem("Training probe", PROBE)
        self.clip_box.addItem("Open audio file…", OPEN_FILE)
        self.clip_box.activated.connect(self._on_clip_chosen)

        self.levels_box = QSpinBox()
        self.levels_box.setKeyboardTracking(False)
        self.levels_box.setToolTip("Decode with only the first k quantizer levels")
        self.levels_box.valueChanged.connect(self._on_levels)
        # Enter hands the keys back to the transport; leaving the box for elsewhere does not.
        self.levels_box.editingFinished.connect(
            lambda: self.setFocus() if self.levels_box.hasFocus() else None
        )

        top = QHBoxLayout()
        top.addWidget(QLabel("Clip"))
        top.addWidget(self.clip_box, 1)
        top.addSpacing(8)
        top.addWidget(QLabel("Levels"))
        top.addWidget(self.levels_box)

        self.waveform = WaveformView()
        self.waveform.seek_requested.connect(self._on_seek)
        self.waveform.loop_changed.connect(self._on_loop_moved)

        self.play_button = self._button("▶  Play", "Play / pause (Space or P)")
        self.play_button.clicked.connect(self.toggle_playback)
        self.source_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        group.setExclusive(True)
        for name, label in ((ORIGINAL, "original"), (RECONSTRUCTION, "reconstruction"),
                            (RESIDUAL, "residual")):
            letter = SOURCE_LETTERS[name]
            button = self._button(f"{letter}  {label}", f"Listen to the {label} ({letter}; "
                                  "Tab goes back to the previous one)")
            button.setCheckable(True)
            button.setStyleSheet(_button_style(SOURCE_COLORS[name]))
            button.clicked.connect(lambda _=False, n=name: self.select_source(n))
            group.addButton(button)
            self.source_buttons[name] = button
        self.source_buttons[ORIGINAL].setChecked(True)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Repeat the shaded region (drag its edges on the waveform)")
        self.loop_box.toggled.connect(self._on_loop_toggled)
        self.match_box = QCheckBox("Match loudness")
        self.match_box.setToolTip("Play every source at the original's RMS (boosts up to +12 dB)")
        self.match_box.toggled.connect(self._on_match_toggled)
        for box in (self.loop_box, self.match_box):
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addSpacing(8)
        for button in self.source_buttons.values():
            transport.addWidget(button)
        transport.addSpacing(8)
        transport.addWidget(self.loop_box)
        transport.addWidget(self.match_box)
        transport.addStretch(1)

        self.status = QLabel()
        self.status.setObjectName("placeholder")
        self.status.setWordWrap(True)
        self.levels_label = QLabel()
        self.levels_label.setObjectName("placeholder")
        self.levels_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        info_row = QHBoxLayout()
        info_row.addWidget(self.status, 1)
        info_row.addWidget(self.levels_label)

        self.device_notice = self._notice()
        self.notice = self._notice()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.waveform, 1)
        layout.addLayout(transport)
        layout.addLayout(info_row)
        layout.addWidget(self.device_notice)
        layout.addWidget(self.notice)

    def _button(self, text: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setStyleSheet(_button_style(theme.ACCENT))
        # Buttons never take focus: Space must reach the panel, not click the last button used.
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        return button

    def _notice(self) -> QLabel:
        label = QLabel()
        label.setObjectName("notice")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setVisible(False)
        return label

    def _show_notice(self, label: QLabel, text: str, severity: str = "warning") -> None:
        label.setText(text)
        label.setProperty("severity", severity)
        label.style().unpolish(label)
        label.style().polish(label)
        label.setVisible(bool(text))

    # -- the redraw timer -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Called by the window's ~30 Hz timer: move the playhead; pick up new run information or
        a new probe when the store changed."""
        self._sync_player_state()
        version = getattr(self.store, "version", 0)
        if version != self._seen_version:
            self._seen_version = version
            self._sync_info()
            self._sync_probe()
        if self._player_ok:
            self._follow_player()
        on_probe = self._player_ok and self.clip is not None and self.clip.is_probe
        probe_playhead = self._last_playhead if on_probe else -1.0
        if probe_playhead != self._probe_playhead:
            self._probe_playhead = probe_playhead
            self.playhead_changed.emit(probe_playhead)

    def _follow_player(self) -> None:
        """Playhead line, play/pause label, selection and gains as the player has them now."""
        player = self.player
        seconds = player.playhead
        if seconds != self._last_playhead:
            self._last_playhead = seconds
            self.waveform.set_playhead(seconds)
        self.play_button.setText("❚❚  Pause" if player.is_playing else "▶  Play")
        if player.selected != self.selected and player.selected in SOURCE_COLORS:
            self._show_selected(player.selected)
        gains = player.gains if self.match_box.isChecked() else None
        if gains != self._gains_shown:
            self._gains_shown = gains
            self._update_levels_label()

    def _sync_player_state(self) -> None:
        ok = bool(self.player is not None and self.player.available)
        if ok == self._player_ok:
            return
        self._player_ok = ok
        for widget in (self.play_button, self.loop_box, self.match_box):
            widget.setEnabled(ok)
        self.waveform.playhead.setVisible(ok)
        if ok:
            self._show_notice(self.device_notice, "")
        else:
            reason = (
                self.player.unavailable_reason
                if self.player is not None and self.player.unavailable_reason
                else "Audio playback is off — no audio player was created"
            )
            self._show_notice(self.device_notice, f"Playback unavailable: {reason}", "error")

    def _sync_info(self) -> None:
        info = getattr(self.store, "info", None) or {}
        if info is self._seen_info:
            return
        self._seen_info = info
        self._model_rate = int(info.get("sample_rate") or 0)
        levels = int(info.get("rvq_levels") or 0)
        if levels != self._max_levels:
            self._max_levels = levels
            with QSignalBlocker(self.levels_box):
                self.levels_box.setRange(1, max(levels, 1))
                self.levels_box.setSuffix(f" of {levels}" if levels else "")
                self.levels_box.setValue(levels or 1)
            self._levels = None
        self.levels_box.setEnabled(levels > 1 and self.worker is not None)
        probe_file = info.get("probe_file")
        self.clip_box.setItemText(
            0, f"Training probe ({Path(probe_file).name})" if probe_file else "Training probe"
        )
        if info:
            files = info.get("corpus_files")
            self._fill_corpus(files if files is not None else _list_audio(self._data_folder()))

    def _data_folder(self) -> Path:
        info = self._seen_info or {}
        return Path(info["data"]) if info.get("data") else DEMO_DIR

    def _fill_corpus(self, files: list) -> None:
        """List the run's corpus files between the probe and "Open audio file…", keeping files
        the user opened or dropped."""
        box = self.clip_box
        known = {box.itemData(i) for i in range(box.count())}
        with QSignalBlocker(box):
            for path in map(str, files):
                if path not in known:
                    box.insertItem(box.count() - 1, Path(path).name, path)
                    box.setItemData(box.count() - 2, path, Qt.ItemDataRole.ToolTipRole)

    def _sync_probe(self) -> None:
        probe = getattr(self.store, "probe", None) or None
        if probe is None or probe is self._seen_probe or "original" not in probe:
            return
        self._seen_probe = probe
        if self.clip is None and self.clip_box.currentData() == PROBE or (
            self.clip is not None and self.clip.is_probe
        ):
            self._use_probe(probe)
        elif (
            self.clip is not None
            and self._pending is None
            and time.monotonic() - self._requested_at >= FILE_REFRESH_S
        ):
            # Training moved on: hear the open file through the newer weights too.
            self._request_reconstruction()

    # -- clips ----------------------------------------------------------------------------------

    def _use_probe(self, probe: dict, fresh: bool = False) -> None:
        """Hear ``probe``: a newer reconstruction of the same segment swaps in at the same
        playhead; a different segment (or ``fresh``, coming from another clip) replaces the
        clip."""
        rate = int(probe.get("sample_rate") or self._model_rate)
        original = np.asarray(probe["original"], dtype=np.float32).reshape(-1)
        reconstruction = probe.get("reconstruction")
        full = self._levels is None
        same = (
            self.clip is not None
            and self.clip.is_probe
            and self.clip.rate == rate
            and np.array_equal(self.clip.original, original)
        )
        if not same:
            self._set_clip(Clip("training probe", None, original, rate), keep_place=not fresh)
        clip = self.clip
        if full and reconstruction is not None:
            audio = np.asarray(reconstruction, dtype=np.float32).reshape(-1)
            self._take_reconstruction(clip, audio, rate, f"step {probe.get('step', '?')}")
        else:
            self._request_reconstruction()
        self._show_status()

    def set_clip_from_file(self, path: str | Path) -> bool:
        """Audition the first ~20 s of an audio file, read at the model's rate. A file that
        cannot be used leaves the current clip and shows a notice; returns whether it loaded."""
        path = str(path)
        rate = self._model_rate or None
        try:
            info = audio_info(path)
            wave = read_audio(path, rate, duration=min(MAX_CLIP_S, info.duration))
        except UserError as error:
            self._show_notice(self.notice, str(error), "error")
            self._show_current_in_box()
            return False
        except Exception as error:  # an unreadable file must never take the window down
            self._show_notice(
                self.notice,
                f"{path}: could not be read ({type(error).__name__}: {error}) — "
                "try converting it to WAV or FLAC",
                "error",
            )
            self._show_current_in_box()
            return False
        clip = Clip(Path(path).name, path, np.ascontiguousarray(wave, dtype=np.float32),
                    int(rate or info.sample_rate))
        if info.duration > MAX_CLIP_S + 0.05:
            self._show_notice(self.notice, f"Using the first {MAX_CLIP_S:.0f} s of {clip.name} "
                              f"(it is {info.duration:.1f} s long)", "warning")
        else:
            self._show_notice(self.notice, "")
        self._set_clip(clip, keep_place=False)
        self._request_reconstruction()
        self._show_current_in_box()
        self._show_status()
        return True

    def _set_clip(self, clip: Clip, keep_place: bool) -> None:
        """Make ``clip`` the one heard; a new file starts from the top without a loop, a new probe
        segment keeps the playhead and the loop (clamped by the player)."""
        self.clip = clip
        self._pending = None
        if self._player_ok:
            self.player.set_clip(clip.original, None, clip.rate)
            if not keep_place:
                self.player.seek(0.0)
        if not keep_place and self.loop_box.isChecked():
            self.loop_box.setChecked(False)
        self._redraw()

    def _show_current_in_box(self) -> None:
        box = self.clip_box
        want = PROBE if self.clip is None or self.clip.is_probe else self.clip.path
        index = box.findData(want)
        with QSignalBlocker(box):
            if index < 0:
                box.insertItem(box.count() - 1, self.clip.name, want)
                box.setItemData(box.count() - 2, want, Qt.ItemDataRole.ToolTipRole)
                index = box.count() - 2
            box.setCurrentIndex(index)

    def _on_clip_chosen(self, index: int) -> None:
        choice = self.clip_box.itemData(index)
        if choice == PROBE:
            self._show_notice(self.notice, "")
            self.clip = None
            self._pending = None
            probe = getattr(self.store, "probe", None)
            if probe and "original" in probe:
                self._seen_probe = probe
                self._use_probe(probe, fresh=True)
            else:
                if self._player_ok:
                    self.player.pause()
                self._redraw()
                self._show_status()
        elif choice == OPEN_FILE:
            suffixes = " ".join(f"*{s}" for s in READ_SUFFIXES)
            path, _ = QFileDialog.getOpenFileName(
                self, "Audition an audio file", str(self._data_folder()), f"Audio files ({suffixes})"
            )
            if path:
                self.set_clip_from_file(path)
            else:
                self._show_current_in_box()
        elif choice:
            self.set_clip_from_file(choice)
        self.setFocus()

    # -- reconstructions ------------------------------------------------------------------------

    def _request_reconstruction(self) -> None:
        """Ask the worker to reconstruct the current clip with the current weights and levels."""
        clip = self.clip
        if clip is None:
            return
        if self.worker is None:
            self._pending = None
            self._show_status()
            return
        rate = self._model_rate or clip.rate
        wave = clip.original if rate == clip.rate else resample(clip.original, clip.rate, rate)
        levels = self._levels
        try:
            command_id = self.worker.command(
                "reconstruct", wave=np.ascontiguousarray(wave, dtype=np.float32),
                levels=levels, tag=RECONSTRUCT_TAG,
            )
        except UserError as error:
            self._show_notice(self.notice, str(error), "error")
            return
        self._pending = (command_id, clip, levels)
        self._requested_at = time.monotonic()
        self._show_status()

    def _on_result(self, result: dict) -> None:
        pending = self._pending
        if (
            pending is None
            or result.get("kind") != "reconstruction"
            or result.get("id") != pending[0]
            or pending[1] is not self.clip
        ):
            return
        self._pending = None
        _, clip, levels = pending
        if result.get("error") or result.get("audio") is None:
            problem = result.get("error") or "the worker sent no audio"
            self._show_notice(self.notice, f"Reconstruction failed: {problem}", "error")
            self._show_status()
            return
        rate = int(result.get("sample_rate") or self._model_rate or clip.rate)
        about = f"step {result.get('step', '?')}"
        if levels is not None:
            about += f", {levels} of {self._max_levels} levels"
        audio = np.asarray(result["audio"], dtype=np.float32).reshape(-1)
        self._take_reconstruction(clip, audio, rate, about)
        self._show_status()

    def _take_reconstruction(self, clip: Clip, audio: np.ndarray, rate: int, about: str) -> None:
        """Swap a reconstruction in at the same playhead (the player crossfades to it)."""
        if self._player_ok:
            self.player.set_source_buffer(RECONSTRUCTION, audio, sample_rate=rate)
        if rate != clip.rate:
            audio = resample(audio, rate, clip.rate)
        clip.reconstruction = np.array(fit_length(audio, clip.original.shape[0]))
        clip.about = about
        self._redraw()

    def _on_levels(self, value: int) -> None:
        self._levels = None if value >= self._max_levels else int(value)
        self._pending = None  # an answer still on its way is for the old levels
        if self.clip is None:
            return
        if self.clip.is_probe and self._levels is None and self._seen_probe:
            self._use_probe(self._seen_probe)
        else:
            self._request_reconstruction()

    def set_levels(self, levels: int | None) -> None:
        """Decode with the first ``levels`` quantizer levels (None: all of them)."""
        self.levels_box.setValue(self._max_levels if levels is None else int(levels))

    # -- transport ------------------------------------------------------------------------------

    def toggle_playback(self) -> None:
        """Play or pause (Space, P)."""
        if self._player_ok and self.clip is not None:
            self.player.toggle()

    def select_source(self, name: str) -> None:
        """Listen to ``name`` (original, reconstruction, residual) from the same playhead."""
        if name not in SOURCE_COLORS:
            raise ValueError(f"unknown source {name!r}")
        if name != self.selected:
            self._previous = self.selected
        if self._player_ok:
            self.player.select(name)
        self._show_selected(name)

    def toggle_last_source(self) -> None:
        """Go back to the source heard before the current one (Tab)."""
        if self._previous is not None:
            self.select_source(self._previous)

    def _show_selected(self, name: str) -> None:
        self.selected = name
        self.source_buttons[name].setChecked(True)
        self._redraw()

    def set_loop(self, start_s: float, end_s: float) -> None:
        """Loop ``[start_s, end_s)`` of the clip (from the spectrogram's selection, or code)."""
        start, end = sorted((float(start_s), float(end_s)))
        self.waveform.region.setVisible(True)
        with QSignalBlocker(self.loop_box):
            self.loop_box.setChecked(True)
        self.waveform.region.setRegion((start, end))  # its change signal reaches the player

    def clear_loop(self) -> None:
        """Stop looping."""
        self.loop_box.setChecked(False)

    def _on_loop_toggled(self, on: bool) -> None:
        region = self.waveform.region
        region.setVisible(on)
        if not on:
            if self._player_ok:
                self.player.clear_loop()
            return
        duration = self.waveform.duration
        start, end = region.getRegion()
        if not duration:
            return
        if not (0.0 <= start < end <= duration) or (start, end) == (0.0, 1.0):
            # First use: a couple of seconds from the playhead.
            here = min(max(self._last_playhead, 0.0), duration)
            start = min(here, max(duration - 2.0, 0.0))
            end = min(start + 2.0, duration)
        region.setRegion((start, end))
        self._on_loop_moved(start, end)

    def _on_loop_moved(self, start: float, end: float) -> None:
        if self.loop_box.isChecked():
            if self._player_ok:
                self.player.set_loop(start, end)
            if self.clip is not None and self.clip.is_probe:
                self.loop_changed.emit(start, end)

    def _on_seek(self, seconds: float) -> None:
        if self._player_ok:
            self.player.seek(seconds)

    def _on_match_toggled(self, on: bool) -> None:
        if self._player_ok:
            self.player.loudness_match = on

    # -- keys -----------------------------------------------------------------------------------

    def _transport_key(self, event: QKeyEvent) -> bool:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        key = event.key()
        return mods == Qt.KeyboardModifier.NoModifier and (
            key in PLAY_KEYS or key in SOURCE_KEYS or key == Qt.Key.Key_Tab
        )

    def event(self, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride and self._transport_key(event):
            # Ours while the panel has focus, even if the window binds Space to training.
            event.accept()
            return True
        if kind == QEvent.Type.KeyPress and self._transport_key(event):
            # Handled before QWidget.event would turn Tab into a focus change.
            key = event.key()
            if key in PLAY_KEYS:
                if not event.isAutoRepeat():
                    self.toggle_playback()
            elif key == Qt.Key.Key_Tab:
                self.toggle_last_source()
            else:
                self.select_source(SOURCE_KEYS[key])
            event.accept()
            return True
        return super().event(event)

    # -- read-outs ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        clip = self.clip
        if clip is None:
            self.waveform.show(None, None, 1, theme.ORIGINAL_COLOR)
        else:
            front = {ORIGINAL: clip.original, RECONSTRUCTION: clip.reconstruction,
                     RESIDUAL: clip.residual}[self.selected]
            self.waveform.show(clip.original, front, clip.rate, SOURCE_COLORS[self.selected])
        self._update_levels_label()

    def _update_levels_label(self) -> None:
        clip = self.clip
        if clip is None:
            self.levels_label.setText("")
            return
        parts = [f"{letter} {_dbfs(samples)}" for letter, samples in
                 (("A", clip.original), ("B", clip.reconstruction), ("R", clip.residual))]
        text = "RMS dBFS  " + "  ".join(parts)
        if self._gains_shown:
            gains = "  ".join(
                f"{SOURCE_LETTERS[n]} {_db(g)}" for n, g in self._gains_shown.items()
                if n in SOURCE_LETTERS and n != ORIGINAL
            )
            text += f"  ·  gain  {gains}"
        self.levels_label.setText(text)

    def _show_status(self) -> None:
        clip = self.clip
        if clip is None:
            self.status.setText("Waiting for the first probe from training (start or open a run)")
            return
        text = f"{clip.name} · {clip.original.shape[0] / clip.rate:.1f} s · B: "
        if self._pending is not None and not getattr(self.worker, "is_running", True):
            text += "reconstructed once training starts"
        elif self._pending is not None:
            levels = self._pending[2]
            text += f"reconstructing ({f'{levels} of {self._max_levels}' if levels else 'all'} levels)…"
        elif clip.reconstruction is not None:
            text += clip.about
        elif self.worker is None:
            text += "needs a training session (start or open a run)"
        else:
            text += "none yet"
        self.status.setText(text)
