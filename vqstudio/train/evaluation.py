"""Figures of the model as it trains, taken between steps without changing it: the validation mel
distance on fixed held-back segments, and the codebooks' usage."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def validation_distance(model: nn.Module, segments: torch.Tensor, sample_rate: int,
                        device: torch.device) -> dict[str, float]:
    """Mean multi-scale log-mel distance (lower is better) of ``model``'s reconstructions of
    ``segments`` ``[N, 1, T]``, in eval mode (no EMA update, no dropout); the mode is restored."""
    from vqstudio.audio.metrics import mel_distance

    was_training = model.training
    model.eval()
    try:
        x = segments.to(device)
        out = model(x)
        ref = x.view(x.shape[0], -1).cpu().numpy()
        est = out.audio.float().view(x.shape[0], -1).cpu().numpy()
    finally:
        model.train(was_training)
    return {"mel_distance": float(np.mean([mel_distance(r, e, sample_rate) for r, e in zip(ref, est)]))}


def codebook_figures(quantizer: nn.Module) -> dict[str, np.ndarray]:
    """The quantizer's statistics as CPU numpy: usage ``[L, K]``, entropy ``[L]``,
    dead_fraction ``[L]`` (and whatever else its ``stats()`` reports)."""
    return {k: v.detach().float().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)
            for k, v in quantizer.stats().items()}
