"""What the Losses panel puts along x: the step, the seconds of audio trained on, or the training
time; for one run's store, grown with it, and searchable for the rows inside a view.

Audio seconds come from the store's ``audio_schedule`` (batch x segment per step; a fork's parent
steps at the parent's rate), training time from its ``elapsed`` column (seconds of training, which
a resumed run or a fork continues). No Qt here.
"""

from __future__ import annotations

import numpy as np

from vqstudio.app.growable_array import GrowableArray
from vqstudio.app.panels.envelope import envelopes
from vqstudio.experiments.run_history import audio_seconds

STEP, AUDIO, TIME = "step", "audio", "time"
X_MODES = {STEP: "step", AUDIO: "audio seconds seen", TIME: "training time (s)"}


class XAxis:
    """The x of one store's rows in one mode (:data:`X_MODES`), and a sorted copy for searching
    (steps go back after a restore from a checkpoint; a missing time is never found)."""

    def __init__(self, store, mode: str = STEP):
        if mode not in X_MODES:
            raise ValueError(f"unknown x mode {mode!r}")
        self.store, self.mode = store, mode
        self.reset()

    def reset(self) -> None:
        self._audio = GrowableArray()
        self._steps_array = None
        self._search = np.empty(0)
        self._search_rows = -1
        self._sorted = True

    def values(self, rows: int) -> np.ndarray:
        """x of the store's first ``rows`` rows (a view: do not keep it past the next call)."""
        store = self.store
        if self.mode == STEP:
            return store.steps.view()[:rows]
        if self.mode == TIME:
            return store.elapsed.view()[:rows]
        if store.steps is not self._steps_array or len(self._audio) > rows:
            self.reset()
            self._steps_array = store.steps
        done = len(self._audio)
        if rows > done:
            self._audio.append(audio_seconds(store.steps.view()[done:rows], store.audio_schedule))
        return self._audio.view()[:rows]

    def at_steps(self, steps) -> np.ndarray:
        """x of arbitrary steps (markers, validation points); NaN where unknown."""
        steps = np.asarray(steps, dtype=np.float64)
        if self.mode == STEP:
            return steps
        if self.mode == AUDIO:
            return audio_seconds(steps, self.store.audio_schedule)
        known, elapsed = self.store.steps.view(), self.store.elapsed.view()
        finite = np.isfinite(elapsed[: known.shape[0]])
        if not finite.any():
            return np.full(steps.shape, np.nan)
        return np.interp(steps, known[finite], elapsed[: known.shape[0]][finite])

    def rows_between(self, x: np.ndarray, left: float, right: float) -> tuple[int, int]:
        """The rows ``[start, stop)`` of ``x`` whose x lies in ``[left, right]``, one more each side."""
        search = self._searchable(x)
        n = x.shape[0]
        start = max(0, int(np.searchsorted(search, left, "left")) - 1)
        stop = min(n, int(np.searchsorted(search, right, "right")) + 1)
        return start, stop

    def _searchable(self, x: np.ndarray) -> np.ndarray:
        """``x`` made sorted: itself if it is, else a running maximum (recomputed only when rows
        were added; only the new rows are checked)."""
        n, done = x.shape[0], self._search_rows
        if done != n:
            if done <= 0 or done > n or not self._sorted:
                self._sorted = bool(np.all(x[1:] >= x[:-1]))
            else:
                self._sorted = bool(np.all(x[done:] >= x[done - 1 : n - 1]))
            if self._sorted:
                self._search = x
            else:
                self._search = np.maximum.accumulate(np.where(np.isnan(x), -np.inf, x))
            self._search_rows = n
        return self._search


def draw_curves(curves, x: np.ndarray, start: int, stop: int, pixels: int) -> None:
    """Hand each of ``curves`` (:class:`~vqstudio.app.panels.smoothed_curve.SmoothedCurve`) the
    envelope of its rows ``[start, stop)`` at ``pixels`` columns, placed at ``x``. Curves whose
    pyramids start at the same row and hold as many points (a run's terms) get theirs from one
    :func:`~vqstudio.app.panels.envelope.envelopes` call (its memo kept on the group's first
    curve: while following, only the last runs are computed) and share one x; the layer hears
    of all of them once."""
    groups: dict[tuple[int, int], list] = {}
    for curve in curves:
        if curve.first is None:
            curve.item.setData([], [])
        else:
            groups.setdefault((curve.first, len(curve.pyramid)), []).append(curve)
    for (first, _), group in groups.items():
        index, ys = envelopes([c.pyramid for c in group], start - first, stop - first, pixels,
                              group[0].memo)
        group[0].item.layer.set_rows([c.item for c in group], x[index + first], ys)


def draw_curve(curve, x: np.ndarray, start: int, stop: int, pixels: int) -> None:
    """:func:`draw_curves` of one curve."""
    draw_curves([curve], x, start, stop, pixels)
