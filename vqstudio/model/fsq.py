"""Residual finite scalar quantization (``model.quantizer = "rfsq"``).

FSQ (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple", arXiv 2309.15505)
has no codebook to learn: each of ``d = len(fsq_levels)`` dimensions is bounded with a tanh and
rounded to one of ``fsq_levels[j]`` values, and the code is the point of that grid (``K =
prod(fsq_levels)`` implicit codes). Rounding passes its gradient straight through. Nothing can
collapse or die for lack of updates, so there is no codebook or commitment loss (both are
reported as zero) and no dead-code replacement; usage statistics are kept for the implicit codes
all the same, for the Codebooks panel.

The residual form: the latent is projected to ``d`` dimensions once; level ``i`` quantizes what
the levels before it left, divided by a per-level scale ``(fsq_levels - 1) ** -i`` (the residual
of a level is about one grid step of the one before, so each level is given a grid that fine), and
the sum of the levels' values is projected back.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.distributed as dist
from torch import nn

from vqstudio.model.codebook import _distributed
from vqstudio.model.residual import QuantizerOutput, ResidualQuantizer

BOUND_EPS = 1e-3  # keeps tanh's range just past the outermost grid point, so it is reached


def round_straight_through(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer; the gradient passes unchanged."""
    return torch.round(x).detach() + (x - x.detach())  # exactly round(x): x - x is an exact zero


class FSQLevel(nn.Module):
    """One FSQ level: the grid ``fsq_levels`` and the running usage of its ``K`` implicit codes."""

    def __init__(self, fsq_levels: Sequence[int], decay: float = 0.99):
        super().__init__()
        grid = torch.tensor(list(fsq_levels), dtype=torch.long)
        self.size = int(math.prod(fsq_levels))
        self.dim = len(fsq_levels)
        self.decay = decay
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), grid[:-1]]), 0)
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("cluster_size", torch.zeros(self.size))
        self.register_buffer("batch_usage", torch.zeros(self.size), persistent=False)

    @property
    def half_width(self) -> torch.Tensor:
        return (self.grid // 2).float()

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """``[M, d]`` -> ``[M, d]`` within ``(-L/2, L/2)`` per dimension: after rounding, the ``L``
        integers from ``-(L // 2)`` (an even ``L`` is shifted by half a step to fit)."""
        levels = self.grid.float()
        half = (levels - 1) * (1 + BOUND_EPS) / 2
        offset = torch.where(self.grid % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """``[M, d]`` -> grid values in ``[-1, 1]``, straight-through rounded."""
        return round_straight_through(self.bound(z)) / self.half_width

    def to_index(self, values: torch.Tensor) -> torch.Tensor:
        """Grid values ``[M, d]`` -> code indices ``[M]`` int64."""
        digits = torch.round(values.detach() * self.half_width + self.half_width).long()
        return (digits * self.basis).sum(-1)

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """Code indices ``[M]`` -> grid values ``[M, d]`` float32."""
        digits = (index[:, None] // self.basis) % self.grid
        return (digits.float() - self.half_width) / self.half_width

    @torch.no_grad()
    def update_(self, counts: torch.Tensor) -> None:
        counts = counts.to(self.cluster_size.dtype, copy=True)
        if _distributed():
            dist.all_reduce(counts)
        self.batch_usage.copy_(counts)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)


class ResidualFSQ(ResidualQuantizer):
    """Residual FSQ over latent frames ``[B, input_dim, N]``; codes ``[B, L, N]`` int64."""

    def __init__(
        self,
        input_dim: int,
        levels: int,
        fsq_levels: Sequence[int],
        *,
        usage_decay: float = 0.99,
        dead_code_threshold: float = 1.0,
        dropout: float = 0.0,
    ):
        size = int(math.prod(fsq_levels))
        super().__init__(
            input_dim, levels, size, dead_code_threshold=dead_code_threshold, dropout=dropout
        )
        self.fsq_levels = list(fsq_levels)
        self.codebook_dim = len(fsq_levels)
        self.in_proj = nn.Linear(input_dim, self.codebook_dim)
        self.out_proj = nn.Linear(self.codebook_dim, input_dim)
        self.levels = nn.ModuleList(FSQLevel(fsq_levels, usage_decay) for _ in range(levels))
        grid = torch.tensor(self.fsq_levels, dtype=torch.float32)
        scales = torch.stack([(grid - 1) ** -i for i in range(levels)])  # [L, d]
        self.register_buffer("scales", scales, persistent=False)

    @classmethod
    def from_config(cls, config) -> "ResidualFSQ":
        return cls(
            config.latent_dim,
            config.rvq_levels,
            config.fsq_levels,
            usage_decay=config.ema_decay,
            dead_code_threshold=config.dead_code_threshold,
            dropout=config.quantizer_dropout,
        )

    def forward(self, latent: torch.Tensor, levels: int | None = None) -> QuantizerOutput:
        """Quantize ``latent`` ``[B, D, N]`` with the first ``levels`` levels (all if None); in
        training mode count the codes and apply quantizer dropout when ``levels`` is None."""
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            z = self.in_proj(self._rows(latent))
            keep = self._dropout_mask(b, n, z.device) if levels is None else None
            residual = z
            out = torch.zeros_like(z)
            usage = z.new_zeros(self.num_levels, self.codebook_size)
            codes = []
            for i in range(k):
                level, scale = self.levels[i], self.scales[i]
                values = level.quantize(residual / scale)
                q = values * scale
                idx = level.to_index(values)
                out = out + (q if keep is None else q * keep[i])
                residual = residual - q.detach()
                usage[i] = torch.bincount(idx, minlength=self.codebook_size).float()
                if self.training:
                    level.update_(usage[i])
                codes.append(idx)
            quantized = self._frames(self.out_proj(out), b, n)
            codes_t = torch.stack(codes).view(k, b, n).transpose(0, 1)
        zero = z.new_zeros(())
        return QuantizerOutput(quantized, codes_t, zero, zero.clone(), usage, k)

    @torch.no_grad()
    def encode(self, latent: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """``[B, D, N]`` -> codes ``[B, levels, N]`` int64; touches no statistics."""
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            residual = self.in_proj(self._rows(latent))
            codes = []
            for i in range(k):
                level, scale = self.levels[i], self.scales[i]
                values = level.quantize(residual / scale)
                residual = residual - values * scale
                codes.append(level.to_index(values))
        return torch.stack(codes).view(k, b, n).transpose(0, 1)

    def decode(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """Codes ``[B, L', N]`` -> quantized latent ``[B, D, N]`` from the first ``levels`` levels."""
        b, available, n = codes.shape
        k = self._check_levels(levels, available)
        with torch.autocast(codes.device.type, enabled=False):
            out = torch.zeros(b * n, self.codebook_dim, device=codes.device)
            for i in range(k):
                out = out + self.levels[i].from_index(codes[:, i].reshape(-1)) * self.scales[i]
            return self._frames(self.out_proj(out), b, n)
