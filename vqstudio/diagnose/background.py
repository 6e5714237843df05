"""Checks of what plays where the original is silent: the hiss carpet (:func:`noise_floor`), the
words' tails smeared into the pauses (the same check, when the floor lies next to sound) and the
buzz at the frame rate (:func:`frame_rate_buzz`), built on :mod:`vqstudio.audio.distortion`.

All are the seed's "persistent background distortion". The carpet's and the buzz's remedies are
the two changes that, measured on seed-baseline (see the seed-fixed preset's comments), remove
both: log mels instead of tanh mels, and a weighted MR-STFT log-magnitude term; each weighs the
quiet bins that tanh mels ignore. A smear's remedy is time resolution: spectral terms with windows
short enough to see a word end (:func:`_finer_scales`).
"""

from __future__ import annotations

import math

from vqstudio.audio.distortion import (COMB_THRESHOLD_DB, NEAR_SOUND_MS, SILENCE_DBFS, frame_rate_comb,
                                       silence_floor)
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import NotMeasured, Subject, per_clip, quiet_region, remedy, worst

FLOOR_OVER_ORIGINAL_DB = 10.0  # the floor stands this far over the original's own: warn
FLOOR_BAD_OVER_ORIGINAL_DB = 20.0  # ... and this far, while audible (over FLOOR_AUDIBLE_DBFS): bad
FLOOR_AUDIBLE_DBFS = -70.0
# A digitally silent original has a floor of -inf; its own floor counts as 16-bit rounding noise.
FLOOR_LEAST_DBFS = -100.0
# Most of the floor's energy lies within NEAR_SOUND_MS of a sound: the words' tails, not a carpet.
SMEAR_SHARE = 0.8
FINEST_WINDOW_MS = 6.0  # the shortest window _finer_scales proposes (128 samples at 24 kHz)
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


def _shorter_synthesis(subject: Subject) -> tuple:
    """The ISTFT head's window down to two hops (Hann at 50 % overlap is still COLA): each frame
    then spreads over 2 hops instead of ``n_fft / hop``. Measured on seed-fixed (n_fft 960, hop
    240), from scratch, 400 steps, seeds 0/1/2 (``benchmarks/quantizers.py``, speech files): the
    floor in the pauses -77/-59/-67 -> -93/-86/-85 dBFS, SI-SDR -4.1/-4.8/-4.6 -> -2.2/-2.3/-3.8
    dB, one step x0.98-1.00 of the CPU time (a smaller head). As a fork of a trained run the head
    starts afresh (its projection changes shape)."""
    m = subject.config.model
    if m.n_fft <= 2 * m.hop:
        return ()
    ms = 1000.0 / subject.sample_rate
    return (remedy("model.n_fft", 2 * m.hop, f"each frame's synthesis window {m.n_fft * ms:.0f} -> "
                   f"{2 * m.hop * ms:.0f} ms: a word's end spreads half as far into the pause"),)


