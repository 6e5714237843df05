"""``model.phase_prior = "advance"``: the ISTFT head's phase relative to each bin's steady advance
(model/heads.py ``bin_advance``), and ``"integrate"``: the phase summed from a predicted advance
beyond each bin's own (``integrate_phase``). The advance is what a steady tone at a bin's centre
has in the project's own STFT; the original's magnitudes with a constant phase lay a comb over the
voice at the frame rate, with the advance on the bins; the original's own advance integrated gives
the original back; the setting is validated and off by default."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqstudio.audio.io import read_audio
from vqstudio.audio.spectral import StftParams
from vqstudio.audio.speech_comb import SPEECH_COMB_DB, speech_comb
from vqstudio.config import DEMO_DIR, Config, load_preset
from vqstudio.errors import ConfigError
from vqstudio.model import Codec
from vqstudio.audio.metrics import si_sdr_db
from vqstudio.model.heads import bin_advance, integrate_from_bin, integrate_phase

SR, HOP = 24000, 240


@pytest.mark.parametrize("n_fft", [2 * HOP, 4 * HOP])
def test_the_advance_is_a_steady_tones_phase_in_our_stft(n_fft):
    stft = StftParams(n_fft, HOP)
    k = 37
    t = np.arange(SR) / SR
    tone = torch.tensor(np.cos(2 * np.pi * k * SR / n_fft * t), dtype=torch.float32)
    phase = torch.angle(stft.stft(tone[None])[0, k])  # [frames]
    advance = bin_advance(stft, phase.shape[-1])[k]
    inner = slice(2, -2)  # the reflect-padded edges aside
    offset = torch.remainder(phase - advance, 2 * math.pi)[inner]
    assert float(offset.max() - offset.min()) < 1e-3  # the same constant in every frame


def test_a_constant_phase_lays_a_comb_and_the_advance_moves_it_onto_the_bins():
    """The original's magnitudes with a phase constant in time: lines at the frame rate's
    multiples; with each bin's steady advance instead: lines on the bins (every sample_rate /
    n_fft), which only the measure given the head's n_fft sees. Neither is the voice."""
    speech = read_audio(DEMO_DIR / "speech-05-stairs.flac", SR)
    for n_fft in (2 * HOP, 4 * HOP):
        stft = StftParams(n_fft, HOP)
        magnitude = stft.stft(torch.tensor(speech)[None]).abs()
        frames = magnitude.shape[-1]
        constant = stft.istft(magnitude.to(torch.complex64), len(speech))[0].numpy()
        steady = stft.istft(torch.polar(magnitude, bin_advance(stft, frames)[None].expand_as(magnitude)),
                            len(speech))[0].numpy()
        locked = speech_comb(speech, constant, SR, HOP, n_fft)
        assert locked.grid == "frame rate" and locked.excess_db > 2 * SPEECH_COMB_DB
        on_bins = speech_comb(speech, steady, SR, HOP, n_fft)
        assert (on_bins.grid, on_bins.grid_hz) == ("bin spacing", SR / n_fft)
        assert on_bins.excess_db > 2 * SPEECH_COMB_DB
        assert speech_comb(speech, steady, SR, HOP).excess_db < SPEECH_COMB_DB  # the frame rate's grid misses it


def test_integrating_the_sounds_own_advance_gives_the_sound_back():
    """``"integrate"`` reads the head's output as each bin's advance beyond its own: the
    original's frame-to-frame advance, fed in, gives the original back (up to each bin's first
    phase, which the first frame carries); a zero rate is the steady advance, to the last bit."""
    speech = read_audio(DEMO_DIR / "speech-05-stairs.flac", SR)
    stft = StftParams(2 * HOP, HOP, padding="center")
    spectrum = stft.stft(torch.tensor(speech)[None])
    phase, frames = torch.angle(spectrum), spectrum.shape[-1]
    beyond = torch.diff(phase - bin_advance(stft, frames), dim=-1, prepend=torch.zeros_like(phase[..., :1]))
    rate = torch.remainder(beyond + math.pi, 2 * math.pi) - math.pi
    again = stft.istft(torch.polar(spectrum.abs(), integrate_phase(stft, rate)), len(speech))[0].numpy()
    assert si_sdr_db(speech, again) > 60.0
    assert speech_comb(speech, again, SR, HOP, stft.n_fft).excess_db == pytest.approx(0.0, abs=0.1)
    zero = integrate_phase(stft, torch.zeros(1, stft.n_bins, frames))
    assert torch.allclose(torch.remainder(zero, 2 * math.pi), bin_advance(stft, frames)[None], atol=1e-5)


def test_the_setting_is_validated_off_by_default_and_keeps_the_models_tensors():
    assert Config().model.phase_prior == "none"
    with pytest.raises(ConfigError) as caught:
        Config().with_overrides({"model.phase_prior": "vocoder"})
    assert "model.phase_prior" in str(caught.value) and "advance" in str(caught.value) + caught.value.fix
    plain = Codec(load_preset("seed-fixed").model)
    x = torch.randn(1, 1, SR, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = plain(x).audio
    for kind in ("advance", "integrate"):
        prior = Codec(load_preset("seed-fixed", [f"model.phase_prior={kind}"]).model)
        assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in prior.state_dict().items()}
        prior.load_state_dict(plain.state_dict())
        with torch.no_grad():
            b = prior(x).audio
        assert a.shape == b.shape and torch.isfinite(b).all() and not torch.allclose(a, b)  # another phase


def test_integrate_from_hz_keeps_the_low_bins_direct_and_is_validated():
    """``model.integrate_from_hz``: bins whose centre is under it keep the head's output as their
    phase (where speech's waveform is lined up), the rest are integrated; it means nothing
    without ``"integrate"`` and is refused then, as is a frequency outside 0..Nyquist."""
    stft = StftParams(2 * HOP, HOP, padding="center")
    rate = torch.randn(1, stft.n_bins, 50, generator=torch.Generator().manual_seed(1))
    first = integrate_from_bin(stft, SR, 700.0)
    assert first == 14 and integrate_from_bin(stft, SR, 0.0) == 0  # 50 Hz bins: 0..650 Hz direct
    mixed = integrate_phase(stft, rate, first)
    assert torch.equal(mixed[:, :first], rate[:, :first])
    assert torch.equal(mixed[:, first:], integrate_phase(stft, rate)[:, first:])
    model = load_preset("seed-fixed", ["model.phase_prior=integrate", "model.integrate_from_hz=700"]).model
    assert Codec(model).decoder.head.integrate_from_bin == 14
    for bad, words in ((["model.integrate_from_hz=700"], "phase_prior"),
                       (["model.phase_prior=integrate", "model.integrate_from_hz=-1"], "at least 0"),
                       (["model.phase_prior=integrate", "model.integrate_from_hz=12000"], "half the sample rate")):
        with pytest.raises(ConfigError) as caught:
            load_preset("seed-fixed", bad)
        assert words in str(caught.value) + caught.value.fix
