"""The check of what the frame rate does to the voice itself (:func:`speech_comb`), built on
:func:`vqstudio.audio.speech_comb.speech_comb`.

The pause checks (``background.py``) cannot see it: a model can be silent in the pauses and still
lay lines at ``k * sample_rate / hop`` over every voiced sound, in place of the original's gliding
harmonics, when its ISTFT head's phase does not advance from frame to frame as the sound's does:
each frame then adds a pulse at its centre (a buzz, the lines stand out) or cancels its neighbour
(notches on the grid). Its remedies (:func:`_remedies`): the head's phase made relative to each
bin's advance, as a fork (removes it, at a cost), and the ``phase_advance`` term (lowers it).
Resynthesizing the original's own magnitudes with zero phase gives +13.5 dB
at n_fft = 2 x hop and +9.4 dB at 4 x hop (``tests/test_speech_comb.py``).
"""

from __future__ import annotations

import math

from vqstudio.audio.speech_comb import SPEECH_COMB_DB, speech_comb as measure
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import Subject, per_clip, remedy

SPEECH_COMB_BAD_DB = 10.0  # lines this far over the original's: the voice is mostly the comb


def _remedies(subject: Subject) -> tuple:
    """``model.phase_prior = "advance"`` (model/heads.py) as a fork, then ``phase_advance``
    (train/phase_advance_loss.py), each while it is off. The prior, as a fork of seed-fixed's
    seed-3 run at step 400 trained 200 steps (``vqstudio diagnose --verify
    model.phase_prior=advance``, against the no-change control of the same steps): speech comb
    -2.2 against +11.8 dB, mel 0.969 vs 0.936, floor -98.5 vs -97.5 dBFS, SI-SDR -5.14 vs -0.83 dB,
    DNSMOS background 3.82 vs 3.93, signal 2.36 vs 2.44; the seed-0 run the same way (``--verify
    speech_comb --control``): -0.6 vs +10.6 dB, SI-SDR -6.57 vs -0.98, background 3.40 vs 3.95,
    signal 1.96 vs 2.42. From scratch it trained far worse (mel 1.45 / 2.39 at seeds 0 / 3). ``phase_advance`` lowers the comb, not removes it. On seed-fixed (n_fft = 2 x hop), from scratch, 400 steps,
    seeds 0/1/3 (``benchmarks/quantizers.py --runs``, speech files): +10.3/+9.7/+8.2 ->
    +7.9/+6.9/+6.2 dB, DNSMOS signal 2.11/2.18/2.24 -> 2.08/2.07/2.45, background 3.74/3.70/3.84
    -> 3.81/3.62/3.70; as a fork of the seed-3 run at step 400, 200 steps more with a control
    (``vqstudio diagnose --verify speech_comb --control``): +9.4 against the control's +11.8 dB,
    but DNSMOS signal 2.26 against 2.44. Weights 0.5 and 3 (seed 3) and n_fft = 4 x hop did no better, nor did
    n_fft 3 x hop, complex_stft at weight 3, or training on to step 1200."""
    out = []
    if subject.config.model.phase_prior == "none":
        out.append(remedy("model.phase_prior", "advance",
                          "the head's phase becomes relative to each bin's steady advance, so what "
                          "it has learned plays as steady tones instead of a pulse per frame; as "
                          "forks of trained seed-fixed runs it took the comb to about 0 dB (from "
                          "+11 / +12 in the controls) but cost 4-6 dB of SI-SDR and DNSMOS scores "
                          "(one seed: background 3.95 -> 3.40): compare by ear; from scratch it "
                          "trains worse, so fork a trained run"))
    if subject.config.loss.resolved_weights().get("phase_advance", 0.0) == 0.0:
        out.append(remedy("loss.weights.phase_advance", 1.0,
                          "asks every bin's phase to move from frame to frame as the original's "
                          "does; measured on seed-fixed it lowered the comb by 2.4-2.8 dB, not to 0, "
                          "and DNSMOS's signal score did not follow: verify it by ear"))
    return tuple(out)


def _loudest_second(clip, sample_rate: int) -> tuple[float, float]:
    """(start, stop) of the clip's loudest second, where a comb over the voice is heard best."""
    wave = clip.original
    second = min(len(wave), sample_rate)
    if second == len(wave):
        return 0.0, len(wave) / sample_rate
    energy = (wave.astype(float) ** 2).cumsum()
    step = sample_rate // 10
    starts = range(0, len(wave) - second + 1, step)
    best = max(starts, key=lambda s: energy[s + second - 1] - (energy[s - 1] if s else 0.0))
    return best / sample_rate, (best + second) / sample_rate


def speech_comb(subject: Subject) -> list[Finding]:
    """Lines (or notches) at multiples of the frame rate where the original sounds."""
    sr, hop = subject.sample_rate, subject.config.model.hop
    measured = per_clip(subject, measure)
    name = max(measured, key=lambda n: abs(measured[n].excess_db))
    comb = measured[name]
    excess = comb.excess_db
    if not math.isfinite(excess) or abs(excess) < SPEECH_COMB_DB:
        return []
    f0 = comb.frame_rate
    if excess > 0:
        title = (f"A buzz over the voice: the harmonics of the frame rate (k x {f0:g} Hz) stand "
                 f"{excess:.0f} dB more over their neighbours than in the original")
        how = "each frame adds a pulse at its centre, so lines stay put at the frame rate's multiples"
    else:
        title = (f"Notches at the frame rate under the voice: the reconstruction is {-excess:.0f} dB "
                 f"weaker at k x {f0:g} Hz, against its neighbours, than the original")
        how = "neighbouring frames cancel at the frame rate's multiples, a comb filter over the voice"
    clip = next(c for c in subject.clips if c.name == name)
    return [Finding(
        id="speech_comb",
        severity="bad" if abs(excess) >= SPEECH_COMB_BAD_DB else "warn",
        title=title,
        explanation=(f"Where the original's harmonics glide with the pitch, the reconstruction's "
                     f"spectrum is ruled by the inverse STFT's frames ({hop} samples): the head's "
                     f"phase does not advance from frame to frame as the sound's does, and {how}. "
                     "The pauses can be clean meanwhile: this is the voice itself (DNSMOS's signal "
                     "score, not its background one, hears it)."),
        evidence={"frame_rate_hz": f0, "excess_db": excess,
                  "median_over_neighbours_db": comb.median_db,
                  "original_median_over_neighbours_db": comb.reference_median_db,
                  "per_clip_excess_db": {n: c.excess_db for n, c in measured.items()},
                  "sounding_seconds": comb.sounding_seconds,
                  "warn_db": SPEECH_COMB_DB, "bad_db": SPEECH_COMB_BAD_DB},
        where={"clip": name},
        remedies=_remedies(subject) if excess > 0 else (),
        listen=Listen(name, *_loudest_second(clip, sr)),
    )]
