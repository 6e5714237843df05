""":func:`long_context`: does the model get worse on clips much longer than it was trained on?

The attention decoder sees the whole clip at once; trained on ``data.segment_seconds`` segments,
it may extrapolate badly to a ten-second clip. Each training-length window of a long clip is
reconstructed alone and compared, by mel distance, with the same window cut from the whole-clip
reconstruction.
"""

from __future__ import annotations

import numpy as np

from vqstudio.audio.metrics import mel_distance
from vqstudio.diagnose.findings import Finding, Listen
from vqstudio.diagnose.subject import NotMeasured, Subject, remedy
from vqstudio.model.inference import reconstruct

LONG_FACTOR = 4  # a clip this many training segments long is "long"
WORSE_RATIO = 1.1  # whole-clip mel distance over windowed: warn
BAD_RATIO = 1.5
MAX_WINDOWS = 12


def long_context(subject: Subject) -> list[Finding]:
    if subject.model is None:
        raise NotMeasured("needs the model (reconstructing windows alone)")
    sr = subject.sample_rate
    seg_s = subject.config.data.segment_seconds
    seg = max(int(seg_s * sr), 4096)  # the mel distance's largest scale needs this much
    long = [c for c in subject.clips if len(c.original) >= LONG_FACTOR * seg]
    if not long:
        raise NotMeasured(f"no clip is {LONG_FACTOR} x the training segment ({LONG_FACTOR * seg / sr:g} s) long")
    clip = max(long, key=lambda c: len(c.original))
    starts = np.linspace(0, len(clip.original) - seg, min(MAX_WINDOWS, len(clip.original) // seg)).astype(int)
    alone, within = [], []
    for s in starts:
        ref = clip.original[s : s + seg]
        alone.append(mel_distance(ref, reconstruct(subject.model, ref)[:seg], sr))
        within.append(mel_distance(ref, clip.reconstruction[s : s + seg], sr))
    return context_finding(clip.name, len(clip.original) / sr, seg_s, seg / sr, starts / sr, alone, within)


def context_finding(clip: str, clip_seconds: float, segment_seconds: float, window_seconds: float,
                    starts_s, alone: list[float], within: list[float]) -> list[Finding]:
    """The ``long_context`` finding, if the windows cut from the whole-clip reconstruction
    (``within``) are worse than the same windows reconstructed alone (``alone``)."""
    short_d, long_d = float(np.mean(alone)), float(np.mean(within))
    ratio = long_d / max(short_d, 1e-9)
    if ratio < WORSE_RATIO:
        return []
    worst = int(np.argmax(np.asarray(within) - np.asarray(alone)))
    return [Finding(
        id="long_context", severity="bad" if ratio >= BAD_RATIO else "warn",
        title=f"Long clips come out worse: mel distance {long_d:.2f} in a {clip_seconds:.0f} s "
              f"clip against {short_d:.2f} for the same audio in {window_seconds:g} s pieces",
        explanation="The attention decoder was trained on short segments and extrapolates badly to "
                    "a whole clip.",
        evidence={"whole_clip_mel_distance": long_d, "windowed_mel_distance": short_d, "ratio": ratio,
                  "window_seconds": window_seconds, "windows": len(alone),
                  "training_segment_seconds": segment_seconds,
                  "warn_ratio": WORSE_RATIO, "bad_ratio": BAD_RATIO},
        where={"clip": clip},
        remedies=(remedy("data.segment_seconds", max(4.0, 4 * segment_seconds),
                         "training on longer segments shows the decoder longer contexts"),),
        listen=Listen(clip, float(starts_s[worst]), float(starts_s[worst]) + window_seconds),
    )]
