"""The frame-rate comb under speech: :func:`speech_comb`.

:func:`vqstudio.audio.distortion.frame_rate_comb` listens where the original is quiet, where a
buzz has nothing to hide behind. A decoder whose frames do not join up also lays a comb over the
speech itself: where the original's harmonics glide with the pitch, the reconstruction's spectrum
shows lines that stay put at ``k * sample_rate / hop``, heard as a metallic, buzzy voice. It is what an
inverse STFT makes of frames whose phase does not advance from one to the next as the sound's
does: the original's own magnitudes resynthesized with zero phase measure +13.5 dB at n_fft =
2 x hop, +9.4 dB at 4 x hop (random phase: +0.3). In the pauses such a model can be silent, so
the pause measure passes it.

Measured as the pause comb is (Welch spectrum, each harmonic of the frame rate over the bins a
quarter to a half frame rate away), but over the frames where the original sounds, for the
original and the reconstruction alike. Voiced speech has harmonics of its own, and a steady pitch
that is a multiple of the frame rate puts some of them on the grid, so the figure that says what
the model adds is the difference of the two medians over the harmonics up to 4 kHz
(``excess_db``): about 0 for a faithful reconstruction, +8 dB and more where the lines are seen in
a spectrogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from vqstudio.audio.distortion import (
    COMB_MAX_HZ,
    FRAME_MS,
    SILENCE_DBFS,
    silent_frames,
    comb_segment,
    harmonic_peaks,
)
from vqstudio.audio.metrics import match_lengths

# The reconstruction's harmonics of the frame rate standing this much more over their neighbours
# than the original's do is a comb the model adds to the speech (a spectrogram shows the lines).
SPEECH_COMB_DB = 4.0


@dataclass(frozen=True)
class SpeechComb:
    """How far the harmonics of one grid stand out where the original sounds."""

    grid_hz: float  # the grid's spacing: the frame rate sample_rate / hop, or sample_rate / n_fft
    median_db: float = math.nan  # the reconstruction's median harmonic over its neighbours
    reference_median_db: float = math.nan  # the original's, over the same frames
    sounding_seconds: float = 0.0
    reason: str = ""  # why nothing was measured; empty when measured
    grid: str = "frame rate"  # or "bin spacing"

    @property
    def excess_db(self) -> float:
        """What the model adds: the reconstruction's median over the original's."""
        return self.median_db - self.reference_median_db


def _median_peak(x: np.ndarray, sample_rate: int, f0: float, top: float, nperseg: int) -> float:
    freqs, power = signal.welch(x, sample_rate, window="hann", nperseg=nperseg, detrend=False)
    peaks, _ = harmonic_peaks(power, freqs[1] - freqs[0], f0, top)
    finite = np.asarray(peaks)[np.isfinite(peaks)]
    return float(np.median(finite)) if finite.size else math.nan


def speech_comb(reference: Any, estimate: Any, sample_rate: int, hop: int, n_fft: int | None = None,
                sound_dbfs: float = SILENCE_DBFS, frame_ms: float = FRAME_MS,
                max_hz: float = COMB_MAX_HZ) -> SpeechComb:
    """The comb at ``k * sample_rate / hop`` (k up to ``max_hz``) in the frames where ``reference``
    is louder than ``sound_dbfs``, of ``estimate`` and of ``reference`` (see the module). With
    ``n_fft`` (the head's) the grid of its bins, ``k * sample_rate / n_fft``, is measured too, and
    the grid that departs further from the original's is the answer: a head whose phase advances
    by each bin's own steady amount lays its lines on the bins, between the frame rate's."""
    ref, est = match_lengths(reference, estimate)
    frame, frames, silent = silent_frames(ref, sample_rate, sound_dbfs, frame_ms)
    sounding = np.repeat(~silent, frame)
    grids = [("frame rate", sample_rate / hop)]
    if n_fft is not None and n_fft != hop:
        grids.append(("bin spacing", sample_rate / n_fft))
    combs = [_comb_on(ref, est, sample_rate, sounding, f0, max_hz, grid) for grid, f0 in grids]
    measured = [c for c in combs if not c.reason]
    if not measured:
        return combs[0]
    return max(measured, key=lambda c: abs(c.excess_db) if math.isfinite(c.excess_db) else -1.0)


def _comb_on(ref: np.ndarray, est: np.ndarray, sample_rate: int, sounding: np.ndarray, f0: float,
             max_hz: float, grid: str) -> SpeechComb:
    nperseg = comb_segment(sample_rate, f0)
    top = min(max_hz, sample_rate / 2 - f0 / 2)
    if top < f0:
        return SpeechComb(f0, reason=f"the {grid} {f0:g} Hz is above {top:g} Hz", grid=grid)
    seconds = float(sounding.sum()) / sample_rate
    if sounding.sum() < nperseg:
        return SpeechComb(f0, sounding_seconds=seconds, grid=grid,
                          reason=f"the original sounds for {seconds:.2f} s; "
                                 f"{nperseg / sample_rate:.2f} s are needed")
    # The sounding frames joined end to end: the spectrum of the speech, not of its pauses.
    ref_speech, est_speech = ref[: len(sounding)][sounding], est[: len(sounding)][sounding]
    return SpeechComb(
        grid_hz=f0,
        median_db=_median_peak(est_speech, sample_rate, f0, top, nperseg),
        reference_median_db=_median_peak(ref_speech, sample_rate, f0, top, nperseg),
        sounding_seconds=seconds,
        grid=grid,
    )
