"""What the audition panel writes under its waveform: the clip and where its reconstruction is
(status), and the RMS level of each source with the gains loudness matching applies. Pure text
from values; no Qt here."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from vqstudio.app.panels.audition_clip import Clip
from vqstudio.app.playback_engine import ORIGINAL, RECONSTRUCTION, RESIDUAL, rms

# Two saved checkpoints (any run) and a denoised reconstruction, heard beside the live ones.
FIRST, SECOND, DENOISED = "checkpoint-1", "checkpoint-2", "denoised"
SOURCE_LETTERS = {ORIGINAL: "A", RECONSTRUCTION: "B", RESIDUAL: "R", FIRST: "1", SECOND: "2",
                  DENOISED: "D"}


def db(value: float) -> str:
    """A gain as text: "+3.5 dB"."""
    return f"{20 * math.log10(value):+.1f} dB" if value > 0 else "−∞ dB"


def dbfs(samples: np.ndarray | None) -> str:
    """The RMS level of ``samples`` in dBFS as text ("—" for none)."""
    if samples is None:
        return "—"
    level = rms(samples)
    return f"{20 * math.log10(level):.1f}" if level > 0 else "−∞"


def levels_text(clip: Clip | None, gains: Mapping[str, float] | None) -> str:
    """"RMS dBFS  A -20.1  B -21.3  R -38.0", with "· gain  B +1.2 dB ..." while matching."""
    if clip is None:
        return ""
    parts = [f"{letter} {dbfs(clip.source(name))}" for name, letter in SOURCE_LETTERS.items()
             if name in (ORIGINAL, RECONSTRUCTION, RESIDUAL) or clip.source(name) is not None]
    text = "RMS dBFS  " + "  ".join(parts)
    if gains:
        shown = "  ".join(f"{SOURCE_LETTERS[n]} {db(g)}" for n, g in gains.items()
                          if n in SOURCE_LETTERS and n != ORIGINAL)
        text += f"  ·  gain  {shown}"
    return text


def status_text(clip: Clip | None, *, waiting: bool, waiting_levels: int | None,
                max_levels: int, has_worker: bool, training: bool) -> str:
    """The clip's name and length, and what B is: a reconstruction being made (``waiting``, for
    ``waiting_levels`` levels, None: all), the one heard, or why there is none."""
    if clip is None:
        return "Waiting for the first probe from training (start or open a run)"
    text = f"{clip.name} · {clip.seconds:.1f} s · B: "
    if waiting and not training:
        return text + "reconstructed once training starts"
    if waiting:
        levels = f"{waiting_levels} of {max_levels}" if waiting_levels else "all"
        return text + f"reconstructing ({levels} levels)…"
    if clip.reconstruction is not None:
        return text + clip.about
    if not has_worker:
        return text + "needs a training session (start or open a run)"
    return text + "none yet"
