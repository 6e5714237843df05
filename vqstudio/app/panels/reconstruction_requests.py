"""Asking the training worker to reconstruct the audition clip, and knowing its answer.

The worker answers ``command("reconstruct", wave=..., levels=..., tag=..., same_step=...)`` on
its ``result`` signal with the same id: while a run goes, from the weights of the last step
boundary on a thread of its own (``app/live_reconstruction.py``), the step named in the answer;
before a run, once it starts. One request is outstanding at a time: a newer one (another clip, other levels) replaces it,
so an answer for a clip no longer shown, or for levels no longer asked for, is dropped. No Qt
here; the panel connects the signal.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vqstudio.app.panels.audition_clip import Clip
from vqstudio.audio.io import resample
from vqstudio.errors import UserError

RECONSTRUCT_TAG = "audition"


@dataclass(frozen=True)
class Request:
    id: int
    clip: Clip
    levels: int | None  # None: all quantizer levels


class ReconstructionRequests:
    """The outstanding request to ``worker`` (a TrainingWorker, or None: nothing is asked)."""

    def __init__(self, worker: Any | None):
        self.worker = worker
        self.pending: Request | None = None
        self.asked_at = -math.inf  # time.monotonic() of the last request sent

    def ask(self, clip: Clip, model_rate: int, levels: int | None, same_step: bool = False) -> None:
        """Ask for ``clip`` through the model (at ``model_rate``; 0: the clip's rate) with the
        first ``levels`` levels; ``same_step``: through the weights of the step heard last where
        the worker still holds them (a levels change compares levels, not steps). Raises the
        worker's UserError if it refuses the command."""
        if self.worker is None:
            self.pending = None
            return
        rate = model_rate or clip.rate
        wave = clip.original if rate == clip.rate else resample(clip.original, clip.rate, rate)
        command_id = self.worker.command(
            "reconstruct", wave=np.ascontiguousarray(wave, dtype=np.float32), levels=levels,
            tag=RECONSTRUCT_TAG, same_step=same_step,
        )
        self.pending = Request(command_id, clip, levels)
        self.asked_at = time.monotonic()

    def forget(self) -> None:
        """Drop the outstanding request: its answer, when it comes, is ignored."""
        self.pending = None

    def answered(self, result: dict, clip: Clip | None) -> Request | None:
        """The request ``result`` answers, if it is the outstanding one and for ``clip`` (the
        clip on show); it is then no longer outstanding. None for any other result."""
        pending = self.pending
        if (pending is None or result.get("kind") != "reconstruction"
                or result.get("id") != pending.id or pending.clip is not clip):
            return None
        self.pending = None
        return pending

    def idle_for(self, seconds: float) -> bool:
        """Whether nothing is outstanding and the last request is at least ``seconds`` old."""
        return self.pending is None and time.monotonic() - self.asked_at >= seconds

    @staticmethod
    def read(result: dict, request: Request, model_rate: int, max_levels: int) -> tuple[np.ndarray, int, str]:
        """``(audio [T], its rate, what it is: "step 1200, 2 of 4 levels")`` from the worker's
        answer to ``request``; a UserError saying why when it carries none."""
        if result.get("error") or result.get("audio") is None:
            problem = result.get("error") or "the worker sent no audio"
            raise UserError(f"Reconstruction failed: {problem}",
                            "try again, or choose another clip or fewer levels")
        rate = int(result.get("sample_rate") or model_rate or request.clip.rate)
        about = f"step {result.get('step', '?')}"
        if request.levels is not None:
            about += f", {request.levels} of {max_levels} levels"
        return np.asarray(result["audio"], dtype=np.float32).reshape(-1), rate, about
