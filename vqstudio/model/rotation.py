"""Gradient estimators: how the gradient gets past the (non-differentiable) choice of a code.

Both return a tensor whose *value* is the code ``q`` and whose gradient flows into the input ``e``
(rows ``[M, dim]``); the code itself gets no gradient here (the codebook loss moves it).

- :func:`straight_through`: ``sg(q) + e - sg(e)``: the gradient at ``q`` is copied to ``e`` unchanged.
- :func:`rotation_trick` (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation
  Trick", arXiv 2410.06424): ``sg(lambda R) e`` with ``R`` the rotation that takes the direction of
  ``e`` onto that of ``q`` and ``lambda = |q| / |e|``. The value is still exactly ``q``; the
  gradient is rotated and scaled the same way, so inputs that sit at different angles and distances
  inside one code's cell get different updates (the straight-through copy gives them all the same),
  which spreads the inputs over more codes.

``R e`` is computed without forming ``R``: with unit vectors ``u = e/|e|``, ``v = q/|q|`` and
``w = (u + v)/|u + v|`` (all held constant), ``R e = e - 2 (e.w) w + 2 (e.u) v``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ESTIMATORS = ("straight_through", "rotation")
_TINY = 1e-12


def straight_through(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value ``q``, gradient copied to ``e``: ``[M, dim]``, ``[M, dim]`` -> ``[M, dim]``."""
    return q.detach() + (e - e.detach())  # exactly q: e - e is an exact zero


def rotation_trick(e: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value ``q``, gradient rotated from ``q``'s direction to ``e``'s and scaled by ``|q|/|e|``.

    ``e`` ``[M, dim]`` the inputs (with gradient), ``q`` ``[M, dim]`` their codes. A row whose
    input or code is zero falls back to the straight-through copy (there is no direction to rotate).
    """
    q = q.detach()
    e_norm = e.detach().norm(dim=-1, keepdim=True)
    q_norm = q.norm(dim=-1, keepdim=True)
    u = e.detach() / e_norm.clamp(min=_TINY)
    v = q / q_norm.clamp(min=_TINY)
    w = F.normalize(u + v, dim=-1, eps=_TINY)
    rotated = e - 2 * (e * w).sum(-1, keepdim=True) * w + 2 * (e * u).sum(-1, keepdim=True) * v
    # sg(lambda R) e, then the exact value: the few ulps the rotation leaves are put right with a
    # constant, so the forward output equals the code as straight-through's does.
    out = rotated * (q_norm / e_norm.clamp(min=_TINY))
    out = out + (q - out).detach()
    degenerate = (e_norm <= _TINY) | (q_norm <= _TINY) | ((u + v).norm(dim=-1, keepdim=True) <= 1e-6)
    return torch.where(degenerate, straight_through(e, q), out)


def estimator(name: str):
    """The estimator function called ``name`` (one of :data:`ESTIMATORS`)."""
    if name == "straight_through":
        return straight_through
    if name == "rotation":
        return rotation_trick
    raise ValueError(f"unknown gradient estimator {name!r}; use one of {', '.join(ESTIMATORS)}")
