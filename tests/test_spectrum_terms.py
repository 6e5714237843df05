"""The one-pass MR-STFT parts and complex_stft (train/spectrum_terms.py) against autograd chains."""

from __future__ import annotations

import math

import torch

from vqstudio.audio.spectral import StftParams
from vqstudio.train.complex_spectrum_loss import compress
from vqstudio.train.spectrum_terms import EPS, spectrum_terms

SR = 24000


def chains(pairs, power):
    """The terms as plain autograd chains: what spectrum_terms must equal."""
    sc, logmag, cx = [], [], []
    for x, y in pairs:
        m_x = (x.real**2 + x.imag**2).clamp(min=EPS).sqrt()
        m_y = (y.real**2 + y.imag**2).clamp(min=EPS).sqrt()
        sc.append(torch.linalg.vector_norm(m_y - m_x) / torch.linalg.vector_norm(m_y))
        logmag.append((m_x.log() - m_y.log()).abs().mean())
        d = compress(x, power) - compress(y, power)
        cx.append((d.real**2 + d.imag**2).mean())
    return tuple(torch.stack(v).mean() for v in (sc, logmag, cx))


def speech_like(seed: int, length: int = 12000) -> torch.Tensor:
    """A voiced tone with a pause (exact zeros: the floor's bins) and a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / SR
    wave = 0.3 * torch.sin(2 * math.pi * (150 + 20 * seed) * t) + 0.01 * torch.randn(length, generator=g)
    wave[length // 2: length // 2 + 3000] = 0.0
    return wave.reshape(2, 1, length // 2)


def test_gradcheck_in_float64_including_bins_under_the_floor():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 5, dtype=torch.complex128, generator=g)
    x[0, :2] = 0  # under the floor: no gradient there, as clamp gives none
    y = torch.randn(2, 7, 5, dtype=torch.complex128, generator=g)
    x.requires_grad_()
    for power in (0.3, 0.7):
        assert torch.autograd.gradcheck(lambda v: spectrum_terms([(v, y)], power), (x,))
        assert torch.autograd.gradcheck(lambda v: spectrum_terms([(v, y)], power, mrstft=False)[2], (x,))


def test_values_and_gradients_equal_the_chains_on_real_spectra():
    stfts = [StftParams(n, n // 4, window="hann", padding="center") for n in (512, 1024, 2048)]
    fake, real = speech_like(1).requires_grad_(), speech_like(2)
    weights = (0.7, 1.3, 2.1)
    grads, values = [], []
    for fn in (lambda pairs: spectrum_terms(pairs, 0.3), lambda pairs: chains(pairs, 0.3)):
        pairs = [(s.stft(fake.reshape(2, -1)), s.stft(real.reshape(2, -1))) for s in stfts]
        out = fn(pairs)
        values.append(torch.stack(out))
        grads.append(torch.autograd.grad(sum(w * o for w, o in zip(weights, out)), fake)[0])
    assert torch.allclose(values[0], values[1], rtol=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6 * grads[1].abs().max())


def test_a_part_left_out_of_the_objective_gives_the_others_gradient_only():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 9, 6, dtype=torch.complex64, generator=g).requires_grad_()
    y = torch.randn(1, 9, 6, dtype=torch.complex64, generator=g)
    sc, logmag, cx = spectrum_terms([(x, y)], 0.3)
    only_complex = torch.autograd.grad(cx, x, retain_graph=True)[0]  # twice: the balancer's way
    again = torch.autograd.grad(cx, x, retain_graph=True)[0]
    reference = torch.autograd.grad(chains([(x, y)], 0.3)[2], x)[0]
    assert torch.equal(only_complex, again)
    assert torch.allclose(only_complex, reference, rtol=1e-4, atol=1e-7)
    sc_only, _, nothing = spectrum_terms([(x, y)], 0.3, complex_stft=False)
    assert nothing == 0 and torch.autograd.grad(sc_only, x)[0].abs().sum() > 0


def test_equal_spectra_cost_nothing_and_give_no_nan():
    x = torch.randn(1, 9, 6, dtype=torch.complex64, generator=torch.Generator().manual_seed(4))
    fake = x.clone().requires_grad_()
    out = spectrum_terms([(fake, x)], 0.3)
    assert [float(v.detach()) for v in out] == [0.0, 0.0, 0.0]
    sum(out).backward()
    assert torch.isfinite(fake.grad).all()


def test_the_mel_magnitudes_and_their_gradient_are_abs_folded_into_the_same_pass():
    """|X| out of the pass (for the mel terms) is X.abs(), and its gradient, alone or added to
    the MR-STFT and complex terms' in the one complex multiply, is autograd's through abs()."""
    from vqstudio.train.spectrum_terms import spectrum_pass

    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 9, 6, dtype=torch.complex64, generator=g)
    x[0, :2] = 0  # |X| = 0: no gradient there, as abs() gives none
    x.requires_grad_()
    y = torch.randn(2, 9, 6, dtype=torch.complex64, generator=g)
    upstream = torch.rand(2, 9, 6, generator=g)
    for in_terms in (False, True):
        (sc, logmag, cx), [(m_x, m_y)] = spectrum_pass([(x, y, in_terms, True)], 0.3,
                                                       mrstft=True, complex_stft=True)
        assert torch.allclose(m_x, x.abs(), rtol=1e-6) and torch.allclose(m_y, y.abs(), rtol=1e-6)
        assert not m_y.requires_grad
        objective = (m_x * upstream).sum() + (0.7 * sc + 1.3 * logmag + 2.1 * cx if in_terms else 0)
        got = torch.autograd.grad(objective, x)[0]
        reference = (x.abs() * upstream).sum()
        if in_terms:
            rsc, rlog, rcx = chains([(x, y)], 0.3)
            reference = reference + 0.7 * rsc + 1.3 * rlog + 2.1 * rcx
        want = torch.autograd.grad(reference, x)[0]
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), (got - want).abs().max()
        assert torch.all(got[0, :2] == 0) if not in_terms else True


def test_gradcheck_of_the_magnitudes_in_float64():
    from vqstudio.train.spectrum_terms import spectrum_pass

    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 5, 4, dtype=torch.complex128, generator=g, requires_grad=True)
    y = torch.randn(2, 5, 4, dtype=torch.complex128, generator=g)

    def magnitude_and_terms(v):
        (sc, logmag, cx), [(m_x, _)] = spectrum_pass([(v, y, True, True)], 0.3, mrstft=True,
                                                     complex_stft=True)
        return m_x, sc, logmag, cx

    assert torch.autograd.gradcheck(magnitude_and_terms, (x,))
