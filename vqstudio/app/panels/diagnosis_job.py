"""The Diagnosis panel's background work, Qt-free: one plain thread per job (a diagnosis of a
checkpoint, or a Verify), its answer picked up by the panel's ``refresh()``.

The heavy part never touches the training thread's model: a diagnosis loads its own copy of the
model from the checkpoint the trainer saved for it (the existing ``save_checkpoint`` command), so
training only pays for writing that checkpoint and for sharing the CPU cores, which torch's
thread cap (``train.cpu_threads``) already bounds for the whole process.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder

log = logging.getLogger("vqstudio.app")


class Job:
    """Runs ``work()`` in a daemon thread; ``done``, then ``result`` or ``error`` (one line)."""

    def __init__(self, name: str, work: Callable[[], Any]):
        self.name = name
        self.result: Any = None
        self.error = ""
        self._work = work
        self.thread = threading.Thread(target=self._run, name=f"vqstudio-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work()
        except UserError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: say so in the panel, keep the window
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.error = f"{self.name} failed: {type(exc).__name__}: {exc}"

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)


def latest_step(run_dir: Path | None) -> int | None:
    """The step of the run folder's newest ``step-XXXXXXXX.pt`` (None: none yet)."""
    if run_dir is None:
        return None
    steps = []
    for path in RunFolder(run_dir).checkpoint_dir.glob("step-*.pt"):
        try:
            steps.append(int(path.stem.split("-", 1)[1]))
        except ValueError:
            continue
    return max(steps) if steps else None


def diagnose_checkpoint(run_dir: Path, step: int, mos: bool):
    from vqstudio.diagnose.runner import diagnose

    return diagnose(f"{run_dir}:{step}", mos=mos)
