"""A run's whole history read from its folder, for the app's Runs list: curves from ``metrics.csv``
as numpy columns, events from ``events.jsonl``, the configuration, the parent of a fork, and how
many seconds of audio each step trained on. Qt-free; the app reads it off the GUI thread.

Nothing here refuses a run that can be shown: a folder from an older version (a config.toml that
no longer loads, columns missing), a ``metrics.csv`` cut mid-line, rows of the wrong width or
unreadable event lines become :attr:`RunHistory.notices`, one readable line each, and the rest is
shown. Only a folder with neither ``config.toml`` nor ``metrics.csv`` is refused (it is no run).

``metrics.csv`` is parsed in bulk (the complete lines of the file's width joined and read by
numpy's C parser: 100k rows of 20 columns in a fraction of a second, where the ``csv`` module
takes seconds); a file numpy cannot read whole falls back to a row-by-row read.

What was read of ``metrics.csv`` and ``events.jsonl`` is marked (:class:`FileMark`: the bytes of
whole lines read, and which file they were read from), so a follower of a run another process
trains goes on from there (``run_tail.RunTail.resuming``) instead of reading the file again.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vqstudio.config import Config
from vqstudio.errors import UserError
from vqstudio.train.file_tail import HEAD_BYTES
from vqstudio.train.runfolder import CONFIG_FILE, EVENTS_FILE, METRICS_FILE, RunFolder

READ_BLOCK = 1 << 16  # bytes of metrics.csv read per call
# metrics.csv lines parsed per C call: ~2.5 ms of 25 columns holding the interpreter lock (2000
# lines held it ~10 ms, and a reader descheduled meanwhile on a loaded machine kept the GUI
# thread waiting all that time)
PARSE_BLOCK = 500
MAX_FORK_DEPTH = 8  # parents followed for the audio-seconds schedule

Progress = Callable[[float], None]  # called with the share of metrics.csv read and parsed, 0..1


@dataclass(frozen=True)
class FileMark:
    """How far a file that another process appends to was read: ``offset`` bytes of whole lines,
    of the file that was then ``(device, inode)`` and began with ``head`` (its first
    ``HEAD_BYTES``: a file created again on a reused inode begins otherwise)."""

    offset: int
    device: int
    inode: int
    head: bytes


@dataclass
class RunHistory:
    """What one run folder holds, ready for a :class:`~vqstudio.app.store.RunStore`."""

    path: Path
    config: Config | None
    columns: dict[str, np.ndarray]  # metrics.csv, one float64 array per column
    events: list[dict[str, Any]]
    notices: list[str] = field(default_factory=list)
    # (first step, audio seconds per step) pieces, oldest first: a fork trained its parent's
    # steps at the parent's batch size (see audio_seconds)
    audio_schedule: list[tuple[float, float]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)  # metrics.csv's column names, in file order
    marks: dict[str, FileMark] = field(default_factory=dict)  # METRICS_FILE/EVENTS_FILE: read to

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> Path | None:
        """The run folder this one was forked from (``[forked_from] run``), if any."""
        run = (self.config.forked_from or {}).get("run") if self.config is not None else None
        return Path(run) if run else None

    @property
    def fork_step(self) -> int | None:
        step = (self.config.forked_from or {}).get("step") if self.config is not None else None
        return int(step) if step is not None else None

    @property
    def rows(self) -> int:
        steps = self.columns.get("step")
        return 0 if steps is None else int(steps.shape[0])


def audio_per_step(config: Config, world: int = 1) -> float:
    """Seconds of audio one training step sees (batch x segment, over ``world`` ranks)."""
    return float(config.data.batch_size) * float(config.data.segment_seconds) * max(1, int(world))


def audio_seconds(steps: np.ndarray, schedule: list[tuple[float, float]]) -> np.ndarray:
    """Audio seconds seen by the end of each step of ``steps``, by ``schedule`` pieces of
    (first step, seconds per step); NaN everywhere without a schedule."""
    steps = np.asarray(steps, dtype=np.float64)
    if not schedule:
        return np.full(steps.shape, np.nan)
    out = np.zeros(steps.shape)
    for i, (start, rate) in enumerate(schedule):
        stop = schedule[i + 1][0] if i + 1 < len(schedule) else math.inf
        out += rate * np.clip(steps, start, stop) - rate * start
    return out


def read_history(path: str | Path, progress: Progress | None = None) -> RunHistory:
    """The history of the run folder ``path``; a :class:`UserError` only when it holds no run.
    ``progress(share)`` is called as ``metrics.csv`` is read (up to 0.5 by bytes) and parsed
    (0.5 to 1 by rows), from the calling thread."""
    run = RunFolder(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path}: no such run folder", "pick a folder that holds config.toml")
    if not run.exists() and not run.metrics_path.is_file():
        raise UserError(f"{run.path} is not a run folder (no {CONFIG_FILE}, no {METRICS_FILE})",
                        "pick the folder that holds config.toml and metrics.csv")
    notices: list[str] = []
    config = None
    if not run.exists():
        notices.append(f"{run.path.name}: no {CONFIG_FILE}; curves shown without its settings")
    else:
        try:
            config = run.load_config()
        except UserError as exc:  # e.g. written by an older version with other settings
            notices.append(f"{run.path.name}: its {CONFIG_FILE} does not load here ({exc.problem}); "
                           "curves shown without its settings, so it cannot be resumed or compared")
    columns, metric_notes, header, metrics_mark = _read_metrics(run.metrics_path, progress)
    notices += [f"{run.path.name}: {note}" for note in metric_notes]
    events, bad_events, events_mark = _read_events(run.events_path)
    if bad_events:
        notices.append(f"{run.path.name}: {bad_events} line(s) of events.jsonl could not be read "
                       "(left out)")
    if columns and "elapsed" not in columns:
        notices.append(f"{run.path.name}: metrics.csv has no elapsed column (an older version): "
                       "it cannot be drawn against training time")
    history = RunHistory(run.path, config, columns, events, notices, header=header)
    history.marks = {name: mark for name, mark in ((METRICS_FILE, metrics_mark), (EVENTS_FILE, events_mark))
                     if mark is not None}
    history.audio_schedule = _schedule(history, _world(events))
    return history


def read_metrics_columns(path: Path, progress: Progress | None = None
                         ) -> tuple[dict[str, np.ndarray], list[str]]:
    """``metrics.csv`` as float64 columns (empty or unreadable cells NaN) and notes on what was
    left out: a last line cut mid-row, rows of the wrong width. ``progress``: see read_history."""
    columns, notes, _header, _mark = _read_metrics(path, progress)
    return columns, notes


def _read_metrics(path: Path, progress: Progress | None = None
                  ) -> tuple[dict[str, np.ndarray], list[str], list[str], FileMark | None]:
    """read_metrics_columns's columns and notes, the header, and the mark of what was read."""
    if not path.is_file():
        return {}, ["no metrics.csv yet (no step logged)"], [], None
    raw: list[bytes] = []
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        head = handle.read(HEAD_BYTES)
        handle.seek(0)
        size, done = max(1, st.st_size), 0
        while True:  # in pieces: no single call holds the GIL through a whole big file
            block = handle.readlines(READ_BLOCK)
            if not block:
                break
            raw += block
            done += sum(map(len, block))
            if progress is not None:
                progress(0.5 * min(1.0, done / size))
    notes = []
    if raw and not raw[-1].endswith(b"\n"):
        if raw[-1].strip() and len(raw) > 1:
            notes.append("metrics.csv ends in a cut line (a writer stopped mid-row): its last row "
                         "is left out")
        done -= len(raw.pop())  # read again, whole, by a follower once its newline is there
    mark = FileMark(done, st.st_dev, st.st_ino, head)
    lines = [line.decode("utf-8", errors="replace").rstrip("\r\n") for line in raw]
    if not lines:
        return {}, notes + ["metrics.csv is empty"], [], mark
    header = [name.strip() for name in lines[0].split(",")]
    width = len(header)
    body = [line for line in lines[1:] if line.count(",") == width - 1 and line[:1] not in ("", ",")]
    dropped = len(lines) - 1 - len(body)
    if dropped:
        notes.append(f"{dropped} row(s) of metrics.csv do not have its {width} columns (left out)")
    values = _parse_rows(body, width, progress)
    return {name: values[:, i].copy() for i, name in enumerate(header)}, notes, header, mark


