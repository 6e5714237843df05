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


def planes(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z.real, z.imag)`` as two dense real tensors in ``z``'s memory order (a spectrum from
    ``torch.stft`` is ``[B, bins, frames]`` stored frame-major). Every product below is then on
    dense, equally strided operands: on the interleaved (re, im) pairs a real factor has to be
    broadcast over the pair (``view_as_real(z) * f[..., None]``, 4x the time of two dense products
    on a ``[8, 513, 188]`` spectrum) and ``z.real * z.real`` steps over every other float."""
    flip = not z.is_contiguous() and z.transpose(-1, -2).is_contiguous()
    base = z.transpose(-1, -2) if flip else z
    both = torch.view_as_real(base).movedim(-1, 0).contiguous()
    if flip:
        return both[0].transpose(-1, -2), both[1].transpose(-1, -2)
    return both[0], both[1]


def joined(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """The complex tensor of :func:`planes`' two parts, in their memory order."""
    if not re.is_contiguous() and re.transpose(-1, -2).is_contiguous():
        return torch.complex(re.transpose(-1, -2), im.transpose(-1, -2)).transpose(-1, -2)
    return torch.complex(re, im)


class _OneResolution(torch.autograd.Function):
    """``(sc, logmag, complex, |X|, |Y|)`` of one resolution; the parts not asked for are 0 and
    cost nothing. The magnitudes (unfloored: the mel terms' ``|X|``) are returned only when asked
    for; ``|Y|`` carries no gradient, ``|X|``'s gradient ``G`` comes back as ``X * G / |X|`` (0
    where ``X`` is 0), folded into the same complex multiply as the other parts' gradients. Works
    on the real and imaginary parts as separate dense tensors (:func:`planes`)."""

    @staticmethod
    def forward(ctx, x, y, power: float, want_mrstft: bool, want_complex: bool,
                want_magnitudes: bool = False):
        ctx.set_materialize_grads(False)
        xr, xi = planes(x)
        yr, yi = planes(y)
        p = torch.addcmul(xr * xr, xi, xi)
        q = torch.addcmul(yr * yr, yi, yi)
        m_fake = m_real = p.new_zeros(())
        if want_magnitudes:
            m_fake, m_real = p.sqrt(), q.sqrt()
        sc, logmag, cx = p.new_zeros(()), p.new_zeros(()), p.new_zeros(())
        mask = p.new_zeros(())
        if want_mrstft or want_complex:
            mask = p > EPS
            p.clamp_(min=EPS)
            q.clamp_(min=EPS)
            log_p, log_q = p.log(), q.log()
        saved = [xr, xi, p, mask, m_fake]
        if want_mrstft:  # |X| floored at sqrt(EPS): from the magnitudes when they were taken
            m_x = m_fake.clamp(min=EPS ** 0.5) if want_magnitudes else p.sqrt()
            m_y = m_real.clamp(min=EPS ** 0.5) if want_magnitudes else q.sqrt()
            diff = m_x - m_y
            norms = torch.stack([torch.linalg.vector_norm(diff), torch.linalg.vector_norm(m_y)])
            sc = norms[0] / norms[1]
            sign = log_p - log_q
            logmag = 0.5 * torch.linalg.vector_norm(sign, ord=1) / sign.numel()
            saved += [diff.mul_(m_x), norms, sign.sign_()]
        if want_complex:
            k = (power - 1.0) / 2.0
            s = log_p.mul_(k).exp_()
            t = log_q.mul_(k).exp_()
            dr = torch.mul(xr, s).sub_(yr.mul_(t))  # D = X s - Y t, the compressed difference
            di = torch.mul(xi, s).sub_(yi.mul_(t))
            cx = (torch.linalg.vector_norm(dr).square()
                  + torch.linalg.vector_norm(di).square()) / p.numel()
            ctx.k = k
            saved += [dr, di, s]
        ctx.want = (want_mrstft, want_complex)
        ctx.save_for_backward(*saved)
        ctx.mark_non_differentiable(m_real)
        return sc, logmag, cx, m_fake, m_real

    @staticmethod
    def backward(ctx, g_sc, g_logmag, g_complex, g_magnitude, _g_real):
        xr, xi, p, mask, m_fake, *rest = ctx.saved_tensors
        want_mrstft, want_complex = ctx.want
        n = p.numel()
        along_x = None  # the real factor on x
        along_d = None  # the real factor on d (complex term only)
        if want_mrstft:
            diff_m, norms, sign = rest[:3]
            rest = rest[3:]
            if g_sc is not None:  # d sc / dX = (m_x - m_y) / (|diff| |m_y|) * X / m_x
                along_x = diff_m * (g_sc / (norms[0] * norms[1]).clamp(min=1e-30))
            if g_logmag is not None:  # d logmag / dX = sign / n * X / p
                along_x = (sign * (g_logmag / n) if along_x is None
                           else along_x.addcmul_(sign, g_logmag / n))
        if want_complex and g_complex is not None:
            dr, di, s = rest[:3]
            g = 2.0 * g_complex / n
            # d|D|^2 / dX = 2 (D s + Re(D conj X) * 2k s / p * X), D = X s - Y t
            dot = torch.addcmul(dr * xr, di, xi)
            part = dot.mul_(s).mul_(2.0 * ctx.k * g)
            along_x = part if along_x is None else along_x.add_(part)
            along_d = s * g
        if along_x is not None:
            along_x = along_x.div_(p).mul_(mask)
        if g_magnitude is not None and m_fake.dim():  # d|X| / dX = X / |X|, 0 at X = 0
            part = torch.where(m_fake > 0, g_magnitude / m_fake, 0.0)
            along_x = part if along_x is None else along_x.add_(part)
        if along_x is None and along_d is None:
            return None, None, None, None, None, None
        grad_r = grad_i = None
        if along_x is not None:
            grad_r, grad_i = xr * along_x, xi * along_x
        if along_d is not None:
            if grad_r is None:
                grad_r, grad_i = dr * along_d, di * along_d
            else:
                grad_r.addcmul_(dr, along_d)
                grad_i.addcmul_(di, along_d)
        return joined(grad_r, grad_i), None, None, None, None, None


