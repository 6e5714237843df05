"""Checks of the quantizer: :func:`codebook_collapse` (levels that use few of their codes) and
:func:`unused_levels` (levels whose codes make the reconstruction no better).

Usage is counted on the diagnosed clips' own codes (what the model does with this audio), beside
the quantizer's running dead fraction when it keeps one.
"""

from __future__ import annotations

import numpy as np

from vqstudio.audio.metrics import codebook_entropy, mel_distance
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import NotMeasured, Subject, remedy
from vqstudio.model.inference import reconstruct

ENTROPY_WARN = 0.5  # entropy / log K of a level's codes on the clips
ENTROPY_BAD = 0.25
DEAD_WARN = 0.5  # the quantizer's running share of dead codes
# A level must cut the mel distance by this share of the first level's. Tuned on seed-baseline and
# tiny-cpu after 400 steps: later levels bought 0.0-2.2 % each there, so the old 2 % named almost
# every level; under 0.5 % is "adds nothing". It is a warning only where a level makes the
# reconstruction worse (gain below 0), else info: young runs lean on their first levels.
LEVEL_GAIN_MIN = 0.005


def _codes(subject: Subject) -> np.ndarray:
    codes = [c.codes for c in subject.clips if c.codes is not None]
    if not codes:
        raise NotMeasured("the clips carry no codes (diagnose a model, not only audio)")
    return np.concatenate(codes, axis=-1)


def codebook_collapse(subject: Subject) -> list[Finding]:
    m = subject.config.model
    entropy = codebook_entropy(_codes(subject), m.codebook_size)
    dead = []
    stats = getattr(getattr(subject.model, "quantizer", None), "stats", None)
    if stats is not None:
        figures = stats()
        if "dead_fraction" in figures:
            dead = [float(v) for v in figures["dead_fraction"]]
    low = [i + 1 for i, h in enumerate(entropy) if h < ENTROPY_WARN]
    low += [i + 1 for i, d in enumerate(dead) if d > DEAD_WARN and i + 1 not in low]
    if not low:
        return []
    worst = min(entropy[i - 1] for i in sorted(low))
    remedies = []
    if not m.kmeans_init:
        remedies.append(remedy("model.kmeans_init", True, "codebooks start on the data, not at random"))
    if not m.ema:
        remedies.append(remedy("model.ema", True, "EMA codebook updates follow the encoder steadily"))
    if m.dead_code_replace_every == 0:
        remedies.append(remedy("model.dead_code_replace_every", 100,
                               "dead codes are moved onto live encoder outputs every 100 steps"))
    return [Finding(
        id="codebook_collapse",
        severity="bad" if worst < ENTROPY_BAD else "warn",
        title=f"Codebook collapse at level{'s' if len(low) > 1 else ''} {', '.join(map(str, sorted(low)))}: "
              f"entropy down to {worst:.2f} of log K"
              + (f", up to {100 * max(dead):.0f} % of the codes dead" if dead else ""),
        explanation="A level that uses few of its codes spends its bits on nothing; the residual it "
                    "leaves is quantized coarsely, heard as grain or haze. (The app's 'reset dead "
                    "codes' also helps at once.)",
        evidence={"entropy_over_log_k": entropy, "dead_fraction": dead, "codebook_size": m.codebook_size,
                  "warn_entropy": ENTROPY_WARN, "bad_entropy": ENTROPY_BAD, "warn_dead": DEAD_WARN},
        where={"levels": sorted(low)},
        remedies=tuple(remedies),
    )]


def level_distances(subject: Subject) -> list[float]:
    """Mean mel distance over the clips decoding with the first k = 1..L levels."""
    if subject.model is None:
        raise NotMeasured("needs the model (decoding with fewer levels)")
    sr, out = subject.sample_rate, []
    for k in range(1, subject.model.num_levels + 1):
        dists = []
        for c in subject.clips:
            recon = c.reconstruction if k == subject.model.num_levels else reconstruct(subject.model, c.original, k)
            dists.append(mel_distance(c.original, recon[: len(c.original)], sr))
        out.append(float(np.mean(dists)))
    return out


def unused_levels(subject: Subject) -> list[Finding]:
    return levels_finding(level_distances(subject))


def idle_levels(distances: list[float]) -> tuple[list[int], list[float]]:
    """(levels that add nothing, each level's gain) from the mel distances with the first k
    levels: level k+1's gain is how much it cuts the distance, as a share of the first level's."""
    scale = max(distances[0], 1e-9)
    gains = [(distances[k - 1] - distances[k]) / scale for k in range(1, len(distances))]
    return [k + 1 for k, g in enumerate(gains, start=1) if g < LEVEL_GAIN_MIN], gains


def levels_finding(distances: list[float]) -> list[Finding]:
    """The ``unused_levels`` finding for these distances (see :func:`idle_levels`), if any."""
    if len(distances) < 2:
        return []
    idle, gains = idle_levels(distances)
    if not idle:
        return []
    first = idle[0]
    return [Finding(
        id="unused_levels",
        severity="warn" if min(gains[k - 2] for k in idle) < 0 else "info",
        title=f"Quantizer level{'s' if len(idle) > 1 else ''} {', '.join(map(str, idle))} "
              f"add{'' if len(idle) > 1 else 's'} nothing to the reconstruction",
        explanation="Decoding with one level more should bring the reconstruction closer to the "
                    "original; these levels do not (mel distance with the first k levels).",
        evidence={"mel_distance_by_levels": distances,
                  "gain_share_by_level": {str(k + 1): g for k, g in enumerate(gains, start=1)},
                  "min_gain_share": LEVEL_GAIN_MIN},
        where={"levels": idle},
        remedies=(remedy("model.quantizer_dropout", 0.5,
                         "training with the first k levels at random teaches every level to add detail"),
                  remedy("model.rvq_levels", first - 1, "drop the levels that buy nothing (fewer bits)")),
    )]
