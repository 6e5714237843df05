"""Follow mode: the window shows a run that another process trains (``vqstudio train`` in a
terminal, a ``torchrun`` job writing to a shared folder) instead of offering to train it.

Opening a run folder whose lock is held by a live trainer (``experiments/run_tail.who_trains``)
loads what it has logged so far (off the GUI thread: ``run_opening.py``) and then polls it on a
timer in the GUI thread, every :data:`POLL_MS` (a poll that finds nothing new is three ``stat``
calls; new rows are parsed in well under a millisecond: ``benchmarks/follow_latency.py``): new
rows and events go into the run store, so curves grow as ``metrics.csv`` grows, and steps/s is
taken from the rows' own training clock. Each new checkpoint is heard here: the window's
:class:`~vqstudio.app.checkpoint_probe.CheckpointProbe` (its own thread) reconstructs the run's
probe clip through it and reads its codebook figures, which go into the store as the trainer's
``probe`` and ``heavy`` payloads would (the Spectrograms, Codebooks and Audition panels show
them); the audition panel hears another clip through it too (``follow_sink.py``); the sliders
write to the run's control file. A permanent status-bar label says who trains it, where, and when
it was last heard from. When the trainer ends or dies the window says so, keeps everything it
read, and Start resumes the run here.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from vqstudio.app.follow_sink import FollowSink
from vqstudio.app.run_folders import pretty_path
from vqstudio.experiments.run_history import RunHistory
from vqstudio.experiments.run_tail import Holder, RunTail, steps_per_second, who_trains

POLL_MS = 200  # how often the files are looked at
HOLDER_EVERY_S = 1.0  # how often the lock record is read (for the status bar and the end)
STALE_RATE_S = 15.0  # no row for this long: the speed is not known any more (paused, hung)


class RunFollower(QObject):
    """The window's follow mode; ``open(run_dir)`` starts it if another process trains the run."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.store = window.store
        self.worker = window.worker
        self.run_dir: Path | None = None
        self.tail: RunTail | None = None
        self.sink: FollowSink | None = None
        self.holder = Holder("none")
        self.following = False
        self.last_update = math.nan  # time.monotonic() when rows last arrived (the benchmark reads it)
        self._holder_read = -math.inf
        self._notes_shown: set[str] = set()
        self.label = QLabel()
        self.label.setToolTip("the process that trains the run shown, and when it was last heard from")
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    @property
    def probe_step(self) -> int | None:
        """The checkpoint step the probe on show came from."""
        return self.window.probe.step

    @property
    def active(self) -> bool:
        """Whether the window follows a run (also while its history is still being read)."""
        return self.following

    def open(self, run_dir: str | Path) -> bool:
        """Follow ``run_dir`` if another process trains it (returns True; what it logged so far
        is read in the background, then the tail); else leave it alone."""
        self.stop()
        holder = who_trains(run_dir)
        if not holder.following:
            return False
        self.run_dir, self.holder, self.following = Path(run_dir), holder, True
        self.sink = FollowSink(self.run_dir, self.worker.result.emit, self.window.show_notice)
        self.worker.follow_sink = self.sink
        self._holder_read = time.monotonic()
        self._show_holder()
        self.label.show()
        self._load()
        self.timer.start()
        return True

    def _load(self) -> None:
        """Everything logged so far, read in the background; then a tail from there on (also
        after a rewrite)."""
        self.tail = None
        self.window.opening.read(self.run_dir, self._loaded)

    def _loaded(self, history: RunHistory) -> None:
        if not self.following or history.path != self.run_dir:
            return  # stopped following meanwhile
        self.store.load_history(history)
        started = [e for e in history.events if e.get("kind") == "start" and e.get("device")]
        if started:  # where the trainer trains, for the status bar's device read-out
            world = started[-1].get("world") or 1
            device = str(started[-1]["device"]) + (f" x {world}" if world > 1 else "")
            self.store.info = {**self.store.info, "device": device}
        for note in history.notices:
            self._note(note)
        self.tail = RunTail.resuming(history)  # from where the background read stopped
        self.last_update = time.monotonic()
        self._show_speed()
        self.window.statusBar().showMessage(f"Following {pretty_path(self.run_dir)} from step {self.store.current_step}")

    def poll(self) -> None:
        """One look at the files (the timer's slot)."""
        if self.tail is None:
            return
        update = self.tail.poll()
        if update.restarted:  # a resume rewrote the files: read them again whole
            self._load()
            return
        if update.rows:
            self.store.append_rows(update.rows)
            self.last_update = time.monotonic()
            self._show_speed()
        elif time.monotonic() - self.last_update > STALE_RATE_S and math.isfinite(self.store.steps_per_second):
            self.store.set_speed(math.nan, math.nan)
        if update.events:
            self.store.on_events(update.events)
        if update.damaged_rows:
            self._note(f"{self.run_dir.name}: {update.damaged_rows} damaged row(s) of metrics.csv left out")
        if update.checkpoint is not None:
            self._new_checkpoint(update.checkpoint)
        now = time.monotonic()
        if now - self._holder_read >= HOLDER_EVERY_S:
            self._holder_read = now
            self.holder = who_trains(self.run_dir)
            if not self.holder.following:
                self._trainer_ended()
                return
        self._show_holder()

    def _show_speed(self) -> None:
        """steps/s (and audio seconds per second) from the rows' own training clock."""
        store = self.store
        rate = steps_per_second(store.steps.view(), store.elapsed.view())
        per_step = store.audio_schedule[-1][1] if store.audio_schedule else math.nan
        store.set_speed(rate, rate * per_step)

    def _new_checkpoint(self, checkpoint: dict) -> None:
        """Hear the probe through it (Spectrograms, Codebooks, the audition's probe clip) and
        the audition's other clip too."""
        self.window.probe.hear(self.run_dir)
        audition = self.window.panels.get("audition")
        changed = getattr(audition, "model_changed", None)
        if changed is not None:
            changed()

    def _show_holder(self) -> None:
        self.label.setText(f"following: {self.holder.describe()}")

    def _trainer_ended(self) -> None:
        name, holder = self.run_dir.name, self.holder
        self.poll_last()
        step = self.store.current_step
        if holder.state == "gone":
            heard = f" (last heard from {holder.heard_ago:.0f} s ago)" if math.isfinite(holder.heard_ago) else ""
            text = (f"{name}: {holder.describe()}{heard}. "
                    f"Everything it wrote up to step {step} is kept; Start resumes it from its latest checkpoint.")
        else:
            text = f"{name}: its trainer closed the run at step {step}. Start resumes it here."
        if self.tail is not None and self.tail.partial_row:
            text += " The last line of metrics.csv was cut mid-row and is left out."
        self.stop()
        self.window.show_notice(text)
        self.window.statusBar().showMessage(text)
        self.window._update_actions()

    def poll_last(self) -> None:
        """Read what the trainer wrote before it ended."""
        update = self.tail.poll() if self.tail is not None else None
        if update and not update.restarted:
            self.store.append_rows(update.rows)
            self.store.on_events(update.events)

    def _note(self, text: str) -> None:
        if text not in self._notes_shown:
            self._notes_shown.add(text)
            self.window.show_notice(text)

    def stop(self) -> None:
        """Stop following (the run's data stay in the store)."""
        self.timer.stop()
        self.following = False
        if self.worker.follow_sink is self.sink:
            self.worker.follow_sink = None
        if self.sink is not None:
            self.sink.close()
        self.sink = self.tail = None
        self.label.hide()

    def refuses_start(self) -> bool:
        """While following, Start is refused with a notice saying why and what to do instead."""
        if self.active:
            self.window.show_notice(
                f"{self.run_dir.name} is {self.holder.describe()}, and shown here as it trains; "
                f"to train a variant, fork it: vqstudio train --from {self.run_dir} --run NEW")
        return self.active
