""":func:`waveform_misalignment`: a reconstruction that sounds close but is far from the original
sample by sample (SI-SDR far below zero), with the delay and polarity that best align the two.

A codec trained mostly on magnitude spectra (mels, MR-STFT) is free to invent its own phase: the
spectra match and the waveform does not. Sometimes the whole clip is only shifted by a few samples
or inverted; then aligning it shows it, and the SI-SDR at the best delay says how much is phase.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from vqstudio.audio.metrics import mel_distance, si_sdr_db
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import Subject, remedy, worst

SI_SDR_WARN_DB = 0.0  # below this the waveform is more error than signal
SI_SDR_BAD_DB = -10.0
ALIGN_GAIN_DB = 3.0  # aligning by the best delay/polarity gains this much: a delay, not phase
MAX_DELAY_S = 0.02  # delays looked for, either way


def best_alignment(original: np.ndarray, estimate: np.ndarray, max_delay: int) -> tuple[int, int, float]:
    """(delay in samples, polarity +1/-1, SI-SDR dB there) of ``estimate`` against ``original``
    ``[T]``: the lag within ``max_delay`` of the largest absolute cross-correlation. A positive
    delay means the reconstruction comes late."""
    ref = np.asarray(original, np.float64)
    est = np.asarray(estimate[: len(ref)], np.float64)
    corr = signal.correlate(est, ref, mode="full", method="fft")
    lags = signal.correlation_lags(len(est), len(ref), mode="full")
    keep = np.abs(lags) <= max_delay
    corr, lags = corr[keep], lags[keep]
    i = int(np.argmax(np.abs(corr)))
    delay, polarity = int(lags[i]), (1 if corr[i] >= 0 else -1)
    if delay >= 0:
        a, b = ref[: len(ref) - delay], est[delay:]
    else:
        a, b = ref[-delay:], est[: len(est) + delay]
    return delay, polarity, si_sdr_db(a, polarity * b)


def waveform_misalignment(subject: Subject) -> list[Finding]:
    sr = subject.sample_rate
    sdr = {c.name: si_sdr_db(c.original, c.reconstruction) for c in subject.clips}
    name, negated = worst({k: -v for k, v in sdr.items()})
    value = -negated
    if value >= SI_SDR_WARN_DB:
        return []
    clip = next(c for c in subject.clips if c.name == name)
    delay, polarity, aligned = best_alignment(clip.original, clip.reconstruction, int(MAX_DELAY_S * sr))
    mel = mel_distance(clip.original, clip.reconstruction, sr)
    shifted = aligned - value >= ALIGN_GAIN_DB
    if shifted:
        cause = (f"Shifted by {delay} samples ({1000 * delay / sr:+.1f} ms)"
                 f"{' and inverted' if polarity < 0 else ''}, it reaches {aligned:.1f} dB: the "
                 "model has not learned the timing (or the sign) of the waveform.")
    else:
        cause = ("No delay or polarity within "
                 f"{1000 * MAX_DELAY_S:g} ms helps (best {aligned:.1f} dB): the phase is not learned, "
                 "only the magnitude spectra the losses compare.")
    weight = subject.config.loss.resolved_weights().get("waveform_mse", 0.0)
    return [Finding(
        id="waveform_misalignment",
        severity="bad" if value <= SI_SDR_BAD_DB else "warn",
        title=f"The waveform does not follow the original: SI-SDR {value:.1f} dB",
        explanation=cause + " A low SI-SDR alone is not audible; it matters for anything that "
                    "needs the waveform (mixing with the original, phase-sensitive metrics).",
        evidence={"si_sdr_db": value, "per_clip_si_sdr_db": sdr, "best_delay_samples": delay,
                  "best_delay_ms": 1000 * delay / sr, "best_polarity": polarity,
                  "aligned_si_sdr_db": aligned, "mel_distance": mel,
                  "warn_db": SI_SDR_WARN_DB, "bad_db": SI_SDR_BAD_DB, "align_gain_db": ALIGN_GAIN_DB,
                  "max_delay_ms": 1000 * MAX_DELAY_S},
        where={"clip": name},
        remedies=_waveform_remedies(subject, weight),
        listen=Listen(name, 0.0, min(3.0, subject.seconds(clip)), "residual"),
    )]


def _waveform_remedies(subject: Subject, weight: float) -> tuple:
    """A larger waveform weight; sized by the measured gradient share when loss_dominance found
    the term starved (on tiny-cpu at step 400, 4 x the weight still got 0.0 % of the gradient and
    moved SI-SDR by 2 dB in 60 steps), else 4 x."""
    starved = next((f for f in subject.found if f.id == "loss_dominance/starved/waveform_mse"), None)
    sized = [r for r in (starved.remedies if starved else ()) if r.setting == "loss.weights.waveform_mse"]
    if sized:
        return (remedy("loss.weights.waveform_mse", sized[0].value,
                       "the weight that gives the waveform term about a tenth of the gradient at the "
                       "decoder output (it now gets almost none); watch the noise floor as it rises"),)
    return (remedy("loss.weights.waveform_mse", round(max(1.0, 4.0 * weight), 3),
                   "a larger waveform weight asks for the phase; measured on seed-baseline it "
                   "also brought back hiss, so watch the noise floor"),)
