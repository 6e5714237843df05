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
    """How far the harmonics of the frame rate stand out where the original sounds."""

    frame_rate: float  # Hz: sample_rate / hop
    median_db: float = math.nan  # the reconstruction's median harmonic over its neighbours
    reference_median_db: float = math.nan  # the original's, over the same frames
    sounding_seconds: float = 0.0
    reason: str = ""  # why nothing was measured; empty when measured

    @property
    def excess_db(self) -> float:
        """What the model adds: the reconstruction's median over the original's."""
        return self.median_db - self.reference_median_db


def _median_peak(x: np.ndarray, sample_rate: int, f0: float, top: float, nperseg: int) -> float:
    freqs, power = signal.welch(x, sample_rate, window="hann", nperseg=nperseg, detrend=False)
    peaks, _ = harmonic_peaks(power, freqs[1] - freqs[0], f0, top)
    finite = np.asarray(peaks)[np.isfinite(peaks)]
    return float(np.median(finite)) if finite.size else math.nan


def speech_comb(reference: Any, estimate: Any, sample_rate: int, hop: int,
                sound_dbfs: float = SILENCE_DBFS, frame_ms: float = FRAME_MS,
                max_hz: float = COMB_MAX_HZ) -> SpeechComb:
    """The comb at ``k * sample_rate / hop`` (k up to ``max_hz``) in the frames where ``reference``
    is louder than ``sound_dbfs``, of ``estimate`` and of ``reference`` (see the module)."""
    ref, est = match_lengths(reference, estimate)
    f0 = sample_rate / hop
    frame, frames, silent = silent_frames(ref, sample_rate, sound_dbfs, frame_ms)
    sounding = np.repeat(~silent, frame)
    nperseg = comb_segment(sample_rate, f0)
    top = min(max_hz, sample_rate / 2 - f0 / 2)
    if top < f0:
        return SpeechComb(f0, reason=f"the frame rate {f0:g} Hz is above {top:g} Hz")
    seconds = float(sounding.sum()) / sample_rate
    if sounding.sum() < nperseg:
        return SpeechComb(f0, sounding_seconds=seconds,
                          reason=f"the original sounds for {seconds:.2f} s; "
                                 f"{nperseg / sample_rate:.2f} s are needed")
    # The sounding frames joined end to end: the spectrum of the speech, not of its pauses.
    ref_speech, est_speech = ref[: len(sounding)][sounding], est[: len(sounding)][sounding]
    return SpeechComb(
        frame_rate=f0,
        median_db=_median_peak(est_speech, sample_rate, f0, top, nperseg),
        reference_median_db=_median_peak(ref_speech, sample_rate, f0, top, nperseg),
        sounding_seconds=seconds,
    )
