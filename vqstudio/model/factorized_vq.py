"""Factorized residual VQ (``model.quantizer = "rvq_factorized"``), as in DAC (Kumar et al. 2023,
"High-Fidelity Audio Compression with Improved RVQGAN"): each level projects its residual down to a
few dimensions (``model.codebook_dim``, e.g. 8), l2-normalises it, and picks the code with the
largest cosine similarity among l2-normalised codes; the unit-length code is projected back up.

In a low-dimensional space on the unit sphere the codes cannot hide far from the data: every code
stays in reach of some inputs, which is what keeps the codebook from collapsing. The losses,
EMA/k-means/dead-code machinery and the estimators are those of :class:`~vqstudio.model.rvq.ResidualVQ`,
all acting on the normalised vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vqstudio.model.rvq import ResidualVQ


class FactorizedResidualVQ(ResidualVQ):
    """Residual VQ with low-dimensional, l2-normalised codes and cosine lookup."""

    cosine = True

    def _embed(self, i: int, residual: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.in_proj[i](residual), dim=1)
