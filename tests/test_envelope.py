"""The min/max envelope pyramid behind the loss curves: what it draws is exactly the min and max
of each run of points, however the series grew, and it draws O(pixels) points."""

from __future__ import annotations

import numpy as np
import pytest

from vqstudio.app.panels.envelope import MinMaxPyramid


def series(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.exp(-np.arange(n) / 3e4) * np.exp(rng.normal(0, 0.3, n))).astype(np.float32)


def runs(index: np.ndarray) -> np.ndarray:
    starts = index[::2]
    assert np.array_equal(index[1::2], starts)  # each run start twice: a min and a max
    assert np.all(np.diff(starts) > 0)
    return starts


@pytest.mark.parametrize("start, stop, pixels", [(0, 100_000, 800), (12_345, 67_891, 500),
                                                 (99_000, 100_000, 300), (5, 999, 1000)])
def test_each_run_is_drawn_as_its_exact_min_and_max(start, stop, pixels):
    values = series(100_000)
    pyramid = MinMaxPyramid()
    pyramid.extend(values)
    index, y = pyramid.envelope(start, stop, pixels)
    if stop - start <= 2 * pixels:  # few enough: the points themselves
        assert np.array_equal(index, np.arange(start, stop)) and np.array_equal(y, values[start:stop])
        return
    starts = runs(index)
    assert starts[0] <= start < starts[1] and starts[-1] < stop
    ends = np.append(starts[1:], stop)
    pairs = y.reshape(-1, 2)
    for i, (a, b) in enumerate(zip(starts, ends)):
        lo, hi = values[a:b].min(), values[a:b].max()
        expected = (lo, hi) if i % 2 == 0 else (hi, lo)  # alternated: short joins between runs
        assert tuple(pairs[i]) == expected, i
    assert pixels <= len(starts) <= 1.5 * pixels  # about one stroke per pixel column


def test_growing_in_pieces_gives_the_same_envelope_as_all_at_once():
    values = series(50_001, seed=1)
    whole, pieces = MinMaxPyramid(), MinMaxPyramid()
    whole.extend(values)
    rng = np.random.default_rng(2)
    cuts = np.sort(rng.choice(np.arange(1, values.size), 40, replace=False))
    for part in np.split(values, cuts):
        pieces.extend(part)
    assert len(pieces) == len(whole) == values.size
    for start, stop, pixels in ((0, 50_001, 640), (777, 40_000, 321), (49_000, 50_001, 100)):
        a, b = whole.envelope(start, stop, pixels), pieces.envelope(start, stop, pixels)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_a_million_points_draw_as_a_few_thousand():
    pyramid = MinMaxPyramid()
    pyramid.extend(series(1_000_000))
    index, y = pyramid.envelope(0, 1_000_000, 1200)
    assert 2 * 1200 <= y.size <= 2 * 1.5 * 1200
    assert y.min() == pyramid.values().min() and y.max() == pyramid.values().max()
    pyramid.clear()
    assert len(pyramid) == 0 and pyramid.envelope(0, 10, 100)[1].size == 0


def test_a_memo_of_the_last_answer_changes_nothing_while_the_series_grow():
    """Points arriving while the view follows: the runs made of blocks complete last time are
    reused from the memo, and every answer is the one computed afresh."""
    from vqstudio.app.panels.envelope import EnvelopeMemo, envelopes

    rng = np.random.default_rng(7)
    pyramids = [MinMaxPyramid() for _ in range(3)]
    for pyramid in pyramids:
        pyramid.extend(series(150_000, seed=int(rng.integers(100))))
    memo, kept, pixels, start = EnvelopeMemo(), 0, 700, 0
    for step in range(80):
        grow = rng.normal(0, 1, (3, int(rng.integers(1, 500)))).astype(np.float32)
        for pyramid, values in zip(pyramids, grow):
            pyramid.extend(values)
        if step == 40:
            start, pixels = 5_000, 701  # the view moved: nothing of the memo fits
        before = memo.key
        index, ys = envelopes(pyramids, start, len(pyramids[0]), pixels, memo)
        fresh_index, fresh_ys = envelopes(pyramids, start, len(pyramids[0]), pixels)
        assert np.array_equal(index, fresh_index) and np.array_equal(ys, fresh_ys), step
        kept += memo.key == before
    assert kept >= 60  # most answers reused the memo
    longer = len(pyramids[0]) + 1_000
    for pyramid in pyramids:  # refilled (a new smoothing): the memo no longer applies
        pyramid.clear()
        pyramid.extend(series(longer, seed=3))
    index, ys = envelopes(pyramids, start, len(pyramids[0]), pixels, memo)
    assert np.array_equal(ys, envelopes(pyramids, start, len(pyramids[0]), pixels)[1])
