"""A phase-aware term aimed at the band where speech's energy lives (``low_band_si_sdr``).

SI-SDR, like any waveform measure, is the loud band's: in speech, below about 1 kHz. The
compressed complex spectrum (``complex_stft``) constrains every bin's phase about equally, so the
model's alignment of the few low bins that carry the energy is a small part of it; a waveform MSE
weighs them right but rewards nothing above them and, given a real share of the gradient, brought
the seed's hiss back. This term is built on the SI-SDR of the two waveforms low-passed at
``loss.low_band_hz``, computed from their spectra over the whole segment:

    X, Y = rfft(fake), rfft(real), bins 1 .. k with k * sr / T < low_band_hz (no DC)
    <a, b> = sum over those bins of Re(A conj B)       (Parseval: the band's inner product)
    s = (<X, Y> / <Y, Y>) Y,  e = X - s                 (per segment: scale-invariant)
    SI-SDR = 10 log10(S / E),  S = sum |s|^2, E = sum |e|^2   (over bins and the whole batch)
    low_band_si_sdr = 10 log10((S + E) / S) = 10 log10(1 + 10^(-SI-SDR / 10))

``S + E`` is the band's energy of ``fake`` (``s`` and ``e`` are orthogonal), so the value is
``-10 log10 cos^2`` of the angle between the two band-limited waveforms: never below 0 (a loss
curve on a log axis, a total that only falls), about ``-SI-SDR`` while that is well below 0 dB,
3 dB at 0 dB, and falling to 0 as the waveforms line up.

Summed over the batch before the ratio, so a near-silent segment weighs by its energy, as in the
clip's SI-SDR, instead of dividing by ~0. The band limit is sharp, so nothing above it (the hiss
the log-mel and MR-STFT terms keep down) changes the value; the scale invariance leaves loudness
to the spectral terms. Being in dB, its gradient is the same size whatever the level of the audio.
"""

from __future__ import annotations

import torch
from torch import nn

from vqstudio.errors import ConfigError

EPS = 1e-12  # on each energy sum: a silent batch gives a finite value and gradient


class LowBandSiSdrLoss(nn.Module):
    """``10 log10(1 + 10^(-SI-SDR / 10))`` (dB) of ``fake`` and ``real`` ``[B, 1, T]`` below
    ``cutoff_hz``; :meth:`si_sdr` gives the SI-SDR itself."""

    def __init__(self, sample_rate: int, cutoff_hz: float):
        super().__init__()
        self.sample_rate = sample_rate
        self.cutoff_hz = float(cutoff_hz)  # a live setting: read at every call

    def bins(self, samples: int) -> int:
        """How many bins (from bin 1) lie below the cut-off for a segment of ``samples``."""
        k = int(self.cutoff_hz * samples / self.sample_rate)
        if k * self.sample_rate >= self.cutoff_hz * samples:
            k -= 1  # strictly below the cut-off
        return min(k, samples // 2)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        target_energy, error_energy = self.energies(fake, real)
        return 10.0 * torch.log10((target_energy + error_energy + EPS) / (target_energy + EPS))

    def si_sdr(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The batch's SI-SDR (dB) below the cut-off."""
        target_energy, error_energy = self.energies(fake, real)
        return 10.0 * torch.log10((target_energy + EPS) / (error_energy + EPS))

    def energies(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S, E)``: the energies of the target part and the error in the band, over the batch."""
        samples = fake.shape[-1]
        k = self.bins(samples)
        if k < 1:
            raise ConfigError(
                f"loss.low_band_hz = {self.cutoff_hz:g} Hz leaves no frequency bin in a segment of "
                f"{samples} samples at {self.sample_rate} Hz",
                "raise loss.low_band_hz or lengthen data.segment_seconds")
        x = torch.fft.rfft(fake.reshape(-1, samples), dim=-1)[:, 1:k + 1]
        y = torch.fft.rfft(real.reshape(-1, samples).detach(), dim=-1)[:, 1:k + 1]
        xy = (x.real * y.real + x.imag * y.imag).sum(dim=-1, keepdim=True)
        yy = (y.real.square() + y.imag.square()).sum(dim=-1, keepdim=True)
        scale = xy / (yy + EPS)
        target = scale * y
        error = x - target
        error_energy = (error.real.square() + error.imag.square()).sum()
        target_energy = (target.real.square() + target.imag.square()).sum()
        return target_energy, error_energy
