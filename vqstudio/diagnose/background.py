"""Checks of what plays where the original is silent: the hiss carpet (:func:`noise_floor`) and
the buzz at the frame rate (:func:`frame_rate_buzz`), built on :mod:`vqstudio.audio.distortion`.

Both are the seed's "persistent background distortion". The remedies are the two changes that,
measured on seed-baseline (see the seed-fixed preset's comments), remove both: log mels instead of
tanh mels, and a weighted MR-STFT log-magnitude term; each weighs the quiet bins that tanh mels
ignore.
"""

from __future__ import annotations

import math

from vqstudio.audio.distortion import COMB_THRESHOLD_DB, SILENCE_DBFS, frame_rate_comb, silence_floor
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import NotMeasured, Subject, quiet_region, remedy, worst

FLOOR_OVER_ORIGINAL_DB = 10.0  # the floor stands this far over the original's own: warn
FLOOR_BAD_OVER_ORIGINAL_DB = 20.0  # ... and this far, while audible (over FLOOR_AUDIBLE_DBFS): bad
FLOOR_AUDIBLE_DBFS = -70.0
# A digitally silent original has a floor of -inf; its own floor counts as 16-bit rounding noise.
FLOOR_LEAST_DBFS = -100.0
BUZZ_MIN_HARMONICS = 3  # audible harmonics standing over COMB_THRESHOLD_DB
BUZZ_WARN_DB = 10.0  # the strongest audible harmonic over its neighbours
BUZZ_BAD_DB = 20.0


def _quiet_remedies(subject: Subject) -> tuple:
    loss = subject.config.loss
    out = []
    if loss.mel_norm == "tanh":
        out.append(remedy("loss.mel_norm", "log", "tanh mels give hiss in a pause almost no cost; "
                          "log mels weigh quiet bins like loud ones"))
    if loss.resolved_weights().get("mrstft", 0.0) == 0.0:
        out.append(remedy("loss.weights.mrstft", 1.0, "the MR-STFT log magnitude weighs quiet bins"))
    return tuple(out)


def _listen(subject: Subject, name: str) -> Listen | None:
    clip = next(c for c in subject.clips if c.name == name)
    region = quiet_region(clip.original, subject.sample_rate)
    return Listen(name, *region) if region else None


def noise_floor(subject: Subject) -> list[Finding]:
    """The reconstruction under the original's pauses against the original's own floor there."""
    sr = subject.sample_rate
    floors = {c.name: silence_floor(c.original, c.reconstruction, sr) for c in subject.clips}
    over = {name: f.dbfs - max(f.reference_dbfs, FLOOR_LEAST_DBFS) for name, f in floors.items()}
    if not any(math.isfinite(v) for v in over.values()):
        raise NotMeasured(next(iter(floors.values())).reason or "no clip has a pause")
    name, excess = worst(over)
    floor = floors[name]
    if excess < FLOOR_OVER_ORIGINAL_DB or floor.dbfs < FLOOR_AUDIBLE_DBFS:
        return []
    bad = excess >= FLOOR_BAD_OVER_ORIGINAL_DB
    bands = {b: round(v - max(floor.reference_bands_dbfs.get(b, math.nan), FLOOR_LEAST_DBFS), 1)
             for b, v in floor.bands_dbfs.items()}
    loud = [b for b, v in bands.items() if v >= FLOOR_OVER_ORIGINAL_DB]
    return [Finding(
        id="noise_floor",
        severity="bad" if bad else "warn",
        title=f"A hiss carpet under the pauses: {floor.dbfs:.0f} dBFS where the original is "
              + (f"at {floor.reference_dbfs:.0f} dBFS" if floor.reference_dbfs > FLOOR_LEAST_DBFS
                 else "digitally silent"),
        explanation="Where the original is near-silent the reconstruction is not: the codec adds a "
                    "broadband floor that the losses do not penalise.",
        evidence={"floor_dbfs": floor.dbfs, "original_floor_dbfs": floor.reference_dbfs,
                  "over_original_db": excess, "silent_seconds": floor.silent_seconds,
                  "bands_over_original_db": bands,
                  "per_clip_over_original_db": over,
                  "threshold_over_original_db": FLOOR_OVER_ORIGINAL_DB,
                  "bad_over_original_db": FLOOR_BAD_OVER_ORIGINAL_DB,
                  "audible_dbfs": FLOOR_AUDIBLE_DBFS, "least_original_floor_dbfs": FLOOR_LEAST_DBFS,
                  "silence_dbfs": SILENCE_DBFS},
        where={"clip": name, "bands": loud},
        remedies=_quiet_remedies(subject),
        listen=_listen(subject, name),
    )]


def frame_rate_buzz(subject: Subject) -> list[Finding]:
    """Peaks at multiples of ``sample_rate / hop`` in the original's quiet passages."""
    sr, hop = subject.sample_rate, subject.config.model.hop
    combs = {c.name: frame_rate_comb(c.original, c.reconstruction, sr, hop) for c in subject.clips}
    measured = {n: c for n, c in combs.items() if not c.reason}
    if not measured:
        raise NotMeasured(next(iter(combs.values())).reason)
    audible = {n: c.audible_max_db for n, c in measured.items()}
    if not any(math.isfinite(v) for v in audible.values()):
        return []  # every harmonic is below INAUDIBLE_DBFS: nothing to hear
    name, peak = worst(audible)
    comb = measured[name]
    if comb.above_threshold < BUZZ_MIN_HARMONICS or peak < BUZZ_WARN_DB:
        return []
    return [Finding(
        id="frame_rate_buzz",
        severity="bad" if peak >= BUZZ_BAD_DB else "warn",
        title=f"A buzz at the frame rate: tones at k x {comb.frame_rate:g} Hz stand up to "
              f"{peak:.0f} dB over their neighbours in the pauses",
        explanation=f"The reconstruction repeats or jumps at every hop of the inverse STFT "
                    f"({hop} samples), which sounds as a comb of tones at multiples of "
                    f"{comb.frame_rate:g} Hz.",
        evidence={"frame_rate_hz": comb.frame_rate, "harmonics_over_threshold": comb.above_threshold,
                  "harmonics_measured": comb.harmonics, "max_over_neighbours_db": peak,
                  "median_over_neighbours_db": comb.median_db, "loudest_harmonic_dbfs": comb.loudest_dbfs,
                  "per_clip_max_db": {n: c.audible_max_db for n, c in measured.items()},
                  "threshold_db": COMB_THRESHOLD_DB, "min_harmonics": BUZZ_MIN_HARMONICS,
                  "warn_db": BUZZ_WARN_DB, "bad_db": BUZZ_BAD_DB},
        where={"clip": name, "frequencies_hz": [round(comb.frame_rate * (k + 1), 1)
                                                for k, p in enumerate(comb.peaks_db) if p > COMB_THRESHOLD_DB]},
        remedies=_quiet_remedies(subject),
        listen=_listen(subject, name),
    )]
