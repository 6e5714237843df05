"""The decoder: quantized latent ``[B, latent_dim, N]`` -> waveform ``[B, 1, N * hop]``.

At the frame rate: an input convolution, ConvNeXt-like 1-D blocks (depthwise conv, layer norm,
pointwise MLP, layer scale, residual), then self-attention blocks (pre-norm, residual, global over
the clip), and the ISTFT head (:mod:`vqstudio.model.heads`) that turns frames into samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqstudio.audio.spectral import StftParams
from vqstudio.config import ModelConfig
from vqstudio.model.heads import ISTFTHead, integrate_from_bin


class ConvNeXtBlock(nn.Module):
    """``[B, dim, N]`` -> ``[B, dim, N]``: depthwise conv 7, LayerNorm, dim -> 3 dim -> dim MLP."""

    def __init__(self, dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 3 * dim)
        self.down = nn.Linear(3 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # [B, N, dim]
        y = self.down(F.gelu(self.up(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class AttentionBlock(nn.Module):
    """``[B, N, dim]`` -> ``[B, N, dim]``: pre-norm multi-head self-attention and MLP, residual."""

    def __init__(self, dim: int, heads: int, layer_scale: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, dim // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.gamma1 * self.out(y.transpose(1, 2).reshape(b, n, dim))
        return x + self.gamma2 * self.mlp(self.norm2(x))


class Decoder(nn.Module):
    """Quantized latent ``[B, latent_dim, N]`` -> waveform ``[B, 1, N * hop]``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim = config.decoder_dim
        blocks = max(config.decoder_conv_blocks + config.attention_blocks, 1)
        self.embed = nn.Conv1d(config.latent_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        scale = 1 / blocks
        self.convs = nn.ModuleList(ConvNeXtBlock(dim, scale) for _ in range(config.decoder_conv_blocks))
        heads = config.attention_heads
        self.attention = nn.ModuleList(
            AttentionBlock(dim, heads, scale) for _ in range(config.attention_blocks)
        )
        self.final_norm = nn.LayerNorm(dim)
        stft = StftParams(config.n_fft, config.hop, window=config.window, padding=config.padding)
        self.head = ISTFTHead(dim, stft, config.log_magnitude_clip, config.phase_prior,
                              integrate_from_bin(stft, config.sample_rate, config.integrate_from_hz))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(latent).transpose(1, 2)).transpose(1, 2)  # [B, dim, N]
        for block in self.convs:
            x = block(x)
        x = x.transpose(1, 2)  # [B, N, dim]
        for block in self.attention:
            x = block(x)
        return self.head(self.final_norm(x).transpose(1, 2))
