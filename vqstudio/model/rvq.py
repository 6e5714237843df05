"""Residual VQ with learned codebooks (``model.quantizer = "rvq"``): ``L`` levels of
:class:`~vqstudio.model.codebook.Codebook`, optional per-level projections between the latent
(``latent_dim``) and the codes (``codebook_dim``), a gradient estimator (straight-through or the
rotation trick, :mod:`vqstudio.model.rotation`), quantizer dropout and the two losses:

- ``codebook`` ("alignment"): ``||sg(r) - q||^2``, pulls the codes towards the residuals;
- ``commitment``: ``||r - sg(q)||^2``, pulls the encoder towards its codes;

each a mean over elements, summed over levels. With EMA updates the codes get no gradient (the
codebook loss is still reported, for the curves).

Distances, losses and projections run in float32 even under autocast.
"""

from __future__ import annotations

import torch
from torch import nn

from vqstudio.model.codebook import Codebook
from vqstudio.model.residual import QuantizerOutput, ResidualQuantizer, mean_square
from vqstudio.model.rotation import estimator


class ResidualVQ(ResidualQuantizer):
    """Residual VQ over latent frames ``[B, input_dim, N]``; codes ``[B, L, N]`` int64."""

    cosine = False  # the factorized kind compares directions (l2-normalised inputs and codes)

    def __init__(
        self,
        input_dim: int,
        levels: int,
        codebook_size: int,
        codebook_dim: int,
        *,
        ema: bool = True,
        ema_decay: float = 0.99,
        kmeans_init: bool = True,
        dead_code_threshold: float = 1.0,
        dropout: float = 0.0,
        gradient_estimator: str = "straight_through",
    ):
        super().__init__(
            input_dim, levels, codebook_size, dead_code_threshold=dead_code_threshold, dropout=dropout
        )
        self.codebook_dim = codebook_dim
        self.gradient_estimator = gradient_estimator
        self._estimate = estimator(gradient_estimator)
        project = codebook_dim != input_dim or self.cosine

        def proj(a: int, b: int) -> nn.Module:
            return nn.Linear(a, b) if project else nn.Identity()

        self.in_proj = nn.ModuleList(proj(input_dim, codebook_dim) for _ in range(levels))
        self.out_proj = nn.ModuleList(proj(codebook_dim, input_dim) for _ in range(levels))
        self.levels = nn.ModuleList(
            Codebook(
                codebook_size,
                codebook_dim,
                ema=ema,
                decay=ema_decay,
                kmeans_init=kmeans_init,
                dead_threshold=dead_code_threshold,
                cosine=self.cosine,
            )
            for _ in range(levels)
        )

    @classmethod
    def from_config(cls, config) -> "ResidualVQ":
        return cls(
            config.latent_dim,
            config.rvq_levels,
            config.codebook_size,
            config.codebook_dim,
            ema=config.ema,
            ema_decay=config.ema_decay,
            kmeans_init=config.kmeans_init,
            dead_code_threshold=config.dead_code_threshold,
            dropout=config.quantizer_dropout,
            gradient_estimator=config.gradient_estimator,
        )

    def _embed(self, i: int, residual: torch.Tensor) -> torch.Tensor:
        """What level ``i`` quantizes: the residual rows ``[M, input_dim]`` in code space."""
        return self.in_proj[i](residual)

    # -- forward ----------------------------------------------------------------------------------

    def forward(self, latent: torch.Tensor, levels: int | None = None) -> QuantizerOutput:
        """Quantize ``latent`` ``[B, D, N]`` with the first ``levels`` levels (all if None).

        In training mode this updates the running statistics (and EMA codes), initialises
        codebooks by k-means on first use, and applies quantizer dropout when ``levels`` is None.
        """
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            z = self._rows(latent)
            keep = self._dropout_mask(b, n, z.device) if levels is None else None
            residual = z
            out = torch.zeros_like(z)
            codebook_loss = z.new_zeros(())
            commitment_loss = z.new_zeros(())
            usage = z.new_zeros(self.num_levels, self.codebook_size)
            codes = []
            for i in range(k):
                level = self.levels[i]
                e = self._embed(i, residual)
                if self.training and not level.ready:
                    level.kmeans_init_(e.detach())
                idx = level.nearest(e.detach())
                c = level.lookup(idx)
                w = None if keep is None else keep[i]
                codebook_loss = codebook_loss + mean_square(e.detach() - c, w)
                commitment_loss = commitment_loss + mean_square(e - c.detach(), w)
                # The value is exactly the code; the estimator decides the gradient e gets.
                q = self.out_proj[i](self._estimate(e, c))
                out = out + (q if w is None else q * w)
                residual = residual - q
                usage[i] = torch.bincount(idx, minlength=self.codebook_size).float()
                if self.training:
                    level.update_(e.detach(), idx, usage[i])
                    level.remember_(e.detach())
                codes.append(idx)
            quantized = self._frames(out, b, n)
            codes_t = torch.stack(codes).view(k, b, n).transpose(0, 1)
        return QuantizerOutput(quantized, codes_t, codebook_loss, commitment_loss, usage, k)

    # -- codes in, codes out ---------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, latent: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """``[B, D, N]`` -> codes ``[B, levels, N]`` int64; touches no statistics."""
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            residual = self._rows(latent)
            codes = []
            for i, level in enumerate(list(self.levels)[:k]):
                idx = level.nearest(self._embed(i, residual))
                residual = residual - self.out_proj[i](level.lookup(idx))
                codes.append(idx)
        return torch.stack(codes).view(k, b, n).transpose(0, 1)

    def decode(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """Codes ``[B, L', N]`` -> quantized latent ``[B, D, N]`` from the first ``levels`` levels."""
        b, available, n = codes.shape
        k = self._check_levels(levels, available)
        with torch.autocast(codes.device.type, enabled=False):
            out = torch.zeros(b * n, self.input_dim, device=codes.device)
            for i in range(k):
                out = out + self.out_proj[i](self.levels[i].lookup(codes[:, i].reshape(-1)))
        return self._frames(out, b, n)

    # -- maintenance ------------------------------------------------------------------------------

    @torch.no_grad()
    def replace_dead_codes(self, latents: torch.Tensor | None = None) -> list[int]:
        """Replace every level's dead codes; returns how many were replaced per level.

        Replacement vectors are drawn from each level's recent residuals, or, if ``latents``
        ``[B, D, N]`` are given, from the residuals those latents leave at each level.
        """
        candidates: list[torch.Tensor | None] = [None] * self.num_levels
        if latents is not None:
            with torch.autocast(latents.device.type, enabled=False):
                residual = self._rows(latents)
                for i, level in enumerate(self.levels):
                    e = self._embed(i, residual)
                    candidates[i] = e
                    residual = residual - self.out_proj[i](level.lookup(level.nearest(e)))
        return [level.replace_dead_(c) for level, c in zip(self.levels, candidates)]
