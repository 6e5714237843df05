""":func:`istft`: the decoder's inverse-STFT head. Its settings (overlap ``n_fft / hop``, COLA,
the NOLA margin of the squared windows) and what it does on the clips: how often the predicted
log-magnitude sits at the head's ceiling (``model.log_magnitude_clip``), where it has no gradient.

Analysis and synthesis cannot disagree on padding or window here: the head inverts with the same
:class:`~vqstudio.audio.spectral.StftParams` object the model was built with (recorded as
evidence), so only the margins are checked.
"""

from __future__ import annotations

import numpy as np
import torch

from vqstudio.audio.spectral import StftParams, window_array
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import NotMeasured, Subject, remedy

# n_fft / hop below this leaves a sample to one frame: a jump between frames is heard. Two (Hann
# at 50 %, COLA) is enough: seed-fixed's n_fft = 2 x hop put its comb at -101..-109 dBFS, under
# 16-bit rounding, in 400-step runs at three seeds, where 4 x hop smeared words into the pauses.
MIN_OVERLAP = 2
NOLA_MARGIN_WARN = 0.1  # min / max of the overlapped squared windows
# Share of (bin, frame) log-magnitudes at the ceiling. Tuned on seed-baseline and tiny-cpu after
# 400 steps on the demo corpus: 0.02-0.03 % of the bins, which touch 10-12 % of the frames (one
# bin of 481 is enough), and nothing audible; the old "5 % of frames" rule fired on both.
CLIPPED_BINS_WARN = 0.01


def nola_margin(stft: StftParams) -> float:
    """min / max over one hop of the sum of the shifted squared windows (0: not invertible)."""
    w2 = window_array(stft.window, stft.win) ** 2
    sums = np.zeros(stft.hop)
    for start in range(0, len(w2), stft.hop):
        part = w2[start : start + stft.hop]
        sums[: len(part)] += part
    return float(sums.min() / sums.max())


def clipped_shares(subject: Subject) -> tuple[float, float]:
    """(share of bins, share of frames) whose predicted log-magnitude reaches the ceiling."""
    model = subject.model
    head = getattr(getattr(model, "decoder", None), "head", None)
    if head is None or not hasattr(head, "log_magnitude_clip"):
        raise NotMeasured("the model has no ISTFT head")
    seen: list[torch.Tensor] = []
    hook = head.proj.register_forward_hook(lambda _m, _i, out: seen.append(out.chunk(2, dim=1)[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for c in subject.clips:
                model(torch.from_numpy(c.original.astype(np.float32)).view(1, 1, -1).to(
                    next(model.parameters()).device))
    finally:
        hook.remove()
        model.train(was_training)
    at = [(m >= head.log_magnitude_clip) for m in seen]
    bins = float(sum(a.sum() for a in at)) / max(1, sum(a.numel() for a in at))
    frames = float(sum(a.any(dim=1).sum() for a in at)) / max(1, sum(a.shape[-1] for a in at))
    return bins, frames


def istft(subject: Subject) -> list[Finding]:
    m = subject.config.model
    stft = StftParams(m.n_fft, m.hop, window=m.window, padding=m.padding)
    overlap, margin, cola = m.n_fft / m.hop, nola_margin(stft), stft.is_cola
    settings = {"n_fft": m.n_fft, "hop": m.hop, "window": m.window, "padding": m.padding,
                "overlap": overlap, "cola": cola, "nola_margin": margin,
                "analysis_is_synthesis": True, "min_overlap": MIN_OVERLAP,
                "warn_nola_margin": NOLA_MARGIN_WARN}
    found = []
    if overlap < MIN_OVERLAP or margin < NOLA_MARGIN_WARN or not cola:
        found.append(Finding(
            id="istft/overlap", severity="warn" if margin < NOLA_MARGIN_WARN else "info",
            title=f"The ISTFT overlaps {overlap:g} frames per sample"
                  f"{'' if cola else ', and its window is not COLA'} (NOLA margin {margin:.2f})",
            explanation="With little overlap each output sample rests on few frames, so a jump from "
                        "one frame to the next is heard (a buzz at the frame rate).",
            evidence=settings,
            remedies=(remedy("model.n_fft", MIN_OVERLAP * m.hop,
                             "two frames over every sample, a COLA Hann overlap"),),
        ))
    try:
        bins, frames = clipped_shares(subject)
    except NotMeasured:
        return found
    if bins >= CLIPPED_BINS_WARN:
        found.append(Finding(
            id="istft/magnitude_clip", severity="warn",
            title=f"The decoder's magnitudes hit their ceiling: {100 * bins:.1f} % of the bins, in "
              f"{100 * frames:.0f} % of the frames",
            explanation=f"The head clips the predicted log-magnitude at {m.log_magnitude_clip:g}; "
                        "there the output is flat-topped and no gradient flows back.",
            evidence={**settings, "clipped_bin_share": bins, "clipped_frame_share": frames,
                      "log_magnitude_clip": m.log_magnitude_clip,
                      "warn_bin_share": CLIPPED_BINS_WARN},
            remedies=(remedy("model.log_magnitude_clip", m.log_magnitude_clip + 2.0,
                             "a higher ceiling leaves loud bins their gradient"),),
        ))
    return found
