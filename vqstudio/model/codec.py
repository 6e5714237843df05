"""The codec: encoder -> residual VQ -> decoder, and :class:`CodecOutput`, what one forward pass
hands to the losses, the trainer and the GUI.

The reconstruction ``CodecOutput.audio`` is the decoder output (trimmed to the input length): the
tensor at which the balancer measures each loss term's share of the gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vqstudio.config import ModelConfig
from vqstudio.errors import ConfigError
from vqstudio.model.decoder import Decoder
from vqstudio.model.encoder import Encoder
from vqstudio.model.quantizer import build_quantizer


@dataclass
class CodecOutput:
    audio: torch.Tensor  # [B, 1, T] reconstruction, T == input T for any T
    codes: torch.Tensor  # [B, L, N] int64 codes of the levels used
    latent: torch.Tensor  # [B, D, N] encoder output before quantization
    quantized: torch.Tensor  # [B, D, N] sum of the used levels' codewords (straight-through)
    codebook_loss: torch.Tensor  # scalar: ||sg(z_res) - q||^2 summed over levels ("alignment")
    commitment_loss: torch.Tensor  # scalar: ||z_res - sg(q)||^2 summed over levels
    usage: torch.Tensor  # [L, K] float code counts in this batch (zero rows for levels not run)
    levels_used: int


class Codec(nn.Module):
    """RVQ audio autoencoder built from a :class:`~vqstudio.config.ModelConfig`.

    ``N = ceil(T / hop)`` latent frames per ``T`` samples; ``L = model.rvq_levels``,
    ``K = model.codebook_size``, ``D = model.latent_dim``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if math.prod(config.encoder_ratios) != config.hop:
            raise ConfigError(
                f"model.hop = {config.hop} differs from the product of model.encoder_ratios "
                f"{config.encoder_ratios}",
                f"set model.hop = {math.prod(config.encoder_ratios)}",
            )
        self.config = config
        self.hop = config.hop
        self.sample_rate = config.sample_rate
        self.encoder = Encoder(config)
        self.quantizer = build_quantizer(config)  # the kind model.quantizer names
        self.decoder = Decoder(config)

    @property
    def num_levels(self) -> int:
        return self.quantizer.num_levels

    def forward(self, wave: torch.Tensor, levels: int | None = None) -> CodecOutput:
        """Reconstruct ``wave`` ``[B, 1, T]`` through the first ``levels`` levels (all if None;
        with None, training mode applies quantizer dropout)."""
        length = _check_wave(wave)
        latent = self.encoder(wave)
        q = self.quantizer(latent, levels)
        audio = self.decoder(q.quantized)[..., :length]
        return CodecOutput(
            audio=audio,
            codes=q.codes,
            latent=latent,
            quantized=q.quantized,
            codebook_loss=q.codebook_loss,
            commitment_loss=q.commitment_loss,
            usage=q.usage,
            levels_used=q.levels_used,
        )

    def encode(self, wave: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """``[B, 1, T]`` -> codes ``[B, levels, ceil(T / hop)]`` int64 (all levels if None)."""
        _check_wave(wave)
        return self.quantizer.encode(self.encoder(wave), levels)

    def decode(
        self, codes: torch.Tensor, levels: int | None = None, length: int | None = None
    ) -> torch.Tensor:
        """Codes ``[B, L', N]`` -> waveform ``[B, 1, length]`` (``N * hop`` if None), from the
        first ``levels`` levels of ``codes`` (all ``L'`` if None)."""
        audio = self.decoder(self.quantizer.decode(codes, levels))
        return audio if length is None else audio[..., :length]

    def parameter_count(self, trainable_only: bool = False) -> int:
        """Number of parameters (EMA codebooks are buffers and not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part: encoder, quantizer, decoder."""
        return {
            name: sum(p.numel() for p in part.parameters())
            for name, part in (
                ("encoder", self.encoder), ("quantizer", self.quantizer), ("decoder", self.decoder)
            )
        }


def _check_wave(wave: torch.Tensor) -> int:
    if wave.dim() != 3 or wave.shape[1] != 1:
        raise ValueError(f"expected a mono batch [B, 1, T], got shape {tuple(wave.shape)}")
    if wave.shape[-1] < 1:
        raise ValueError("expected at least one sample")
    return wave.shape[-1]
