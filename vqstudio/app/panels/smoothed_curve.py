"""One loss curve's drawing state in the Losses panel: an EMA-smoothed copy of the store's rows in
a min/max envelope pyramid, extended incrementally (the filter carries its state), and the mapping
of the smoothing slider to the EMA factor. Qt only as far as the layer curve it draws into."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from vqstudio.app.panels.curve_layer import LayerCurve
from vqstudio.app.panels.envelope import EnvelopeMemo, MinMaxPyramid

SMOOTHING_MAX = 0.999


def smoothing_from_slider(position: int) -> float:
    """Slider 0..1000 -> EMA factor 0..0.999 on a log scale (0.9 at a third, 0.99 at two thirds)."""
    return 0.0 if position <= 0 else min(SMOOTHING_MAX, 1.0 - 10.0 ** (-3.0 * position / 1000.0))


def slider_from_smoothing(alpha: float) -> int:
    alpha = min(max(float(alpha), 0.0), SMOOTHING_MAX)
    return 0 if alpha <= 0 else int(round(-1000.0 / 3.0 * math.log10(1.0 - alpha)))


@dataclass
class SmoothedCurve:
    """One curve's drawing state: the smoothed copy of the store's rows and the plot item."""

    name: str
    item: LayerCurve
    pyramid: MinMaxPyramid = field(default_factory=MinMaxPyramid)
    first: int | None = None  # store row of the pyramid's first point (leading NaN rows skipped)
    seen: int = 0  # store rows consumed
    last_finite: float = math.nan  # non-finite rows (skipped steps) repeat the last finite value
    last_smoothed: float = math.nan
    stale: bool = False  # smoothing changed while hidden: rebuild when shown
    memo: EnvelopeMemo = field(default_factory=EnvelopeMemo)  # its group's last envelopes

    def reset(self) -> None:
        self.pyramid.clear()
        self.first, self.seen = None, 0
        self.last_finite = self.last_smoothed = math.nan
        self.stale = False

    def consume(self, rows: np.ndarray, alpha: float) -> None:
        """Smooth and append the rows ``[m]`` that follow those already seen."""
        start = self.seen
        self.seen += rows.shape[0]
        rows = np.asarray(rows, dtype=np.float64)
        finite = np.isfinite(rows)
        if self.first is None:
            if not finite.any():
                return
            skip = int(np.argmax(finite))
            self.first, rows, finite = start + skip, rows[skip:], finite[skip:]
        if not finite.all():
            # Forward-fill: a skipped step shows as a flat stretch, never as a hole or a NaN
            # that would poison the running filter.
            index = np.where(finite, np.arange(rows.shape[0]), -1)
            np.maximum.accumulate(index, out=index)
            seed = self.last_finite
            rows = np.where(index >= 0, rows[np.maximum(index, 0)], seed)
        self.last_finite = float(rows[-1])
        if alpha > 0:
            previous = rows[0] if math.isnan(self.last_smoothed) else self.last_smoothed
            rows, _ = lfilter([1.0 - alpha], [1.0, -alpha], rows, zi=[alpha * previous])
            self.last_smoothed = float(rows[-1])
        self.pyramid.extend(rows)
