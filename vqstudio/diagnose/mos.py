""":func:`background_mos`: DNSMOS P.835 scores (background, signal, overall) of the originals and
their reconstructions, through :func:`vqstudio.audio.distortion.dnsmos` (the ``speechmos``
package, offline).

DNSMOS is a speech model trained to imitate listeners; on music its scores mean little. So this
finding never stands alone: it is ``info`` unless a measured background check (the hiss floor or
the frame-rate buzz) found the same thing, and then it says so.

It runs only when asked (``diagnose(..., mos=True)``, ``vqstudio diagnose --mos``, the panel's
DNSMOS box): importing onnxruntime and librosa and scoring one 10 s clip twice was 26 s of a 37 s
diagnosis, more than every other check together, for a figure that is only ever a hint. Asked
for, it scores one clip (:data:`MAX_CLIPS`) and remembers every score by the clip's content.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from vqstudio.audio.distortion import DnsMos, dnsmos, dnsmos_available
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import NotMeasured, Subject

SCORE_DROP = 0.5  # a reconstruction's score this far under the original's
SCORES = ("background", "signal", "overall")
MAX_CLIPS = 1  # DNSMOS costs seconds of CPU per clip; one clip is enough for a hint
SUPPORTED_BY = ("noise_floor", "pause_smear", "frame_rate_buzz")
CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, int], DnsMos] = OrderedDict()


def cached_dnsmos(wave: np.ndarray, sample_rate: int) -> DnsMos:
    """:func:`~vqstudio.audio.distortion.dnsmos`, remembered by the clip's content: an original
    is scored once per process, and a reconstruction once per checkpoint and clip (the same
    checkpoint gives the same samples), so a refresh or a verify does not score it again."""
    data = np.ascontiguousarray(wave, np.float32)
    key = (hashlib.sha1(data.tobytes()).hexdigest(), int(sample_rate))
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    score = _cache[key] = dnsmos(data, sample_rate)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return score


def background_mos(subject: Subject) -> list[Finding]:
    if not dnsmos_available():
        raise NotMeasured("DNSMOS needs speechmos and onnxruntime (pip install speechmos onnxruntime)")
    sr = subject.sample_rate
    scores = {}
    for c in subject.clips[:MAX_CLIPS]:
        o, r = cached_dnsmos(c.original, sr), cached_dnsmos(c.reconstruction, sr)
        scores[c.name] = {"original": {"background": o.background, "signal": o.signal, "overall": o.overall},
                          "reconstruction": {"background": r.background, "signal": r.signal,
                                             "overall": r.overall}}
    drops = {(n, k): s["original"][k] - s["reconstruction"][k] for n, s in scores.items() for k in SCORES}
    name, score = max(drops, key=drops.get)
    if drops[(name, score)] < SCORE_DROP:
        return []
    support = [f.id for f in subject.found if f.id in SUPPORTED_BY]
    s = scores[name]
    return [Finding(
        id="background_mos", severity="warn" if support else "info",
        title=f"DNSMOS scores the reconstruction lower: {score} {s['reconstruction'][score]:.1f} against "
              f"the original's {s['original'][score]:.1f} (background {s['reconstruction']['background']:.1f}"
              f" against {s['original']['background']:.1f}, of 5)",
        explanation="DNSMOS is a speech model (ITU-T P.835 style, reference-free); "
                    + (f"it agrees with the measured {', '.join(support)}." if support else
                       "no measured background check agrees, so take it as a hint only."),
        evidence={"scores": scores, "largest_drop": {"clip": name, "score": score, "drop": drops[(name, score)]},
                  "threshold_drop": SCORE_DROP,
                  "supported_by": support, "model": "DNSMOS P.835 (speechmos)"},
        where={"clip": name},
    )]
