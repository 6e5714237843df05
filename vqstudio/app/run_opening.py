"""Opening a run folder in the window without freezing it: its history (``metrics.csv`` can hold
100k rows) is read by the window's :class:`~vqstudio.app.history_reader.HistoryReader`, the one
the Runs list reads with, while a progress bar in the status bar says how far it got; the window
stays responsive meanwhile. A Start pressed while a run opens waits for it (it resumes that
run, so the store must hold its rows first). A newer opening replaces one still reading.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QProgressBar

from vqstudio.app.history_reader import HistoryReader
from vqstudio.app.run_folders import pretty_path, resume_step
from vqstudio.experiments.run_history import RunHistory


def opened_message(run_dir: Path, step: int) -> str:
    """The status line once a run is shown: where its curves end and what Start does."""
    resumes = resume_step(run_dir)
    return (f"Opened {pretty_path(run_dir)}: curves to step {step}; Start (Space) "
            + (f"resumes from its checkpoint at step {resumes}" if resumes is not None
               else "trains it (it has no checkpoint yet)"))


class RunOpening(QObject):
    """``read(run_dir, then)``: read the history in the background, then ``then(history)`` in
    the GUI thread (not called if a newer read replaced it or it was cancelled)."""

    def __init__(self, window, reader: HistoryReader):
        super().__init__(window)
        self.window, self.reader = window, reader
        self.key: str | None = None
        self.run_dir: Path | None = None
        self._then: Callable[[RunHistory], None] | None = None
        self._after: list[Callable[[], None]] = []
        self._serial = itertools.count(1)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setFixedWidth(160)
        self.bar.setFormat("opening: %p %")
        self.bar.setToolTip("reading the run's metrics.csv and events.jsonl")
        self.bar.hide()
        window.statusBar().addPermanentWidget(self.bar)
        reader.loaded.connect(self._on_loaded)
        reader.progress.connect(self._on_progress)

    @property
    def busy(self) -> bool:
        """Whether a run is being opened."""
        return self.key is not None

    def read(self, run_dir: Path, then: Callable[[RunHistory], None]) -> None:
        if self.key is not None:
            self.reader.cancel(self.key)
        self.key = f"open#{next(self._serial)}:{run_dir}"  # never a Runs list key (a bare path)
        self.run_dir, self._then = Path(run_dir), then
        self.reader.read(self.key, run_dir, first=True)
        self.bar.setValue(0)
        self.bar.show()
        self.window.statusBar().showMessage(f"Opening {pretty_path(run_dir)}: reading its curves…")

    def when_open(self, do: Callable[[], None]) -> None:
        """Do ``do`` now, or once the run being opened is shown."""
        if self.busy:
            self._after.append(do)
        else:
            do()

    def cancel(self) -> None:
        """Forget the opening (a new run was prepared, the window closes); what waits on it too."""
        if self.key is not None:
            self.reader.cancel(self.key)
        self.key, self._then, self._after = None, None, []
        self.bar.hide()

    def _on_progress(self, key: str, share: float) -> None:
        if key == self.key:
            self.bar.setValue(int(round(100 * share)))

    def _on_loaded(self, key: str, result: object) -> None:
        if key != self.key:
            return  # replaced or cancelled meanwhile
        then, after = self._then, self._after
        self.key, self._then, self._after = None, None, []
        self.bar.hide()
        if isinstance(result, str):
            self.window.show_notice(result)
            self.window.statusBar().showMessage(f"Could not open {pretty_path(self.run_dir)}")
            return
        then(result)
        for do in after:
            do()
