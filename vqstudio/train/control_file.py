"""The run folder's control file ``control.jsonl``: live changes asked for by other processes.

A trainer running somewhere else (``vqstudio train`` in a terminal, a ``torchrun`` job on a GPU
machine writing to a shared folder) cannot be reached through its in-process mailbox, so the app's
sliders and ``vqstudio set`` append their changes here, and the trainer reads them between steps.

- One JSON object per line and per change: ``id`` (unique), ``time``, ``setting`` (as the user
  wrote it: ``lr``, ``mrstft``, ``loss.mel_norm``, ``loss.weights.mel_l1/1024``), ``value`` and
  ``source`` (who asked). Lines are appended under an exclusive ``flock`` on the file and written
  with one ``write`` each, so two writers never interleave within a line.
- :class:`ControlReader` follows it with :class:`~vqstudio.train.file_tail.FileTail` (a stat
  when nothing changed; only whole lines, so a line being written is waited for; a file that got
  shorter or was replaced is read again from the start, skipping what was handled).
- Which lines are handled is read back from ``events.jsonl``: every line the trainer served is
  logged there with its ``control`` id (as the event its setting writes, as ``refused``, or as a
  ``control`` event when it changed nothing). So a change asked for while nobody trains the run
  applies when it is resumed, and a resume that sets work aside applies again what was lost.
- :func:`resolve` maps a user's name to a live setting of :mod:`vqstudio.train.settings`; a line
  that does not parse, or names nothing live, is refused by the trainer and training goes on.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from vqstudio.train import settings as live_settings
from vqstudio.train.file_tail import FileTail

CONTROL_FILE = "control.jsonl"
SECTIONS = ("loss.weights.", "weight/", "loss.", "train.", "model.", "data.")


def control_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONTROL_FILE


def append_changes(run_dir: str | Path, changes: Iterable[tuple[str, Any]], source: str | None = None
                   ) -> list[dict[str, Any]]:
    """Append one line per ``(setting, value)`` to the run's control file, under its lock; returns
    the lines written (with their ids). Raises OSError if the folder cannot be written."""
    source = source or f"pid {os.getpid()} on {socket.gethostname()}"
    lines = [{"id": uuid.uuid4().hex[:12], "time": time.time(), "setting": str(name), "value": value,
              "source": source} for name, value in changes]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
    fd = os.open(control_path(run_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)  # a reader on another host of a shared filesystem sees it sooner
    finally:
        os.close(fd)  # drops the flock
    return lines


@dataclass
class ControlLine:
    """One line read: ``id`` (or ``line@OFFSET`` for a line without one), and either the change
    (``setting``, ``value``) or the ``problem`` that makes it unusable."""

    id: str
    setting: str = ""
    value: Any = None
    source: str = ""
    problem: str | None = None


def parse_line(text: str, offset: int) -> ControlLine:
    fallback = f"line@{offset}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return ControlLine(fallback, problem=f"not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(record, dict):
        return ControlLine(fallback, problem="not a JSON object")
    ident = str(record.get("id") or fallback)
    setting = record.get("setting")
    if not isinstance(setting, str) or not setting or "value" not in record:
        return ControlLine(ident, problem='needs "setting" (a name) and "value"')
    return ControlLine(ident, setting, record["value"], str(record.get("source", "")))


def handled_ids(events: Iterable[dict[str, Any]]) -> set[str]:
    """The control ids that ``events`` (events.jsonl's objects) say were served."""
    return {str(e["control"]) for e in events if isinstance(e, dict) and e.get("control") is not None}


class ControlReader:
    """Follows one control file; :meth:`poll` returns the whole new lines not yet handled."""

    def __init__(self, path: str | Path, handled: Iterable[str] = ()):
        self.handled = set(handled)
        self._tail = FileTail(path)

    def poll(self) -> list[ControlLine]:
        start = self._tail.offset
        raw, restarted = self._tail.read()
        if restarted:
            start = 0
        lines = []
        for data in raw:
            text = data.decode("utf-8", errors="replace").strip()
            if text:
                line = parse_line(text, start)
                if line.id not in self.handled:
                    self.handled.add(line.id)
                    lines.append(line)
            start += len(data) + 1
        return lines


def resolve(name: str, live: Iterable[str], terms: Iterable[str], keys: dict[str, str] | None = None
            ) -> tuple[str, str] | None:
    """The live setting ``name`` means, as ``("weights", term)`` or ``(setting, "")``; None if it
    names nothing live. ``loss.weights.mrstft``, ``weight/mrstft`` and ``mrstft`` are the weight of
    term ``mrstft``; ``train.lr`` and ``lr`` the learning rate; ``loss.mel_norm`` the setting
    ``loss.mel_norm`` if the table has it by that name, else ``mel_norm``. ``keys`` maps
    configuration keys to setting names where they differ."""
    live, terms = set(live), set(terms)
    if keys and name in keys and keys[name] in live:  # a configuration key the table names
        return keys[name], ""
    if name in live and name != "weights":
        return name, ""
    for prefix in SECTIONS:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if prefix in ("loss.weights.", "weight/"):
                return ("weights", rest) if rest in terms else None
            if rest in live and rest != "weights":
                return rest, ""
    if name in terms:
        return "weights", name
    return None


def live_names(live: Iterable[str], terms: Iterable[str]) -> list[str]:
    """What :func:`resolve` accepts, for messages: the live settings, then the loss terms."""
    return [n for n in live if n != "weights"] + list(terms)


def setting_keys() -> dict[str, str]:
    """Configuration key -> live setting name, from the settings table (where it has one)."""
    by_key = getattr(live_settings, "BY_KEY", {})
    return {key: getattr(row, "name", key) for key, row in by_key.items()}
