"""Output heads: frame features -> waveform.

:class:`ISTFTHead` predicts a log-magnitude and a phase per frequency bin and frame, builds the
complex spectrum (the phase, with ``model.phase_prior = "advance"``, relative to each bin's steady
advance: :func:`bin_advance`; with ``"integrate"``, the sum of the predicted advance beyond it:
:func:`integrate_phase`) and inverts it with the project's one STFT object
(:class:`vqstudio.audio.spectral.StftParams`), so synthesis can never drift from the analysis the
losses use. All of it runs in float32, even under autocast: the exponential and the overlap-add
are where bf16 would be audible.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vqstudio.audio.spectral import StftParams


class ISTFTHead(nn.Module):
    """Features ``[B, dim, N]`` -> waveform ``[B, 1, N * hop]``.

    With ``padding="same"`` the ``N`` feature frames are the ``N`` STFT frames. With
    ``padding="center"`` the inverse STFT needs ``N + 1`` frames for ``N * hop`` samples (frame
    ``i`` is centred on sample ``i * hop``, between feature frames ``i - 1`` and ``i``), so the
    projection is a kernel-2 convolution that mixes those two neighbours.
    """

    def __init__(self, dim: int, stft: StftParams, log_magnitude_clip: float, phase_prior: str = "none",
                 integrate_from_bin: int = 0):
        super().__init__()
        self.stft = stft
        self.log_magnitude_clip = log_magnitude_clip
        self.phase_prior = phase_prior
        self.integrate_from_bin = integrate_from_bin
        kernel = 2 if stft.padding == "center" else 1
        self.proj = nn.Conv1d(dim, 2 * stft.n_bins, kernel, padding=kernel - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        with torch.autocast(x.device.type, enabled=False):
            logmag, phase = self.proj(x.float()).chunk(2, dim=1)  # [B, n_bins, frames] each
            magnitude = torch.exp(logmag.clamp(max=self.log_magnitude_clip))
            if self.phase_prior == "advance":
                phase = phase + bin_advance(self.stft, phase.shape[-1], phase.device)
            elif self.phase_prior == "integrate":
                phase = integrate_phase(self.stft, phase, self.integrate_from_bin)
            spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
            wave = self.stft.istft(spec, n * self.stft.hop)
        return wave.unsqueeze(1)


def integrate_phase(stft: StftParams, rate: torch.Tensor, from_bin: int = 0) -> torch.Tensor:
    """``model.phase_prior = "integrate"``: the head's output read as each bin's phase advance a
    hop beyond the bin's own (``rate [B, n_bins, frames]``, radians), summed over the frames.

    A constant output is then a steady tone at ``bin centre + rate * sample_rate / (2 pi hop)``
    in every bin, any frequency, not only the bins' centres (``"advance"``) or the frame rate's
    harmonics (``"none"``): a voice's harmonic between two bins is the same small number in both,
    and a gliding one a slowly changing number. The sum runs in float64 and is wrapped to one
    turn, so a ten-minute clip's last frame is as exact as its first. Bins under ``from_bin``
    keep ``rate`` as their phase itself (``model.integrate_from_hz``): every loss of the waveform
    depends on an integrated bin's every earlier frame, and where speech's waveform lives (below
    ~700 Hz) the direct phase is what lines it up."""
    wide = torch.float32 if rate.device.type == "mps" else torch.float64  # MPS has no float64
    turns = torch.cumsum(rate.to(wide), dim=-1)
    turns = torch.remainder(turns, 2.0 * math.pi).to(rate.dtype)
    integrated = turns + bin_advance(stft, rate.shape[-1], rate.device)
    if from_bin <= 0:
        return integrated
    return torch.cat([rate[:, :from_bin], integrated[:, from_bin:]], dim=1)


def integrate_from_bin(stft: StftParams, sample_rate: int, from_hz: float) -> int:
    """The first bin whose centre frequency is at least ``from_hz``."""
    return min(stft.n_bins, math.ceil(from_hz * stft.n_fft / sample_rate - 1e-9)) if from_hz > 0 else 0


def bin_advance(stft: StftParams, frames: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[n_bins, frames]``: the phase (in ``[0, 2 pi)``) a steady tone at each bin's centre
    frequency has in frame ``t``, its frame-local phase advancing ``2 pi k hop / n_fft`` a hop.

    Added to the head's own phase output (``model.phase_prior = "advance"``) it makes an output
    that is constant from frame to frame a sum of steady tones; without it (``"none"``) a
    constant output puts every bin in phase at each frame's centre, a pulse per hop: the comb at
    the frame rate over the voice (:mod:`vqstudio.audio.speech_comb`). Computed as ``k t hop``
    modulo ``n_fft`` in integers, so it is exact however long the clip."""
    k = torch.arange(stft.n_bins, device=device, dtype=torch.int64)[:, None]
    t = torch.arange(frames, device=device, dtype=torch.int64)[None, :]
    turns = (k * t * stft.hop) % stft.n_fft
    return turns.to(torch.float32) * (2.0 * math.pi / stft.n_fft)
