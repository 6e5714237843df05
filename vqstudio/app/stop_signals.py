"""POSIX signals in the desktop app: SIGTERM, SIGINT and SIGHUP close the window the way Quit
does (training finishes its step and saves a checkpoint), SIGUSR1 saves a checkpoint and goes on.

Python runs a signal handler only when the main thread next executes Python code, and a Qt app's
main thread sits in C++ (the event loop) until an event comes. So the handlers only set flags, and
``signal.set_wakeup_fd`` makes the interpreter's C-level handler also write a byte into one end of
a socket pair; a :class:`QSocketNotifier` on the other end wakes the event loop, whose slot (Python
code) lets the handlers run and then acts on the flags. No polling timer.

The signal lists are the headless trainer's (``vqstudio.train.stopping``). Unlike the CLI, a second
stop signal does not abort here: the window is already closing, and closing waits for the
checkpoint at most ``TrainingWorker.stop``'s timeout, so the exit stays bounded and the run folder
is never left half-written.
"""

from __future__ import annotations

import signal
import socket
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, Signal

from vqstudio.train.stopping import CHECKPOINT_SIGNALS, STOP_SIGNALS


class StopSignals(QObject):
    """Turns the stop and checkpoint signals into Qt signals in the GUI thread; :meth:`install`
    from the main thread, :meth:`uninstall` when the event loop is done."""

    stop_requested = Signal(str)  # the signal's name, once (the first stop signal)
    checkpoint_requested = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.stop_signal: str | None = None  # the first stop signal received
        self._stop_seen = 0
        self._stop_told = False
        self._checkpoints_seen = 0
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._wake)

    def install(self) -> "StopSignals":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_stop)
        for signum in CHECKPOINT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_checkpoint)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        return self

    def uninstall(self) -> None:
        if not self._previous:
            return
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()

    # Handlers: flags only (they may run inside any Python code of the main thread).
    def _on_stop(self, signum: int, frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        self._stop_seen += 1

    def _on_checkpoint(self, signum: int, frame) -> None:
        self._checkpoints_seen += 1

    def _wake(self) -> None:
        """The event loop woke on the socket: the handlers have run; act on what they saw."""
        try:
            while self._reader.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        if self._checkpoints_seen:
            self._checkpoints_seen = 0
            self.checkpoint_requested.emit()
        if self._stop_seen and not self._stop_told:
            self._stop_told = True
            self.stop_requested.emit(self.stop_signal or "a stop signal")
