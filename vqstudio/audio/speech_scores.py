"""PESQ and STOI of a reconstruction against its original: speech-quality scores from optional
packages (the ``quality`` extra), None when the package is not installed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vqstudio.audio.clip_pair import match_lengths

PESQ_RATES = (8000, 16000)


def _resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if from_rate == to_rate:
        return wave
    g = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(wave, to_rate // g, from_rate // g)


def pesq_score(reference: Any, estimate: Any, sample_rate: int) -> float | None:
    """PESQ (MOS-LQO, about 1 to 4.6) of mono clips ``[T]``; None without the ``pesq`` package.

    Wide band at 16 kHz (narrow band when the clips are at 8 kHz); other rates are resampled to
    16 kHz first. nan when PESQ refuses the clip (no speech detected, too short).
    """
    try:
        from pesq import PesqError, pesq
    except ImportError:
        return None
    ref, est = match_lengths(reference, estimate)
    rate = sample_rate if sample_rate in PESQ_RATES else 16000
    mode = "nb" if rate == 8000 else "wb"
    ref, est = _resample(ref, sample_rate, rate), _resample(est, sample_rate, rate)
    try:
        return float(pesq(rate, ref.astype(np.float32), est.astype(np.float32), mode))
    except PesqError:
        return math.nan


def stoi_score(reference: Any, estimate: Any, sample_rate: int) -> float | None:
    """STOI (0 to 1, intelligibility) of mono clips ``[T]``; None without the ``pystoi`` package."""
    try:
        from pystoi import stoi
    except ImportError:
        return None
    ref, est = match_lengths(reference, estimate)
    return float(stoi(ref, est, sample_rate, extended=False))
