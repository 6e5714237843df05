"""Where the panels' changes and requests go while the window follows a run another process
trains: the :class:`~vqstudio.app.worker.TrainingWorker` hands them here instead of to its
mailbox (``worker.follow_sink``), so no panel needs to know which mode it is in.

- weights and settings become lines of the run's ``control.jsonl`` (``train/control_file.py``);
  the trainer's events confirm them as for a local run, read back by the follower;
- ``reconstruct`` runs on a background thread through the run's newest checkpoint
  (:class:`~vqstudio.experiments.latest_model.LatestModel`) and answers on ``worker.result``
  with the id it returned, as the worker would; the newest request replaces one still waiting;
- a checkpoint and a dead-code reset become control lines too (their events come back);
  a validation needs the trainer's own data and is answered with an error that says so.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from vqstudio.errors import UserError
from vqstudio.experiments.latest_model import LatestModel
from vqstudio.train.control_file import append_changes
from vqstudio.train.steering import CONTROL_COMMANDS

log = logging.getLogger("vqstudio.app")

_IDS = itertools.count(1_000_000_001)  # apart from the worker's mailbox ids


class FollowSink:
    """``result(payload)`` emits a result (the worker's ``result`` signal's ``emit``), from any
    thread; ``notify(text)`` shows a notice (GUI thread)."""

    def __init__(self, run_dir: str | Path, result: Callable[[dict], None], notify: Callable[[str], None]):
        self.run_dir = Path(run_dir)
        self._result, self._notify = result, notify
        self._model: LatestModel | None = None
        self._lock = threading.Lock()
        self._waiting: tuple[int, dict[str, Any]] | None = None
        self._thread: threading.Thread | None = None
        self.source = "VQ Studio app"

    # -- settings: the control file -----------------------------------------------------------

    def _append(self, changes: list[tuple[str, Any]]) -> None:
        try:
            append_changes(self.run_dir, changes, source=self.source)
        except OSError as exc:
            self._notify(f"Cannot steer {self.run_dir.name}: writing control.jsonl failed "
                         f"({exc.strerror or exc}); check that the run folder is writable from here")

    def set_weights(self, weights: dict[str, float]) -> None:
        self._append([(str(term), float(w)) for term, w in weights.items()])

    def set_setting(self, name: str, value: Any) -> None:
        if name == "weights":
            self.set_weights(value)
        else:
            self._append([(name, value)])

    # -- commands -----------------------------------------------------------------------------

    def command(self, name: str, **args: Any) -> int:
        ident = next(_IDS)
        if name in CONTROL_COMMANDS:  # the trainer serves these from the control file too
            self._append([(name, True)])
            return ident
        if name != "reconstruct":
            kind = "validation" if name == "validate" else "refused"
            self._result({"kind": kind, "id": ident, "tag": args.get("tag"),
                          "error": f"{name} needs the trainer, which runs in another process"})
            return ident
        with self._lock:
            self._waiting = (ident, args)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="vqstudio-follow-inference",
                                                daemon=True)
                self._thread.start()
        return ident

    def _serve(self) -> None:
        while True:
            with self._lock:
                job, self._waiting = self._waiting, None
                if job is None:
                    return
            ident, args = job
            answer: dict[str, Any] = {"kind": "reconstruction", "id": ident, "tag": args.get("tag")}
            try:
                if self._model is None:
                    self._model = LatestModel(self.run_dir)
                answer.update(self._model.reconstruct(args["wave"], args.get("levels")))
            except UserError as exc:
                answer["error"] = str(exc)
            except Exception as exc:  # a bug: logged, answered, the window goes on
                log.error("reconstructing from the followed run failed:\n%s", traceback.format_exc())
                answer["error"] = f"reconstruction failed: {type(exc).__name__}: {exc}"
            self._result(answer)

    def close(self, timeout: float = 30.0) -> None:
        """Drop what waits and wait for a reconstruction in progress to end."""
        with self._lock:
            self._waiting = None
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
