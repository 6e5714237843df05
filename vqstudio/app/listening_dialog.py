"""The blind-test dialog: ABX or a blind A/B preference between two of the audition panel's
sources, played through the panel's player at its playhead and loop (loudness-matched for the
test, so the louder one is not simply preferred), scored by
:mod:`vqstudio.experiments.listening` and saved to ``listening.jsonl`` in each run involved.

Nothing on screen says which is which: the player gets the two as ``blind-A`` and ``blind-B``
(names the transport does not show), X or the slots 1 and 2 are mapped to them by the test.
Keys: A / B / X (ABX) or 1 / 2 (preference) play, Space play/pause, Enter or the buttons answer.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vqstudio.errors import UserError
from vqstudio.experiments.listening import AbxTest, Contender, PreferenceTest, append_session, significance

BLIND = {"A": "blind-A", "B": "blind-B"}


class ListeningDialog(QDialog):
    """``sources`` maps a source's letter ("B", "1", "2", "D") to ``(label, audio [T] at
    ``rate``, Contender)``; at least two are needed (the panel checks). ``finished_test`` carries
    the saved record."""

    finished_test = Signal(dict)

    def __init__(self, kind: str, player: Any, sources: dict[str, tuple[str, Any, Contender]], rate: int,
                 clip: str, region: tuple[float, float] | None, levels: int | None,
                 parent: QWidget | None = None, seed: int | None = None):
        super().__init__(parent)
        self.kind, self.player, self.sources, self.rate = kind, player, sources, int(rate)
        self.clip, self.region, self.levels, self.seed = clip, region, levels, seed
        self.test: AbxTest | PreferenceTest | None = None
        self.record: dict | None = None
        self._restore: tuple[str, bool] | None = None
        self.setWindowTitle("ABX test" if kind == "abx" else "Blind A/B preference")
        self._build()

    # -- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        letters = list(self.sources)
        self.first, self.second = QComboBox(), QComboBox()
        for box in (self.first, self.second):
            for letter in letters:
                box.addItem(f"{letter}: {self.sources[letter][0]}", letter)
        self.second.setCurrentIndex(1)
        self.trials = QSpinBox()
        self.trials.setRange(1, 100)
        self.trials.setValue(10 if self.kind == "abx" else 8)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        setup = QHBoxLayout()
        for widget in (QLabel("Compare"), self.first, QLabel("with"), self.second,
                       QLabel("trials"), self.trials, self.start_button):
            setup.addWidget(widget)

        self.progress = QLabel("Choose the two sources and press Start.")
        self.progress.setWordWrap(True)
        names = ("A", "B", "X") if self.kind == "abx" else ("1", "2")
        self.play_buttons = {n: QPushButton(f"Play {n}") for n in names}
        answers = ("A", "B") if self.kind == "abx" else ("1", "2")
        self.answer_buttons = {
            n: QPushButton(f"X is {n}" if self.kind == "abx" else f"Prefer {n}") for n in answers}
        grid = QGridLayout()
        for column, (name, button) in enumerate(self.play_buttons.items()):
            button.clicked.connect(lambda _=False, n=name: self.play(n))
            grid.addWidget(button, 0, column)
        for column, (name, button) in enumerate(self.answer_buttons.items()):
            button.clicked.connect(lambda _=False, n=name: self.answer(n))
            grid.addWidget(button, 1, column)
        for button in (*self.play_buttons.values(), *self.answer_buttons.values()):
            button.setEnabled(False)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(setup)
        layout.addWidget(self.progress)
        layout.addLayout(grid)
        layout.addWidget(self.result)

    # -- running the test -----------------------------------------------------------------------

    def start(self) -> None:
        a, b = self.first.currentData(), self.second.currentData()
        cls = AbxTest if self.kind == "abx" else PreferenceTest
        try:
            self.test = cls(self.sources[a][2], self.sources[b][2], trials=self.trials.value(),
                            seed=self.seed, clip=self.clip, region=self.region, levels=self.levels)
        except UserError as error:
            self.result.setText(str(error))
            return
        if self.player is not None and self.player.available:
            self._restore = (self.player.selected, self.player.loudness_match)
            for side, letter in (("A", a), ("B", b)):
                self.player.set_source_buffer(BLIND[side], self.sources[letter][1], sample_rate=self.rate)
            self.player.loudness_match = True
        for widget in (self.first, self.second, self.trials, self.start_button):
            widget.setEnabled(False)
        for button in (*self.play_buttons.values(), *self.answer_buttons.values()):
            button.setEnabled(True)
        self.result.setText("")
        self._show_trial()
        self.play(next(iter(self.play_buttons)))

    def play(self, name: str) -> None:
        """Hear ``name`` (A, B or X; 1 or 2) of the current trial from the same playhead."""
        if self.test is None or self.test.done or self.player is None:
            return
        self.player.select(BLIND[self.test.source(name)])
        if not self.player.is_playing:
            self.player.play()

    def answer(self, name: str) -> None:
        """X is ``name`` (ABX), or ``name`` is preferred; then the next trial, or the result."""
        if self.test is None or self.test.done:
            return
        self.test.answer(name)
        if self.test.done:
            self._finish()
        else:
            self._show_trial()
            self.play(next(iter(self.play_buttons)))

    def _show_trial(self) -> None:
        test = self.test
        what = ("Listen to A, B and X; say which one X is." if self.kind == "abx" else
                "Listen to 1 and 2; say which you prefer.")
        self.progress.setText(f"Trial {test.trial + 1} of {test.trials}. {what}")

    def _finish(self) -> None:
        test = self.test
        for button in (*self.play_buttons.values(), *self.answer_buttons.values()):
            button.setEnabled(False)
        self.player_restore()
        if isinstance(test, AbxTest):
            text = (f"{test.correct} of {test.trials} right: p = {test.p_value:.3g} "
                    f"({significance(test.p_value)} — X was told apart by ear if p < 0.05).")
        else:
            text = (f"{test.a.label} preferred {test.prefer_a} of {test.trials} times, "
                    f"{test.b.label} {test.trials - test.prefer_a}: p = {test.p_value:.3g} "
                    f"({significance(test.p_value)}).")
        self.record = test.record()
        try:
            written = append_session(self.record)
            text += " Saved to " + ", ".join(str(p) for p in written) + "."
        except UserError as error:
            text += f" Not saved: {error}"
        self.progress.setText("Done.")
        self.result.setText(text)
        self.adjustSize()  # the wrapped result needs the height: else it squeezes the buttons
        self.finished_test.emit(self.record)

    def player_restore(self) -> None:
        """Give the player back as it was: the source heard before, loudness matching, no blind
        buffers."""
        if self._restore is None or self.player is None:
            return
        selected, matching = self._restore
        self._restore = None
        self.player.select(selected)
        self.player.loudness_match = matching
        for name in BLIND.values():
            self.player.drop_source(name)

    # -- keys and closing -----------------------------------------------------------------------

    def keyPressEvent(self, event) -> None:
        text = event.text().upper()
        if text in self.play_buttons and self.play_buttons[text].isEnabled():
            self.play(text)
        elif event.key() == Qt.Key.Key_Space and self.player is not None and self.test is not None:
            self.player.toggle()
        else:
            super().keyPressEvent(event)

    def done(self, result: int) -> None:
        self.player_restore()
        super().done(result)