def _finer_scales(subject: Subject) -> tuple:
    """Halve the spectral terms' shortest window down to ~``FINEST_WINDOW_MS``: new mel scales
    (``n_fft / 8`` bands) and, when MR-STFT or complex_stft is on, new resolutions (hop a quarter
    of the window). Measured on seed-fixed, from scratch, 400 steps: alone (128 and 256 added to
    512-2048) the floor in the pauses moved either way (seeds 0/1/2: -80/-65/-61 against
    -77/-59/-67 dBFS) and a fork of the seed-1 run trained 200 steps more gained nothing against
    its control; beside n_fft = 2 x hop it lifted DNSMOS background (seeds 0-2 3.64/3.63/3.25
    without, seeds 0-3 3.67/3.85/3.51/3.75 with them).
    Each added scale costs about as much as any other (~3 % of a seed-fixed step at one thread)."""
    loss, sr = subject.config.loss, subject.sample_rate
    weights = loss.resolved_weights()
    resolutions = bool(weights.get("mrstft") or weights.get("complex_stft"))  # their STFTs count too
    shortest = min(loss.mel_scales + (loss.mrstft_fft_sizes if resolutions else []), default=0)
    added, n = [], shortest // 2
    while shortest and n >= 16 and n * 1000.0 / sr >= FINEST_WINDOW_MS * 0.75:
        added.insert(0, n)
        n //= 2
    if not added:
        return ()
    mel = sorted(set(loss.mel_scales) | set(added))
    bins = {**{s: max(8, s // 8) for s in added}, **dict(zip(loss.mel_scales, loss.mel_bins))}
    also = {"loss.mel_bins": [bins[s] for s in mel]}
    if resolutions:
        table = {s: (s // 4, s) for s in added}
        table.update({f: (h, w) for f, h, w in zip(loss.mrstft_fft_sizes, loss.mrstft_hops,
                                                     loss.mrstft_win_lengths)})
        sizes = sorted(table)
        also.update({"loss.mrstft_fft_sizes": sizes, "loss.mrstft_hops": [table[f][0] for f in sizes],
                     "loss.mrstft_win_lengths": [table[f][1] for f in sizes]})
    ms = ", ".join(f"{s * 1000.0 / sr:.1f}" for s in added)
    return (remedy("loss.mel_scales", mel, f"adds windows of {ms} ms: a word's end that smears "
                   f"into the pause costs the spectral terms what it costs the ear", also),)


def noise_floor(subject: Subject) -> list[Finding]:
    """The reconstruction under the original's pauses against the original's own floor there:
    a carpet, or the words' tails smeared in when most of it lies within ``NEAR_SOUND_MS`` of a
    sound."""
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
    original = (f"at {floor.reference_dbfs:.0f} dBFS" if floor.reference_dbfs > FLOOR_LEAST_DBFS
                else "digitally silent")
    smear = floor.near_share >= SMEAR_SHARE
    if smear:
        deeper = (f"{floor.far_dbfs:.0f} dBFS deeper in" if math.isfinite(floor.far_dbfs)
                  else "silent deeper in" if floor.far_dbfs == -math.inf else "no pause is longer")
        title = (f"Sound smears into the pauses: {floor.near_dbfs:.0f} dBFS within "
                 f"{NEAR_SOUND_MS:g} ms of the words, {deeper} (the original is {original})")
        explanation = (f"{floor.near_share:.0%} of what plays in the pauses lies next to sound: the "
                       "words' ends (and onsets) spread over tens of ms, a tail the spectral losses' "
                       "windows are too long to see. Not a carpet: deeper in, the pauses are quiet.")
        remedies = _shorter_synthesis(subject) + _finer_scales(subject)
    else:
        title = f"A hiss carpet under the pauses: {floor.dbfs:.0f} dBFS where the original is {original}"
        explanation = ("Where the original is near-silent the reconstruction is not: the codec adds a "
                       "broadband floor that the losses do not penalise.")
        remedies = _quiet_remedies(subject)
    return [Finding(
        id="pause_smear" if smear else "noise_floor",
        severity="bad" if bad else "warn",
        title=title,
        explanation=explanation,
        evidence={"floor_dbfs": floor.dbfs, "original_floor_dbfs": floor.reference_dbfs,
                  "over_original_db": excess, "silent_seconds": floor.silent_seconds,
                  "near_sound_dbfs": floor.near_dbfs, "far_from_sound_dbfs": floor.far_dbfs,
                  "near_sound_share": floor.near_share, "near_sound_ms": NEAR_SOUND_MS,
                  "smear_share": SMEAR_SHARE,
                  "bands_over_original_db": bands,
                  "per_clip_over_original_db": over,
                  "threshold_over_original_db": FLOOR_OVER_ORIGINAL_DB,
                  "bad_over_original_db": FLOOR_BAD_OVER_ORIGINAL_DB,
                  "audible_dbfs": FLOOR_AUDIBLE_DBFS, "least_original_floor_dbfs": FLOOR_LEAST_DBFS,
                  "silence_dbfs": SILENCE_DBFS},
        where={"clip": name, "bands": loud},
        remedies=remedies,
        listen=_listen(subject, name),
    )]


def frame_rate_buzz(subject: Subject) -> list[Finding]:
    """Peaks at multiples of ``sample_rate / hop`` in the original's quiet passages."""
    hop = subject.config.model.hop
    measured = per_clip(subject, frame_rate_comb)
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
