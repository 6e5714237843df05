"""The check of what the frame rate does to the voice itself (:func:`speech_comb`), built on
:func:`vqstudio.audio.speech_comb.speech_comb`.

The pause checks (``background.py``) cannot see it: a model can be silent in the pauses and still
lay lines at ``k * sample_rate / hop`` over every voiced sound, in place of the original's gliding
harmonics, when its ISTFT head's phase does not advance from frame to frame as the sound's does:
each frame then adds a pulse at its centre (a buzz, the lines stand out) or cancels its neighbour
(notches on the grid). A head whose phase advances by each bin's own steady amount (``model.phase_prior =
"advance"``) lays the lines on the bins instead, every ``sample_rate / n_fft``: both grids are
measured and the one further from the original's is reported. Its remedy (:func:`_remedies`):
the ``phase_advance`` term, which lowers it.
Resynthesizing the original's own magnitudes with zero phase gives +13.5 dB
at n_fft = 2 x hop and +9.4 dB at 4 x hop (``tests/test_speech_comb.py``).
"""

from __future__ import annotations

import functools
import math

from vqstudio.audio.speech_comb import SPEECH_COMB_DB, speech_comb as measure
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import Subject, per_clip, remedy

SPEECH_COMB_BAD_DB = 10.0  # lines this far over the original's: the voice is mostly the comb


def _remedies(subject: Subject) -> tuple:
    """``phase_advance`` (train/phase_advance_loss.py) while it is off: it lowers the comb, it
    does not remove it. On seed-fixed (n_fft = 2 x hop), from scratch, 400 steps, seeds 0/1/3
    (``benchmarks/quantizers.py --runs``, speech files): +10.3/+9.7/+8.2 -> +7.9/+6.9/+6.2 dB,
    DNSMOS signal 2.11/2.18/2.24 -> 2.08/2.07/2.45, background 3.74/3.70/3.84 -> 3.81/3.62/3.70;
    as a fork of the seed-3 run at step 400, 200 steps more with a control (``vqstudio diagnose
    --verify speech_comb --control``): +9.4 against the control's +11.8 dB, but DNSMOS signal 2.26
    against 2.44. Weights 0.5 and 3 (seed 3) and n_fft = 4 x hop did no better, nor did n_fft 3 x
    hop, complex_stft at weight 3, or training on to step 1200.

    Not proposed: ``model.phase_prior = "advance"`` moves the lines from the frame rate onto the
    bins (as forks of seed-fixed's seed-3 / seed-0 runs, 200 steps: +9.0 / +9.4 dB on the bins
    against the controls' +11.8 / +10.6 at the frame rate, SI-SDR -5.1 / -6.6 against -0.8 /
    -1.0), and from scratch it trains far worse; ``"integrate"`` is measured in DESIGN.md."""
    out = []
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
    measured = per_clip(subject, functools.partial(measure, n_fft=subject.config.model.n_fft))
    name = max(measured, key=lambda n: abs(measured[n].excess_db))
    comb = measured[name]
    excess = comb.excess_db
    if not math.isfinite(excess) or abs(excess) < SPEECH_COMB_DB:
        return []
    f0, grid = comb.grid_hz, comb.grid
    on_bins = grid == "bin spacing"
    if excess > 0:
        title = (f"A buzz over the voice: the multiples of the {grid} (k x {f0:g} Hz) stand "
                 f"{excess:.0f} dB more over their neighbours than in the original")
        how = ("each bin plays a steady tone at its own centre, so lines stay put on the bins" if on_bins
               else "each frame adds a pulse at its centre, so lines stay put at the frame rate's multiples")
    else:
        title = (f"Notches at the {grid} under the voice: the reconstruction is {-excess:.0f} dB "
                 f"weaker at k x {f0:g} Hz, against its neighbours, than the original")
        how = f"neighbouring frames cancel at the {grid}'s multiples, a comb filter over the voice"
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
        evidence={"grid": grid, "grid_hz": f0, "excess_db": excess,
                  "median_over_neighbours_db": comb.median_db,
                  "original_median_over_neighbours_db": comb.reference_median_db,
                  "per_clip_excess_db": {n: c.excess_db for n, c in measured.items()},
                  "sounding_seconds": comb.sounding_seconds,
                  "warn_db": SPEECH_COMB_DB, "bad_db": SPEECH_COMB_BAD_DB},
        where={"clip": name},
        remedies=_remedies(subject) if excess > 0 else (),
        listen=Listen(name, *_loudest_second(clip, sr)),
    )]
