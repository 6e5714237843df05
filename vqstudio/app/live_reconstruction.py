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
- Level counts ahead: once an answer is out and nothing waits, the thread decodes the same clip
  at the same step through the other level counts, nearest first (``AHEAD_CPU_S`` of its CPU per
  clip and step at most, clips up to ``AHEAD_SAMPLES`` x levels), so the next levels change is
  answered from memory: the same ``decode_latent`` call, the same bits. A request that comes in
  meanwhile waits at most for the one decode in hand.
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

from vqstudio.errors import UserError
from vqstudio.model.snapshot import WeightSnapshots

log = logging.getLogger("vqstudio.app")

SAME_STEP_S = 15.0  # a same_step request older than this gets the newest weights
AHEAD_CPU_S = 1.0  # thread CPU spent decoding other level counts ahead, per clip and step
AHEAD_SAMPLES = 4_000_000  # kept ahead at most: clip samples x level counts (16 MB)
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
        self._latent: tuple[Any, str, Any] | None = None  # (step, clip digest, latent tensor)
        self._decoded: dict[int | None, np.ndarray] = {}  # levels -> audio, for ``_latent``
        self._ahead: list[int | None] = []  # level counts still to decode for ``_latent``
        self._ahead_job: tuple[Any, int] | None = None  # (held model, clip samples) they use
        self._ahead_cpu = 0.0
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
                while self._waiting is None and not self._closing and not self._ahead:
                    self._cond.wait()
                if self._waiting is None:
                    if self._closing:
                        return
                    request = None
                else:
                    request, self._waiting = self._waiting, None
            if request is None:
                self._decode_ahead()
                continue
            ident, args, asked = request
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
        from vqstudio.model.inference import check_levels, decode_latent, encode_clip

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
        cached = self._latent
        if cached is not None and cached[0] == key and cached[1] == digest:
            latent, encoded = cached[2], False
        else:
            self._latent = self._ahead_job = None
            self._decoded, self._ahead, self._ahead_cpu = {}, [], 0.0
            latent, encoded = encode_clip(model, wave, device=self._device, amp=self._amp), True
            self._latent = (key, digest, latent)
        audio = self._decoded.get(levels)
        from_ahead = audio is not None
        if audio is None:
            decode_cpu = time.thread_time()
            audio = decode_latent(model, latent, levels, wave.size, amp=self._amp)
            self._decoded[levels] = audio
            self._plan_ahead(model, levels, wave.size, time.thread_time() - decode_cpu)
        done = time.perf_counter()
        self.timings.append({"waited": start - asked, "hold": held_at - start,
                             "inference": done - held_at, "inference_cpu": time.thread_time() - cpu,
                             "encoded": float(encoded), "ahead": float(from_ahead)})
        del self.timings[:-64]
        return {"audio": audio.copy(), "levels": args.get("levels"), "step": key[0],
                "sample_rate": self._rate}

    def _plan_ahead(self, model: Any, levels: int | None, samples: int, decode_cpu: float) -> None:
        """After decoding ``levels``: the other level counts of the held clip and step, nearest
        first, to decode while nothing waits (none for a clip too long, or once the decodes of
        this clip and step have spent ``AHEAD_CPU_S``)."""
        count = model.num_levels
        self._ahead_cpu += decode_cpu
        if count < 2 or samples * count > AHEAD_SAMPLES or self._ahead_cpu >= AHEAD_CPU_S:
            self._ahead = []
            return
        here = count if levels is None else levels
        order = sorted(range(1, count + 1), key=lambda k: (abs(k - here), -k))
        self._ahead = [None if k == count else k for k in order
                       if (None if k == count else k) not in self._decoded]
        self._ahead_job = (model, samples)

    def _decode_ahead(self) -> None:
        """Decode the next level count ahead (this thread, nothing waiting)."""
        from vqstudio.model.inference import decode_latent

        levels = self._ahead.pop(0)
        if self._latent is None or self._ahead_job is None:
            self._ahead.clear()
            return
        (model, samples), latent = self._ahead_job, self._latent[2]
        start = time.thread_time()
        try:
            self._decoded[levels] = decode_latent(model, latent, levels, samples, amp=self._amp)
        except Exception:  # a bug: logged; the level count is decoded when asked for
            log.error("decoding ahead failed:\n%s", traceback.format_exc())
            self._ahead.clear()
            return
        self._ahead_cpu += time.thread_time() - start
        if self._ahead_cpu >= AHEAD_CPU_S:
            self._ahead.clear()

    def ahead_pending(self) -> int:
        """Level counts still to decode ahead (for tests and benchmarks)."""
        return len(self._ahead)
