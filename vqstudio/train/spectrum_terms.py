"""The MR-STFT parts and ``complex_stft`` of one step in one pass, with a hand-written gradient.

Both terms compare the reconstruction's complex spectrum ``X`` with the target's ``Y`` at the same
resolutions (:class:`~vqstudio.train.losses.SharedSpectra` computes each STFT once). Written as
chains of autograd operations, the two cost more than every mel scale together: ``|X|``, ``log``,
``pow`` and a complex multiply each recorded and differentiated on ~390 000 bins per resolution
(seed-fixed at one thread: 108 ms of a ~950 ms step, the mel terms 71 ms). Here one
:class:`torch.autograd.Function` per resolution computes the power ``p = |X|^2`` once, takes the
magnitude, its log and the compression from it, and returns the gradient with respect to ``X`` as
``X * a + D * b`` (two real factors), which is what the chain rule gives:

- spectral convergence ``||m_y - m_x|| / ||m_y||`` with ``m = sqrt(max(p, eps))``;
- log magnitude ``mean |log m_x - log m_y|``;
- compressed complex ``mean |X p^k - Y q^k|^2`` with ``k = (c - 1) / 2`` (``|X|^c`` with ``X``'s
  phase, :mod:`vqstudio.train.complex_spectrum_loss`).

Values and gradients equal the autograd chains up to float rounding (``tests/test_losses.py``
checks against auraloss and against the chains, ``torch.autograd.gradcheck`` in float64). Bins
where ``p`` is below the floor get no gradient, as ``clamp`` gives none.
"""

from __future__ import annotations

from typing import Sequence

import torch

EPS = 1e-8  # floor on the squared magnitude: |X| >= 1e-4 (auraloss's)


class _OneResolution(torch.autograd.Function):
    """``(sc, logmag, complex)`` of one resolution; the parts not asked for are 0 and cost nothing."""

    @staticmethod
    def forward(ctx, x, y, power: float, want_mrstft: bool, want_complex: bool):
        ctx.set_materialize_grads(False)
        p = x.real.square() + x.imag.square()
        mask = p > EPS
        p.clamp_(min=EPS)
        q = (y.real.square() + y.imag.square()).clamp_(min=EPS)
        log_p, log_q = p.log(), q.log()
        sc, logmag, cx = p.new_zeros(()), p.new_zeros(()), p.new_zeros(())
        saved = [x, p, mask]
        if want_mrstft:
            m_x, m_y = p.sqrt(), q.sqrt()
            diff = m_x - m_y
            norms = torch.stack([torch.linalg.vector_norm(diff), torch.linalg.vector_norm(m_y)])
            sc = norms[0] / norms[1]
            sign = log_p - log_q
            logmag = 0.5 * sign.abs().mean()
            saved += [diff * m_x, norms, sign.sign_()]
        if want_complex:
            k = (power - 1.0) / 2.0
            s = log_p.mul_(k).exp_()
            d = x * s - y * log_q.mul_(k).exp_()
            cx = (d.real.square() + d.imag.square()).mean()
            ctx.k = k
            saved += [d, s]
        ctx.want = (want_mrstft, want_complex)
        ctx.save_for_backward(*saved)
        return sc, logmag, cx

    @staticmethod
    def backward(ctx, g_sc, g_logmag, g_complex):
        x, p, mask, *rest = ctx.saved_tensors
        want_mrstft, want_complex = ctx.want
        n = p.numel()
        along_x = None  # the real factor on x
        along_d = None  # the real factor on d (complex term only)
        if want_mrstft:
            diff_m, norms, sign = rest[:3]
            rest = rest[3:]
            parts = []
            if g_sc is not None:  # d sc / dX = (m_x - m_y) / (|diff| |m_y|) * X / m_x
                parts.append(diff_m * (g_sc / (norms[0] * norms[1]).clamp(min=1e-30)))
            if g_logmag is not None:  # d logmag / dX = sign / n * X / p
                parts.append(sign * (g_logmag / n))
            for part in parts:
                along_x = part if along_x is None else along_x + part
        if want_complex and g_complex is not None:
            d, s = rest[:2]
            g = 2.0 * g_complex / n
            # d|D|^2 / dX = 2 (D s + Re(D conj X) * 2k s / p * X), D = X s - Y t
            dot = d.real * x.real + d.imag * x.imag
            part = dot * s * (2.0 * ctx.k) * g
            along_x = part if along_x is None else along_x + part
            along_d = s * g
        if along_x is None and along_d is None:
            return None, None, None, None, None
        grad = None
        if along_x is not None:
            grad = x * (along_x.div_(p).mul_(mask))
        if along_d is not None:
            grad = d * along_d if grad is None else grad.add_(d * along_d)
        return grad, None, None, None, None


def spectrum_terms(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], power: float, *,
                   mrstft: bool = True, complex_stft: bool = True) -> tuple[torch.Tensor, ...]:
    """``(spectral convergence, log magnitude, compressed complex)``, each the mean over the
    resolutions of ``pairs`` (``(fake, real)`` complex spectra ``[B, n_bins, frames]``; the real
    side is treated as a constant). A part not asked for is 0."""
    parts = [_OneResolution.apply(x, y.detach(), float(power), mrstft, complex_stft) for x, y in pairs]
    return tuple(torch.stack(values).mean() for values in zip(*parts))
