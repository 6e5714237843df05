"""A phase-aware spectral loss: the power-law compressed complex spectrum (``complex_stft``).

Spectral losses on magnitudes (mel L1, MR-STFT) leave the phase free, so an ISTFT head trained on
them alone reconstructs a waveform that does not line up with the original (SI-SDR far below 0 dB)
even when it sounds right. A waveform MSE constrains the phase, but its gradient is the loud
samples': raising its share leaves the quiet bins to themselves, and the hiss comes back.

This term compares the two spectra as complex numbers after compressing each bin's magnitude by
a power ``c`` and keeping its phase, ``X_c = |X|^c * X / |X|`` (Wilson et al. 2018, "Exploring
tradeoffs in models for low-latency speech enhancement"; Braun & Tashev 2021 call it the
compressed complex MSE): ``mean |X_c - Y_c|^2`` over bins, frames and batch, averaged over the
MR-STFT resolutions (the STFTs the other spectral terms already computed, so it costs no STFT;
the value and its gradient come from :mod:`vqstudio.train.spectrum_terms`, in one pass with the
MR-STFT parts).
A loud bin's error is mostly its phase; a bin where the original is silent costs ``|X|^(2c)``,
which with ``c = 0.3`` falls far slower than ``|X|^2`` as the hiss gets quieter.
"""

from __future__ import annotations

import torch
from torch import nn

from vqstudio.audio.spectral import StftParams
from vqstudio.train.spectrum_terms import spectrum_terms

COMPRESSION = 0.3  # the power on each bin's magnitude (Wilson et al., Braun & Tashev)
EPS = 1e-8  # floor on the squared magnitude, as the MR-STFT term: |X| >= 1e-4


class CompressedComplexLoss(nn.Module):
    """``mean |X_c - Y_c|^2`` per resolution, averaged; ``X_c = |X|^c e^{i angle X}``."""

    def __init__(self, fft_sizes: list[int], hops: list[int], win_lengths: list[int],
                 power: float = COMPRESSION):
        super().__init__()
        self.power = power
        self.resolutions = [
            StftParams(n, h, w, window="hann", padding="center")
            for n, h, w in zip(fft_sizes, hops, win_lengths, strict=True)
        ]

    def forward(self, fake: torch.Tensor, real: torch.Tensor, spectra) -> torch.Tensor:
        """``spectra``: the step's :class:`~vqstudio.train.losses.SharedSpectra` of fake and real."""
        pairs = [spectra.get(stft) for stft in self.resolutions]
        return spectrum_terms(pairs, self.power, mrstft=False)[2]


def compress(spec: torch.Tensor, power: float = COMPRESSION) -> torch.Tensor:
    """``|X|^power * X / |X|`` for a complex ``spec``, with ``|X|`` floored at ``sqrt(EPS)``."""
    squared = (spec.real**2 + spec.imag**2).clamp(min=EPS)
    return spec * squared.pow((power - 1.0) / 2.0)
