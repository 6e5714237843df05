"""``model.phase_prior = "advance"``: the ISTFT head's phase relative to each bin's steady advance
(model/heads.py ``bin_advance``). The advance is what a steady tone at a bin's centre has in the
project's own STFT; the original's magnitudes with a constant phase lay a comb over the voice,
the same with the advance added do not; the setting is validated and off by default."""

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
from vqstudio.model.heads import bin_advance

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


def test_a_constant_phase_lays_a_comb_and_the_advance_takes_it_off():
    speech = read_audio(DEMO_DIR / "speech-05-stairs.flac", SR)
    for n_fft in (2 * HOP, 4 * HOP):
        stft = StftParams(n_fft, HOP)
        magnitude = stft.stft(torch.tensor(speech)[None]).abs()
        frames = magnitude.shape[-1]
        constant = stft.istft(magnitude.to(torch.complex64), len(speech))[0].numpy()
        steady = stft.istft(torch.polar(magnitude, bin_advance(stft, frames)[None].expand_as(magnitude)),
                            len(speech))[0].numpy()
        assert speech_comb(speech, constant, SR, HOP).excess_db > 2 * SPEECH_COMB_DB
        assert speech_comb(speech, steady, SR, HOP).excess_db < SPEECH_COMB_DB


def test_the_setting_is_validated_off_by_default_and_keeps_the_models_tensors():
    assert Config().model.phase_prior == "none"
    with pytest.raises(ConfigError) as caught:
        Config().with_overrides({"model.phase_prior": "vocoder"})
    assert "model.phase_prior" in str(caught.value) and "advance" in str(caught.value) + caught.value.fix
    plain = Codec(load_preset("seed-fixed").model)
    prior = Codec(load_preset("seed-fixed", ["model.phase_prior=advance"]).model)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in prior.state_dict().items()}
    prior.load_state_dict(plain.state_dict())
    x = torch.randn(1, 1, SR, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = plain(x).audio, prior(x).audio
    assert a.shape == b.shape and not torch.allclose(a, b)  # the same tensors, another phase
