"""One clip through one model at every level count: the decodes asked for and those made ahead.

A levels change in the Audition panel decodes the same clip through the same weights with another
number of quantizer levels. The inference threads (``live_reconstruction.py`` for the training
weights, ``checkpoint_worker.py`` for saved checkpoints) keep the clip's latent here and, once an
answer is out and nothing waits, decode the other level counts ahead, nearest first, so the next
change is answered from memory. Every decode is :func:`~vqstudio.model.inference.decode_latent`
of the kept latent: the same bits as ``reconstruct`` (tested). Bounded: at most ``AHEAD_CPU_S``
of the thread's CPU per clip and model, and none for clips over ``AHEAD_SAMPLES`` x levels.
One thread uses an instance; nothing here locks.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import numpy as np

log = logging.getLogger("vqstudio.app")

AHEAD_CPU_S = 1.0  # thread CPU spent decoding other level counts ahead, per clip and model
AHEAD_SAMPLES = 4_000_000  # decoded ahead at most: clip samples x level counts (16 MB)


class LevelsAhead:
    """The decodes of the clip and model named by :attr:`key` (None: nothing held)."""

    def __init__(self, amp: bool = False):
        self.amp = amp
        self.key: Any = None
        self.latent: Any = None
        self._model: Any = None
        self._samples = 0
        self._decoded: dict[int | None, np.ndarray] = {}
        self._ahead: list[int | None] = []
        self._cpu = 0.0

    def hold(self, key: Any, model: Any, latent: Any, samples: int) -> None:
        """From now on: ``latent`` (``encode_clip`` of a clip of ``samples``) through ``model``."""
        self.key, self._model, self.latent, self._samples = key, model, latent, samples
        self._decoded, self._ahead, self._cpu = {}, [], 0.0

    def clear(self) -> None:
        self.hold(None, None, None, 0)

    def audio(self, levels: int | None) -> np.ndarray | None:
        """The decode through the first ``levels`` (None: all) if made already."""
        return self._decoded.get(levels)

    def decode(self, levels: int | None) -> np.ndarray:
        """Decode through the first ``levels`` now (asked for), then plan the others ahead."""
        start = time.thread_time()
        audio = self._decode(levels)
        self._cpu += time.thread_time() - start
        count = self._model.num_levels
        if count < 2 or self._samples * count > AHEAD_SAMPLES or self._cpu >= AHEAD_CPU_S:
            self._ahead = []
            return audio
        here = count if levels is None else levels
        order = sorted(range(1, count + 1), key=lambda k: (abs(k - here), -k))
        self._ahead = [k for k in (None if k == count else k for k in order) if k not in self._decoded]
        return audio

    def pending(self) -> int:
        """Level counts still to decode ahead."""
        return len(self._ahead)

    def decode_next(self) -> None:
        """Decode the next level count ahead (the thread has nothing else to do)."""
        if not self._ahead:
            return
        levels = self._ahead.pop(0)
        start = time.thread_time()
        try:
            self._decode(levels)
        except Exception:  # a bug: logged; that level count is decoded when asked for
            log.error("decoding ahead failed:\n%s", traceback.format_exc())
            self._ahead = []
            return
        self._cpu += time.thread_time() - start
        if self._cpu >= AHEAD_CPU_S:
            self._ahead = []

    def _decode(self, levels: int | None) -> np.ndarray:
        from vqstudio.model.inference import decode_latent

        audio = decode_latent(self._model, self.latent, levels, self._samples, amp=self.amp)
        self._decoded[levels] = audio
        return audio