def _parse_rows(body: list[str], width: int, progress: Progress | None = None) -> np.ndarray:
    """``body`` lines (``width`` fields each) as a ``[rows, width]`` array, in blocks of
    :data:`PARSE_BLOCK` lines: one C call over 100k rows would hold the interpreter lock for the
    whole parse and freeze the GUI thread meanwhile; between blocks it is free."""
    out = np.empty((len(body), width))
    for start in range(0, len(body), PARSE_BLOCK):
        block = body[start:start + PARSE_BLOCK]
        out[start:start + len(block)] = _parse_block(block, width)
        if progress is not None:
            progress(0.5 + 0.5 * (start + len(block)) / len(body))
    return out


def _parse_block(body: list[str], width: int) -> np.ndarray:
    # Empty cells read as NaN: ",," twice (a run of empties overlaps), and a last one at the end;
    # no line starts with an empty cell (a step is always there).
    joined = ",".join(body).replace(",,", ",nan,").replace(",,", ",nan,")
    if joined.endswith(","):
        joined += "nan"
    with warnings.catch_warnings():  # text it stops at is a DeprecationWarning, then a short read
        warnings.simplefilter("ignore")
        try:
            flat = np.fromstring(joined, sep=",")
        except ValueError:
            flat = np.empty(0)
    if flat.size == len(body) * width:
        return flat.reshape(len(body), width)
    rows = np.full((len(body), width), np.nan)  # something numpy's parser stops at: row by row
    for r, line in enumerate(body):
        for c, cell in enumerate(line.split(",")):
            try:
                rows[r, c] = float(cell)
            except ValueError:
                pass
    return rows


