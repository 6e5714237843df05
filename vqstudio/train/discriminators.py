"""The adversary: multi-period and multi-resolution STFT discriminators and their losses.

Two families look at the waveform in complementary ways:

- a **period** discriminator folds the waveform ``[B, 1, T]`` into ``[B, 1, T / p, p]`` and runs
  2-D convolutions down the first axis only, so each column sees every p-th sample: periodic
  structure (pitch, buzz) at that period (HiFi-GAN's idea; periods 2, 3, 5, 7, 11 by default);
- a **spectrogram** discriminator runs 2-D convolutions over the complex STFT (real and imaginary
  parts as two channels) at one resolution, so it sees hiss and haze as texture in time-frequency.

The losses are least-squares (LSGAN): the generator minimises ``mean((1 - D(fake))^2)``, the
discriminator ``mean((1 - D(real))^2) + mean(D(fake)^2)``. Least-squares rather than hinge because
its gradient never switches off for a fake the discriminator already scores as real, and it is the
HiFi-GAN / Vocos convention whose weights people copy. Every loss is averaged over the
discriminators (not summed), so adding a period does not silently raise the term's weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from vqstudio.audio.spectral import StftParams

# One discriminator's answer: its score map and the feature maps of every layer before it.
Judgement = tuple[torch.Tensor, list[torch.Tensor]]

_SLOPE = 0.1  # leaky ReLU slope, as in HiFi-GAN


class PeriodDiscriminator(nn.Module):
    """Judges ``[B, 1, T]`` folded by ``period`` into ``[B, 1, ceil(T / period), period]``."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for c_out in channels:
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3, 1), padding=(2, 0))))
            c_in = c_out
        layers.append(weight_norm(nn.Conv2d(c_in, c_in, (5, 1), 1, padding=(2, 0))))
        self.layers = nn.ModuleList(layers)
        self.score = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> Judgement:
        b, c, t = wave.shape
        short = -t % self.period
        if short:
            # Reflect needs short < t; a tail shorter than one period always satisfies it.
            wave = F.pad(wave, (0, short), mode="reflect")
        x = wave.reshape(b, c, -1, self.period)
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), _SLOPE)
            features.append(x)
        return self.score(x), features


class SpectrogramDiscriminator(nn.Module):
    """Judges the complex STFT of ``[B, 1, T]`` at one resolution (``n_fft``, hop ``n_fft // 4``).

    The spectrogram enters as ``[B, 2, frames, bins]`` (real, imaginary), scaled by the window's
    energy so that its values stay near the waveform's whatever ``n_fft`` is; convolutions stride
    along frequency only and dilate along time. On the CPU they run on a channels-last copy of it
    (``channels_last``): oneDNN's kernels for that layout are faster at these 32 channels (one
    judge, batch 16 x 1 s, forward + backward, one thread: 4.2 -> 3.0 s of thread CPU; the period
    judges measured no faster, so they keep theirs). Equal up to float rounding (tested).
    """

    channels_last = True

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.stft = StftParams(n_fft, n_fft // 4, window="hann", padding="center")
        self.scale = 1.0 / math.sqrt(float((self.stft.window_tensor() ** 2).sum()))
        c = channels
        self.layers = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(2, c, (3, 9), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), dilation=(1, 1), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), dilation=(2, 1), padding=(2, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), (1, 2), dilation=(4, 1), padding=(4, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
            ]
        )
        self.score = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> Judgement:
        spec = self.stft.stft(wave[:, 0]) * self.scale  # [B, bins, frames] complex
        x = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, bins]
        if self.channels_last and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        features = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), _SLOPE)
            features.append(x)
        return self.score(x), features


class Discriminators(nn.Module):
    """All the discriminators: one per period, then one per STFT size."""

    def __init__(self, periods: list[int], fft_sizes: list[int]):
        super().__init__()
        self.judges = nn.ModuleList(
            [PeriodDiscriminator(p) for p in periods]
            + [SpectrogramDiscriminator(n) for n in fft_sizes]
        )

    def forward(self, wave: torch.Tensor) -> list[Judgement]:
        """``[B, 1, T]`` -> one (score map, feature maps) pair per discriminator."""
        return [judge(wave) for judge in self.judges]


# -- losses -----------------------------------------------------------------------------------


def generator_adversarial_loss(fake: list[Judgement]) -> torch.Tensor:
    """Least-squares generator loss: mean over discriminators of ``mean((1 - D(fake))^2)``."""
    return torch.stack([((1.0 - score.float()) ** 2).mean() for score, _ in fake]).mean()


def discriminator_adversarial_loss(real: list[Judgement], fake: list[Judgement]) -> torch.Tensor:
    """Least-squares discriminator loss, averaged over discriminators."""
    losses = [
        ((1.0 - r.float()) ** 2).mean() + (f.float() ** 2).mean()
        for (r, _), (f, _) in zip(real, fake, strict=True)
    ]
    return torch.stack(losses).mean()


def feature_matching_loss(real: list[Judgement], fake: list[Judgement]) -> torch.Tensor:
    """L1 between real and fake feature maps, each layer divided by the mean |real feature|.

    The per-layer normalisation keeps deep, large-valued layers from outweighing shallow ones; the
    result is averaged over every layer of every discriminator. Real features carry no gradient.
    """
    losses = []
    for (_, real_maps), (_, fake_maps) in zip(real, fake, strict=True):
        for r, f in zip(real_maps, fake_maps, strict=True):
            r, f = r.detach().float(), f.float()
            losses.append((f - r).abs().mean() / r.abs().mean().clamp(min=1e-8))
    return torch.stack(losses).mean()
