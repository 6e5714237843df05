"""One clip through one model at every level count: the decodes asked for and those made ahead.

A levels change in the Audition panel decodes the same clip through the same weights with another
number of quantizer levels. The inference threads (``live_reconstruction.py`` for the training
weights, ``checkpoint_worker.py`` for saved checkpoints) keep the clip's latent here; after each
decode asked for, a helper thread decodes the other level counts ahead, nearest first, so the
next change is answered from memory. Every decode is :func:`~vqstudio.model.inference.
decode_latent` of the kept latent: the same bits as ``reconstruct`` (tested).

The helper runs at a lower priority (nice +10, Linux: per thread) on the same core as its owner
(pinned like it), so a request the owner serves meanwhile gets most of that core instead of
waiting for the decode in hand; a decode ahead for a clip or model no longer held is dropped.
Bounded: at most ``AHEAD_CPU_S`` of CPU per clip and model, and none for clips over
``AHEAD_SAMPLES`` x levels.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from typing import Any

import numpy as np

log = logging.getLogger("vqstudio.app")

AHEAD_CPU_S = 1.0  # thread CPU spent decoding other level counts ahead, per clip and model
AHEAD_SAMPLES = 4_000_000  # decoded ahead at most: clip samples x level counts (16 MB)
AHEAD_NICE = 10  # the helper's niceness above its owner's


class LevelsAhead:
    """The decodes of the clip and model named by :attr:`key` (None: nothing held). The owner
    thread calls :meth:`hold`, :meth:`audio` and :meth:`decode`; the helper thread decodes
    ahead; :meth:`close` ends it."""

    def __init__(self, amp: bool = False, pin: bool = True, name: str = "vqstudio-levels-ahead"):
        self.amp = amp
        self._pin = pin
        self._name = name
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False  # the helper is decoding
        self.key: Any = None
        self.latent: Any = None
        self._model: Any = None
        self._samples = 0
        self._decoded: dict[int | None, np.ndarray] = {}
        self._ahead: list[int | None] = []
        self._cpu = 0.0

    def hold(self, key: Any, model: Any, latent: Any, samples: int) -> None:
        """From now on: ``latent`` (``encode_clip`` of a clip of ``samples``) through ``model``;
        what the helper does for the last one is dropped."""
        with self._lock:
            self.key, self._model, self.latent, self._samples = key, model, latent, samples
            self._decoded, self._ahead, self._cpu = {}, [], 0.0

    def clear(self) -> None:
        self.hold(None, None, None, 0)

    def audio(self, levels: int | None) -> np.ndarray | None:
        """The decode through the first ``levels`` (None: all) if made already."""
        with self._lock:
            return self._decoded.get(levels)

    def decode(self, levels: int | None) -> np.ndarray:
        """Decode through the first ``levels`` now (asked for), then plan the others ahead."""
        with self._lock:
            key, model, latent, samples = self.key, self._model, self.latent, self._samples
        start = time.thread_time()
        audio = self._decode(model, latent, levels, samples)
        spent = time.thread_time() - start
        with self._lock:
            if self.key != key:
                return audio
            self._decoded[levels] = audio
            self._cpu += spent
            count = model.num_levels
            if (count < 2 or samples * count > AHEAD_SAMPLES or self._cpu >= AHEAD_CPU_S
                    or model.training):  # (decode_latent sets eval mode and back: one thread's)
                self._ahead = []
                return audio
            here = count if levels is None else levels
            order = sorted(range(1, count + 1), key=lambda k: (abs(k - here), -k))
            self._ahead = [k for k in (None if k == count else k for k in order)
                           if k not in self._decoded]
            if self._ahead and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._lock.notify_all()
        return audio

    def pending(self) -> int:
        """Level counts still to decode ahead, the one in hand included."""
        with self._lock:
            return len(self._ahead) + self._busy

    def close(self, timeout: float = 30.0) -> None:
        """End the helper (after the decode in hand). Safe to call twice."""
        with self._lock:
            self._closed = True
            self._ahead = []
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the helper thread ----------------------------------------------------------------------

    def _run(self) -> None:
        if self._pin:
            from vqstudio.app.checkpoint_worker import pin_to_one_core

            pin_to_one_core()
        _lower_priority()
        while True:
            with self._lock:
                while not self._ahead and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                levels = self._ahead.pop(0)
                key, model, latent, samples = self.key, self._model, self.latent, self._samples
                self._busy = True
            start = time.thread_time()
            try:
                audio = self._decode(model, latent, levels, samples)
            except Exception:  # a bug: logged; that level count is decoded when asked for
                log.error("decoding ahead failed:\n%s", traceback.format_exc())
                audio = None
            spent = time.thread_time() - start
            with self._lock:
                self._busy = False
                if self.key == key:
                    if audio is None:
                        self._ahead = []
                    else:
                        self._decoded.setdefault(levels, audio)
                        self._cpu += spent
                        if self._cpu >= AHEAD_CPU_S:
                            self._ahead = []

    def _decode(self, model: Any, latent: Any, levels: int | None, samples: int) -> np.ndarray:
        from vqstudio.model.inference import decode_latent

        return decode_latent(model, latent, levels, samples, amp=self.amp)


def _lower_priority() -> None:
    """This thread only (Linux: a thread id is a process id to setpriority), ``AHEAD_NICE`` up."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + AHEAD_NICE)
    except OSError:
        pass
