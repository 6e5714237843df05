"""Evaluation metrics that compare a reconstruction with its original clip.

Every function takes the original (``reference``) and the reconstruction (``estimate``) as mono
waveforms ``[T]`` (numpy or torch; ``[1, T]`` and ``[1, 1, T]`` are accepted too) at one sample
rate, and returns plain Python floats, ready for a CSV row, a table or a plot.

- :func:`si_sdr_db`: scale-invariant signal-to-distortion ratio, dB (higher is better).
- :func:`mel_distance`: multi-scale log-mel L1 distance (lower is better; 0 for identical clips).
- :func:`mrstft_distance`: multi-resolution STFT distance, spectral convergence + log magnitude.
- :func:`noise_floor_dbfs`: the level of the reconstruction where the original is near-silent:
  the background hiss or buzz of an RVQ codec, in one number.
- :func:`band_error_db`: error energy relative to the original's, per frequency band.
- :func:`codebook_entropy`: normalised entropy of code usage, per quantizer level.
- :func:`pesq_score` / :func:`stoi_score`: only with the optional ``quality`` extra installed.
- :func:`evaluate_pair` and :func:`aggregate`: all of the above for one clip, and their means.

Levels are in dBFS relative to an amplitude of 1.0: a full-scale square wave is 0 dBFS, a
full-scale sine -3 dBFS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from vqstudio.audio.clip_pair import MAX_TRIM_SAMPLES, as_mono, match_lengths  # noqa: F401 (re-exported)
from vqstudio.audio.spectral import LOG_FLOOR, StftParams, mel_filterbank
from vqstudio.audio.speech_scores import _resample, pesq_score, stoi_score  # noqa: F401 (re-exported)
from vqstudio.errors import UserError

EPS = 1e-12
MAX_MELS = 80
# Power floor of the MR-STFT log magnitude (magnitude floor 1e-4), as auraloss does, so figures
# compare with published ones.
MRSTFT_POWER_FLOOR = 1e-8


# -- inputs -----------------------------------------------------------------------------------


def _require_length(length: int, n_fft: int, what: str) -> None:
    # Centred frames reflect-pad n_fft // 2 samples, which needs a clip longer than that.
    if length <= n_fft // 2:
        raise UserError(
            f"{what} needs clips longer than {n_fft // 2} samples (n_fft={n_fft}); got {length}",
            "evaluate longer clips or use smaller FFT sizes",
        )


def _torch(wave: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(wave.astype(np.float32))


def _safe_db(numerator: float, denominator: float) -> float:
    """``10 log10(num / den)``: -inf for num 0, +inf for den 0, nan for both."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(10.0 * np.log10(np.float64(numerator) / np.float64(denominator)))


# -- waveform -------------------------------------------------------------------------------


def si_sdr_db(reference: Any, estimate: Any) -> float:
    """Scale-invariant signal-to-distortion ratio in dB, of mono clips ``[T]``.

    Both clips are made zero-mean; the reference is scaled to best match the estimate and what
    is left over counts as distortion. Rescaling the estimate leaves the figure unchanged. A small
    epsilon keeps it finite: identical clips give a large value (well above 100 dB), not inf.
    """
    ref, est = match_lengths(reference, estimate)
    ref = ref - ref.mean()
    est = est - est.mean()
    scale = np.dot(est, ref) / (np.dot(ref, ref) + EPS)
    target = scale * ref
    distortion = est - target
    ratio = (np.dot(target, target) + EPS) / (np.dot(distortion, distortion) + EPS)
    return float(10.0 * np.log10(ratio))


# -- spectral distances -----------------------------------------------------------------------


@lru_cache(maxsize=32)
def _mel_basis(sample_rate: int, n_fft: int) -> torch.Tensor:
    """Slaney mel filters ``[M, n_fft // 2 + 1]``: 80, or fewer when some filters of 80 would be
    narrower than one FFT bin and catch nothing (small n_fft)."""
    for n_mels in range(MAX_MELS, 0, -1):
        fb = mel_filterbank(sample_rate, n_fft, n_mels)
        if np.all(fb.max(axis=1) > 0):
            return torch.from_numpy(fb)
    raise UserError(f"n_fft={n_fft} is too small for a mel spectrogram", "use n_fft of 256 or more")


