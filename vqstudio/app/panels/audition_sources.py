"""The audition panel's extra sources, chosen in one compact row: two saved checkpoints (1 and 2:
run X at checkpoint a, run Y at checkpoint b, or two checkpoints of one run), and D, a
reconstruction (B, 1 or 2) through the spectral-gating denoiser at an adjustable strength; and the
buttons that start a blind test between two of them.

Every one is computed by the :class:`~vqstudio.app.checkpoint_worker.CheckpointWorker` (its own
thread and models, never the GUI's or the trainer's) and handed to the player under its source
name, so it is heard at the same playhead, crossfaded and loudness-matched like A and B. A new
clip or other levels ask again (cached answers come back at once); an answer for a clip or a
choice no longer shown is dropped by its id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from vqstudio.app.checkpoint_worker import CheckpointWorker
from vqstudio.app.listening_dialog import ListeningDialog
from vqstudio.app.panels.audition_clip import Clip
from vqstudio.app.panels.audition_readouts import DENOISED, FIRST, SECOND
from vqstudio.app.panels.checkpoint_chooser import CheckpointChooser
from vqstudio.app.playback_engine import RECONSTRUCTION
from vqstudio.experiments.denoise import DEFAULT_STRENGTH
from vqstudio.experiments.denoise import label as denoise_label
from vqstudio.experiments.listening import Contender

CHECKPOINTS = (FIRST, SECOND)
DENOISE_DELAY_MS = 150  # a dragged strength slider re-renders once it rests this long


class _Bridge(QObject):
    """Carries the worker thread's answers to the GUI thread (a queued signal)."""

    answered = Signal(object)


def clip_key(clip: Clip) -> str:
    """Names a clip's samples for the worker's cache (a probe segment or file read again with
    the same samples is the same clip)."""
    digest = hashlib.blake2b(np.ascontiguousarray(clip.original).tobytes(), digest_size=12)
    return f"{clip.rate}:{digest.hexdigest()}"


