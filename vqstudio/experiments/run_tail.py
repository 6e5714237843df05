"""Following a run folder that another process trains: who trains it, and what it wrote since.

:func:`who_trains` reads ``trainer.lock`` (never locking it: a reader must not keep a trainer
out) and says whether the holder is alive. :class:`RunTail` follows ``metrics.csv``,
``events.jsonl`` and ``checkpoints/latest.json`` from their last byte offsets
(:class:`~vqstudio.train.file_tail.FileTail`): a half-written last line is waited for, a row
that is complete but has the wrong number of fields is counted as damaged and left out, and a
file a resume rewrote is read again from the start (``restarted``: forget the rows and events
you had). A tail made with :meth:`RunTail.resuming` starts where a
:class:`~vqstudio.experiments.run_history.RunHistory` stopped reading (its marks), so a follower
that read the run in the background never reads it again where it polls. Any number of readers
may follow one run; none of them writes to it. Qt-free.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vqstudio.experiments.run_history import FileMark, RunHistory
from vqstudio.train.checkpoint import LATEST
from vqstudio.train.file_tail import FileTail
from vqstudio.train.run_lock import STALE_SECONDS, describe_holder, lock_path, read_lock
from vqstudio.train.runfolder import CHECKPOINT_DIR, EVENTS_FILE, METRICS_FILE

RATE_WINDOW_S = 10.0  # training seconds of rows a follower's steps/s is taken over
SILENT_SECONDS = 20.0  # no heartbeat for this long (four missed beats): "not heard from"


@dataclass
class Holder:
    """Who trains a run folder. ``state``: ``"training"`` (alive, heard from lately),
    ``"silent"`` (alive, or maybe, but no heartbeat for :data:`SILENT_SECONDS`: a long step or a
    hang), ``"gone"`` (the lock file is left behind by a process that is dead, or silent on
    another host past the lock's stale limit), ``"none"`` (no lock file: nobody trains it)."""

    state: str
    record: dict[str, Any] | None = None
    heard_ago: float = math.nan

    @property
    def following(self) -> bool:
        """Whether a reader should follow the run (another process is, or may be, writing it)."""
        return self.state in ("training", "silent")

    def describe(self, now: float | None = None) -> str:
        who = describe_holder(self.record, now)
        if self.state == "training":
            return f"trained by {who}"
        if self.state == "silent":
            if not math.isfinite(self.heard_ago):
                return f"trained by {who}"  # a trainer starting: its record is not written yet
            return f"trained by {who}: not heard from for {self.heard_ago:.0f} s"
        if self.state == "gone":
            return f"its trainer ({who}) has stopped without closing the run"
        return "nobody is training it"


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        return True  # someone else's process: it exists
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    return True


def who_trains(run_dir: str | Path, now: float | None = None) -> Holder:
    """The state of ``run_dir``'s trainer, from its lock record (see :class:`Holder`)."""
    now = time.time() if now is None else now
    if not lock_path(run_dir).exists():
        return Holder("none")
    record = read_lock(run_dir)
    if record is None:  # the file is there but no record: a trainer starting, or one killed as it started
        try:
            written = lock_path(run_dir).stat().st_mtime
        except OSError:
            return Holder("none")
        return Holder("silent" if now - written < SILENT_SECONDS else "gone")
    heard = now - float(record.get("heartbeat") or 0)
    if record.get("host") == socket.gethostname():
        if not _alive(record.get("pid")):
            return Holder("gone", record, heard)
        return Holder("training" if heard < SILENT_SECONDS else "silent", record, heard)
    if heard < SILENT_SECONDS:
        return Holder("training", record, heard)
    return Holder("silent" if heard < STALE_SECONDS else "gone", record, heard)


@dataclass
class TailUpdate:
    """What :meth:`RunTail.poll` found since the last call."""

    rows: dict[str, np.ndarray] = field(default_factory=dict)  # new rows, by column (floats)
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # latest.json's {"step", "file"} when it moved
    restarted: bool = False  # metrics.csv or events.jsonl was rewritten: these are all there is
    damaged_rows: int = 0  # complete rows left out (wrong number of fields)
    damaged_events: int = 0  # complete event lines that are not JSON objects

    @property
    def row_count(self) -> int:
        return len(next(iter(self.rows.values()))) if self.rows else 0

    def __bool__(self) -> bool:
        return bool(self.rows or self.events or self.checkpoint or self.restarted)


class RunTail:
    """Follows one run folder; construct, then :meth:`poll` as often as you like.

    ``after_step`` and ``after_time``: what the caller already has (read with
    :class:`~vqstudio.train.runfolder.RunFolder` just before): the leading rows up to that step
    and events up to that time are left out of the first reading, barely parsed. After a restart
    nothing is left out."""

    def __init__(self, run_dir: str | Path, after_step: float | None = None, after_time: float | None = None):
        self.run_dir = Path(run_dir)
        self._after_step, self._after_time = after_step, after_time
        self._metrics = FileTail(self.run_dir / METRICS_FILE)
        self._events = FileTail(self.run_dir / EVENTS_FILE)
        self._latest = self.run_dir / CHECKPOINT_DIR / LATEST
        self._latest_seen: tuple[int, int, int] | None = None
        self.header: list[str] | None = None
        self.bytes_read = 0  # whole lines of both files this tail's polls have read

    @classmethod
    def resuming(cls, history: RunHistory) -> "RunTail":
        """A tail that goes on from where ``history`` was read to: its first :meth:`poll` reads
        only what was written since (or, if a file was rewritten meanwhile, says ``restarted``)."""
        tail = cls(history.path)
        metrics, events = history.marks.get(METRICS_FILE), history.marks.get(EVENTS_FILE)
        if metrics is not None and metrics.offset > 0:
            _start_at(tail._metrics, metrics)
            tail.header = list(history.header) or None
        if events is not None and events.offset > 0:
            _start_at(tail._events, events)
        return tail

    @property
    def offsets(self) -> tuple[int, int]:
        """Bytes of ``metrics.csv`` and ``events.jsonl`` read so far (whole lines)."""
        return self._metrics.offset, self._events.offset

    @property
    def partial_row(self) -> bool:
        """Whether ``metrics.csv`` ends in a row not yet finished (or cut by a killed writer)."""
        return self._metrics.partial > 0

    def poll(self) -> TailUpdate:
        update = TailUpdate()
        lines, restarted = self._metrics.read()
        self.bytes_read += sum(map(len, lines)) + len(lines)
        if restarted:
            self.header, self._after_step, self._after_time = None, None, None
        update.restarted = restarted
        if lines and self.header is None:
            self.header = next(csv.reader([lines[0].decode("utf-8", errors="replace")]), None) or None
            lines = lines[1:]
        if self._after_step is not None and lines:
            lines = self._rows_after(lines)
        if lines and self.header:
            update.rows, update.damaged_rows = _columns(self.header, lines)
        lines, restarted = self._events.read()
        self.bytes_read += sum(map(len, lines)) + len(lines)
        if restarted:
            self._after_time = None
        update.restarted = update.restarted or restarted
        for line in lines:
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                event = None
            if isinstance(event, dict):
                if self._after_time is not None:
                    if _number(event.get("time")) <= self._after_time:
                        continue
                    self._after_time = None
                update.events.append(event)
            elif line.strip():
                update.damaged_events += 1
        update.checkpoint = self._checkpoint_moved()
        return update

    def _rows_after(self, lines: list[bytes]) -> list[bytes]:
        """``lines`` without the leading rows at steps up to ``after_step`` (steps only grow)."""
        for i, line in enumerate(lines):
            if _number(line.split(b",", 1)[0]) > self._after_step:
                self._after_step = None
                return lines[i:]
        return []

    def _checkpoint_moved(self) -> dict[str, Any] | None:
        try:
            st = os.stat(self._latest)
        except OSError:
            return None
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen == self._latest_seen:
            return None
        try:
            pointer = json.loads(self._latest.read_text())
            if not isinstance(pointer, dict) or "file" not in pointer:
                return None
        except (OSError, json.JSONDecodeError):
            return None  # replaced atomically, so this is damage: try again next time
        self._latest_seen = seen
        return {"step": int(pointer.get("step", 0)), "file": str(pointer["file"]),
                "path": str(self._latest.parent / str(pointer["file"]))}


def _start_at(tail: FileTail, mark: FileMark) -> None:
    """Put ``tail`` where a reading that left ``mark`` stopped, as its own read would have left
    it (FileTail, in train/, has no call for that: its three fields are set here)."""
    tail.offset, tail._identity, tail._head = mark.offset, (mark.device, mark.inode), mark.head


def steps_per_second(steps: np.ndarray, elapsed: np.ndarray, window_s: float = RATE_WINDOW_S) -> float:
    """Training speed from the rows themselves: steps per second of the trainer's own clock
    (``elapsed``, training time) over the last ``window_s`` seconds of it, so it reads the same
    however late the rows are read; NaN with fewer than two timed rows or no time between them."""
    steps = np.asarray(steps, dtype=np.float64)[-4096:]  # enough rows for any window; O(1)
    elapsed = np.asarray(elapsed, dtype=np.float64)[-steps.shape[0]:] if steps.size else steps
    timed = np.isfinite(elapsed) & np.isfinite(steps)
    steps, elapsed = steps[timed], elapsed[timed]
    if steps.shape[0] < 2:
        return math.nan
    first = min(int(np.searchsorted(elapsed, elapsed[-1] - window_s, side="left")), steps.shape[0] - 2)
    span = elapsed[-1] - elapsed[first]
    return float((steps[-1] - steps[first]) / span) if span > 0 else math.nan


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return -math.inf


def _columns(header: list[str], lines: list[bytes]) -> tuple[dict[str, np.ndarray], int]:
    """Rows (CSV lines) as float columns; rows of the wrong width are counted, not used."""
    width = len(header)
    rows = [r for r in csv.reader(line.decode("utf-8", errors="replace") for line in lines)]
    good = [r for r in rows if len(r) == width]
    damaged = len(rows) - len(good)
    if not good:
        return {}, damaged
    table = np.full((len(good), width), np.nan)
    for i, row in enumerate(good):
        for j, value in enumerate(row):
            if value:
                try:
                    table[i, j] = float(value)
                except ValueError:
                    pass
    return {name: table[:, j] for j, name in enumerate(header)}, damaged
