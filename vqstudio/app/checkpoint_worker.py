"""Reconstructing audition clips through saved checkpoints (any run, any step), and the denoised
variant of any reconstruction, on one background thread: never the GUI thread (loading a model
and decoding take time) and never the training thread (its steps go on).

Requests name a *source* ("1", "2", "denoised", or the follower's "probe"); the newest request for a source replaces one of
the same source still waiting, so dragging a slider or switching clips never queues stale work.
Answers are handed to ``deliver(answer)`` on the worker thread (the panel re-emits them as a Qt
signal, so they reach the GUI thread queued) and carry the request's ``id``.

- Models: up to ``MAX_MODELS`` loaded at once, least recently used dropped, each keyed by its
  checkpoint file and that file's inode and mtime (a checkpoint rewritten in place is reloaded).
- Reconstructions: cached by (checkpoint key, clip key, levels), up to ``MAX_CACHED``, so going
  back to a checkpoint or a clip heard before answers at once. Per source the last clip's latent
  through its checkpoint is kept (``levels_ahead.py``): another level count only decodes, and a
  helper thread (lower priority, the same core) decodes the other level counts ahead, so a
  levels change is answered from memory (the same bits as ``reconstruct``).
- The probe: for a run another process trains (``follow.py``), a checkpoint's reconstruction of
  the run's probe clip (the few seconds the training app probes, read once per run) and its
  codebook figures, what the trainer's own ``probe`` and ``heavy`` payloads would say.
- CPU: ``torch.set_num_threads`` from here would not stay here (it also sets the count every
  thread that has not yet run a parallel op starts with: a training thread started later), so on
  Linux this thread pins itself (and so the OpenMP team it starts, which inherits the mask) to one
  core, the last one the process may use: inference takes at most that core from training,
  whatever the thread count.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vqstudio.app.levels_ahead import LevelsAhead
from vqstudio.errors import UserError

log = logging.getLogger("vqstudio.app")

MAX_MODELS = 4
MAX_CACHED = 32
_IDS = itertools.count(1)


@dataclass
class Job:
    id: int
    source: str
    kind: str  # "checkpoint", "denoise" or "probe"
    args: dict[str, Any] = field(default_factory=dict)


def pin_to_one_core() -> int | None:
    """Restrict the calling thread to the last CPU the process may use (Linux); which one, or
    None where that is not possible."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        os.sched_setaffinity(0, {cpus[-1]})  # 0: this thread (Linux affinity is per thread)
        return cpus[-1]
    except OSError:
        return None


