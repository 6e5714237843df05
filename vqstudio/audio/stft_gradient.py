"""The STFT of a padded signal with a hand-written backward pass (the loss terms' STFTs).

``torch.stft``'s backward goes through a full-length complex FFT of the zero-extended one-sided
gradient and an ``index_add`` overlap-add, about three times the forward's cost. For a real
signal the gradient of the one-sided transform is a real inverse FFT: with ``G`` the gradient
of ``X_k = sum_n x_n e^{-2 pi i k n / N}`` (k = 0 .. N/2), ``dL/dx_n = Re sum_k G_k e^{2 pi i k n / N}
= N * irfft(H)_n`` with ``H`` = ``G`` with its bins strictly between 0 and N/2 halved (``irfft``
counts each of those twice and takes only the real part of the two end bins). Each frame's
gradient is then multiplied by the window and the frames are added back at their hops: as
``n_fft / hop`` shifted slice additions when the hop divides ``n_fft``, otherwise with ``F.fold``.

Values are ``torch.stft``'s exactly (the forward is ``torch.stft`` on the same padded signal);
the gradient equals autograd's up to float rounding (``tests/test_stft_gradient.py``, and
``gradcheck`` in float64). On the three loss resolutions of a batch of 8 x 1 s at 24 kHz, one
thread: see ``benchmarks/train_paired.py`` for the step it is part of.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _FramedStft(torch.autograd.Function):
    @staticmethod
    def forward(ctx, padded, window, n_fft: int, hop: int):
        ctx.n_fft, ctx.hop, ctx.length = n_fft, hop, padded.shape[-1]
        ctx.save_for_backward(window)
        return torch.stft(padded, n_fft, hop_length=hop, win_length=n_fft, window=window,
                          center=False, return_complex=True)

    @staticmethod
    def backward(ctx, grad):
        (window,) = ctx.saved_tensors
        n_fft, hop = ctx.n_fft, ctx.hop
        bins = grad.shape[-2]
        scale = torch.full((bins,), 0.5, dtype=window.dtype, device=window.device)
        scale[0] = 1.0
        if n_fft % 2 == 0:
            scale[-1] = 1.0
        # [B, frames, bins] (the layout torch.stft's spectra and their gradients have) -> frames
        half = torch.view_as_complex(torch.view_as_real(grad.transpose(-1, -2)) * scale[:, None])
        frames = torch.fft.irfft(half, n=n_fft, dim=-1).mul_(window * n_fft)  # [B, F, n_fft]
        out = _overlap_add(frames, hop, ctx.length)
        return out, None, None, None


def _overlap_add(frames: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """``frames`` ``[B, F, n]`` added at hops into ``[B, length]`` (zeros past the last frame)."""
    b, count, n = frames.shape
    covered = (count - 1) * hop + n
    if n % hop == 0:
        parts = n // hop
        out = frames.new_zeros(b, count + parts - 1, hop)
        pieces = frames.view(b, count, parts, hop)
        for j in range(parts):
            out[:, j: j + count] += pieces[:, :, j]
        out = out.view(b, covered)
    else:
        out = F.fold(frames.transpose(1, 2), (1, covered), (1, n), stride=(1, hop)).view(b, covered)
    return out if covered == length else F.pad(out, (0, length - covered))


def stft_of_padded(padded: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``torch.stft(padded, n_fft, hop, window=window, center=False)`` for ``padded`` ``[B, T]``
    (a window of ``n_fft`` samples) with the backward pass of the module docstring."""
    return _FramedStft.apply(padded, window, n_fft, hop)
