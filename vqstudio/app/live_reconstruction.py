"""Reconstructing audition clips through the training weights on a thread of its own, so a click
never waits for the training step in progress.

The training thread publishes its model's weights into :class:`~vqstudio.model.snapshot.
WeightSnapshots` at step boundaries (:class:`~vqstudio.app.training_loop.TrainingLoop`); this
thread runs the copy it holds. The trainer stays the only writer of the weights and never waits
for this thread. An answer is the model's exact output at the step it names: the snapshot's.

- A request asks for the newest weights, or (``same_step``: the levels box changed) for the step
  heard last, so that switching levels compares levels and not steps; a step held longer than
  ``SAME_STEP_S`` is renewed anyway.
- The encoder's latent of the last clip is kept per held step: another level count of the same
  clip through the same weights only runs the quantizer and the decoder (the same bits as a
  whole reconstruction, tested).
- Level counts ahead (``levels_ahead.py``): after an answer a helper thread (lower priority, the
  same core) decodes the same clip at the same step through the other level counts, nearest
  first, so the next levels change is answered from memory with the same bits; a request that
  comes in meanwhile is served at once, sharing the core with it.
- The newest request replaces one still waiting; answers carry the request's id and the shape of
  the trainer's own ``reconstruct`` answer (``train/commands.py``).
- CPU: the thread pins itself to one core, as the checkpoint worker does (torch's thread count is
  process-wide; training keeps its cores).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback
from typing import Any, Callable

import numpy as np

from vqstudio.app.levels_ahead import LevelsAhead
from vqstudio.errors import UserError
from vqstudio.model.snapshot import WeightSnapshots

log = logging.getLogger("vqstudio.app")

SAME_STEP_S = 15.0  # a same_step request older than this gets the newest weights
FIRST_SNAPSHOT_TIMEOUT_S = 600.0  # the first publish waits for the step in progress


class LiveReconstruction:
    """``deliver(answer)`` is called on this thread for every answer (the worker re-emits it as a
    Qt signal). ``model_info`` gives ``(sample_rate, hop, device, amp)`` of the run."""

    def __init__(self, snapshots: WeightSnapshots, deliver: Callable[[dict[str, Any]], None],
                 model_info: tuple[int, int, Any, bool], pin: bool = True):
        self.snapshots = snapshots
        self._deliver = deliver
        self._rate, self._hop, self._device, self._amp = model_info
        self._pin = pin
        self._cond = threading.Condition()
        self._waiting: tuple[int, dict[str, Any], float] | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._held_since = 0.0
        # the last clip at its step, key (step, clip digest), and its other level counts
        self._levels = LevelsAhead(self._amp, pin=pin, name="vqstudio-live-levels-ahead")
        self.timings: list[dict[str, float]] = []  # per answer, for benchmarks/audition_latency.py

    def ask(self, ident: int, args: dict[str, Any]) -> None:
        """Queue ``reconstruct`` with ``args`` (``wave``, ``levels``, ``tag``, ``same_step``)."""
        with self._cond:
            if self._closing:
                raise UserError("the run has ended",
                                "start or open a run to reconstruct through it")
            self.snapshots.wanted = True
            self._waiting = (ident, args, time.perf_counter())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vqstudio-live-inference",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Serve what waits (through the last published weights), then end the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        self.snapshots.close()  # the run has published its last weights (or never will)
        if thread is not None:
            thread.join(timeout)

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        if self._pin:
            from vqstudio.app.checkpoint_worker import pin_to_one_core

            pin_to_one_core()
        while True:
            with self._cond:
                while self._waiting is None and not self._closing:
                    self._cond.wait()
                if self._waiting is None:
                    self._levels.close()
                    return
                (ident, args, asked), self._waiting = self._waiting, None
            answer: dict[str, Any] = {"kind": "reconstruction", "id": ident, "tag": args.get("tag")}
            try:
                answer.update(self._reconstruct(args, asked))
            except UserError as exc:
                answer["error"] = (str(exc).strip().splitlines() or ["refused"])[0][:300]
            except Exception as exc:  # a bug: logged and answered; training and the window go on
                log.error("live reconstruction failed:\n%s", traceback.format_exc())
                answer["error"] = f"reconstruct failed: {type(exc).__name__}: {exc}"
            self._deliver(answer)

    def _reconstruct(self, args: dict[str, Any], asked: float) -> dict[str, Any]:
        from vqstudio.model.inference import check_levels, encode_clip

        wave = np.ascontiguousarray(np.asarray(args["wave"], dtype=np.float32).reshape(-1))
        if wave.size < self._hop:
            raise UserError(f"the clip is too short to reconstruct ({wave.size} samples)",
                            "choose a clip of at least a few milliseconds")
        start = time.perf_counter()
        keep = bool(args.get("same_step")) and time.monotonic() - self._held_since < SAME_STEP_S
        wait = 0 if self._closing else FIRST_SNAPSHOT_TIMEOUT_S
        held = self.snapshots.hold(newest=not keep, timeout=wait)
        if held is None:
            raise UserError("the run ended before its weights could be read",
                            "start or open the run again to reconstruct through it")
        model, key = held  # (step, events recorded): what the weights are
        if not keep:
            self._held_since = time.monotonic()
        levels = check_levels(args.get("levels"), model.num_levels)
        held_at, cpu = time.perf_counter(), time.thread_time()
        digest = hashlib.blake2b(wave.tobytes(), digest_size=16).hexdigest()
        encoded = self._levels.key != (key, digest)
        if encoded:  # another clip or step: its latent through the held copy (kept held)
            self._levels.clear()
            latent = encode_clip(model, wave, device=self._device, amp=self._amp)
            self._levels.hold((key, digest), model, latent, wave.size)
        audio = self._levels.audio(levels)
        from_ahead = audio is not None
        if audio is None:
            audio = self._levels.decode(levels)
        done = time.perf_counter()
        self.timings.append({"waited": start - asked, "hold": held_at - start,
                             "inference": done - held_at, "inference_cpu": time.thread_time() - cpu,
                             "encoded": float(encoded), "ahead": float(from_ahead)})
        del self.timings[:-64]
        return {"audio": audio.copy(), "levels": args.get("levels"), "step": key[0],
                "sample_rate": self._rate}

    def ahead_pending(self) -> int:
        """Level counts still to decode ahead (for tests and benchmarks)."""
        return self._levels.pending()
