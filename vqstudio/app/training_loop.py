"""The GUI's part of a training run, Qt-free: it drives the trainer's own loop and turns what the
trainer reports into a few throttled messages.

:class:`TrainingLoop` runs in the training thread. It iterates :meth:`Trainer.steps` (pause,
resume and stop are the trainer's, through its one mailbox) and hands every report, event and
result to ``emit(name, payload)`` -- the worker connects that to Qt signals; the tests collect it
in a list. Messages:

- ``"started"``  the run-info dict (:func:`vqstudio.train.run_info.trainer_info`) and the probe file
- ``"scalars"``  rows batched as numpy columns, at most every ``SCALARS_INTERVAL_S``
- ``"events"``   the trainer's events, batched with the scalars, each sent once
- ``"result"``   a command's answer (reconstruction, validation), at once, matched by its id
- ``"heavy"``    codebook usage and gradient shares, 0.2..2 s apart
- ``"probe"``    the probe clip and its reconstruction, every ``heavy_every`` steps (>= 1 s apart)
                 or every ~3 s (longer when a reconstruction is slow: at most ~2 % of the time)
- ``"state"``    "running" / "paused", following the trainer's pause and resume events
- ``"error"``    one line for the user (a refused setting, a failed command, a step refused)

Between steps (and while paused, after serving the mailbox) it publishes the model's weights into
``self.snapshots`` (:mod:`vqstudio.model.snapshot`) once a reader wants them (small models from the
start), at most ~2 % of the time, for :mod:`vqstudio.app.live_reconstruction`.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from typing import Any, Callable

import numpy as np

from vqstudio.errors import UserError
from vqstudio.model.snapshot import WeightSnapshots
from vqstudio.train.run_info import trainer_info

log = logging.getLogger("vqstudio.app")

SCALARS_INTERVAL_S = 0.05  # <= 20 Hz
HEAVY_MIN_INTERVAL_S = 0.2
HEAVY_MAX_INTERVAL_S = 2.0
PROBE_MIN_INTERVAL_S = 1.0
PROBE_MAX_INTERVAL_S = 3.0
PROBE_COST_FACTOR = 50.0
MAX_CONSECUTIVE_ERRORS = 3
SNAPSHOT_COST_FACTOR = 50.0  # a weight snapshot at most every 50 x its copy time
EAGER_SNAPSHOT_PARAMETERS = 5_000_000  # models up to this size are snapshot from the first step

Emit = Callable[[str, Any], None]


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class TrainingLoop:
    """One run, in the training thread: ``run()`` until the trainer's mailbox stops, then
    ``stopping(save)``; ``flush(force=True)`` last of all."""

    def __init__(self, trainer, emit: Emit, probe_seconds: float = 4.0):
        self.t = trainer
        self.emit = emit
        self.rows: list[tuple] = []
        self.validation: list[tuple[int, float]] = []
        self.pending_events: list[dict] = []
        self.grad_shares: dict | None = None
        now = time.monotonic()
        self.last_flush = self.last_heavy = self.window_start = now
        self.last_probe = -math.inf
        self.probe_cost = 0.0
        self.window_steps = 0
        self.rate = math.nan
        self.errors_in_a_row = 0
        self.latest_elapsed = trainer.elapsed
        self.audio_per_step = trainer.data.audio_seconds_per_step()
        self.probe_file: str | None = None
        self.probe_wave = self._probe_clip(probe_seconds)
        self.snapshots = WeightSnapshots()
        self.snapshots.wanted = trainer.model.parameter_count() <= EAGER_SNAPSHOT_PARAMETERS
        self.publish(force=True)
        emit("started", {**trainer_info(trainer), "probe_file": self.probe_file})

    def _probe_clip(self, seconds: float) -> np.ndarray | None:
        """A fixed few seconds of the first validation file (see TrainingData.probe_clip)."""
        try:
            probe = self.t.data.probe_clip(seconds)
        except UserError as exc:
            self.emit("error", f"No probe clip: {exc}")
            return None
        if probe is None:
            return None
        wave, self.probe_file = probe
        return wave

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        """Drive the trainer until its mailbox stops. A step refused for a reason the user can fix
        (a full disk, a bad file) is a notice; three in a row pause the run."""
        self.emit("state", "running")
        mailbox = self.t.mailbox
        while not mailbox.stopped:
            try:
                for report in self.t.steps(idle=self._idle):
                    self.errors_in_a_row = 0
                    self._take(report)
            except (UserError, OSError) as exc:
                self._user_error(exc)

    def _idle(self) -> None:
        """While paused: hand out what serving the mailbox produced, at once."""
        self.publish(force=True)  # only when something changed (a dead-code reset)
        self._deliver(*self.t.drain())
        self.flush()

    def _user_error(self, exc: Exception) -> None:
        self.errors_in_a_row += 1
        log.warning("training step refused: %s", exc)
        self.emit("error", str(exc))
        if self.errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
            self.emit("error", f"Training paused after {self.errors_in_a_row} errors in a row; "
                               "fix the cause and resume")
            self.errors_in_a_row = 0
            self.t.mailbox.pause()

    def stopping(self, save: bool) -> None:
        """Log the stop and (with a run folder and ``save``) write a checkpoint."""
        t = self.t
        t.record_event("stop")
        if save and t.run is not None:
            try:
                t.save_checkpoint(reason="stop")
            except (UserError, OSError) as exc:
                self.emit("error", f"The checkpoint at the stop could not be written: {exc}")
        self._deliver(*t.drain())
        self.publish(force=True)  # a reconstruction still waiting gets the last weights

    def publish(self, force: bool = False) -> None:
        """Copy the weights into the snapshots if a reader wants them and they changed (the step,
        or an event such as a dead-code reset); unless ``force``, at most every
        ``SNAPSHOT_COST_FACTOR`` times the last copy's cost."""
        s = self.snapshots
        if not s.wanted:
            return
        if not force and time.monotonic() - s.published_at < SNAPSHOT_COST_FACTOR * s.copy_seconds:
            return
        s.publish(self.t.model, (self.t.step_count, self.t.events_recorded))

    # -- incoming -------------------------------------------------------------------------------

    def _take(self, report) -> None:
        self.window_steps += 1
        self.latest_elapsed = report.elapsed
        self._deliver(report.events, report.results)
        if report.terms and not report.skipped:
            self.rows.append((report.step, report.elapsed, report.terms, report.lr,
                              report.grad_norm, report.weights))
        if report.validation:
            self.validation.append((report.step, report.validation.get("mel_distance", math.nan)))
        if report.grad_shares:
            self.grad_shares = report.grad_shares
        now = time.monotonic()
        self._maybe_heavy(report, now)
        self._maybe_probe(report, now)
        self.publish()
        self.flush()

    def _deliver(self, events: list[dict], results: list[dict]) -> None:
        """Events join the next batch (a pause or resume is sent at once, with the state);
        results go out now. Refusals and failures are also a one-line notice."""
        for event in events:
            self.pending_events.append(event)
            kind = event["kind"]
            if kind in ("refused", "failed"):
                what = event.get("setting") or event.get("command")
                why = event.get("reason") or event.get("error")
                self.emit("error", f"A change could not be applied: {what}: {why}")
            elif kind == "pause":
                self.flush(force=True)
                self.emit("state", "paused")
            elif kind == "resume":
                self.flush(force=True)
                self.window_start, self.window_steps = time.monotonic(), 0
                self.emit("state", "running")
        for result in results:
            if result.get("error"):
                self.emit("error", result["error"])
            self.emit("result", result)

    # -- outgoing -------------------------------------------------------------------------------

    def _maybe_heavy(self, report, now: float) -> None:
        since = now - self.last_heavy
        fresh = report.codebook is not None or report.grad_shares is not None
        if not ((fresh and since >= HEAVY_MIN_INTERVAL_S) or since >= HEAVY_MAX_INTERVAL_S):
            return
        self.last_heavy = now
        codebook = report.codebook if report.codebook is not None else self.t.codebook_stats()
        self.emit("heavy", {
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
        try:
            reconstruction = self.t.reconstruct(self.probe_wave)
        except Exception as exc:  # never worth the run: say so and stop probing
            log.error("the probe reconstruction failed:\n%s", traceback.format_exc())
            self.emit("error", f"The probe clip could not be reconstructed: {one_line(exc)}")
            self.probe_wave = None
            return
        self.probe_cost = time.monotonic() - now
        self.emit("probe", {
            "step": report.step,
            "sample_rate": self.t.config.model.sample_rate,
            "original": self.probe_wave,
            "reconstruction": reconstruction,
            "file": self.probe_file,
        })

    def flush(self, force: bool = False) -> None:
        """Send the batched events and scalars (at most every SCALARS_INTERVAL_S unless forced)."""
        now = time.monotonic()
        if not force and now - self.last_flush < SCALARS_INTERVAL_S:
            return
        self.last_flush = now
        if self.pending_events:
            events, self.pending_events = self.pending_events, []
            self.emit("events", events)
        if not self.rows and not self.validation and not self.window_steps:
            return
        span = now - self.window_start
        steps_per_second = self.window_steps / span if span > 0 and self.window_steps else math.nan
        if span >= 1.0:  # a rate over at least a second, then a new window
            self.window_start, self.window_steps = now, 0
            self.rate = steps_per_second
        rate = steps_per_second if math.isnan(self.rate) else self.rate
        batch = batch_rows(self.rows)
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
        self.emit("scalars", batch)


def batch_rows(rows: list[tuple]) -> dict[str, Any]:
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
