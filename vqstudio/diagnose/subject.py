"""What the checks look at: :class:`Subject` (the model, its configuration, its step and the clips
it reconstructed) and :class:`Clip` (one original and its reconstruction, reconstructed once,
through :func:`vqstudio.model.inference.reconstruct`, for every check to share).

Also the two small helpers every check uses: :func:`remedy` (a settings change, marked live or
needs-a-fork by the same rule as ``vqstudio train --from``) and :func:`quiet_region` (where in a
clip to listen for what plays under the pauses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vqstudio.audio.distortion import FRAME_MS, SILENCE_DBFS
from vqstudio.audio.metrics import EPS
from vqstudio.config import Config
from vqstudio.diagnose.findings import Remedy
from vqstudio.experiments.fork import change_kind
from vqstudio.model.inference import reconstruct

_FORK_KEEPS = {
    "loss": "a loss change: the fork keeps the model and optimizer state",
    "data": "a data change: the fork keeps the model and optimizer state",
    "training": "a training change: the fork keeps the model and optimizer state",
    "structural": "a model change: the fork keeps every tensor whose shape still fits",
}


@dataclass
class Clip:
    """An original ``[T]`` and the model's reconstruction ``[T]`` (float32, the model's rate)."""

    name: str
    original: np.ndarray
    reconstruction: np.ndarray
    source: str = ""  # the file it was read from, if any
    codes: np.ndarray | None = None  # [L, N] int64


@dataclass
class Subject:
    config: Config
    clips: list[Clip]
    model: torch.nn.Module | None = None
    step: int | None = None
    metrics: dict[str, list[float]] = field(default_factory=dict)  # metrics.csv columns, if a run
    run: str = ""
    found: list = field(default_factory=list)  # the findings of the checks run so far

    @property
    def sample_rate(self) -> int:
        return self.config.model.sample_rate

    def seconds(self, clip: Clip) -> float:
        return len(clip.original) / self.sample_rate


def reconstruct_clips(model: torch.nn.Module, waves: list[tuple[str, np.ndarray, str]]) -> list[Clip]:
    """``(name, wave [T], source)`` -> :class:`Clip` with the model's reconstruction and codes."""
    clips = []
    for name, wave, source in waves:
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        audio, codes = reconstruct(model, wave, with_codes=True)
        clips.append(Clip(name, wave, audio[: len(wave)], source, codes))
    return clips


def remedy(setting: str, value: Any, reason: str, also: dict[str, Any] | None = None) -> Remedy:
    """A :class:`Remedy`, live when the trainer applies ``setting`` (and every one of ``also``,
    the settings that change with it) between steps."""
    kinds = [change_kind(key) for key in (setting, *(also or {}))]
    kind = "structural" if "structural" in kinds else next((k for k in kinds if k != "live"), "live")
    live = kind == "live"
    return Remedy(setting, value, live, reason if live else f"{reason} ({_FORK_KEEPS[kind]})",
                  tuple((also or {}).items()))


def quiet_region(wave: np.ndarray, sample_rate: int, silence_dbfs: float = SILENCE_DBFS,
                 frame_ms: float = FRAME_MS) -> tuple[float, float] | None:
    """(start, stop) seconds of the longest run of frames quieter than ``silence_dbfs``."""
    frame = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    frames = len(wave) // frame
    if frames == 0:
        return None
    power = np.mean(np.asarray(wave[: frames * frame], np.float64).reshape(frames, frame) ** 2, axis=1)
    quiet = 10.0 * np.log10(power + EPS**2) < silence_dbfs
    best, start = (0, 0), None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    if best[1] == best[0]:
        return None
    return best[0] * frame / sample_rate, best[1] * frame / sample_rate


def worst(values: dict[str, float]) -> tuple[str, float]:
    """The (clip name, value) with the largest finite value."""
    finite = {k: v for k, v in values.items() if np.isfinite(v)}
    name = max(finite, key=finite.get)
    return name, finite[name]


class NotMeasured(Exception):
    """Raised by a check that cannot measure this subject; the message says why (the runner
    records it under ``Diagnosis.skipped``)."""


def per_clip(subject: "Subject", measure) -> dict:
    """``measure(original, reconstruction, sample_rate, hop)`` of every clip that it can measure
    (an empty ``reason``), by clip name; :class:`NotMeasured` with the first reason when none."""
    sr, hop = subject.sample_rate, subject.config.model.hop
    results = {c.name: measure(c.original, c.reconstruction, sr, hop) for c in subject.clips}
    measured = {n: r for n, r in results.items() if not r.reason}
    if not measured:
        raise NotMeasured(next(iter(results.values())).reason)
    return measured
