"""The buffers the A/B player holds on its control side, and what it publishes to the audio
thread: every named source at the stream's rate, the residual (original minus reconstruction)
derived from its halves, and the playback gain of each (loudness-matched or unity). Pure numpy;
the player takes its control lock around these calls."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

import numpy as np

from vqstudio.app.playback_engine import ORIGINAL, RECONSTRUCTION, RESIDUAL, fit_length, loudness_gains


class SourceBuffers:
    """Named [T] float32 read-only buffers, all as long as the original."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}
        self.loudness_match = False
        self._residual: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __bool__(self) -> bool:
        return bool(self.buffers)

    @property
    def length(self) -> int:
        return int(self.buffers[ORIGINAL].shape[0])

    def replace_all(self, buffers: dict[str, np.ndarray]) -> None:
        """A new clip: ``buffers`` (the original and maybe a reconstruction) and nothing else."""
        self.buffers = dict(buffers)

    def put(self, name: str, buffer: np.ndarray) -> None:
        """Add or replace ``name``; a new original refits every other buffer to its length."""
        self.buffers[name] = buffer
        if name == ORIGINAL:
            self.buffers = {k: (v if k == ORIGINAL else fit_length(v, buffer.shape[0]))
                            for k, v in self.buffers.items()}

    def drop(self, name: str) -> bool:
        """Forget ``name`` (never the original); whether it was there."""
        if name == ORIGINAL or name not in self.buffers:
            return False
        del self.buffers[name]
        return True

    def published(self) -> tuple[Mapping[str, np.ndarray], Mapping[str, float]]:
        """The sources (with the residual once both halves exist) and their gains, read-only."""
        buffers = dict(self.buffers)
        if ORIGINAL in buffers and RECONSTRUCTION in buffers:
            # Reuse the residual while its halves are unchanged: a new array would make the voice
            # playing it crossfade to an identical copy.
            halves = (buffers[ORIGINAL], buffers[RECONSTRUCTION])
            cached = self._residual
            if cached is None or cached[0] is not halves[0] or cached[1] is not halves[1]:
                residual = np.subtract(*halves)
                residual.flags.writeable = False
                self._residual = cached = (*halves, residual)
            buffers[RESIDUAL] = cached[2]
        gains = loudness_gains(buffers) if self.loudness_match else dict.fromkeys(buffers, 1.0)
        return MappingProxyType(buffers), MappingProxyType(gains)
