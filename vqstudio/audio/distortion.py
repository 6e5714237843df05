"""Measures of the distortion an RVQ codec with an ISTFT output adds where there should be none.

Three signatures of the seed's "persistent background distortion", each measured on an original
``[T]`` and its reconstruction ``[T]`` at one sample rate (numpy or torch, as in
:mod:`vqstudio.audio.metrics`), each returning a small frozen record of plain floats that says
what it rests on:

- :func:`silence_floor`: the reconstruction's level where the original is near-silent, overall
  and per frequency band (dBFS), beside the original's own level there: a hiss carpet.
- :func:`frame_rate_comb`: how far the reconstruction's spectrum in quiet passages stands out at
  the multiples of the frame rate ``sample_rate / hop`` over the bins around them: a buzz from
  frames that repeat, or jump, at every hop of the inverse STFT.
- :func:`distortion_figures`: the first two as the plain figures of one clip, for tables.
- :func:`dnsmos`: Microsoft's DNSMOS P.835 scores (background, signal, overall) of a clip, from
  the ``speechmos`` package (ONNX models in its wheel, offline). A speech model: its figures mean
  little on music, and no conclusion should rest on it alone.

Levels are dBFS relative to an amplitude of 1.0, as in :mod:`vqstudio.audio.metrics`.
Qt-free and torch-free apart from the shared input helpers; the diagnosis engine builds on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import signal

from vqstudio.audio.metrics import EPS, _resample, as_mono, band_names, match_lengths
from vqstudio.errors import UserError

SILENCE_DBFS = -50.0  # an original frame quieter than this is "silent"
FRAME_MS = 20.0
# Silent frames that touch a louder one are left out of the floor: a 40 ms synthesis window smears
# every word edge a frame into the pause, which is a transient, not the carpet under the pauses.
GUARD_FRAMES = 1
# Beyond the guard, a pause's frames within this of a sound are its "near" part: where a word's
# tail (or the next one's onset) smears in when the losses cannot see so short a time.
NEAR_SOUND_MS = 100.0
BAND_EDGES = (1000.0, 4000.0, 8000.0)
COMB_THRESHOLD_DB = 3.0  # a harmonic standing more than this over its neighbours counts
COMB_MAX_HZ = 4000.0  # harmonics above this are not looked at (speech pauses carry little there)
# A harmonic quieter than this is not counted as a comb: it lies below the rounding noise of 16-bit
# audio (-101 dBFS RMS), cannot be heard, and its peak-over-neighbour figure measures arithmetic.
INAUDIBLE_DBFS = -90.0
DNSMOS_RATE = 16000
DNSMOS_MIN_SECONDS = 9.01  # the model's window; shorter clips are repeated by speechmos


def _db(power: float) -> float:
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def silent_frames(ref: np.ndarray, sample_rate: int, silence_dbfs: float, frame_ms: float):
    """(frame length, frame count, ``[frames]`` bool mask of frames quieter than the threshold)."""
    frame = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    frames = len(ref) // frame
    if frames == 0:
        return frame, 0, np.zeros(0, dtype=bool)
    power = np.mean(ref[: frames * frame].reshape(frames, frame) ** 2, axis=1)
    return frame, frames, 10.0 * np.log10(power + EPS**2) < silence_dbfs


# -- the floor in silences --------------------------------------------------------------------


@dataclass(frozen=True)
class SilenceFloor:
    """The reconstruction where the original is near-silent."""

    dbfs: float  # the reconstruction's RMS level over the silent frames (nan: no silent frames)
    reference_dbfs: float  # the original's own level over the same frames
    bands_dbfs: dict[str, float]  # the reconstruction's level per band there; they add up to dbfs
    reference_bands_dbfs: dict[str, float]
    silent_seconds: float  # the silence measured (after the guard)
    seconds: float
    reason: str = ""  # why the figures are nan; empty when measured
    edge_dbfs: float = math.nan  # the level in the guard frames next to sound, left out of dbfs
    # The measured frames split by their distance to the nearest sound (NEAR_SOUND_MS): the level
    # of each part, and the near part's share of the measured energy (1: it is all smear).
    near_dbfs: float = math.nan
    far_dbfs: float = math.nan
    near_share: float = math.nan

    @property
    def above_reference_db(self) -> float:
        """How much louder the reconstruction is than the original in its own silences."""
        return self.dbfs - self.reference_dbfs


def _band_levels(frames: np.ndarray, sample_rate: int, edges: Sequence[float]) -> dict[str, float]:
    """Level (dBFS) of ``frames`` ``[M, n]`` per band: each band's share of the mean square, so the
    bands' powers add up to the whole signal's (Parseval, rectangular frames)."""
    n = frames.shape[1]
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    weight = np.full(spec.shape[1], 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    power = (spec * weight).mean(axis=0) / n**2  # mean-square contribution per bin
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    bounds = [0.0, *edges, math.inf]
    names = band_names(edges)
    out = {}
    for name, lo, hi in zip(names, bounds[:-1], bounds[1:]):
        if lo >= sample_rate / 2:
            break
        out[name] = _db(float(power[(freqs >= lo) & (freqs < hi)].sum()))
    return out


def _trim_runs(silent: np.ndarray, guard: int) -> np.ndarray:
    """``silent`` ``[frames]`` without the ``guard`` frames next to any non-silent frame (the clip's
    own ends count as silence: they are not a sound's edge)."""
    if guard <= 0 or silent.size == 0:
        return silent.copy()
    loud_near = np.convolve((~silent).astype(float), np.ones(2 * guard + 1), mode="same") > 0.5
    return silent & ~loud_near


def silence_floor(
    reference: Any,
    estimate: Any,
    sample_rate: int,
    silence_dbfs: float = SILENCE_DBFS,
    frame_ms: float = FRAME_MS,
    edges: Sequence[float] = BAND_EDGES,
    guard_frames: int = GUARD_FRAMES,
) -> SilenceFloor:
    """Level of ``estimate`` in the frames where ``reference`` is below ``silence_dbfs``.

    The clips are cut into back-to-back ``frame_ms`` frames (a trailing part frame is ignored); the
    reconstruction's samples in the original's silent frames are pooled, leaving out the
    ``guard_frames`` at each end of a pause (their level is ``edge_dbfs``: how far sound smears
    into the pause; ``guard_frames=0`` pools every silent frame, as
    :func:`vqstudio.audio.metrics.noise_floor` does). The measured frames are split again at
    ``NEAR_SOUND_MS`` from the nearest sound: a floor made of smeared word tails is loud near
    and quiet far; a carpet is as loud far from sound as near it. Per band (cut at
    ``edges`` Hz, the last band up to Nyquist), the level is that band's part of the mean square,
    so the bands' powers sum to the overall figure. The same is given for the original, whose own
    floor (dither, room noise) is the least a codec can be asked for.
    """
    ref, est = match_lengths(reference, estimate)
    frame, frames, silent = silent_frames(ref, sample_rate, silence_dbfs, frame_ms)
    seconds = frames * frame / sample_rate
    empty = {name: math.nan for name in band_names(edges)}
    measured = _trim_runs(silent, guard_frames)
    if not measured.any():
        reason = (
            f"the clip is shorter than one {frame_ms:g} ms frame" if frames == 0 else
            f"the original has no frame quieter than {silence_dbfs:g} dBFS" if not silent.any() else
            f"the original's pauses are all shorter than {2 * guard_frames + 1} frames of "
            f"{frame_ms:g} ms (the guard at each end leaves nothing)"
        )
        return SilenceFloor(math.nan, math.nan, empty, empty, 0.0, seconds, reason)
    ref_all = ref[: frames * frame].reshape(frames, frame)
    est_all = est[: frames * frame].reshape(frames, frame)
    ref_frames, est_frames = ref_all[measured], est_all[measured]
    edge = silent & ~measured
    # A frame within NEAR_SOUND_MS of sound is one the same trim, that wide, takes off.
    near = ~_trim_runs(silent, int(NEAR_SOUND_MS // frame_ms))[measured]
    energy = est_frames.astype(np.float64) ** 2
    total = float(energy.sum())
    return SilenceFloor(
        dbfs=_db(float(np.mean(est_frames**2))),
        reference_dbfs=_db(float(np.mean(ref_frames**2))),
        bands_dbfs=_band_levels(est_frames, sample_rate, edges),
        reference_bands_dbfs=_band_levels(ref_frames, sample_rate, edges),
        silent_seconds=int(measured.sum()) * frame / sample_rate,
        seconds=seconds,
        edge_dbfs=_db(float(np.mean(est_all[edge] ** 2))) if edge.any() else math.nan,
        near_dbfs=_db(float(energy[near].mean())) if near.any() else math.nan,
        far_dbfs=_db(float(energy[~near].mean())) if (~near).any() else math.nan,
        near_share=float(energy[near].sum()) / total if total > 0 else math.nan,
    )


# -- the comb at the frame rate ---------------------------------------------------------------


@dataclass(frozen=True)
class FrameRateComb:
    """Peaks of the reconstruction's spectrum at multiples of the frame rate, in quiet passages."""

    frame_rate: float  # Hz: sample_rate / hop
    peaks_db: list[float] = field(default_factory=list)  # per harmonic k = 1, 2, ...: over neighbours
    median_db: float = math.nan  # the typical harmonic's peak over its neighbours
    max_db: float = math.nan
    above_threshold: int = 0  # audible harmonics standing more than ``threshold_db`` over neighbours
    threshold_db: float = COMB_THRESHOLD_DB
    quiet_seconds: float = 0.0
    reason: str = ""  # why nothing was measured; empty when measured
    levels_dbfs: list[float] = field(default_factory=list)  # per harmonic: its level in the quiet
    loudest_dbfs: float = math.nan  # the loudest harmonic's level (a peak at -100 dBFS is inaudible)
    audible_max_db: float = -math.inf  # max_db over the harmonics louder than INAUDIBLE_DBFS

    @property
    def harmonics(self) -> int:
        return len(self.peaks_db)


def _quiet_gate(silent: np.ndarray, frame: int, length: int, ramp: int) -> np.ndarray:
    """``[length]`` weights: 1 inside runs of silent frames (the guard trimmed off each edge, so
    the loud neighbours do not leak in), 0 elsewhere, with raised-cosine ramps of ``ramp``."""
    inner = _trim_runs(silent, GUARD_FRAMES)
    gate = np.zeros(length)
    gate[: len(inner) * frame] = np.repeat(inner.astype(float), frame)
    if ramp > 1 and gate.any():
        kernel = np.hanning(2 * ramp + 1)
        gate = np.convolve(gate, kernel / kernel.sum(), mode="same") * gate
    return gate


def comb_segment(sample_rate: int, f0: float) -> int:
    """Welch's segment for a comb at ``f0``: a power of two with at least 16 bins between harmonics."""
    return 1 << int(math.ceil(math.log2(16 * sample_rate / f0)))


def harmonic_peaks(power: np.ndarray, df: float, f0: float, top: float) -> tuple[list[float], list[float]]:
    """Per harmonic ``k * f0`` up to ``top`` of a power spectrum with bins ``df`` apart: the power
    of the three bins around it over the mean of the bins a quarter to a half ``f0`` away on both
    sides (dB; broadband noise reads ~0), and those three bins' power."""
    peaks, near = [], []
    lo, hi = int(math.ceil(f0 / 4 / df)), int(f0 / 2 / df)
    for k in range(1, int(top // f0) + 1):
        centre = int(round(k * f0 / df))
        here = float(power[centre - 1 : centre + 2].sum())
        around = np.concatenate([power[centre - hi : centre - lo + 1], power[centre + lo : centre + hi + 1]])
        peaks.append(_db(here) - _db(3.0 * float(around.mean()) + EPS**2))
        near.append(here)
    return peaks, near


def frame_rate_comb(
    reference: Any,
    estimate: Any,
    sample_rate: int,
    hop: int,
    quiet_dbfs: float = SILENCE_DBFS,
    frame_ms: float = FRAME_MS,
    threshold_db: float = COMB_THRESHOLD_DB,
    max_hz: float = COMB_MAX_HZ,
) -> FrameRateComb:
    """Peak-over-neighbour level of ``estimate`` at ``k * sample_rate / hop`` where ``reference``
    is quiet (below ``quiet_dbfs`` per ``frame_ms`` frame).

    The reconstruction is gated to the original's quiet runs and its power spectrum averaged
    (Welch, Hann, at least 16 bins between harmonics). Per harmonic up to ``max_hz`` (and below
    Nyquist): the power of the three bins around it over the mean of the bins between a quarter and
    a half frame rate away on both sides, in dB. Broadband hiss reads about 0 dB; a buzz that
    repeats every hop reads tens of dB. ``levels_dbfs`` gives each harmonic's own level in the
    quiet passages; harmonics below :data:`INAUDIBLE_DBFS` are not counted in ``above_threshold``
    or ``audible_max_db``.
    """
    ref, est = match_lengths(reference, estimate)
    f0 = sample_rate / hop
    frame, frames, silent = silent_frames(ref, sample_rate, quiet_dbfs, frame_ms)
    gate = _quiet_gate(silent, frame, len(ref), ramp=max(1, frame // 4))
    quiet_seconds = float(gate.sum()) / sample_rate
    nperseg = comb_segment(sample_rate, f0)
    top = min(max_hz, sample_rate / 2 - f0 / 2)
    if top < f0:
        return FrameRateComb(f0, threshold_db=threshold_db, reason=f"the frame rate {f0:g} Hz is above {top:g} Hz")
    if quiet_seconds * sample_rate < nperseg / 2:
        return FrameRateComb(
            f0,
            threshold_db=threshold_db,
            quiet_seconds=quiet_seconds,
            reason=f"the original has {quiet_seconds:.2f} s below {quiet_dbfs:g} dBFS; "
            f"{nperseg / 2 / sample_rate:.2f} s are needed",
        )
    x = est * gate
    if len(x) < nperseg:
        x = np.pad(x, (0, nperseg - len(x)))
    freqs, power = signal.welch(x, sample_rate, window="hann", nperseg=nperseg, detrend=False)
    df = freqs[1] - freqs[0]
    gate_power = float(np.mean(np.pad(gate, (0, len(x) - len(gate))) ** 2))
    peaks, near = harmonic_peaks(power, df, f0, top)
    levels = [_db(p * df / gate_power) for p in near]
    arr = np.asarray(peaks)
    audible = arr[np.isfinite(arr) & (np.asarray(levels) > INAUDIBLE_DBFS)]
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return FrameRateComb(f0, threshold_db=threshold_db, quiet_seconds=quiet_seconds,
                             reason="the reconstruction is exactly silent in the quiet passages")
    return FrameRateComb(
        frame_rate=f0,
        peaks_db=[float(p) for p in arr],
        median_db=float(np.median(finite)),
        max_db=float(finite.max()),
        above_threshold=int((audible > threshold_db).sum()),
        threshold_db=threshold_db,
        quiet_seconds=quiet_seconds,
        levels_dbfs=levels,
        loudest_dbfs=float(max(levels)),
        audible_max_db=float(audible.max()) if audible.size else -math.inf,
    )


# -- the figures of one clip --------------------------------------------------------------------


def distortion_figures(reference: Any, estimate: Any, sample_rate: int, hop: int) -> dict[str, float]:
    """The background figures of one original and its reconstruction, as plain floats (nan where
    a clip has nothing to measure), for tables that take means over clips (``vqstudio eval`` and
    ``compare``, ``benchmarks/quantizers.py``, the diagnosis's verify):

    - ``pause_floor_dbfs``: :func:`silence_floor` with the pauses' edge frames left out (the
      figure with them in is :func:`vqstudio.audio.metrics.noise_floor_dbfs`);
      ``pause_deep_dbfs`` its part farther than ``NEAR_SOUND_MS`` from any sound (the carpet,
      without the words' tails), ``pause_near_share`` the part within it, of the energy;
    - ``comb_max_db``, ``comb_median_db``: :func:`frame_rate_comb`'s loudest and typical harmonic
      over its neighbours; ``comb_loudest_dbfs`` the loudest harmonic's own level;
      ``comb_audible_db`` the max over the harmonics louder than :data:`INAUDIBLE_DBFS` (-inf when
      none is).
    """
    floor = silence_floor(reference, estimate, sample_rate)
    comb = frame_rate_comb(reference, estimate, sample_rate, hop)
    return {
        "pause_floor_dbfs": floor.dbfs,
        "pause_deep_dbfs": floor.far_dbfs,
        "pause_near_share": floor.near_share,
        "comb_max_db": comb.max_db,
        "comb_median_db": comb.median_db,
        "comb_loudest_dbfs": comb.loudest_dbfs,
        "comb_audible_db": comb.audible_max_db if not comb.reason else math.nan,
    }


def worst_audible_comb(clips: Sequence[dict[str, float]]) -> float:
    """The loudest audible comb over clips (each a :func:`distortion_figures` dict), in dB over
    the neighbours, 0 where no audible harmonic stands out on any clip (a harmonic under its
    neighbours is no comb either); nan when no clip had quiet passages to measure.

    A comb is a property of the worst clip, not of the mean: one buzzing clip among clean ones is
    heard. Harmonics under :data:`INAUDIBLE_DBFS` do not count, so a reconstruction that is
    digitally silent in the pauses reads 0, not the ratio of two rounding errors."""
    measured = [clip["comb_audible_db"] for clip in clips
                if not math.isnan(clip.get("comb_audible_db", math.nan))]
    return max(max(measured), 0.0) if measured else math.nan


# -- DNSMOS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsMos:
    """DNSMOS P.835 scores of one clip, 1 (bad) .. 5 (excellent)."""

    background: float  # BAK: how clean the background is (hiss, buzz, noise)
    signal: float  # SIG: how undistorted the speech itself is
    overall: float  # OVRL
    p808: float  # the older P.808 overall estimate


def dnsmos_available() -> bool:
    """Whether :func:`dnsmos` can run (``speechmos`` and ``onnxruntime`` importable)."""
    try:
        _speechmos()
    except UserError:
        return False
    return True


def require_dnsmos() -> None:
    """Raise :func:`dnsmos`'s :class:`UserError` (naming the install command) now, before any
    clip is reconstructed, when speechmos cannot be imported."""
    _speechmos()


def _speechmos():
    try:
        from speechmos import dnsmos as module  # imports onnxruntime and librosa
    except ImportError as exc:
        raise UserError(
            f"DNSMOS needs the speechmos package, which could not be imported ({exc})",
            "install it with: .venv/bin/pip install speechmos onnxruntime "
            "(or the project's extra: pip install -e '.[quality]')",
        ) from None
    return module


def dnsmos(wave: Any, sample_rate: int) -> DnsMos:
    """DNSMOS scores of a speech clip ``[T]`` at ``sample_rate`` (resampled to 16 kHz, clipped to
    [-1, 1]; clips shorter than the model's 9 s window are repeated to fill it, as speechmos
    does). Raises :class:`UserError` naming the install command when speechmos is missing."""
    module = _speechmos()
    x = as_mono(wave)
    if len(x) < sample_rate // 10:
        raise UserError(f"the clip is {len(x)} samples long", "DNSMOS needs at least 0.1 s of audio")
    x = np.clip(_resample(x, sample_rate, DNSMOS_RATE), -1.0, 1.0).astype(np.float32)
    scores = module.run(x, DNSMOS_RATE)
    return DnsMos(
        background=float(scores["bak_mos"]),
        signal=float(scores["sig_mos"]),
        overall=float(scores["ovrl_mos"]),
        p808=float(scores["p808_mos"]),
    )