def spectrum_terms(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], power: float, *,
                   mrstft: bool = True, complex_stft: bool = True) -> tuple[torch.Tensor, ...]:
    """``(spectral convergence, log magnitude, compressed complex)``, each the mean over the
    resolutions of ``pairs`` (``(fake, real)`` complex spectra ``[B, n_bins, frames]``; the real
    side is treated as a constant). A part not asked for is 0."""
    terms, _ = spectrum_pass([(x, y, True, False) for x, y in pairs], power,
                             mrstft=mrstft, complex_stft=complex_stft)
    return terms


def spectrum_pass(entries: Sequence[tuple[torch.Tensor, torch.Tensor, bool, bool]], power: float, *,
                  mrstft: bool, complex_stft: bool):
    """One pass per resolution for every spectral term of a step.

    ``entries``: ``(fake, real, in_terms, magnitudes)`` per distinct STFT; ``in_terms`` puts it
    in the MR-STFT / complex means, ``magnitudes`` asks for ``(|fake|, |real|)`` (the mel terms').
    Returns ``((sc, logmag, complex), magnitudes)``: the means over the ``in_terms`` entries (0
    where none or not asked for) and, per entry, the pair of magnitudes or None.
    """
    parts, magnitudes = [], []
    for x, y, in_terms, want_magnitudes in entries:
        out = _OneResolution.apply(x, y.detach(), float(power), mrstft and in_terms,
                                   complex_stft and in_terms, want_magnitudes)
        if in_terms:
            parts.append(out[:3])
        magnitudes.append(out[3:] if want_magnitudes else None)
    if not parts:
        zero = entries[0][0].real.new_zeros(()) if entries else torch.zeros(())
        return (zero, zero, zero), magnitudes
    return tuple(torch.stack(values).mean() for values in zip(*parts)), magnitudes
