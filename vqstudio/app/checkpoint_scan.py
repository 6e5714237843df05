"""What the Compare panel needs from the disk about each of its runs, looked up off the GUI thread:
the checkpoints a run folder holds (its steps and ``best``), the file ``latest`` names, and the
listening-test results of ``listening.jsonl``.

A folder on a shared filesystem can take long to list, and a run trained elsewhere gains
checkpoints that no signal announces; so the panel never lists a folder itself. It asks here when
something can have changed (a run added or ticked, a checkpoint event in a run's store, a timer
every few seconds), and takes the answer when it comes. One scan at a time, in a plain Python
thread (see DESIGN.md's Threading); a scan asked while one runs is made once that one ends, with
the newest folders asked. Everything public here is for the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from vqstudio.experiments.checkpoint_ref import available
from vqstudio.train.checkpoint import latest_checkpoint
from vqstudio.train.runfolder import RunFolder

try:  # imported with the window (it brings scipy.stats), not on the first scan
    from vqstudio.experiments.listening import run_summary
except ImportError:
    run_summary = None


@dataclass(frozen=True)
class RunCheckpoints:
    """One run folder's checkpoints as found by a scan."""

    selectors: tuple[str, ...] = ()  # checkpoint_ref.available(): steps, then "best"
    latest: str = ""  # the file name "latest" means ("" without a checkpoint)
    listening: dict[str, str] = field(default_factory=dict, compare=True, hash=False)


def listening_cells(run_dir: Path) -> dict[str, str]:
    """Checkpoint file name (with a variant, e.g. "step-00000400.pt denoised 0.5") -> the short
    text of its listening results, read through :mod:`vqstudio.experiments.listening`."""
    if run_summary is None:  # an install without the listening tests: an empty column
        return {}
    try:
        summary = run_summary(run_dir)
    except Exception:  # an unreadable listening.jsonl must not stop the table
        return {}
    mine = {str(run_dir), str(Path(run_dir).resolve())}
    return {checkpoint: result.cell() for (run, checkpoint), result in summary.items()
            if run in mine or str(Path(run).resolve()) in mine}


def scan_run(run_dir: Path) -> RunCheckpoints:
    """Look ``run_dir`` up on disk (any thread); a folder that cannot be read has no checkpoints."""
    run = RunFolder(run_dir)
    try:
        selectors = tuple(available(run))
        latest = latest_checkpoint(run.checkpoint_dir)
    except OSError:
        return RunCheckpoints()
    return RunCheckpoints(selectors, latest.name if latest is not None else "", listening_cells(run_dir))


class CheckpointScan(QObject):
    """``scan(folders)``; ``scanned({folder: RunCheckpoints})`` answers it, in the GUI thread."""

    scanned = Signal(object)
    _done = Signal(object)  # from the scanning thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._pending: list[Path] | None = None
        self._done.connect(self._on_done)

    @property
    def busy(self) -> bool:
        return self._thread is not None or self._pending is not None

    def scan(self, folders) -> None:
        """Look ``folders`` up in the background (after the scan running now, if one is)."""
        self._pending = [Path(f) for f in folders]
        self._next()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the scanning thread (closing, tests); True if none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _next(self) -> None:
        if self._thread is not None or self._pending is None:
            return
        folders, self._pending = self._pending, None
        self._thread = threading.Thread(target=self._scan, args=(folders,), name="scan-checkpoints",
                                        daemon=True)
        self._thread.start()

    def _scan(self, folders: list[Path]) -> None:
        found = {}
        for folder in folders:
            try:
                found[folder] = scan_run(folder)
            except Exception:  # a bug must not leave the panel waiting for ever
                found[folder] = RunCheckpoints()
        self._done.emit(found)

    def _on_done(self, found: dict) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._next()
        self.scanned.emit(found)
