"""An append-only numpy buffer with amortised doubling: the run store's curves and the loss
panel's envelope pyramid grow in it. No Qt here."""

from __future__ import annotations

from typing import Any

import numpy as np


class GrowableArray:
    """An append-only numpy buffer with amortised doubling. Rows are scalars, or with
    ``vector=True`` fixed-width vectors (the width is taken from the first append)."""

    def __init__(self, dtype: Any = np.float64, capacity: int = 256, *, vector: bool = False):
        self._dtype = np.dtype(dtype)
        self._capacity = max(1, int(capacity))
        self._vector = vector
        self._data: np.ndarray | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        """The number of rows (``len``)."""
        return self._size

    def append(self, values: Any) -> None:
        """Append rows: a scalar or [n] (scalar rows); [W] or [n, W] (vector rows)."""
        rows = np.asarray(values, dtype=self._dtype)
        rows = np.atleast_2d(rows) if self._vector else rows.reshape(-1)
        if self._data is None:
            self._data = np.empty((max(self._capacity, rows.shape[0]), *rows.shape[1:]), self._dtype)
        n = rows.shape[0]
        if self._size + n > self._data.shape[0]:
            grown = np.empty((max(2 * self._data.shape[0], self._size + n), *self._data.shape[1:]),
                             self._dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : self._size + n] = rows
        self._size += n

    def view(self) -> np.ndarray:
        """The rows so far, [n] or [n, W] (a view: copy it to keep it past the next append)."""
        if self._data is None:
            return np.empty((0, 0) if self._vector else 0, dtype=self._dtype)
        return self._data[: self._size]

    def truncate(self, size: int) -> None:
        """Keep only the first ``size`` rows."""
        self._size = max(0, min(self._size, int(size)))

    def clear(self) -> None:
        self._data = None
        self._size = 0
