"""The run folder: ``config.toml``, ``metrics.csv``, ``events.jsonl`` and ``checkpoints/``.

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

    def exists(self) -> bool:
        return self.config_path.is_file()

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


class MetricsWriter:
    """Appends one row per logged step to ``metrics.csv``; a resumed run keeps its header.

    Rows past ``resume_step`` (logged after the checkpoint being resumed) are dropped first, so
    the file never holds two rows for one step.
    """

    def __init__(self, path: Path, columns: list[str], resume_step: int | None = None):
        self.path = path
        if path.is_file() and path.stat().st_size > 0:
            with path.open(newline="") as handle:
                header = next(csv.reader(handle), None)
            if header:
                columns = header  # the file's columns win; new names are ignored
            if resume_step is not None:
                self._truncate_after(resume_step)
        else:
            with path.open("w", newline="") as handle:
                handle.write(_csv_line(columns))
        self.columns = columns
        self._handle = path.open("a", newline="")

    def _truncate_after(self, step: int) -> None:
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [lines[0]]
        for line in lines[1:]:
            if not line.endswith("\n"):
                continue
            try:
                row_step = int(float(line.split(",", 1)[0]))
            except ValueError:
                continue
            if row_step <= step:
                kept.append(line)
        atomic_write_text(self.path, "".join(kept))

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