def _read_events(path: Path) -> tuple[list[dict[str, Any]], int, FileMark | None]:
    if not path.is_file():
        return [], 0, None
    try:
        with path.open("rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
    except OSError:
        return [], 0, None
    events, bad = [], 0
    end = data.rfind(b"\n") + 1  # whole lines; a last line without its newline is read as it is
    text = data.decode("utf-8", errors="replace")
    complete = text.endswith("\n")
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            if i < len(lines) - 1 or complete:  # a last line still being written is not an error
                bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
            if i == len(lines) - 1:
                end = len(data)  # a whole object without its newline yet: not read twice
        else:
            bad += 1
    return events, bad, FileMark(end, st.st_dev, st.st_ino, data[:HEAD_BYTES])


def _world(events: list[dict[str, Any]]) -> int:
    for event in events:
        if event.get("kind") == "start" and isinstance(event.get("world"), int):
            return event["world"]
    return 1


def _schedule(history: RunHistory, world: int) -> list[tuple[float, float]]:
    """Pieces of (first step, audio seconds per step): the parents' (followed while their folders
    and configurations are there), then this run's from its fork step."""
    if history.config is None:
        return []
    pieces = [(float(history.fork_step or 0), audio_per_step(history.config, world))]
    parent, seen = history.parent, {history.path.resolve()}
    for _ in range(MAX_FORK_DEPTH):
        if parent is None or pieces[0][0] <= 0 or parent.resolve() in seen:
            break
        seen.add(parent.resolve())
        try:
            config = RunFolder(parent).load_config()
        except UserError:
            break  # the parent is gone: its steps count at this run's rate
        start = (config.forked_from or {}).get("step")
        pieces.insert(0, (float(start or 0), audio_per_step(config)))
        parent = Path(config.forked_from["run"]) if (config.forked_from or {}).get("run") else None
    pieces[0] = (0.0, pieces[0][1])
    return pieces