class ExtraSources(QWidget):
    """The row; ``transport`` is the panel's Transport (its 1 / 2 / D buttons), ``player`` the
    ABPlayer (None or unavailable: the sources are still computed and drawn)."""

    source_ready = Signal(str)  # a source's audio arrived for the clip on show
    problem = Signal(str)  # a readable notice

    def __init__(self, transport: Any, player: Any | None, parent: QWidget | None = None,
                 worker: CheckpointWorker | None = None):
        super().__init__(parent)
        self.transport, self.player = transport, player
        self._bridge = _Bridge(self)
        self._bridge.answered.connect(self._on_answer)
        self.worker = worker or CheckpointWorker(self._bridge.answered.emit)
        self.clip: Clip | None = None
        self._key = ""
        self.levels: int | None = None
        self.refs = {FIRST: "", SECOND: ""}
        self.about: dict[str, dict] = {}  # source -> the answer's step, run, checkpoint
        self._pending: dict[str, int] = {}  # source -> id of the request outstanding
        self.live_about = ""  # what B is ("step 1200"), for naming it in a blind test
        self.dialog: ListeningDialog | None = None
        self.run_dir: str | None = None
        self._build()

    def _build(self) -> None:
        self.choosers = {name: CheckpointChooser(letter) for name, letter in ((FIRST, "1"), (SECOND, "2"))}
        for name, chooser in self.choosers.items():
            chooser.add_recent()
            chooser.changed.connect(lambda ref, n=name: self.set_checkpoint(n, ref))
        self.denoise_base = QComboBox()
        self.denoise_base.setToolTip("What D denoises")
        for text, name in (("off", ""), ("B", RECONSTRUCTION), ("1", FIRST), ("2", SECOND)):
            self.denoise_base.addItem(text, name)
        self.denoise_base.activated.connect(lambda _i: self._denoise_now())
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(int(DEFAULT_STRENGTH * 100))
        self.strength.setFixedWidth(90)
        self.strength.setToolTip("Denoiser strength: how far a gated bin is pulled down (0..1)")
        self.strength_label = QLabel(f"{DEFAULT_STRENGTH:.2f}")
        self._timer = QTimer(self, singleShot=True, interval=DENOISE_DELAY_MS)
        self._timer.timeout.connect(self._denoise_now)
        self.strength.valueChanged.connect(self._strength_moved)
        self.abx_button = QPushButton("ABX…")
        self.abx_button.setToolTip("A blind ABX test between two sources: can you tell them apart?")
        self.preference_button = QPushButton("Blind A/B…")
        self.preference_button.setToolTip("A blind preference test between two sources")
        for button, kind in ((self.abx_button, "abx"), (self.preference_button, "preference")):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, k=kind: self.open_blind_test(k))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.choosers[FIRST], 1)
        row.addWidget(self.choosers[SECOND], 1)
        row.addSpacing(6)
        row.addWidget(QLabel("D"))
        row.addWidget(self.denoise_base)
        row.addWidget(self.strength)
        row.addWidget(self.strength_label)
        row.addSpacing(6)
        row.addWidget(self.abx_button)
        row.addWidget(self.preference_button)

    # -- what the panel tells it ----------------------------------------------------------------

    def set_runs(self, runs: Any) -> None:
        """The window's Runs list (``run_list.RunList``): every run added there is offered as 1
        and 2 too, as soon as it is added."""
        runs.changed.connect(lambda: self._offer(runs))
        self._offer(runs)

    def _offer(self, runs: Any) -> None:
        paths = [str(entry.path) for entry in runs.entries if entry.path is not None]
        for chooser in self.choosers.values():
            chooser.add_runs(paths)

    def set_run(self, run_dir: str | None) -> None:
        """The run open in the window: listed first in both choosers."""
        self.run_dir = str(run_dir) if run_dir else None
        if run_dir:
            for chooser in self.choosers.values():
                chooser.add_runs([str(run_dir)])

    def set_clip(self, clip: Clip | None) -> None:
        """A new clip is heard: ask again for every chosen source (the player dropped them)."""
        self.clip = clip
        self._key = clip_key(clip) if clip is not None else ""
        self._pending.clear()
        for name in (*CHECKPOINTS, DENOISED):
            self.worker.forget(name)
        for name in CHECKPOINTS:
            self._ask(name)

    def set_levels(self, levels: int | None) -> None:
        self.levels = levels
        for name in CHECKPOINTS:
            self._ask(name)

    def reconstruction_changed(self, about: str = "") -> None:
        """B was replaced (a newer step, other levels; ``about`` says which): D follows it if it
        denoises B."""
        self.live_about = about
        if self.denoise_base.currentData() == RECONSTRUCTION:
            self._denoise_now()

    def set_checkpoint(self, name: str, ref: str) -> None:
        """Hear ``ref`` (``RUN:SELECTOR``; "" for none) as source ``name`` (1 or 2)."""
        self.refs[name] = ref
        self.about.pop(name, None)
        if self.clip is not None:
            self.clip.sources.pop(name, None)
        self.transport.set_available(name, bool(ref), "…" if ref else "")
        if not ref and self.player is not None:
            self.player.drop_source(name)
        self._ask(name)
        self.source_ready.emit(name)

    def checkpoints_changed(self) -> None:
        """A run saved a checkpoint: ask again for 1 and 2 where they follow "latest" (the
        worker's cache knows the file by inode and mtime, so an unchanged one answers at once)."""
        for name in CHECKPOINTS:
            if self.refs[name].endswith(":latest"):
                self._ask(name)

    # -- asking and answers ---------------------------------------------------------------------

    def _ask(self, name: str) -> None:
        ref, clip = self.refs.get(name), self.clip
        if not ref or clip is None:
            self._pending.pop(name, None)
            return
        self._pending[name] = self.worker.reconstruct(name, ref, clip.original, clip.rate, self._key,
                                                      self.levels)

    def _strength_moved(self, value: int) -> None:
        self.strength_label.setText(f"{value / 100:.2f}")
        self._timer.start()

    @property
    def strength_value(self) -> float:
        return self.strength.value() / 100.0

    def _denoise_now(self) -> None:
        base, clip = self.denoise_base.currentData(), self.clip
        audio = clip.source(base) if clip is not None and base else None
        self.transport.set_available(DENOISED, bool(base), f"{base and self._letter(base)} denoised")
        if not base:
            self._pending.pop(DENOISED, None)
            if clip is not None:
                clip.sources.pop(DENOISED, None)
            if self.player is not None:
                self.player.drop_source(DENOISED)
            self.source_ready.emit(DENOISED)
            return
        if audio is None:  # its base is not here yet: D follows when it comes
            return
        self._pending[DENOISED] = self.worker.denoise(DENOISED, audio, clip.rate, self.strength_value)

    @staticmethod
    def _letter(name: str) -> str:
        return {RECONSTRUCTION: "B", FIRST: "1", SECOND: "2"}.get(name, "?")

    def _on_answer(self, answer: dict) -> None:
        name = answer.get("source")
        if self._pending.get(name) != answer.get("id") or self.clip is None:
            return  # for a clip, a choice or a strength no longer shown
        del self._pending[name]
        if answer.get("error"):
            self.problem.emit(f"{self._letter(name) if name != DENOISED else 'D'}: {answer['error']}")
            return
        clip, rate = self.clip, int(answer["sample_rate"])
        clip.sources[name] = clip.fitted(answer["audio"], rate)
        if self.player is not None and self.player.available:
            self.player.set_source_buffer(name, answer["audio"], sample_rate=rate)
        if name in CHECKPOINTS:
            self.about[name] = answer
            self.transport.set_available(name, True, self.describe(name))
            if self.denoise_base.currentData() == name:
                self._denoise_now()
        else:
            self.about[name] = answer
        self.source_ready.emit(name)

    # -- naming sources -------------------------------------------------------------------------

    def describe(self, name: str) -> str:
        """Short text for source ``name``: "r:400", "r:400 2/4 levels"."""
        about = self.about.get(name)
        if about is None:
            return ""
        text = f"{Path(about['run']).name}:{about['step']}"
        if about.get("levels"):
            text += f" {about['levels']}/{about['rvq_levels']} levels"
        return text

    def contender(self, name: str) -> Contender | None:
        """Who source ``name`` is, for a listening record (None: not heard yet)."""
        if self.clip is None or self.clip.source(name) is None:
            return None
        if name in CHECKPOINTS:
            about = self.about.get(name)
            return Contender(about["run"], about["checkpoint"], int(about["step"])) if about else None
        if name == RECONSTRUCTION:
            if not self.run_dir:
                return None
            return Contender(self.run_dir, f"training, {self.live_about or 'latest'}")
        if name == DENOISED:
            base = self.contender(self.denoise_base.currentData() or "")
            strength = self.about.get(DENOISED, {}).get("strength", self.strength_value)
            if base is None:
                return None
            return Contender(base.run, base.checkpoint, base.step, denoise_label(strength))
        return None

    # -- blind tests ----------------------------------------------------------------------------

    def blind_candidates(self) -> dict[str, tuple[str, np.ndarray, Contender]]:
        """The sources a blind test can compare now: letter -> (label, audio, who it is)."""
        found = {}
        for letter, name in (("1", FIRST), ("2", SECOND), ("D", DENOISED), ("B", RECONSTRUCTION)):
            contender = self.contender(name)
            if contender is not None:
                found[letter] = (contender.label, self.clip.source(name), contender)
        return found

    def open_blind_test(self, kind: str, seed: int | None = None) -> ListeningDialog | None:
        """Open the ABX (``kind`` "abx") or blind preference dialog on the clip (and the loop, if
        one plays); a notice instead when fewer than two sources can be compared."""
        candidates = self.blind_candidates()
        if len(candidates) < 2 or self.clip is None:
            self.problem.emit("A blind test needs two sources: choose checkpoints as 1 and 2 (or "
                              "one and its denoised D), and wait until they are reconstructed")
            return None
        if self.dialog is not None:
            self.dialog.close()
        player = self.player if self.player is not None and self.player.available else None
        region = player.loop if player is not None else None
        self.dialog = ListeningDialog(kind, player, candidates, self.clip.rate, self.clip.name,
                                      region, self.levels, self, seed=seed)
        self.dialog.show()
        return self.dialog

    def close(self) -> None:
        self._timer.stop()
        if self.dialog is not None:
            self.dialog.close()
        self.worker.close()
