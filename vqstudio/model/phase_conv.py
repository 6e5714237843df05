"""A dilated 1-D convolution computed as an undilated one over the signal's phases.

With dilation ``d`` a convolution only ever combines samples ``d`` apart, so it is ``d`` separate
undilated convolutions, one per phase ``t mod d``. Viewing ``[B, C, L]`` as ``[B, C, L / d, d]``
(no copy) puts the phases side by side, and a 2-D convolution with a ``(k, 1)`` kernel and
``padding / d`` rows of zeros runs them all at once; the output, viewed back, is the dilated
convolution's. oneDNN's dilated 1-D kernels are much slower than its undilated ones on the
encoder's few channels (training step, one thread, forward + backward, thread CPU: 16 ch x 24000
dilation 3: 118 -> 62 ms; 32 x 6000: 67 -> 40; 64 x 1000: 30 -> 24). Values and gradients equal
``F.conv1d``'s up to float rounding (``tests/test_phase_conv.py``).

A length that is not a multiple of ``d`` is padded with zeros at the end (the convolution's own
padding is zeros too) and the extra outputs are cut off. Used on the CPU only: a GPU's kernels
were never measured here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PhaseConv1d(nn.Conv1d):
    """An ``nn.Conv1d`` (same parameters, same state-dict keys) whose dilated forward runs over
    phases (module docstring); undilated, strided, grouped or non-zero-padded ones run as usual."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dilation[0]
        pad = self.padding if isinstance(self.padding, str) else self.padding[0]
        if (d == 1 or self.stride[0] != 1 or self.groups != 1 or self.padding_mode != "zeros"
                or isinstance(pad, str) or pad % d or x.dim() != 3 or x.device.type != "cpu"):
            return super().forward(x)
        return phase_conv1d(x, self.weight, self.bias, d, pad)


def phase_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dilation: int,
                 padding: int) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=padding, dilation=dilation)`` for ``x`` ``[B, C, L]``
    as a 2-D convolution over the ``dilation`` phases; ``padding`` a multiple of ``dilation``."""
    b, c, length = x.shape
    kernel = weight.shape[-1]
    out_length = length + 2 * padding - dilation * (kernel - 1)
    extra = -length % dilation
    if extra:
        x = F.pad(x, (0, extra))
    rows = (length + extra) // dilation
    y = F.conv2d(x.reshape(b, c, rows, dilation), weight.unsqueeze(3), bias,
                 padding=(padding // dilation, 0))
    y = y.reshape(b, weight.shape[0], -1)
    return y if y.shape[-1] == out_length else y[..., :out_length]
