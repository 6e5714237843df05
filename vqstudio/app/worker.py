"""The training worker: a background thread that owns the :class:`Trainer`; the GUI never touches
the model.

GUI -> worker: a mailbox read between steps (napari/superqt style). Weight and setting changes are
snapshots, last write wins; commands are queued; pause and stop are flags. The worker forwards
settings and checkpoint/dead-code commands to the trainer's own mailbox, so each comes back as a
trainer event carrying the step at which it took effect; it serves reconstructions and validation
itself, so they are answered while paused too.

Worker -> GUI: Qt signals with small CPU numpy payloads, throttled at the source: scalars batched
at <= 20 Hz, codebook figures at <= 5 Hz (and at least every ~2 s), the probe clip's
reconstruction every ``heavy_every`` steps (at most once a second) or every ~3 s. Signals are
emitted from the training thread and arrive queued in the GUI thread.

The loop runs in a plain ``threading.Thread``, not a ``QThread``: on Python 3.11 a QThread that
runs Python code leaves an unjoinable ``_DummyThread`` behind once anything in it (logging, torch)
asks for ``threading.current_thread()``, whereas a Python thread can be joined and is seen by the
tests' leaked-thread check.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from vqstudio.config import Config
from vqstudio.errors import UserError
from vqstudio.train.mailbox import Mailbox

log = logging.getLogger("vqstudio.app")

SCALARS_INTERVAL_S = 0.05  # <= 20 Hz
HEAVY_MIN_INTERVAL_S = 0.2
HEAVY_MAX_INTERVAL_S = 2.0
PROBE_MIN_INTERVAL_S = 1.0
PROBE_MAX_INTERVAL_S = 3.0
PROBE_COST_FACTOR = 50.0
PROBE_SECONDS = 4.0
PAUSED_POLL_S = 0.05
MAX_CONSECUTIVE_ERRORS = 3
LOCAL_COMMANDS = ("reconstruct", "validate")  # answered by the worker, also while paused
FORWARDED_COMMANDS = ("replace_dead_codes", "save_checkpoint")


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
        self._mailbox = Mailbox()  # the GUI's side: outlives runs, so settings made idle apply
        self._local: deque[tuple[int, str, dict[str, Any]]] = deque()
        self._local_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stop_flag = threading.Event()
        self._save_on_stop = True
        self._thread: threading.Thread | None = None
        self._state = "idle"
        self.run_dir: Path | None = None

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
        self._stop_flag.clear()
        self._save_on_stop = True
        self._mailbox.resume()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._state = "running"
        self._thread = threading.Thread(
            target=self._run, args=(config, self.run_dir), name="vqstudio-training", daemon=True
        )
        self._thread.start()
        self.state_changed.emit("running")

    def set_weights(self, weights: dict[str, float]) -> None:
        """Change loss weights (merged; applied at the next step and confirmed by an event)."""
        self._mailbox.set_weights(weights)

    def set_setting(self, name: str, value: Any) -> None:
        """Change "lr", "balancer" or "quantizer_dropout" (or "weights") at the next step."""
        self._mailbox.set(name, value)

    def command(self, name: str, **args: Any) -> int:
        """Queue a command; returns its id, which the result or event carries back.

        "reconstruct" (``wave`` [T] float32 at the model's rate, ``levels``, ``tag``) and
        "validate" come back in :attr:`result`; "save_checkpoint" and "replace_dead_codes" as
        events. Commands wait for a run if none is going.
        """
        if name not in LOCAL_COMMANDS + FORWARDED_COMMANDS:
            raise ValueError(
                f"unknown command {name!r}; known: {', '.join(LOCAL_COMMANDS + FORWARDED_COMMANDS)}"
            )
        with self._local_lock:
            cmd_id = next(self._ids)
            self._local.append((cmd_id, name, args))
        return cmd_id

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
        if not self._stop_flag.is_set():
            self._save_on_stop = save
            self._stop_flag.set()
            self._mailbox.resume()  # wakes a paused loop at once
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
        return self.is_running and self._stop_flag.is_set()

    @property
    def is_paused(self) -> bool:
        return self.is_running and self._mailbox.paused

    @property
    def state(self) -> str:
        """The last state the loop reported: "idle", "running", "paused" or "stopped"."""
        return self._state

    # -- the training thread --------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    def _run(self, config: Config | None, run_dir: Path | None) -> None:
        trainer = None
        loop = None
        try:
            from vqstudio.train.runfolder import RunFolder
            from vqstudio.train.trainer import Trainer

            if config is None:
                config = RunFolder(run_dir).load_config()
            trainer = Trainer(config, run_dir)
            loop = _Loop(self, trainer)
            loop.run()
            loop.stopping(save=self._save_on_stop)
        except UserError as exc:
            log.warning("training could not go on: %s", exc)
            self.error.emit(str(exc))
        except Exception as exc:  # a bug: report it, keep the window alive
            log.error("training crashed:\n%s", traceback.format_exc())
            self.error.emit(f"Training stopped by an internal error: {_one_line(exc)} (details in the log)")
        finally:
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class _Loop:
    """One run's loop and its outgoing buffers; lives entirely in the training thread."""

    def __init__(self, worker: TrainingWorker, trainer):
        self.w = worker
        self.t = trainer
        self.inner_ids: dict[int, int] = {}  # trainer mailbox id -> the GUI's id
        self.rows: list[tuple] = []
        self.validation: list[tuple[int, float]] = []
        self.pending_events: list[dict] = []
        self.sent_early: list[dict] = []  # events sent while paused; they recur in the next report
        self.grad_shares: dict | None = None
        now = time.monotonic()
        self.last_flush = self.last_heavy = self.window_start = now
        self.last_probe = -math.inf
        self.probe_cost = 0.0
        self.window_steps = 0
        self.rate = math.nan
        self.errors_in_a_row = 0
        self.paused = False
        cfg = trainer.config
        self.audio_per_step = (
            cfg.data.batch_size * trainer.segment_samples / cfg.model.sample_rate * trainer.world
        )
        self.latest_elapsed = trainer.elapsed
        self.probe_wave = self._probe_clip()
        worker.started.emit(self._info())

    def _info(self) -> dict[str, Any]:
        t, cfg = self.t, self.t.config
        import torch

        return {
            "device": str(t.device),
            "threads": torch.get_num_threads() if t.device.type == "cpu" else None,
            "preset": cfg.preset,
            "run_dir": str(t.run.path) if t.run is not None else None,
            "step": t.step_count,
            "elapsed": t.elapsed,
            "weights": dict(t.weights),
            "term_names": cfg.loss.term_names(),
            "sample_rate": cfg.model.sample_rate,
            "rvq_levels": cfg.model.rvq_levels,
            "codebook_size": cfg.model.codebook_size,
            "lr": t.base_lr,
            "balancer": t.balancer_mode,
            "quantizer_dropout": float(t.model.quantizer.dropout),
            "corpus_report": t.corpus_report,
            "probe_file": self.probe_file,
            "data": cfg.data.path,
        }

    def _probe_clip(self) -> np.ndarray | None:
        """A fixed few seconds from the first validation file (the first training file when
        nothing is held back)."""
        from vqstudio.audio.io import read_audio

        self.probe_file = None
        corpus = self.t.val_corpus if self.t.val_corpus.files else self.t.train_corpus
        if not corpus.files:
            return None
        info, (start, stop) = corpus.files[0], corpus.spans[0]
        seconds = min(self.w.probe_seconds, (stop - start) / info.sample_rate)
        try:
            wave = read_audio(info.path, self.t.config.model.sample_rate,
                              start=start / info.sample_rate, duration=seconds)
        except UserError as exc:
            self.w.error.emit(f"No probe clip: {exc}")
            return None
        self.probe_file = str(info.path)
        return wave

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        w, t = self.w, self.t
        while not w._stop_flag.is_set():
            self._forward_mail()
            self._serve_commands()
            if w._mailbox.paused:
                self._paused_tick()
                continue
            if self.paused:
                self.paused = False
                self._emit_event(t.log_event("resume"))
                self.window_start, self.window_steps = time.monotonic(), 0
                w._set_state("running")
            if not self._service_mailbox():
                continue
            try:
                report = t.step()
                self.errors_in_a_row = 0
            except (UserError, OSError) as exc:  # e.g. a full disk while checkpointing
                self._user_error(exc)
                continue
            self._take(report)
            now = time.monotonic()
            self._maybe_heavy(report, now)
            self._maybe_probe(report, now)
            if now - self.last_flush >= SCALARS_INTERVAL_S:
                self.flush()

    def _paused_tick(self) -> None:
        t = self.t
        if not self.paused:
            self.paused = True
            self.flush(force=True)
            self._emit_event(t.log_event("pause"))
            self.w._set_state("paused")
        self._service_mailbox(early=True)
        self.flush()
        self.w._mailbox.wait(PAUSED_POLL_S)

    def _service_mailbox(self, early: bool = False) -> bool:
        """Apply posted settings and commands on their own, so that one that fails (a full disk
        while saving, a bad value) is a notice and costs neither the step nor the run. Events
        come back with the next step's report, or at once (``early``) while paused."""
        try:
            events = self.t.service_mailbox()
        except (UserError, OSError) as exc:
            self._user_error(exc)
            return False
        except Exception as exc:
            log.error("a change could not be applied:\n%s", traceback.format_exc())
            self.w.error.emit(f"A change could not be applied: {_one_line(exc)} (details in the log)")
            return False
        if early:
            self.sent_early.extend(events)
            self._emit_events(events)
        return True

    def _user_error(self, exc: Exception) -> None:
        self.errors_in_a_row += 1
        log.warning("training step refused: %s", exc)
        self.w.error.emit(str(exc))
        if self.errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
            self.w.error.emit(f"Training paused after {self.errors_in_a_row} errors in a row; "
                              "fix the cause and resume")
            self.errors_in_a_row = 0
            self.w._mailbox.pause()

    def _forward_mail(self) -> None:
        """Settings from the GUI's mailbox into the trainer's (snapshots, last write wins)."""
        if not self.w._mailbox.has_mail():
            return
        settings, _ = self.w._mailbox.take()
        for name, value in settings.items():
            self.t.mailbox.set(name, value)

    def _serve_commands(self) -> None:
        """Answer reconstructions and validations here; hand checkpoint and dead-code commands
        to the trainer, remembering ids so its events can be mapped back to the GUI's."""
        w = self.w
        while True:
            with w._local_lock:
                if not w._local:
                    return
                cmd_id, name, args = w._local.popleft()
            if name in FORWARDED_COMMANDS:
                self.inner_ids[self.t.mailbox.command(name, **args)] = cmd_id
                continue
            try:
                w.result.emit(self._answer(cmd_id, name, args))
            except UserError as exc:
                w.error.emit(str(exc))
                w.result.emit({"kind": _kind(name), "id": cmd_id, "tag": args.get("tag"), "error": str(exc)})
            except Exception as exc:
                log.error("command %s failed:\n%s", name, traceback.format_exc())
                message = f"{name} failed: {_one_line(exc)}"
                w.error.emit(message)
                w.result.emit({"kind": _kind(name), "id": cmd_id, "tag": args.get("tag"), "error": message})

    def _answer(self, cmd_id: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
        t = self.t
        if name == "validate":
            return {"kind": "validation", "id": cmd_id, "step": t.step_count, **t.validate()}
        levels = args.get("levels")
        rvq = t.config.model.rvq_levels
        if levels is not None and not 1 <= int(levels) <= rvq:
            raise UserError(f"cannot decode with {levels} levels", f"choose 1..{rvq} for this model")
        wave = np.asarray(args["wave"], dtype=np.float32).reshape(-1)
        if wave.size < t.config.model.hop:
            raise UserError(f"the clip is too short to reconstruct ({wave.size} samples)",
                            "choose a clip of at least a few milliseconds")
        audio = t.reconstruct(wave, None if levels is None else int(levels))
        return {"kind": "reconstruction", "id": cmd_id, "audio": audio, "levels": levels,
                "step": t.step_count, "tag": args.get("tag"),
                "sample_rate": t.config.model.sample_rate}

    # -- outgoing -------------------------------------------------------------------------------

    def _take(self, report) -> None:
        self.window_steps += 1
        self.latest_elapsed = report.elapsed
        events = report.events
        if self.sent_early:
            events = [e for e in events if not any(e is s for s in self.sent_early)]
            self.sent_early.clear()
        self._emit_events(events)
        for result in report.results:  # the trainer's own (from commands posted to it directly)
            self.w.result.emit(result)
        if report.terms and not report.skipped:
            self.rows.append((report.step, report.elapsed, report.terms, report.lr,
                              report.grad_norm, report.weights))
        if report.validation:
            self.validation.append((report.step, report.validation.get("mel_distance", math.nan)))
        if report.grad_shares:
            self.grad_shares = report.grad_shares

    def _emit_event(self, event: dict) -> None:
        self._emit_events([event])

    def _emit_events(self, events: list[dict]) -> None:
        for event in events:
            if "id" in event and event["id"] in self.inner_ids:
                event["id"] = self.inner_ids[event["id"]]
            if event["kind"] in ("refused", "failed"):
                what = event.get("setting") or event.get("command")
                why = event.get("reason") or event.get("error")
                self.w.error.emit(f"A change could not be applied: {what}: {why}")
        self.pending_events.extend(events)

    def _maybe_heavy(self, report, now: float) -> None:
        since = now - self.last_heavy
        fresh = report.codebook is not None or report.grad_shares is not None
        if not ((fresh and since >= HEAVY_MIN_INTERVAL_S) or since >= HEAVY_MAX_INTERVAL_S):
            return
        self.last_heavy = now
        codebook = report.codebook if report.codebook is not None else self.t.codebook_stats()
        self.w.heavy.emit({
            "step": report.step,
            "codebook": {k: codebook[k] for k in ("usage", "entropy", "dead_fraction") if k in codebook},
            "grad_shares": self.grad_shares,
        })
        self.grad_shares = None

    def _maybe_probe(self, report, now: float) -> None:
        if self.probe_wave is None:
            return
        since = now - self.last_probe
        # A slow model (a big preset on a CPU) probes less often: at most ~2 % of the time.
        longest = max(PROBE_MAX_INTERVAL_S, PROBE_COST_FACTOR * self.probe_cost)
        due = report.step % self.t.config.train.heavy_every == 0 and since >= PROBE_MIN_INTERVAL_S
        if not (due or since >= longest):
            return
        self.last_probe = now
        reconstruction = self.t.reconstruct(self.probe_wave)
        self.probe_cost = time.monotonic() - now
        self.w.probe.emit({
            "step": report.step,
            "sample_rate": self.t.config.model.sample_rate,
            "original": self.probe_wave,
            "reconstruction": reconstruction,
            "file": self.probe_file,
        })

    def flush(self, force: bool = False) -> None:
        """Send the batched scalars and events (at most every SCALARS_INTERVAL_S unless forced)."""
        now = time.monotonic()
        if not force and now - self.last_flush < SCALARS_INTERVAL_S:
            return
        self.last_flush = now
        if self.pending_events:
            events, self.pending_events = self.pending_events, []
            self.w.events.emit(events)
        span = now - self.window_start
        if not self.rows and not self.validation and not self.window_steps:
            return
        steps_per_second = self.window_steps / span if span > 0 and self.window_steps else math.nan
        if span >= 1.0:  # a rate over at least a second, then a new window
            self.window_start, self.window_steps = now, 0
            self.rate = steps_per_second
        rate = steps_per_second if math.isnan(self.rate) else self.rate
        batch = _batch_rows(self.rows)
        batch.update({
            "current_step": self.t.step_count,
            "current_elapsed": self.latest_elapsed,
            "steps_per_second": rate,
            "audio_seconds_per_second": rate * self.audio_per_step,
            "weights": dict(self.t.weights),
        })
        if self.validation:
            steps, values = zip(*self.validation)
            batch["validation"] = {"step": np.asarray(steps, np.float64),
                                   "mel_distance": np.asarray(values, np.float64)}
            self.validation = []
        self.rows = []
        self.w.scalars.emit(batch)

    def stopping(self, save: bool) -> None:
        """Log the stop and (with a run folder) save a checkpoint, sending both events."""
        t = self.t
        self._emit_event(t.log_event("stop"))
        if save and t.run is not None:
            # Through the trainer's mailbox so that the checkpoint event comes back to us.
            t.mailbox.command("save_checkpoint")
            self._emit_events(t.service_mailbox())


def _kind(name: str) -> str:
    return "reconstruction" if name == "reconstruct" else "validation"


def _batch_rows(rows: list[tuple]) -> dict[str, Any]:
    """Rows (step, elapsed, terms, lr, grad_norm, weights) as columns of numpy arrays."""
    n = len(rows)
    out: dict[str, Any] = {"step": np.empty(n, np.float64), "elapsed": np.empty(n, np.float64),
                           "lr": np.empty(n, np.float64), "grad_norm": np.empty(n, np.float64),
                           "terms": {}, "weight_rows": {}}
    for i, (step, elapsed, terms, lr, grad_norm, weights) in enumerate(rows):
        out["step"][i], out["elapsed"][i], out["lr"][i], out["grad_norm"][i] = step, elapsed, lr, grad_norm
        for table, values in ((out["terms"], terms), (out["weight_rows"], weights)):
            for name, value in values.items():
                column = table.get(name)
                if column is None:
                    column = table[name] = np.full(n, np.nan)
                column[i] = value
    return out
