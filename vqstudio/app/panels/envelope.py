"""Min/max envelopes of long, growing curves, so a million-point loss curve draws in O(pixels).

A :class:`MinMaxPyramid` keeps a series and, for block sizes 4, 16, 64 ..., the minimum and maximum
of every complete block. Asking for the part of the series between two indices at a given pixel
width reads the coarsest level that still gives at least one block per pixel, then merges to about
one (min, max) pair per pixel: the same picture pyqtgraph's "peak" downsampling draws, without
touching every point on every redraw. Appending updates only the blocks the new points complete.

No Qt here: the loss panel hands the result to a ``PlotDataItem``.
"""

from __future__ import annotations

import itertools

import numpy as np

from vqstudio.app.growable_array import GrowableArray

BRANCH = 4  # each level's blocks are this many blocks of the level below
_GENERATIONS = itertools.count()


class MinMaxPyramid:
    """A growing series ``[n]`` with min/max summaries of blocks of ``4**k`` points, k >= 1."""

    def __init__(self, dtype=np.float32):
        self._dtype = dtype
        self.clear()

    def clear(self) -> None:
        self.generation = next(_GENERATIONS)  # one per fill: blocks complete in it never change
        self._values = GrowableArray(self._dtype)
        self._mins: list[GrowableArray] = []  # level k+1 holds blocks of BRANCH**(k+1) points
        self._maxs: list[GrowableArray] = []

    def __len__(self) -> int:
        return self._values.size

    def values(self) -> np.ndarray:
        return self._values.view()

    def extend(self, values: np.ndarray) -> None:
        """Append points ``[m]`` and complete whatever blocks they finish, level by level."""
        values = np.asarray(values, dtype=self._dtype).reshape(-1)
        if not values.size:
            return
        self._values.append(values)
        below_lo = below_hi = self._values.view()
        level = 0
        while True:
            complete = below_lo.shape[0] // BRANCH
            if complete == 0:
                break
            if level == len(self._mins):
                self._mins.append(GrowableArray(self._dtype))
                self._maxs.append(GrowableArray(self._dtype))
            lo, hi = self._mins[level], self._maxs[level]
            done = lo.size
            if complete == done:  # no new block here, so none in the levels above either
                break
            start, stop = done * BRANCH, complete * BRANCH
            lo.append(_blockwise(np.minimum, below_lo[start:stop]))
            hi.append(_blockwise(np.maximum, below_hi[start:stop]))
            below_lo, below_hi = lo.view(), hi.view()
            level += 1

    def envelope(self, start: int, stop: int, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """Points to draw for indices ``[start, stop)`` at ``pixels`` columns.

        Returns ``(index, y)``: with few enough points, the points themselves; otherwise between
        one and 1.5 (min, max) pairs per pixel column, each over a run of consecutive points and
        placed at the index of the run's first point (``index`` repeats each run start twice;
        ``y`` holds min, max for even runs and max, min for odd ones). Runs are aligned to the
        pyramid's blocks, so the first may begin a little before ``start``.
        """
        index, y = envelopes([self], start, stop, pixels)
        return index, y[0]

    def level(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(mins, maxs) of the complete blocks of ``BRANCH**level`` points (level 0: the points)."""
        if level == 0:
            values = self._values.view()
            return values, values
        return self._mins[level - 1].view(), self._maxs[level - 1].view()

    def levels(self) -> int:
        return len(self._mins)


class EnvelopeMemo:
    """What an :func:`envelopes` answer was made of, so that the next one for the same pyramids,
    view and resolution reuses its runs made only of blocks that were complete then (points
    arriving while the view follows the run change only the last runs)."""

    def __init__(self):
        self.key: tuple | None = None
        self.complete = 0  # the complete blocks the answer's runs were made of
        self.index = np.empty(0, dtype=np.int64)
        self.ys = np.empty((0, 0))


def envelopes(pyramids: list[MinMaxPyramid], start: int, stop: int, pixels: int,
              memo: EnvelopeMemo | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`MinMaxPyramid.envelope` of several pyramids of one length at once: ``(index, y)``,
    ``y`` one row per pyramid. The curves of one run share their rows, so the panel asks for
    all of them in one go: each numpy step runs once over all curves instead of once per curve
    (8 curves: ~0.9 ms of calls become ~0.3). With a ``memo`` of the last answer for these
    pyramids, the runs it shares with this one are copied, not computed (the same arrays)."""
    n = len(pyramids[0])
    start, stop = max(0, int(start)), min(n, int(stop))
    pixels = max(1, int(pixels))
    if stop - start <= 2 * pixels:
        index = np.arange(start, stop, dtype=np.int64)
        return index, np.stack([p.values()[start:stop] for p in pyramids])
    # The coarsest level that still has BRANCH blocks per pixel column: merging those in
    # runs of (blocks // pixels) then gives 1 .. 1.25 runs per column. Fewer than one per
    # column would leave gaps between the strokes; many more only cost ink.
    level, levels = 0, pyramids[0].levels()
    while level < levels and (stop - start) // BRANCH ** (level + 1) >= BRANCH * pixels:
        level += 1
    block = BRANCH**level
    first = start // block
    blocks = [p.level(level) for p in pyramids]
    last = min(-(-stop // block), blocks[0][0].shape[0])  # complete blocks only
    tail_start = last * block
    entries = last - first + (tail_start < stop)
    merge = max(1, entries // pixels)
    # Runs of `merge` entries from `first`: those of blocks complete last time are as they were.
    key = (tuple(p.generation for p in pyramids), start, pixels, level, merge, first)
    runs = 0
    if memo is not None and memo.key == key and memo.complete <= last - first:
        runs = memo.complete // merge
    begin = first + runs * merge
    lo = np.stack([mins[begin:last] for mins, _ in blocks])
    hi = np.stack([maxs[begin:last] for _, maxs in blocks])
    index = np.arange(begin, last, dtype=np.int64) * block
    if tail_start < stop:  # the incomplete block at the end of the series
        tail = np.stack([p.values()[tail_start:stop] for p in pyramids])
        lo = np.concatenate([lo, tail.min(axis=1, keepdims=True)], axis=1)
        hi = np.concatenate([hi, tail.max(axis=1, keepdims=True)], axis=1)
        index = np.append(index, tail_start)
    if merge > 1:
        lo, hi, index = _merged(lo, merge, np.minimum), _merged(hi, merge, np.maximum), index[::merge]
    pairs = np.stack([lo, hi], axis=2)
    # min, max, then max, min: the stroke joining two runs stays short instead of crossing
    # the whole band, which halves the pixels a noisy curve paints. (Counted from `first`.)
    pairs[:, 1 - runs % 2::2] = pairs[:, 1 - runs % 2::2, ::-1]
    index, ys = np.repeat(index, 2), pairs.reshape(len(pyramids), -1)
    if runs:
        index = np.concatenate([memo.index[:2 * runs], index])
        ys = np.concatenate([memo.ys[:, :2 * runs], ys], axis=1)
    if memo is not None:
        memo.key, memo.complete, memo.index, memo.ys = key, last - first, index, ys
    return index, ys


def _blockwise(pairwise, values: np.ndarray) -> np.ndarray:
    """``pairwise`` folded over each block of BRANCH consecutive values (strided slices are much
    faster than reducing a ``[m, 4]`` reshape along its short axis)."""
    out = pairwise(values[0::BRANCH], values[1::BRANCH])
    for offset in range(2, BRANCH):
        pairwise(out, values[offset::BRANCH], out=out)
    return out


def _merged(values: np.ndarray, merge: int, pairwise) -> np.ndarray:
    """``pairwise`` (np.minimum or np.maximum) over runs of ``merge`` consecutive values along
    the last axis (the last run may be shorter). Few per run: folded over strided slices, as
    :func:`_blockwise` (a ``[m, merge]`` reshape reduced along its short axis is 4-25x slower:
    0.8 ms for 16k values in runs of 2); many: ``reduceat``."""
    length = values.shape[-1]
    cut = length // merge * merge
    if merge <= 16:
        out = values[..., 0:cut:merge].copy()
        for offset in range(1, merge):
            pairwise(out, values[..., offset:cut:merge], out=out)
    else:
        out = pairwise.reduceat(values[..., :cut], np.arange(0, cut, merge), axis=-1)
    if cut < length:
        out = np.concatenate([out, pairwise.reduce(values[..., cut:], axis=-1, keepdims=True)], axis=-1)
    return out
