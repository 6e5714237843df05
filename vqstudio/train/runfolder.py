"""The run folder: ``config.toml``, ``metrics.csv``, ``events.jsonl``, ``checkpoints/`` and, once
a run has been resumed from an earlier point than it had reached, ``rolled_back/``.

Everything is appended and flushed as it happens, so another process (the GUI following a CLI or
``torchrun`` job, pandas in a notebook) can read the run while it continues. A row is written
whole with one ``write`` call, so a reader never sees half a line's worth of columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any, Iterable

from vqstudio.atomic import atomic_write_text
from vqstudio.config import Config, load_config
from vqstudio.errors import ConfigError

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.csv"
EVENTS_FILE = "events.jsonl"
CHECKPOINT_DIR = "checkpoints"
ROLLED_BACK_DIR = "rolled_back"

BASE_COLUMNS = ["step", "wall_time", "elapsed", "lr", "grad_norm", "total"]
VALIDATION_COLUMN = "val/mel_distance"  # the validation mel distance, on validation steps


def weight_column(term: str) -> str:
    return f"weight/{term}"


def metric_columns(config: Config, extra_parts: Iterable[str] = ()) -> list[str]:
    """Columns of ``metrics.csv``: bookkeeping, one per loss term (named as the term), logged
    parts, then one per weight (``weight/<term>``)."""
    terms = config.loss.term_names()
    return BASE_COLUMNS + terms + sorted(set(extra_parts) - set(terms)) + [weight_column(t) for t in terms]


class RunFolder:
    """A run's folder on disk. ``RunFolder.create`` starts one; ``RunFolder(path)`` opens one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- layout -------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def rolled_back_dir(self) -> Path:
        return self.path / ROLLED_BACK_DIR

    def exists(self) -> bool:
        return self.config_path.is_file()

    def set_aside_after(self, step: int) -> tuple[int, Path | None]:
        """Move the metrics rows and events logged after ``step`` (the checkpoint a resume starts
        from) out of ``metrics.csv`` and ``events.jsonl`` into ``rolled_back/``, so the run's own
        files hold one history and nothing is deleted. Returns (steps lost, the folder written)
        or (0, None) when nothing was after ``step``. The copies are written before the originals
        are shortened, each atomically: a crash in between leaves a duplicate, never a loss."""
        header, kept_rows, late_rows = _split_metrics(self.metrics_path, step)
        kept_events, late_events, last_event_step = _split_events(self.events_path, step)
        if not late_rows and not late_events:
            return 0, None
        last_row_step = max((_row_step(r) or 0 for r in late_rows), default=step)
        lost = max(last_row_step, last_event_step) - step
        stem = f"after-step-{step:08d}"
        n = 1
        while (self.rolled_back_dir / f"events-{stem}.jsonl").exists() or \
                (self.rolled_back_dir / f"metrics-{stem}.csv").exists():
            n += 1
            stem = f"after-step-{step:08d}-{n}"
        if late_rows:
            atomic_write_text(self.rolled_back_dir / f"metrics-{stem}.csv", header + "".join(late_rows))
        if late_events:
            atomic_write_text(self.rolled_back_dir / f"events-{stem}.jsonl", "".join(late_events))
        if late_rows:
            atomic_write_text(self.metrics_path, header + "".join(kept_rows))
        if late_events:
            atomic_write_text(self.events_path, "".join(kept_events))
        return lost, self.rolled_back_dir

    @classmethod
    def create(cls, path: str | Path, config: Config) -> "RunFolder":
        run = cls(path)
        if run.exists():
            raise ConfigError(
                f"{run.path} already holds a run", "open it to resume, or choose another folder"
            )
        if run.path.exists() and not run.path.is_dir():
            raise ConfigError(f"{run.path} is a file, not a folder", "choose a folder for the run")
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.config_path, config.to_toml())
        return run

    def load_config(self) -> Config:
        if not self.exists():
            raise ConfigError(
                f"{self.path} is not a run folder (no {CONFIG_FILE})",
                "pick the folder that holds config.toml, or start a new run there",
            )
        return load_config(self.config_path)

    def read_metrics(self) -> dict[str, list[float]]:
        """All complete rows of ``metrics.csv`` as columns of floats (for the GUI's curves)."""
        if not self.metrics_path.is_file():
            return {}
        with self.metrics_path.open(newline="") as handle:
            text = handle.read()
        if not text.endswith("\n"):  # a writer mid-row in another process: skip the tail
            text = text[: text.rfind("\n") + 1]
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return {}
        header, body = rows[0], rows[1:]
        columns: dict[str, list[float]] = {name: [] for name in header}
        for row in body:
            if len(row) != len(header):
                continue
            for name, value in zip(header, row):
                columns[name].append(_to_float(value))
        return columns

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events_path.is_file():
            return []
        events = []
        for line in self.events_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line still being written by another process
        return events


def _to_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def _row_step(line: str) -> int | None:
    try:
        return int(float(line.split(",", 1)[0]))
    except ValueError:
        return None


def _split_metrics(path: Path, step: int) -> tuple[str, list[str], list[str]]:
    """(header, rows up to ``step``, rows after it) of ``metrics.csv``; a half-written last row
    (a killed writer) goes with the later ones."""
    if not path.is_file():
        return "", [], []
    lines = path.read_text().splitlines(keepends=True)
    if not lines:
        return "", [], []
    kept, late = [], []
    for line in lines[1:]:
        row_step = _row_step(line)
        complete = line.endswith("\n")
        (kept if complete and row_step is not None and row_step <= step else late).append(
            line if complete else line + "\n")
    return lines[0], kept, late


def _split_events(path: Path, step: int) -> tuple[list[str], list[str], int]:
    """(event lines up to ``step``, lines after it, the last step among those) of ``events.jsonl``."""
    if not path.is_file():
        return [], [], step
    kept, late, last = [], [], step
    for line in path.read_text().splitlines(keepends=True):
        try:
            event_step = int(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            late.append(line if line.endswith("\n") else line + "\n")  # half written: set aside
            continue
        if event_step <= step:
            kept.append(line)
        else:
            late.append(line)
            last = max(last, event_step)
    return kept, late, last


class MetricsWriter:
    """Appends one row per logged step to ``metrics.csv``; a resumed run keeps its header (rows
    after the checkpoint it resumes from are set aside first: :meth:`RunFolder.set_aside_after`)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = path
        if path.is_file() and path.stat().st_size > 0:
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), None)
            if header:
                columns = header  # the file's columns win; new names are ignored
        else:
            with path.open("w", newline="") as handle:
                handle.write(_csv_line(columns))
        self.columns = columns
        self._handle = path.open("a", newline="")

    def write(self, row: dict[str, float]) -> None:
        values = []
        for name in self.columns:
            value = row.get(name, "")
            if isinstance(value, float):
                value = f"{value:.7g}"
            values.append(value)
        self._handle.write(_csv_line(values))
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class EventLog:
    """Appends one JSON object per line to ``events.jsonl``, flushed at once."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = path.open("a")

    def write(self, kind: str, step: int, **fields: Any) -> dict[str, Any]:
        event = {"kind": kind, "step": int(step), "time": time.time(), **fields}
        self._handle.write(json.dumps(event, default=_json_default) + "\n")
        self._handle.flush()
        return event

    def close(self) -> None:
        self._handle.close()


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()
