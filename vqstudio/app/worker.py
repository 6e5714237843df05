"""The training worker: a background thread that owns the :class:`Trainer`; the GUI never touches
the model.

GUI -> trainer: one mailbox (:class:`~vqstudio.train.mailbox.Mailbox`), the trainer's. The worker
makes it, so settings posted before Start wait there and apply at the first step, and hands it to
each run's trainer. Weight and setting changes are snapshots, last write wins; commands are queued
and answered once with the id :meth:`TrainingWorker.command` returned; pause and stop are the
trainer's flags.

Trainer -> GUI: :class:`~vqstudio.app.training_loop.TrainingLoop` (Qt-free) drives the trainer's
own loop and calls back with throttled payloads, which this class turns into Qt signals. Signals
are emitted from the training thread and arrive queued in the GUI thread.

The loop runs in a plain ``threading.Thread``, not a ``QThread``: on Python 3.11 a QThread that
runs Python code leaves an unjoinable ``_DummyThread`` behind once anything in it (logging, torch)
asks for ``threading.current_thread()``, whereas a Python thread can be joined and is seen by the
tests' leaked-thread check.

While a run goes, "reconstruct" is not queued for the training thread: it goes to
:class:`~vqstudio.app.live_reconstruction.LiveReconstruction`, a thread of its own that runs the
weights the training loop publishes at step boundaries, so the answer does not wait for the step
in progress. Its answers come back on the same ``result`` signal with the id ``command``
returned. Before a run (and after it), reconstructions wait in the mailbox as other commands do.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from vqstudio.app.live_reconstruction import LiveReconstruction
from vqstudio.app.training_loop import TrainingLoop, one_line
from vqstudio.config import Config
from vqstudio.errors import UserError
from vqstudio.train.mailbox import COMMANDS, Mailbox

log = logging.getLogger("vqstudio.app")

PROBE_SECONDS = 4.0


class TrainingWorker(QObject):
    """Owns a training thread; every public method is for the GUI thread.

    ``start(config, run_dir)`` starts a run (a folder that already holds one is resumed, its
    configuration winning); ``open_run(run_dir)`` resumes one. ``stop()`` ends the thread.
    """

    started = Signal(dict)
    scalars = Signal(dict)
    heavy = Signal(dict)
    probe = Signal(dict)
    events = Signal(list)
    result = Signal(dict)
    state_changed = Signal(str)
    error = Signal(str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None, *, probe_seconds: float = PROBE_SECONDS):
        super().__init__(parent)
        self.probe_seconds = probe_seconds
        self._mailbox = Mailbox()  # outlives runs: what is posted while idle waits for the next
        self._save_on_stop = True
        self._thread: threading.Thread | None = None
        self._state = "idle"
        self.run_dir: Path | None = None
        # While the window follows a run another process trains (app/follow.py), settings and
        # commands go to this sink (app/follow_sink.py: the control file, local inference).
        self.follow_sink = None
        self.live: LiveReconstruction | None = None  # while a run goes
        self._signals = {"started": self.started, "scalars": self.scalars, "heavy": self.heavy,
                         "probe": self.probe, "events": self.events, "result": self.result,
                         "error": self.error}

    # -- control (GUI thread) -------------------------------------------------------------------

    def start(self, config: Config, run_dir: str | Path | None = None) -> None:
        """Start training ``config`` in ``run_dir`` (created; or resumed if it holds a run)."""
        self._launch(config, run_dir)

    def open_run(self, run_dir: str | Path) -> None:
        """Resume the run in ``run_dir`` from its latest checkpoint."""
        self._launch(None, run_dir)

    def _launch(self, config: Config | None, run_dir: str | Path | None) -> None:
        if self.is_running:
            raise RuntimeError("training is already running; stop it first")
        self._save_on_stop = True
        self._mailbox.reopen()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._state = "running"
        self._thread = threading.Thread(
            target=self._run, args=(config, self.run_dir), name="vqstudio-training", daemon=True
        )
        self._thread.start()
        self.state_changed.emit("running")

    def set_weights(self, weights: dict[str, float]) -> None:
        """Change loss weights (merged; applied at the next step and confirmed by an event)."""
        if self.follow_sink is not None:
            return self.follow_sink.set_weights(weights)
        self._mailbox.set_weights(weights)

    def set_setting(self, name: str, value: Any) -> None:
        """Change "lr", "balancer" or "quantizer_dropout" (or "weights") at the next step."""
        if self.follow_sink is not None:
            return self.follow_sink.set_setting(name, value)
        self._mailbox.set(name, value)

    def command(self, name: str, **args: Any) -> int:
        """Queue a command; returns its id, which the result or event carries back.

        "reconstruct" (``wave`` [T] float32 at the model's rate, ``levels``, ``tag``) and
        "validate" come back in :attr:`result`; "save_checkpoint" and "replace_dead_codes" as
        events. All are served between steps and while paused; they wait for a run if none is
        going.
        """
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
        if self.follow_sink is not None:
            return self.follow_sink.command(name, **args)
        live = self.live
        if name == "reconstruct" and live is not None and not self._mailbox.stopped:
            ident = self._mailbox.next_id()
            try:
                live.ask(ident, args)
                return ident
            except UserError:  # the run has just ended: the mailbox keeps it for the next
                pass
        return self._mailbox.command(name, **args)

    def pause(self) -> None:
        self._mailbox.pause()

    def resume(self) -> None:
        self._mailbox.resume()

    def toggle(self) -> None:
        """Pause if running, resume if paused."""
        if self.is_paused:
            self.resume()
        elif self.is_running:
            self.pause()

    def stop(self, save: bool = True, timeout: float = 60.0, wait: bool = True) -> bool:
        """End training (saving a checkpoint first if ``save``) and wait for the thread to end;
        returns whether it ended within ``timeout`` seconds. With ``wait=False`` only ask: the
        ``finished`` signal follows, and a later ``stop()`` joins the thread."""
        thread = self._thread
        if thread is None:
            return True
        if not self._mailbox.stopped:
            self._save_on_stop = save
            self._mailbox.stop()  # wakes a paused loop at once
        if not wait:
            return not thread.is_alive()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the training thread did not end within %.0f s", timeout)
            return False
        self._thread = None
        return True

    @property
    def is_running(self) -> bool:
        """A run is going (training or paused)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_stopping(self) -> bool:
        """A stop was asked for and the thread has not ended yet."""
        return self.is_running and self._mailbox.stopped

    @property
    def is_paused(self) -> bool:
        return self.is_running and self._mailbox.paused

    @property
    def state(self) -> str:
        """The last state the loop reported: "idle", "running", "paused" or "stopped"."""
        return self._state

    # -- the training thread --------------------------------------------------------------------

    def _emit(self, name: str, payload: Any) -> None:
        if name == "state":
            if payload != self._state:
                self._state = payload
                self.state_changed.emit(payload)
            return
        self._signals[name].emit(payload)

    def _live_answer(self, answer: dict[str, Any]) -> None:
        """A live reconstruction's answer (on its thread), delivered as the loop delivers one."""
        if answer.get("error"):
            self.error.emit(answer["error"])
        self.result.emit(answer)

    def _run(self, config: Config | None, run_dir: Path | None) -> None:
        trainer = loop = None
        try:
            from vqstudio.train.runfolder import RunFolder
            from vqstudio.train.trainer import Trainer

            if config is None:
                config = RunFolder(run_dir).load_config()
            trainer = Trainer(config, run_dir, mailbox=self._mailbox)
            loop = TrainingLoop(trainer, self._emit, self.probe_seconds)
            model = trainer.model
            self.live = LiveReconstruction(loop.snapshots, self._live_answer, (
                model.sample_rate, model.hop, trainer.device, trainer.amp))
            loop.run()
            loop.stopping(save=self._save_on_stop)
        except UserError as exc:
            log.warning("training could not go on: %s", exc)
            self.error.emit(str(exc))
        except Exception as exc:  # a bug: report it, keep the window alive
            log.error("training crashed:\n%s", traceback.format_exc())
            self.error.emit(f"Training stopped by an internal error: {one_line(exc)} (details in the log)")
        finally:
            live, self.live = self.live, None
            if live is not None:
                live.close()  # what still waits is served through the last published weights
            if loop is not None:
                try:
                    loop.flush(force=True)
                except Exception:
                    log.error("flushing the last figures failed:\n%s", traceback.format_exc())
            if trainer is not None:
                trainer.close()
            self._state = "stopped"
            self.state_changed.emit("stopped")
            self.finished.emit()
