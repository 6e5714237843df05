"""What the GUI knows about the run: the worker's signals received into growable numpy buffers.

Receiving and drawing are apart (as in Friture): :class:`RunStore` slots only append to buffers and
bump :attr:`RunStore.version`; panels read the buffers when the window's redraw timer calls their
``refresh()`` and redraw only if the version moved. Everything here lives in the GUI thread.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from vqstudio.app.growable_array import GrowableArray
from vqstudio.experiments.run_history import RunHistory, audio_per_step, read_history
from vqstudio.train.run_info import config_info
from vqstudio.train.runfolder import VALIDATION_COLUMN, RunFolder

BOOKKEEPING = ("step", "wall_time", "elapsed")


class RunStore(QObject):
    """The run as the GUI sees it; connect it to a worker with :meth:`attach`.

    Curves are aligned with :attr:`steps` (one row per logged step). Per-level codebook figures
    are aligned with :attr:`codebook_steps`; validation with :attr:`validation_steps`.
    """

    weights_confirmed = Signal(dict)  # {term: new weight} as the trainer applied it

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.version = 0
        self.clear()

    # -- state ----------------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything (a new run)."""
        self.info: dict[str, Any] = {}
        self.run_dir: Path | None = None
        self.steps = GrowableArray()
        self.elapsed = GrowableArray()
        self.curves: dict[str, GrowableArray] = {}
        self.weight_history: dict[str, GrowableArray] = {}
        self.events: list[dict[str, Any]] = []
        self.weights: dict[str, float] = {}
        self.grad_shares: dict[str, float] = {}
        self.grad_shares_step: int | None = None
        self.codebook_steps = GrowableArray()
        self.entropy = GrowableArray(vector=True)
        self.dead_fraction = GrowableArray(vector=True)
        self.usage: np.ndarray | None = None
        self.validation_steps = GrowableArray()
        self.validation = GrowableArray()
        self.probe: dict[str, Any] = {}
        self.current_step = 0
        self.current_elapsed = 0.0
        self.steps_per_second = math.nan
        self.audio_seconds_per_second = math.nan
        self.notices: list[str] = []  # what loading a run folder left out, one line each
        # (first step, audio seconds per step) pieces: the x of "audio seconds seen"
        self.audio_schedule: list[tuple[float, float]] = []
        self.forked_from: dict[str, Any] = {}  # a fork's [forked_from]: parent run, checkpoint, step
        self._bump()

    def _bump(self) -> None:
        self.version += 1

    def _curve(self, name: str, rows: int | None = None) -> GrowableArray:
        """The curve ``name``; a new one is NaN for the ``rows`` rows logged before it appeared
        (all of ``steps`` if None), e.g. an adversarial term that starts late."""
        curve = self.curves.get(name)
        if curve is None:
            curve = self.curves[name] = GrowableArray()
            rows = len(self.steps) if rows is None else rows
            if rows:
                curve.append(np.full(rows, np.nan))
        return curve

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, worker) -> None:
        """Receive ``worker``'s signals (queued: they arrive in the GUI thread)."""
        worker.started.connect(self.on_started)
        worker.scalars.connect(self.on_scalars)
        worker.heavy.connect(self.on_heavy)
        worker.probe.connect(self.on_probe)
        worker.events.connect(self.on_events)

    # -- slots ----------------------------------------------------------------------------------

    def on_started(self, info: dict) -> None:
        run_dir = Path(info["run_dir"]) if info.get("run_dir") else None
        if run_dir is None or run_dir != self.run_dir:
            self.clear()
        else:
            # Resuming the loaded run: rows logged after its checkpoint are logged again.
            keep = int(np.searchsorted(self.steps.view(), info.get("step", 0), side="right"))
            for array in (self.steps, self.elapsed, *self.curves.values(), *self.weight_history.values()):
                array.truncate(keep)
        self.run_dir = run_dir
        self.info = dict(info)
        self.weights = dict(info.get("weights", {}))
        self.current_step = int(info.get("step", 0))
        rate = info.get("audio_seconds_per_step")
        if not self.audio_schedule and rate:  # a loaded run (or fork) keeps its own schedule
            self.audio_schedule = [(0.0, float(rate))]
        self._bump()

    def on_scalars(self, batch: dict) -> None:
        steps = np.asarray(batch.get("step", ()), dtype=np.float64)
        n = steps.shape[0]
        if n:
            before = len(self.steps)
            self.steps.append(steps)
            self.elapsed.append(batch.get("elapsed", np.full(n, np.nan)))
            terms = dict(batch.get("terms", {}))
            for key in ("lr", "grad_norm"):
                if key in batch:
                    terms[key] = batch[key]
            for name, values in terms.items():
                self._curve(name, before).append(values)
            for name, curve in self.curves.items():
                if len(curve) < before + n:  # a term missing from this batch
                    curve.append(np.full(before + n - len(curve), np.nan))
            for name, values in batch.get("weight_rows", {}).items():
                history = self.weight_history.setdefault(name, GrowableArray())
                if len(history) < before:
                    history.append(np.full(before - len(history), np.nan))
                history.append(values)
        validation = batch.get("validation")
        if validation is not None:
            self.validation_steps.append(validation["step"])
            self.validation.append(validation["mel_distance"])
        self.current_step = int(batch.get("current_step", steps[-1] if n else self.current_step))
        self.current_elapsed = float(batch.get("current_elapsed", self.current_elapsed))
        self.steps_per_second = float(batch.get("steps_per_second", self.steps_per_second))
        self.audio_seconds_per_second = float(
            batch.get("audio_seconds_per_second", self.audio_seconds_per_second)
        )
        self._bump()

    def on_heavy(self, payload: dict) -> None:
        codebook = payload.get("codebook")
        if codebook:
            self.codebook_steps.append(float(payload["step"]))
            self.entropy.append(np.asarray(codebook["entropy"], dtype=np.float64))
            self.dead_fraction.append(np.asarray(codebook["dead_fraction"], dtype=np.float64))
            self.usage = np.asarray(codebook["usage"])
        if payload.get("grad_shares"):
            self.grad_shares = dict(payload["grad_shares"])
            self.grad_shares_step = int(payload["step"])
        self._bump()

    def set_speed(self, steps_per_second: float, audio_seconds_per_second: float) -> None:
        """The speed read-outs, for a run whose speed is not reported by a worker (a follower
        takes it from the rows)."""
        self.steps_per_second = float(steps_per_second)
        self.audio_seconds_per_second = float(audio_seconds_per_second)
        self._bump()

    def on_probe(self, payload: dict) -> None:
        self.probe = dict(payload)
        self._bump()

    def on_events(self, events: list) -> None:
        if not events:
            return
        self.events.extend(events)
        confirmed: dict[str, float] = {}
        for event in events:
            if event.get("kind") == "weights":
                for term, (_old, new) in event.get("changes", {}).items():
                    confirmed[term] = float(new)
        if confirmed:
            self.weights.update(confirmed)
        self._bump()
        if confirmed:
            self.weights_confirmed.emit(confirmed)

    # -- an existing run ------------------------------------------------------------------------

    def load_run(self, run: RunFolder | str | Path) -> None:
        """Fill the store from a run folder on disk: curves from ``metrics.csv``, events from
        ``events.jsonl``, the rest from ``config.toml`` (a :class:`ConfigError` if that does not
        load). What was left out (a cut last line ...) is in :attr:`notices`."""
        run = run if isinstance(run, RunFolder) else RunFolder(run)
        history = read_history(run.path)
        if history.config is None:
            run.load_config()  # raises the ConfigError (a UserError) that says why
        self.load_history(history)

    def load_history(self, history: RunHistory) -> None:
        """Fill the store from a :class:`RunHistory` read off the GUI thread (cheap: the columns
        are numpy already). A history without a configuration (an older version's folder) shows
        its curves only."""
        self.clear()
        self.run_dir = history.path
        config = history.config
        self.weights = dict(config.loss.resolved_weights()) if config is not None else {}
        self.append_rows(history.columns)
        self.append_events(history.events)
        self.notices = list(history.notices)
        self.audio_schedule = list(history.audio_schedule)
        self.forked_from = dict(config.forked_from or {}) if config is not None else {}
        if config is not None:
            self.info = config_info(config, history.path, self.current_step, self.weights)
        else:
            self.info = {"run_dir": str(history.path), "step": self.current_step,
                         "weights": dict(self.weights), "preset": "", "device": ""}
        self.info["loaded"] = True
        self._bump()

    def append_rows(self, columns: dict[str, Any]) -> None:
        """Append rows read from a run's ``metrics.csv``: ``{column: values [n]}`` with the file's
        column names (``step``, ``elapsed``, each term, ``weight/<term>``, ``val/mel_distance``;
        ``wall_time`` is ignored). For a follower of a folder another process writes: hand it the
        complete rows read since the last call; a term that appears late is NaN before it, a
        column missing from a batch is NaN for that batch. Bumps :attr:`version`."""
        steps = np.asarray(columns.get("step", ()), dtype=np.float64).reshape(-1)
        n = steps.shape[0]
        if not n:
            return
        before = len(self.steps)
        self.steps.append(steps)
        self.elapsed.append(columns.get("elapsed", np.full(n, np.nan)))
        for name, values in columns.items():
            if name in BOOKKEEPING or name == "wall_time":
                continue
            if name == VALIDATION_COLUMN:
                values = np.asarray(values, dtype=np.float64)
                keep = np.isfinite(values)
                self.validation_steps.append(steps[keep])
                self.validation.append(values[keep])
            elif name.startswith("weight/"):
                history = self.weight_history.setdefault(name[len("weight/"):], GrowableArray())
                if len(history) < before:
                    history.append(np.full(before - len(history), np.nan))
                history.append(values)
                last = float(np.asarray(values, dtype=np.float64)[-1])
                term = name[len("weight/"):]
                if term in self.weights and math.isfinite(last):
                    self.weights[term] = last
            else:
                self._curve(name, before).append(values)
        for curve in self.curves.values():
            if len(curve) < before + n:  # a column missing from this batch
                curve.append(np.full(before + n - len(curve), np.nan))
        self.current_step = int(steps[-1])
        elapsed = self.elapsed.view()[-1]
        if math.isfinite(elapsed):
            self.current_elapsed = float(elapsed)
        self._bump()

    def append_events(self, events: list[dict[str, Any]]) -> None:
        """Append events read from a run's ``events.jsonl`` (as :meth:`on_events` does for the
        worker's, without the weight confirmations a live run's sliders wait for)."""
        if events:
            self.events.extend(events)
            self._bump()

    def preview(self, config, run_dir: str | Path | None = None) -> None:
        """Show a run that has not started yet: its terms, weights and sizes, no data."""
        self.clear()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        weights = config.loss.resolved_weights()
        self.weights = dict(weights)
        self.info = config_info(config, self.run_dir, 0, weights)
        self.info["preview"] = True
        self.audio_schedule = [(0.0, audio_per_step(config))]
        self._bump()
