"""A term on how the phase moves from frame to frame (``phase_advance``).

An ISTFT head whose phase does not advance from one frame to the next as the sound's does lays a
comb at ``k * sample_rate / hop`` over the voice (:mod:`vqstudio.audio.speech_comb`): each frame
adds a pulse at its centre, or cancels its neighbour. The magnitude terms cannot see it, and the
compressed complex term (``complex_stft``) weighs a bin's phase error against the much larger
magnitude landscape at resolutions other than the head's. This term compares, at the head's own
STFT (``model.n_fft``, ``model.hop``, its window), the phase advance of every bin between
neighbouring frames, the instantaneous frequency as a phase vocoder reads it:

    A_t = X_t conj(X_{t-1}),  B_t = Y_t conj(Y_{t-1})        (fake X, real Y; per bin)
    cos(angle A_t - angle B_t) = Re(A_t conj B_t) / (|A_t| |B_t|)
    phase_advance = 1 - sum w cos(...) / sum w,   w = |B_t|^(1/2) = sqrt(|Y_t| |Y_{t-1}|)

0 when every bin's phase moves as the original's, 1 for unrelated phases, 2 for opposite ones.
The weight is the original's magnitude over the two frames (so a silent bin counts for nothing,
and the loud harmonics that the comb replaces count most); the reconstruction's magnitude cancels
out of the cosine, so the term leaves loudness to the spectral terms. Unlike a waveform term it
does not ask the waveform to line up, only to move like the original from frame to frame: a
constant phase offset per bin costs nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from vqstudio.audio.spectral import StftParams

EPS = 1e-12  # on each magnitude product: a silent bin of the reconstruction has a finite gradient


class PhaseAdvanceLoss(nn.Module):
    """``1 - weighted mean cos`` of the frame-to-frame phase advance, fake against real."""

    def __init__(self, n_fft: int, hop: int, window: str = "hann"):
        super().__init__()
        self.stft = StftParams(n_fft, hop, n_fft, window=window, padding="center")

    def forward(self, fake: torch.Tensor, real: torch.Tensor, spectra) -> torch.Tensor:
        """``spectra``: the step's :class:`~vqstudio.train.losses.SharedSpectra` of fake and real."""
        x, y = spectra.get(self.stft)  # [B, bins, frames]
        a = x[..., 1:] * x[..., :-1].conj()
        b = y[..., 1:] * y[..., :-1].conj()
        a_norm = (a.real.square() + a.imag.square() + EPS).sqrt()
        b_norm = (b.real.square() + b.imag.square()).sqrt()
        weight = b_norm.sqrt()
        cosine = (a.real * b.real + a.imag * b.imag) / (a_norm * (b_norm + EPS))
        return 1.0 - (weight * cosine).sum() / (weight.sum() + EPS)
