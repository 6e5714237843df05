"""What every residual quantizer shares: its output record, first-k levels, quantizer dropout and
the per-level usage statistics the trainer logs and the Codebooks panel draws.

A residual quantizer has ``L`` levels of ``K`` codes; each level quantizes what the levels before
it left over. The kinds (:mod:`~vqstudio.model.rvq`, :mod:`~vqstudio.model.factorized_vq`,
:mod:`~vqstudio.model.fsq`; built by :func:`vqstudio.model.quantizer.build_quantizer`) differ in
how one level picks its code; they all keep, per level in ``self.levels``, two buffers:
``cluster_size`` ``[K]`` (running count of vectors per code, per training step) and
``batch_usage`` ``[K]`` (the counts of the last training batch), from which :meth:`stats`
derives entropy / log K and the dead fraction. For FSQ the ``K`` codes are the implicit grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vqstudio.errors import ConfigError


def normalised_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy of the code distribution over log K: ``[..., K]`` -> ``[...]``.

    1 means every code is used equally, 0 means one code takes everything (or nothing was used).
    """
    size = counts.shape[-1]
    counts = counts.float()
    p = counts / counts.sum(-1, keepdim=True).clamp(min=1e-12)
    h = -(p * torch.log(p.clamp(min=1e-12))).sum(-1)
    return h / math.log(size) if size > 1 else torch.zeros_like(h)


def dead_fraction(counts: torch.Tensor, threshold: float) -> torch.Tensor:
    """Share of codes whose running count is below ``threshold``: ``[..., K]`` -> ``[...]``."""
    return (counts < threshold).float().mean(-1)


def mean_square(diff: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``diff ** 2`` over elements, counting only rows with ``weight`` ``[M, 1]`` = 1."""
    if weight is None:
        return diff.pow(2).mean()
    return (diff.pow(2) * weight).sum() / (weight.sum() * diff.shape[-1]).clamp(min=1)


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [B, D, N] sum of the used levels' codewords (value of the codes)
    codes: torch.Tensor  # [B, L_used, N] int64
    codebook_loss: torch.Tensor  # scalar (zero for FSQ: no codebook to pull)
    commitment_loss: torch.Tensor  # scalar (zero for FSQ)
    usage: torch.Tensor  # [L, K] code counts in this batch; rows of levels not run are zero
    levels_used: int


class ResidualQuantizer(nn.Module):
    """The common part of the residual kinds over latent frames ``[B, input_dim, N]``.

    ``dropout`` (a plain float the trainer may change live) is the probability that a batch item
    uses only its first ``k ~ U[1, L]`` levels during training. Subclasses set ``self.levels``
    and implement ``forward``, ``encode`` and ``decode``.
    """

    levels: nn.ModuleList

    def __init__(self, input_dim: int, levels: int, codebook_size: int, *, dead_code_threshold: float,
                 dropout: float):
        super().__init__()
        self.input_dim = input_dim
        self.num_levels = levels
        self.codebook_size = codebook_size
        self.dead_code_threshold = dead_code_threshold
        self.dropout = float(dropout)

    def _check_levels(self, levels: int | None, available: int | None = None) -> int:
        top = self.num_levels if available is None else min(available, self.num_levels)
        k = top if levels is None else int(levels)
        if not 1 <= k <= top:
            raise ConfigError(f"levels = {levels} is outside 1..{top}", f"choose between 1 and {top}")
        return k

    def _dropout_mask(self, b: int, n: int, device) -> torch.Tensor | None:
        """``[L, B*N, 1]`` 1/0 weights: which rows each level serves, or None when all do."""
        if not (self.training and self.dropout > 0):
            return None
        levels = self.num_levels
        per_item = torch.full((b,), levels, device=device)
        dropped = torch.rand(b, device=device) < self.dropout
        per_item = torch.where(dropped, torch.randint(1, levels + 1, (b,), device=device), per_item)
        keep = (torch.arange(levels, device=device)[:, None] < per_item[None, :]).float()
        return keep.repeat_interleave(n, dim=1)[..., None]

    @staticmethod
    def _rows(latent: torch.Tensor) -> torch.Tensor:
        """``[B, D, N]`` -> float32 rows ``[B*N, D]``."""
        b, d, n = latent.shape
        return latent.float().transpose(1, 2).reshape(b * n, d)

    @staticmethod
    def _frames(rows: torch.Tensor, b: int, n: int) -> torch.Tensor:
        """Rows ``[B*N, D]`` -> ``[B, D, N]``."""
        return rows.reshape(b, n, rows.shape[-1]).transpose(1, 2)

    # -- maintenance and statistics ---------------------------------------------------------------

    @torch.no_grad()
    def replace_dead_codes(self, latents: torch.Tensor | None = None) -> list[int]:
        """Replace every level's dead codes; returns how many were replaced per level (none for
        kinds without a learned codebook)."""
        return [0] * self.num_levels

    @torch.no_grad()
    def stats(self) -> dict[str, torch.Tensor]:
        """Per-level code usage, on the CPU.

        ``usage`` ``[L, K]`` running counts, ``batch_usage`` ``[L, K]`` counts of the last training
        batch, ``entropy`` / ``batch_entropy`` ``[L]`` normalised (entropy / log K) of those,
        ``dead_fraction`` ``[L]`` share of codes with a running count below the threshold.
        """
        usage = torch.stack([lv.cluster_size for lv in self.levels]).float().cpu()
        batch = torch.stack([lv.batch_usage for lv in self.levels]).float().cpu()
        return {
            "usage": usage,
            "batch_usage": batch,
            "entropy": normalised_entropy(usage),
            "batch_entropy": normalised_entropy(batch),
            "dead_fraction": dead_fraction(usage, self.dead_code_threshold),
        }
