""":func:`background_mos`: DNSMOS P.835 scores (background, signal, overall) of the originals and
their reconstructions, through :func:`vqstudio.audio.distortion.dnsmos` (the ``speechmos``
package, offline).

DNSMOS is a speech model trained to imitate listeners; on music its scores mean little. So this
finding never stands alone: it is ``info`` unless a measured background check (the hiss floor or
the frame-rate buzz) found the same thing, and then it says so.
"""

from __future__ import annotations

from vqstudio.audio.distortion import dnsmos, dnsmos_available
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import NotMeasured, Subject

SCORE_DROP = 0.5  # a reconstruction's score this far under the original's
SCORES = ("background", "signal", "overall")
MAX_CLIPS = 2
SUPPORTED_BY = ("noise_floor", "frame_rate_buzz")


def background_mos(subject: Subject) -> list[Finding]:
    if not dnsmos_available():
        raise NotMeasured("DNSMOS needs speechmos and onnxruntime (pip install speechmos onnxruntime)")
    sr = subject.sample_rate
    scores = {}
    for c in subject.clips[:MAX_CLIPS]:
        o, r = dnsmos(c.original, sr), dnsmos(c.reconstruction, sr)
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