def mel_distance(
    reference: Any, estimate: Any, sample_rate: int, scales: Sequence[int] = (512, 1024, 2048)
) -> float:
    """Multi-scale log-mel L1 distance of mono clips ``[T]``; 0 for identical clips.

    Per scale (an n_fft, hop n_fft // 4, Hann window, centred frames): magnitude mel spectrogram
    ``[M, frames]`` with up to 80 Slaney mel bands, natural log with a 1e-5 floor, mean absolute
    difference. The result is the mean over scales, in nepers of log magnitude.
    """
    ref, est = match_lengths(reference, estimate)
    x = torch.stack([_torch(ref), _torch(est)])  # [2, T]
    distances = []
    for n_fft in scales:
        _require_length(len(ref), n_fft, "mel_distance")
        stft = StftParams(n_fft=int(n_fft), hop=int(n_fft) // 4)
        mel = torch.matmul(_mel_basis(int(sample_rate), int(n_fft)), stft.stft(x).abs())
        logmel = torch.log(mel.clamp(min=LOG_FLOOR))
        distances.append(float((logmel[0] - logmel[1]).abs().mean()))
    return float(np.mean(distances))


def mrstft_distance(
    reference: Any,
    estimate: Any,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
    hops: Sequence[int] = (128, 256, 512),
) -> float:
    """Multi-resolution STFT distance of mono clips ``[T]``; 0 for identical clips.

    Per resolution (Hann window of n_fft samples, centred frames), on magnitudes ``[F, frames]``:
    spectral convergence ``||R - E||_F / ||R||_F`` plus the mean absolute difference of log
    magnitudes (power floored at 1e-8), averaged over resolutions, as auraloss's
    ``MultiResolutionSTFTLoss`` with unit weights.
    """
    if len(fft_sizes) != len(hops):
        raise UserError(
            f"mrstft_distance got {len(fft_sizes)} FFT sizes but {len(hops)} hops",
            "give one hop per FFT size",
        )
    ref, est = match_lengths(reference, estimate)
    x = torch.stack([_torch(ref), _torch(est)])  # [2, T]
    distances = []
    for n_fft, hop in zip(fft_sizes, hops):
        _require_length(len(ref), n_fft, "mrstft_distance")
        spec = StftParams(n_fft=int(n_fft), hop=int(hop)).stft(x)
        mag = torch.sqrt((spec.real**2 + spec.imag**2).clamp(min=MRSTFT_POWER_FLOOR))
        ref_mag, est_mag = mag[0].double(), mag[1].double()
        ref_norm = torch.linalg.norm(ref_mag).clamp(min=EPS)
        convergence = torch.linalg.norm(ref_mag - est_mag) / ref_norm
        log_mag = (torch.log(ref_mag) - torch.log(est_mag)).abs().mean()
        distances.append(float(convergence + log_mag))
    return float(np.mean(distances))


def band_names(edges: Sequence[float]) -> list[str]:
    """Names of the bands cut at ``edges`` (Hz): (1000, 4000, 8000) -> <1k, 1k-4k, 4k-8k, >8k."""

    def hz(f: float) -> str:
        return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"

    names = [f"<{hz(edges[0])}"]
    names += [f"{hz(lo)}-{hz(hi)}" for lo, hi in zip(edges[:-1], edges[1:])]
    return names + [f">{hz(edges[-1])}"]


def band_error_db(
    reference: Any,
    estimate: Any,
    sample_rate: int,
    edges: Sequence[float] = (1000, 4000, 8000),
    n_fft: int = 1024,
) -> dict[str, float]:
    """Error energy relative to the original's, per frequency band, in dB.

    On complex STFTs ``[F, frames]`` (Hann, n_fft, hop n_fft // 4), per band:
    ``10 log10(sum |E - R|^2 / sum |R|^2)`` over the bins whose centre frequency lies in it, so a
    phase error counts as well as a magnitude one. 0 dB means an error as loud as the original in
    that band. -inf: no error at all; +inf: error where the original has no energy; nan: neither.
    Bands that start at or above Nyquist are left out; the last band kept runs up to Nyquist.
    """
    edges = [float(e) for e in edges]
    if not edges or edges[0] <= 0 or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise UserError(
            f"band edges {edges} are not positive and increasing", "give e.g. (1000, 4000)"
        )
    ref, est = match_lengths(reference, estimate)
    _require_length(len(ref), n_fft, "band_error_db")
    spec = StftParams(n_fft=n_fft, hop=n_fft // 4).stft(torch.stack([_torch(ref), _torch(est)]))
    ref_power = spec[0].abs().double().pow(2).sum(dim=1).numpy()  # [F]
    err_power = (spec[1] - spec[0]).abs().double().pow(2).sum(dim=1).numpy()  # [F]
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    nyquist = sample_rate / 2
    lows = [0.0, *edges]
    highs = [*edges, math.inf]
    kept = [i for i, lo in enumerate(lows) if lo < nyquist]
    result = {}
    for name_index, i in enumerate(kept):
        lo, hi = lows[i], highs[i]
        last = name_index == len(kept) - 1
        in_band = (freqs >= lo) & ((freqs <= nyquist) if last else (freqs < hi))
        result[band_names(edges)[i]] = _safe_db(err_power[in_band].sum(), ref_power[in_band].sum())
    return result


# -- the noise floor --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseFloor:
    """The reconstruction's level where the original is near-silent, and what it rests on."""

    dbfs: float  # RMS level of the reconstruction over the silent frames; nan when there are none
    silent_frames: int
    frames: int
    reason: str = ""  # why ``dbfs`` is nan; empty when it was measured


def noise_floor(
    reference: Any,
    estimate: Any,
    sample_rate: int,
    silence_dbfs: float = -50.0,
    frame_ms: float = 20.0,
) -> NoiseFloor:
    """Measure the reconstruction in the frames where the original is near-silent.

    The clips ``[T]`` are cut into back-to-back frames of ``frame_ms``; a frame is silent when the
    original's RMS there is below ``silence_dbfs``. The reconstruction's RMS, pooled over the
    samples of all silent frames, is the noise floor in dBFS: whatever the codec adds where there
    should be nothing (hiss, buzz, haze). A trailing part frame is ignored.
    """
    ref, est = match_lengths(reference, estimate)
    frame = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    frames = len(ref) // frame
    if frames == 0:
        return NoiseFloor(
            math.nan,
            0,
            0,
            f"the clip ({len(ref)} samples) is shorter than one {frame_ms:g} ms frame",
        )
    ref_frames = ref[: frames * frame].reshape(frames, frame)
    est_frames = est[: frames * frame].reshape(frames, frame)
    ref_db = 10.0 * np.log10(np.mean(ref_frames**2, axis=1) + EPS**2)
    silent = ref_db < silence_dbfs
    count = int(silent.sum())
    if count == 0:
        return NoiseFloor(
            math.nan,
            0,
            frames,
            f"the original has no frame quieter than {silence_dbfs:g} dBFS, so there is no silence "
            "to measure the background in",
        )
    power = float(np.mean(est_frames[silent] ** 2))
    dbfs = 10.0 * math.log10(power) if power > 0 else -math.inf
    return NoiseFloor(dbfs, count, frames)


def noise_floor_dbfs(
    reference: Any,
    estimate: Any,
    sample_rate: int,
    silence_dbfs: float = -50.0,
    frame_ms: float = 20.0,
) -> float:
    """RMS level (dBFS) of the reconstruction where the original is below ``silence_dbfs``.

    nan when the original has no such frame; :func:`noise_floor` says why and how many frames the
    figure rests on. -inf when the reconstruction is exactly silent there.
    """
    return noise_floor(reference, estimate, sample_rate, silence_dbfs, frame_ms).dbfs


# -- codebooks --------------------------------------------------------------------------------


def codebook_entropy(codes: Any, codebook_size: int) -> list[float]:
    """Normalised entropy (entropy / log K) of code usage per level: 1 is even use of all K codes,
    0 is one code for everything.

    ``codes``: integer array ``[L, N]`` or ``[B, L, N]`` (numpy or torch) -> list of L floats.
    """
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    codes = np.asarray(codes)
    if codes.ndim == 3:
        codes = np.moveaxis(codes, 1, 0).reshape(codes.shape[1], -1)
    if codes.ndim != 2:
        raise UserError(f"codes have shape {codes.shape}", "pass codes shaped [L, N] or [B, L, N]")
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise UserError(
            f"codes range from {codes.min()} to {codes.max()}, "
            f"outside a codebook of {codebook_size}",
            "pass the codebook size the model was built with",
        )
    entropies = []
    for level in codes.astype(np.int64):
        counts = np.bincount(level, minlength=codebook_size)
        total = counts.sum()
        if total == 0 or codebook_size < 2:
            entropies.append(0.0)
            continue
        p = counts[counts > 0] / total
        entropies.append(float(max(0.0, -np.sum(p * np.log(p)) / math.log(codebook_size))))
    return entropies


# -- one clip, many clips ---------------------------------------------------------------------


def evaluate_pair(reference: Any, estimate: Any, sample_rate: int) -> dict[str, Any]:
    """Every metric for one original ``[T]`` and its reconstruction ``[T]``.

    Keys: ``si_sdr_db``, ``mel_distance``, ``mrstft_distance``, ``noise_floor_dbfs`` (floats) and
    ``band_error_db`` (band name -> dB); ``pesq`` and ``stoi`` only when their packages are there.
    """
    ref, est = match_lengths(reference, estimate)
    result: dict[str, Any] = {
        "si_sdr_db": si_sdr_db(ref, est),
        "mel_distance": mel_distance(ref, est, sample_rate),
        "mrstft_distance": mrstft_distance(ref, est),
        "noise_floor_dbfs": noise_floor_dbfs(ref, est, sample_rate),
        "band_error_db": band_error_db(ref, est, sample_rate),
    }
    for key, score in (("pesq", pesq_score), ("stoi", stoi_score)):
        value = score(ref, est, sample_rate)
        if value is not None:
            result[key] = value
    return result


def _nanmean(values: list[float]) -> float:
    finite_or_inf = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite_or_inf)) if finite_or_inf else math.nan


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over clips of :func:`evaluate_pair` results, key by key, skipping nan values.

    ``band_error_db`` is averaged band by band (the mean of the dB figures, each clip weighing
    the same). A key missing from some clips is averaged over the clips that have it; a key that
    is nan everywhere stays nan. An empty list gives an empty dict.
    """
    scalars: dict[str, list[float]] = {}
    bands: dict[str, list[float]] = {}
    for result in results:
        for key, value in result.items():
            if key == "band_error_db":
                for band, db in value.items():
                    bands.setdefault(band, []).append(float(db))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars.setdefault(key, []).append(float(value))
    means: dict[str, Any] = {key: _nanmean(values) for key, values in scalars.items()}
    if bands:
        means["band_error_db"] = {band: _nanmean(values) for band, values in bands.items()}
    return means