class CheckpointWorker:
    """The background thread and its models; :meth:`close` before the process ends."""

    def __init__(self, deliver: Callable[[dict[str, Any]], None], pin: bool = True):
        self._deliver = deliver
        self._pin = pin
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: OrderedDict[str, Job] = OrderedDict()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._models: OrderedDict[tuple, tuple[Any, Any, int]] = OrderedDict()
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._probes: dict[str, tuple[np.ndarray, str]] = {}  # run folder -> (probe wave, file)
        self._levels: dict[str, LevelsAhead] = {}  # source -> its last clip and checkpoint
        self.pinned_cpu: int | None = None
        self.served = 0

    # -- asking (any thread) --------------------------------------------------------------------

    def reconstruct(self, source: str, ref: str, wave: np.ndarray, rate: int, clip_key: str,
                    levels: int | None = None) -> int:
        """Ask for ``wave`` ([T] at ``rate``, the clip's) through checkpoint ``ref`` (``RUN[:CKPT]``)
        with the first ``levels`` levels (None, or more than the model has: all)."""
        return self._put(source, "checkpoint", ref=ref, wave=wave, rate=int(rate),
                         clip_key=clip_key, levels=levels)

    def denoise(self, source: str, audio: np.ndarray, rate: int, strength: float) -> int:
        """Ask for ``audio`` through the spectral-gating denoiser at ``strength``."""
        return self._put(source, "denoise", audio=audio, rate=int(rate), strength=float(strength))

    def probe(self, source: str, ref: str, seconds: float) -> int:
        """Ask for the probe payload of checkpoint ``ref``: ``original`` (the first ``seconds``
        of its run's probe clip), ``reconstruction``, ``step``, ``sample_rate``, ``file``, and
        ``codebook`` (usage, entropy, dead_fraction)."""
        return self._put(source, "probe", ref=ref, seconds=float(seconds))

    def forget(self, source: str) -> None:
        """Drop what waits for ``source``."""
        with self._lock:
            self._waiting.pop(source, None)

    def _put(self, source: str, kind: str, **args: Any) -> int:
        job = Job(next(_IDS), source, kind, args)
        with self._lock:
            if self._closing:
                raise UserError("the checkpoint player is closed", "reopen the window")
            self._waiting.pop(source, None)
            self._waiting[source] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vqstudio-checkpoint-inference",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()
        return job.id

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        if self._pin:
            self.pinned_cpu = pin_to_one_core()
        while True:
            with self._lock:
                while not self._waiting and not self._closing:
                    self._wake.wait()
                if self._closing:
                    break
                _, job = self._waiting.popitem(last=False)
            answer: dict[str, Any] = {"id": job.id, "source": job.source, "kind": job.kind}
            try:
                serve = {"checkpoint": self._checkpoint, "probe": self._probe}.get(job.kind, self._denoise)
                answer.update(serve(job))
            except UserError as error:
                answer["error"] = str(error)
            except Exception as error:  # a bug: logged and answered; the window goes on
                log.error("audition inference failed:\n%s", traceback.format_exc())
                answer["error"] = f"{type(error).__name__}: {error}"
            self.served += 1
            self._deliver(answer)
        for levels in list(self._levels.values()):  # their helper threads end with this one
            levels.close()

    def ahead_pending(self) -> int:
        """Level counts still to decode ahead, all sources (for tests and benchmarks)."""
        return sum(levels.pending() for levels in list(self._levels.values()))

    def _model(self, ref_text: str):
        from vqstudio.experiments.checkpoint_ref import resolve_ref
        from vqstudio.experiments.corpus_eval import load_model

        ref = resolve_ref(ref_text)
        stat = os.stat(ref.path)
        key = (str(ref.path.resolve()), stat.st_ino, stat.st_mtime_ns)
        if key in self._models:
            self._models.move_to_end(key)
            model, config, step = self._models[key]
        else:
            model, step = load_model(ref)
            config = ref.config
            self._models[key] = (model, config, step)
            while len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        return key, ref, model, config, step

    def _checkpoint(self, job: Job) -> dict[str, Any]:
        from vqstudio.audio.io import resample
        from vqstudio.model.inference import encode_clip

        args = job.args
        key, ref, model, config, step = self._model(args["ref"])
        model_rate, count = config.model.sample_rate, config.model.rvq_levels
        levels = args["levels"] if args["levels"] and args["levels"] < count else None
        cache_key = (key, args["clip_key"], levels)
        about = {"step": step, "run": str(ref.run.path), "checkpoint": ref.path.name,
                 "levels": levels, "rvq_levels": count}
        cached = self._cache.get(cache_key)
        if cached is None:
            wave = np.asarray(args["wave"], dtype=np.float32).reshape(-1)
            if args["rate"] != model_rate:
                wave = resample(wave, args["rate"], model_rate)
            if wave.size < config.model.hop:
                raise UserError(f"the clip is too short for {ref.run.path.name} ({wave.size} samples)",
                                "choose a longer clip")
            ahead = self._levels.get(job.source)
            if ahead is None:
                ahead = self._levels[job.source] = LevelsAhead(
                    pin=self._pin, name=f"vqstudio-checkpoint-levels-ahead-{job.source}")
            if ahead.key != (key, args["clip_key"]):
                ahead.clear()
                ahead.hold((key, args["clip_key"]), model, encode_clip(model, wave), wave.size)
            audio = ahead.audio(levels)
            if audio is None:
                audio = ahead.decode(levels)
            else:
                about["ahead"] = True
            cached = {"audio": np.array(audio, dtype=np.float32), "sample_rate": model_rate}
            self._cache[cache_key] = cached
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(cache_key)
            about["cached"] = True
        return {**about, **cached}

    def _probe(self, job: Job) -> dict[str, Any]:
        from vqstudio.model.inference import reconstruct
        from vqstudio.train.data import TrainingData
        from vqstudio.train.evaluation import codebook_figures

        _key, ref, model, config, step = self._model(job.args["ref"])
        run = str(ref.run.path.resolve())
        if run not in self._probes:  # the corpus scanned once per run, as the trainer does
            probe = TrainingData(config).probe_clip(job.args["seconds"])
            if probe is None:
                raise UserError(f"{ref.run.path.name}'s corpus holds no audio to probe",
                                "check data.path in its config.toml")
            self._probes[run] = (np.asarray(probe[0], dtype=np.float32), probe[1])
        wave, file = self._probes[run]
        figures = codebook_figures(model.quantizer)
        return {"step": step, "sample_rate": config.model.sample_rate, "original": wave,
                "reconstruction": np.asarray(reconstruct(model, wave, None), dtype=np.float32),
                "file": file, "run": str(ref.run.path), "checkpoint": ref.path.name,
                "codebook": {k: figures[k] for k in ("usage", "entropy", "dead_fraction") if k in figures}}

    def _denoise(self, job: Job) -> dict[str, Any]:
        from vqstudio.experiments.denoise import denoise

        args = job.args
        audio = denoise(args["audio"], args["rate"], args["strength"])
        return {"audio": audio, "sample_rate": args["rate"], "strength": args["strength"]}

    # -- shutdown -------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Drop what waits, let a job in progress finish, end the thread. Safe to call twice."""
        with self._lock:
            self._closing = True
            self._waiting.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
