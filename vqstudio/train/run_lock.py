"""One trainer per run folder: the lock file ``trainer.lock`` and its heartbeat.

Two processes writing one run folder would interleave ``metrics.csv`` rows, fight over
``latest.json`` and set each other's work aside on resume, so a trainer takes the folder's lock
before it writes anything, and a second one is refused in one line naming who holds it.

How it is decided:

- The lock is an advisory ``flock`` on ``trainer.lock``, held by an open descriptor for as long as
  the trainer lives. The kernel drops it the moment the process dies (``kill -9`` included), so on
  one host a dead holder can never block anyone; no pid guessing is involved.
- The file also says who holds it, as one JSON object: ``pid``, ``host``, ``started`` and
  ``heartbeat`` (Unix times). The holder rewrites ``heartbeat`` at most every
  :data:`HEARTBEAT_SECONDS` (:meth:`RunLock.beat`, called between steps and while paused; it
  costs one clock read otherwise). The record is padded to a fixed size and rewritten in place,
  so a reader never sees it shorter or longer.
- On a shared filesystem ``flock`` may not reach other hosts, so a record from another host whose
  heartbeat is younger than :data:`STALE_SECONDS` refuses too, even when the ``flock`` was free.
- A record left behind by a holder that is gone (its ``flock`` free, and on another host no
  heartbeat for :data:`STALE_SECONDS`) is stale: it is taken over and :attr:`RunLock.taken_over`
  says whose it was, for the trainer to log.

Released on :meth:`RunLock.release` (the trainer's ``close``): the file is removed while the lock
is still held. A trainer that takes a descriptor of a file removed meanwhile notices (the path no
longer names its inode) and tries again, so two holders never hold two different files.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from vqstudio.errors import UserError

LOCK_FILE = "trainer.lock"
HEARTBEAT_SECONDS = 5.0  # the holder says it is alive at least this often while it trains
STALE_SECONDS = 120.0  # a holder on another host not heard from for this long is gone
RECORD_BYTES = 512  # the record's fixed size on disk (JSON padded with spaces)


class RunBusyError(UserError):
    """The run folder is being trained by another process."""


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOCK_FILE


def read_lock(run_dir: str | Path) -> dict[str, Any] | None:
    """The holder's record (``pid``, ``host``, ``started``, ``heartbeat``), or None when the folder
    has no lock file or the file holds no readable record (being written right now, or damaged)."""
    path = lock_path(run_dir)
    for _ in range(3):
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        try:
            record = json.loads(text)
            if isinstance(record, dict) and {"pid", "host", "heartbeat"} <= set(record):
                return record
        except json.JSONDecodeError:
            pass
        time.sleep(0.01)
    return None


def describe_holder(record: dict[str, Any] | None, now: float | None = None) -> str:
    """``pid 1234 on host gpu7, started 3 min ago, last heard from 2 s ago`` (or as much as is known)."""
    if record is None:
        return "another process (its lock record is unreadable)"
    now = time.time() if now is None else now
    parts = [f"pid {record.get('pid')} on host {record.get('host')}"]
    if isinstance(record.get("started"), (int, float)):
        parts.append(f"started {_ago(now - record['started'])}")
    if isinstance(record.get("heartbeat"), (int, float)):
        parts.append(f"last heard from {_ago(now - record['heartbeat'])}")
    return ", ".join(parts)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


class RunLock:
    """The held lock of one run folder; get one with :meth:`acquire`."""

    def __init__(self, run_dir: Path, fd: int, taken_over: str | None,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.run_dir = run_dir
        self.path = lock_path(run_dir)
        self.taken_over = taken_over  # whose stale lock this replaced, for the log; None if none
        self.heartbeat_seconds = heartbeat_seconds
        self._fd: int | None = fd
        self.record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._last_beat = -float("inf")
        os.ftruncate(fd, 0)  # whatever an earlier holder left
        self.beat()

    @classmethod
    def acquire(cls, run_dir: str | Path, *, stale_seconds: float = STALE_SECONDS,
                heartbeat_seconds: float = HEARTBEAT_SECONDS) -> "RunLock":
        """Take the run folder's lock (creating the folder if needed), or raise
        :class:`RunBusyError` naming the holder. A stale lock is taken over (see the module)."""
        run_dir = Path(run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UserError(f"{run_dir} is a file, not a folder", "choose a folder for the run") from None
        path = lock_path(run_dir)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(run_dir, read_lock(run_dir)) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the holder removed this file as we opened it: take the new one
        previous = read_lock(run_dir)
        host = socket.gethostname()
        if previous is not None and previous.get("host") != host:
            heard = time.time() - float(previous.get("heartbeat", 0) or 0)
            if heard < stale_seconds:  # alive elsewhere; this host's flock cannot see it
                os.close(fd)
                raise _busy(run_dir, previous)
        note = None
        if previous is not None:
            note = f"took over the stale lock of {describe_holder(previous)}"
        return cls(run_dir, fd, note, heartbeat_seconds)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def beat(self) -> None:
        """Say the holder is alive: rewrites the record if the last beat is older than
        ``heartbeat_seconds``; otherwise one clock read."""
        now = time.monotonic()
        if self._fd is None or now - self._last_beat < self.heartbeat_seconds:
            return
        self._last_beat = now
        self.record["heartbeat"] = time.time()
        text = json.dumps(self.record)
        data = (text + " " * max(0, RECORD_BYTES - 1 - len(text)) + "\n").encode("utf-8")
        try:
            os.pwrite(self._fd, data, 0)
            if len(data) != RECORD_BYTES:
                os.ftruncate(self._fd, len(data))
        except OSError:
            pass  # a full disk must not stop training; the flock still holds

    def release(self) -> None:
        """Remove the lock file and let go (idempotent)."""
        if self._fd is None:
            return
        try:
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a trainer dropped without close() must not keep the folder
        try:
            self.release()
        except Exception:
            pass


def _busy(run_dir: Path, record: dict[str, Any] | None) -> RunBusyError:
    return RunBusyError(
        f"{run_dir} is being trained by {describe_holder(record)}",
        "wait for it to finish (or stop it: SIGTERM saves a checkpoint), or train a fork of it "
        f"into another folder: vqstudio train --from {run_dir} --run NEW",
    )
