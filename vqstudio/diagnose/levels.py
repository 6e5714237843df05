"""Checks of the reconstruction's level against the original's: :func:`dc_offset`,
:func:`clipping` and :func:`level_mismatch` (loudness of the sounding frames).

Spectral losses see almost nothing of a constant offset or of a level a few dB off (a mel bin at
0 Hz, a log magnitude shifted by a constant); the waveform term sees both.
"""

from __future__ import annotations

import math

import numpy as np

from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import NotMeasured, Subject, remedy, worst

DC_WARN = 0.01  # |mean(reconstruction) - mean(original)|: -40 dBFS of offset
CLIP_LEVEL = 0.999  # a sample at or beyond this magnitude is clipped
CLIP_WARN_SHARE = 0.001  # of the reconstruction's samples (beyond what the original clips itself)
LEVEL_WARN_DB = 3.0  # the sounding frames' RMS, reconstruction against original
LEVEL_BAD_DB = 6.0
ACTIVE_DBFS = -40.0  # a 20 ms frame of the original louder than this is "sounding"
FRAME_S = 0.02


def _waveform_remedy(subject: Subject, why: str):
    weight = subject.config.loss.resolved_weights().get("waveform_mse", 0.0)
    return remedy("loss.weights.waveform_mse", round(max(1.0, 2.0 * weight), 3), why)


def _clip(subject: Subject, name: str):
    return next(c for c in subject.clips if c.name == name)


def dc_offset(subject: Subject) -> list[Finding]:
    offsets = {c.name: abs(float(np.mean(c.reconstruction, dtype=np.float64) -
                                 np.mean(c.original, dtype=np.float64))) for c in subject.clips}
    name, offset = worst(offsets)
    if offset < DC_WARN:
        return []
    clip = _clip(subject, name)
    return [Finding(
        id="dc_offset", severity="warn",
        title=f"A constant offset: the reconstruction sits {offset:.3f} away from the original's mean",
        explanation="A DC offset costs headroom and clicks at every cut; mel and STFT losses barely "
                    "see it (0 Hz), only the waveform term does.",
        evidence={"offset": offset, "offset_dbfs": 20 * math.log10(offset), "per_clip": offsets,
                  "threshold": DC_WARN},
        where={"clip": name},
        remedies=(_waveform_remedy(subject, "the waveform MSE is the term that sees a DC offset"),),
        listen=Listen(name, 0.0, len(clip.original) / subject.sample_rate),
    )]


def clipping(subject: Subject) -> list[Finding]:
    shares, where = {}, {}
    for c in subject.clips:
        extra = (np.abs(c.reconstruction) >= CLIP_LEVEL) & (np.abs(c.original) < CLIP_LEVEL)
        shares[c.name] = float(extra.mean())
        if extra.any():
            first = int(np.argmax(extra))
            where[c.name] = first / subject.sample_rate
    name, share = worst(shares)
    if share < CLIP_WARN_SHARE:
        return []
    at = where[name]
    peak = max(float(np.max(np.abs(c.reconstruction))) for c in subject.clips)
    return [Finding(
        id="clipping", severity="bad" if peak > 1.0 else "warn",
        title=f"Clipping: {100 * share:.2f} % of the samples reach full scale where the original does not",
        explanation="Samples at or beyond full scale are cut flat when written to a file: a harsh "
                    "crackle. The decoder's output is not bounded, so a level too high shows here.",
        evidence={"share": share, "peak": peak, "per_clip_share": shares, "clip_level": CLIP_LEVEL,
                  "threshold_share": CLIP_WARN_SHARE},
        where={"clip": name, "first_seconds": at},
        remedies=(_waveform_remedy(subject, "the waveform MSE pulls the level to the original's"),),
        listen=Listen(name, max(0.0, at - 0.25), at + 0.75),
    )]


def _active_rms_db(original: np.ndarray, wave: np.ndarray, sample_rate: int) -> float:
    frame = max(1, int(sample_rate * FRAME_S))
    n = len(original) // frame
    if n == 0:
        return math.nan
    ref = np.asarray(original[: n * frame], np.float64).reshape(n, frame)
    est = np.asarray(wave[: n * frame], np.float64).reshape(n, frame)
    active = 10 * np.log10(np.mean(ref**2, axis=1) + 1e-24) > ACTIVE_DBFS
    if not active.any():
        return math.nan
    return 10 * math.log10((np.mean(est[active] ** 2) + 1e-24) / (np.mean(ref[active] ** 2) + 1e-24))


def level_mismatch(subject: Subject) -> list[Finding]:
    sr = subject.sample_rate
    diffs = {c.name: _active_rms_db(c.original, c.reconstruction, sr) for c in subject.clips}
    if not any(math.isfinite(v) for v in diffs.values()):
        raise NotMeasured(f"no clip has a frame louder than {ACTIVE_DBFS:g} dBFS")
    name, diff = worst({k: abs(v) for k, v in diffs.items()})
    signed = diffs[name]
    if diff < LEVEL_WARN_DB:
        return []
    return [Finding(
        id="level_mismatch", severity="bad" if diff >= LEVEL_BAD_DB else "warn",
        title=f"The reconstruction is {diff:.1f} dB {'louder' if signed > 0 else 'quieter'} than the original",
        explanation="Measured over the frames where the original sounds; a level error makes every "
                    "A/B comparison unfair and shows as a loss that cannot fall.",
        evidence={"level_difference_db": signed, "per_clip_db": diffs, "warn_db": LEVEL_WARN_DB,
                  "bad_db": LEVEL_BAD_DB, "active_dbfs": ACTIVE_DBFS},
        where={"clip": name},
        remedies=(_waveform_remedy(subject, "the waveform MSE pulls the level to the original's"),),
        listen=Listen(name, 0.0, min(3.0, subject.seconds(_clip(subject, name)))),
    )]
