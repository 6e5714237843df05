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
        ``events.jsonl``, the rest from ``config.toml``."""
        run = run if isinstance(run, RunFolder) else RunFolder(run)
        config = run.load_config()  # raises ConfigError (a UserError) for a non-run folder
        columns = run.read_metrics()
        events = run.read_events()
        self.clear()
        self.run_dir = run.path
        terms = config.loss.term_names()
        weights = config.loss.resolved_weights()
        steps = np.asarray(columns.get("step", ()), dtype=np.float64)
        if steps.size:
            self.steps.append(steps)
            self.elapsed.append(columns.get("elapsed", np.full(steps.size, np.nan)))
            for name, values in columns.items():
                if name in BOOKKEEPING or name == VALIDATION_COLUMN:
                    continue
                if name.startswith("weight/"):
                    history = self.weight_history.setdefault(name[len("weight/"):], GrowableArray())
                    history.append(values)
                else:
                    self.curves[name] = GrowableArray()
                    self.curves[name].append(values)
            for term, history in self.weight_history.items():
                last = history.view()[-1]
                if term in weights and math.isfinite(last):
                    weights[term] = float(last)
            if VALIDATION_COLUMN in columns:
                values = np.asarray(columns[VALIDATION_COLUMN], dtype=np.float64)
                keep = np.isfinite(values)
                self.validation_steps.append(steps[keep])
                self.validation.append(values[keep])
            self.current_step = int(steps[-1])
            if "elapsed" in columns and math.isfinite(columns["elapsed"][-1]):
                self.current_elapsed = float(columns["elapsed"][-1])
        self.events = list(events)
        self.weights = dict(weights)
        self.info = config_info(config, run.path, self.current_step, weights)
        self.info["loaded"] = True
        self._bump()

    def preview(self, config, run_dir: str | Path | None = None) -> None:
        """Show a run that has not started yet: its terms, weights and sizes, no data."""
        self.clear()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        weights = config.loss.resolved_weights()
        self.weights = dict(weights)
        self.info = config_info(config, self.run_dir, 0, weights)
        self.info["preview"] = True
        self._bump()
