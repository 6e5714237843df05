"""The phase-aware compressed complex spectrum loss (``complex_stft``)."""

from __future__ import annotations

import math

import pytest
import torch

from vqstudio.config import Config
from vqstudio.model.codec import CodecOutput
from vqstudio.train.complex_spectrum_loss import CompressedComplexLoss, compress
from vqstudio.train.losses import LossSuite, MultiResolutionStftLoss, SharedSpectra

SR = 24000
T = 12000
SIZES = ([512, 1024, 2048], [128, 256, 512], [512, 1024, 2048])


def tone(shift: int = 0, amp: float = 0.3) -> torch.Tensor:
    t = (torch.arange(T) - shift) / SR
    wave = amp * (torch.sin(2 * math.pi * 220 * t) + 0.5 * torch.sin(2 * math.pi * 660 * t + 1.0))
    return wave.reshape(1, 1, T)


def both(fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """(complex_stft, mrstft log magnitude) of the pair."""
    spectra = SharedSpectra(fake, real)
    complex_value = CompressedComplexLoss(*SIZES)(fake, real, spectra)
    _, logmag = MultiResolutionStftLoss(*SIZES)(fake, real, spectra)
    return float(complex_value), float(logmag)


def test_zero_for_the_same_signal_and_positive_otherwise():
    real = tone()
    assert both(real, real)[0] == 0.0
    assert both(0.5 * real, real)[0] > 0.0


def test_a_shift_the_magnitudes_cannot_see_costs_more_than_a_missing_signal():
    real = tone()
    shifted = tone(shift=54)  # half a period of 220 Hz: the same magnitudes, the phase turned
    complex_shift, logmag_shift = both(shifted, real)
    complex_silent, logmag_silent = both(torch.zeros_like(real), real)
    assert logmag_shift < 0.05 * logmag_silent  # the magnitude terms barely see the shift
    assert complex_shift > 2 * complex_silent  # this one does, as a waveform MSE would


def test_quiet_hiss_where_the_original_is_silent_keeps_a_cost():
    silence = torch.zeros(1, 1, T)
    noise = torch.randn(1, 1, T, generator=torch.Generator().manual_seed(0))
    loud, quiet = both(1e-3 * noise, silence)[0], both(1e-4 * noise, silence)[0]
    # 20 dB quieter hiss costs 10^(-20 * 0.6 / 20) ~ 0.25 as much (a waveform MSE: 0.01)
    assert quiet / loud == pytest.approx(10 ** (-0.6), rel=0.15)


def test_compress_keeps_the_phase_and_powers_the_magnitude():
    spec = torch.tensor([3 + 4j, -0.5j, 0j], dtype=torch.complex64)
    out = compress(spec, 0.5)
    assert torch.allclose(out.abs()[:2], torch.tensor([5**0.5, 0.5**0.5]))
    assert torch.allclose(torch.angle(out[:2]), torch.angle(spec[:2]))
    assert out[2] == 0


def test_gradients_stay_finite_from_a_silent_output():
    fake = torch.zeros(2, 1, T, requires_grad=True)
    real = torch.cat([tone(), tone(shift=5)])
    value = CompressedComplexLoss(*SIZES)(fake, real, SharedSpectra(fake, real))
    value.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().max() > 0


def test_the_suite_names_it_and_weights_it_zero_unless_asked():
    config = Config()
    assert "complex_stft" in config.loss.term_names()
    assert config.loss.resolved_weights()["complex_stft"] == 0.0
    asked = config.with_overrides({"loss.weights.complex_stft": 2.0})
    assert asked.loss.resolved_weights()["complex_stft"] == 2.0
    suite = LossSuite(asked)
    real = tone()
    zero = torch.tensor(0.0)
    out = CodecOutput(audio=tone(shift=3), codes=None, latent=None, quantized=None,
                      codebook_loss=zero, commitment_loss=zero, usage=None, levels_used=0)
    terms = suite.terms(out, real)
    assert float(terms["complex_stft"]) == pytest.approx(both(tone(shift=3), real)[0], rel=1e-5)
    assert "complex_stft" not in suite.terms(out, real, skip=["complex_stft"])
