"""Measuring checkpoints for the Compare panel: ``vqstudio compare REF --data DIR --json OUT``
run once per checkpoint in a child process, one after the other, all on the same clips.

A child process rather than a thread: the measurement (model loading, inference, PESQ) neither
holds the GUI's interpreter lock nor competes with the training thread inside this process, a
crash in it cannot take the window down, and Cancel ends it at once (the process is killed; no
half-measured figure is kept). Progress is counted in checkpoints. The figures and the
best-of-column rule are ``vqstudio compare``'s own (:mod:`vqstudio.experiments.compare`), so the
panel shows what the command prints.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

CHILD_THREADS = "1"  # torch threads of a child: training keeps its core


class CompareRunner(QObject):
    """Measures a list of ``RUN:CKPT`` references one by one; every method is for the GUI thread."""

    progress = Signal(int, int)  # (checkpoints done, checkpoints in all)
    measured = Signal(int, list)  # (index of the reference, its entries: the JSON's list)
    failed = Signal(int, str)  # (index, the command's one-line message)
    finished = Signal(bool)  # True when every reference was measured, False if cancelled

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._queue: list[tuple[int, str]] = []
        self._total = 0
        self._done = 0
        self._process: QProcess | None = None
        self._folder: Path | None = None
        self._args: list[str] = []
        self._current = -1

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self, refs: list[str], data: str, *, max_seconds: float = 30.0,
              denoise: float | None = None) -> None:
        """Measure ``refs`` on the clips in ``data`` (a folder or manifest)."""
        if self.running:
            raise RuntimeError("a comparison is already running")
        self._queue = list(enumerate(refs))
        self._total, self._done = len(refs), 0
        self._args = ["--data", str(data), "--max-seconds", str(max_seconds)]
        if denoise is not None:
            self._args += ["--denoise", str(denoise)]
        self._folder = Path(tempfile.mkdtemp(prefix="vqstudio-compare-"))
        self.progress.emit(0, self._total)
        self._next()

    def cancel(self) -> None:
        """Stop now: the running measurement is killed and the rest are not started."""
        self._queue.clear()
        process = self._process
        if process is not None:
            process.finished.disconnect(self._on_finished)
            process.kill()
            process.waitForFinished(5000)
            self._process = None
            process.deleteLater()
        self._end(False)

    def wait(self, msecs: int = 60000) -> bool:
        """Block until the running child ends (tests, closing)."""
        return self._process is None or self._process.waitForFinished(msecs)

    # -- internals ------------------------------------------------------------------------------

    def _next(self) -> None:
        if not self._queue:
            self._end(True)
            return
        self._current, ref = self._queue.pop(0)
        out = self._folder / f"{self._current}.json"
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.insert(name, os.environ.get("VQSTUDIO_COMPARE_THREADS", CHILD_THREADS))
        process.setProcessEnvironment(env)
        process.setProgram(sys.executable)
        process.setArguments(["-m", "vqstudio", "compare", ref, *self._args, "--json", str(out)])
        process.finished.connect(self._on_finished)
        self._process = process
        process.start()

    def _on_finished(self, code: int, _status) -> None:
        process, index = self._process, self._current
        self._process = None
        out = self._folder / f"{index}.json"
        stderr = bytes(process.readAllStandardError()).decode("utf-8", "replace").strip()
        process.deleteLater()
        if code == 0 and out.is_file():
            try:
                entries = json.loads(out.read_text())
            except (OSError, ValueError) as exc:
                self.failed.emit(index, f"the comparison's figures could not be read: {exc}")
            else:
                self.measured.emit(index, list(entries))
        else:
            lines = [line for line in stderr.splitlines() if line.strip()]
            self.failed.emit(index, lines[-1] if lines else f"vqstudio compare exited with {code}")
        self._done += 1
        self.progress.emit(self._done, self._total)
        self._next()

    def _end(self, complete: bool) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self.finished.emit(complete)
