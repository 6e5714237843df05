"""Run folders read off the GUI thread: the one place the app calls
:func:`~vqstudio.experiments.run_history.read_history` (``metrics.csv`` can hold 100k rows, a
second or two of reading and parsing). Opening a run (File > Open, ``vqstudio app RUN``, a
followed run's first load) and adding one to the Runs list all ask here.

Folders are read one at a time, in a plain Python thread (not a QThread: see DESIGN.md's
Threading), in the order asked, except that ``first=True`` goes ahead of those waiting: several
reading threads at once starve the GUI thread of the interpreter lock (measured: a 1 s freeze
adding four runs, 0.1 s one by one). The reading thread reports its share done (``progress``) and
the finished history (``loaded``) through queued signals, so both arrive in the GUI thread; each
carries the caller's key. Everything public here is for the GUI thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from vqstudio.errors import UserError
from vqstudio.experiments.run_history import RunHistory, read_history

PROGRESS_STEP = 0.02  # the least change of the share done worth a signal


class HistoryReader(QObject):
    """``read(key, folder)``; ``loaded(key, RunHistory or error text)`` answers it."""

    loaded = Signal(str, object)
    progress = Signal(str, float)  # (key, share of metrics.csv read and parsed, 0..1)
    _finished = Signal(str, object)  # from the reading thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._waiting: list[tuple[str, Path]] = []
        self._thread: threading.Thread | None = None
        self._reading: str | None = None
        self._finished.connect(self._on_finished)

    def read(self, key: str, folder: str | Path, first: bool = False) -> None:
        """Read ``folder``; ``first`` puts it ahead of the folders waiting."""
        self.cancel(key)
        job = (key, Path(folder))
        if first:
            self._waiting.insert(0, job)
        else:
            self._waiting.append(job)
        self._next()

    def cancel(self, key: str) -> None:
        """Drop a waiting read of ``key`` (one being read still answers; callers ignore keys
        they no longer want)."""
        self._waiting = [job for job in self._waiting if job[0] != key]

    def busy(self, key: str) -> bool:
        """Whether ``key`` waits or is being read."""
        return self._reading == key or any(job[0] == key for job in self._waiting)

    def wait(self, timeout: float | None = None) -> bool:
        """Drop what waits and join the reading thread (closing, tests); True if none is left
        running. Its answer still arrives with the next events processed."""
        self._waiting.clear()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    # -- internals ------------------------------------------------------------------------------

    def _next(self) -> None:
        if self._thread is not None or not self._waiting:
            return
        key, folder = self._waiting.pop(0)
        self._reading = key
        self._thread = threading.Thread(target=self._read, args=(key, folder),
                                        name=f"read-run-{folder.name}", daemon=True)
        self._thread.start()

    def _read(self, key: str, folder: Path) -> None:
        said = [-1.0]

        def progress(share: float) -> None:
            if share - said[0] >= PROGRESS_STEP or share >= 1.0:
                said[0] = share
                self.progress.emit(key, float(share))

        try:
            result: RunHistory | str = read_history(folder, progress)
        except UserError as exc:
            result = str(exc)
        except Exception as exc:  # a bug must not leave the caller waiting for ever
            result = f"{folder.name} could not be read: {type(exc).__name__}: {exc}"
        self._finished.emit(key, result)

    def _on_finished(self, key: str, result: object) -> None:
        thread, self._thread, self._reading = self._thread, None, None
        if thread is not None:
            thread.join()
        self._next()
        self.loaded.emit(key, result)
