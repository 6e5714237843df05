"""Spectral operations against independent oracles: scipy for COLA/NOLA, librosa for mels."""

import numpy as np
import pytest
import scipy.signal
import torch

from vqstudio.audio.spectral import (
    MelSpectrogram,
    StftParams,
    check_cola,
    check_nola,
    mel_filterbank,
    normalize_mel,
    tanh_saturation,
    window_array,
)
from vqstudio.config import Config, load_preset, preset_names
from vqstudio.errors import ConfigError

# (window, nperseg, hop): COLA and NOLA both true, both false, and every mixture.
WINDOW_HOP_PAIRS = [
    ("hann", 512, 128),
    ("hann", 512, 256),
    ("hann", 512, 200),
    ("hann", 960, 240),
    ("hamming", 400, 100),
    ("hamming", 400, 150),
    ("blackman", 512, 128),
    ("blackman", 512, 256),
    ("boxcar", 256, 256),
    ("boxcar", 256, 100),
    ("hann", 256, 256),
    ("hann", 1280, 320),
]


@pytest.mark.parametrize("window,nperseg,hop", WINDOW_HOP_PAIRS)
def test_cola_nola_agree_with_scipy(window, nperseg, hop):
    w = window_array("rect" if window == "boxcar" else window, nperseg)
    assert np.allclose(w, scipy.signal.get_window(window, nperseg), atol=1e-12)
    assert check_cola(w, hop) == scipy.signal.check_COLA(window, nperseg, nperseg - hop)
    assert check_nola(w, hop) == scipy.signal.check_NOLA(window, nperseg, nperseg - hop)


def test_refused_stft_names_the_pair():
    with pytest.raises(ConfigError, match=r"hann window of 256 samples with hop=256"):
        StftParams(256, 256, window="hann")  # squared hann windows at hop = n_fft touch zero
    with pytest.raises(ConfigError, match="hop=600"):
        StftParams(512, 600)


def _preset_stfts():
    for name in preset_names():
        m = load_preset(name).model
        yield name, StftParams(m.n_fft, m.hop, window=m.window, padding=m.padding)


@pytest.mark.parametrize("padding", ["center", "same"])
def test_round_trip_every_preset(padding):
    torch.manual_seed(0)
    names = list(_preset_stfts()) or [("default", StftParams(960, 240))]
    for name, params in names:
        params = StftParams(params.n_fft, params.hop, window=params.window, padding=padding)
        for length in (params.hop * 40, params.hop * 40 + 7):
            x = torch.randn(2, length)
            y = params.istft(params.stft(x), length)
            err = (y - x).abs().max().item()
            assert err < 1e-5, f"{name} {padding} length {length}: round-trip error {err}"


def test_inference_overlap_add_is_fold_to_the_bit():
    """Without a graph (inference) the "same" ISTFT adds shifted blocks instead of F.fold: the
    same output bits for every preset's STFT, for several lengths and a batch."""
    torch.manual_seed(0)
    for name, params in _preset_stfts():
        for frames in (1, 3, 4, 101):
            spec = torch.randn(2, params.n_bins, frames, dtype=torch.complex64)
            length = frames * params.hop
            graph = params.istft(spec.clone().requires_grad_(), length)  # records: F.fold
            with torch.inference_mode():
                fast = params.istft(spec, length)
            assert torch.equal(graph.detach(), fast), (name, frames)


def test_frame_count_matches_stft():
    for padding in ("center", "same"):
        p = StftParams(1024, 256, padding=padding)
        for length in (256 * 10, 256 * 10 + 5, 3000):
            assert p.stft(torch.zeros(length)).shape[-1] == p.num_frames(length)


@pytest.mark.parametrize("scale", ["slaney", "htk"])
@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [
    (24000, 1024, 80, 0.0, None),
    (44100, 2048, 128, 30.0, 16000.0),
    (16000, 512, 64, 0.0, 8000.0),
])
def test_mel_filterbank_matches_librosa(scale, sr, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, scale=scale)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=scale == "htk")
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-5


def test_mel_spectrogram_of_a_tone_peaks_in_the_right_band():
    sr = 24000
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * np.pi * 1000 * t)[None]
    mel = MelSpectrogram(sr, StftParams(1024, 256), 80)(tone)
    assert mel.shape[:2] == (1, 80)
    fb = mel_filterbank(sr, 1024, 80)
    peak_band = int(mel[0].mean(-1).argmax())
    bin_1k = round(1000 / (sr / 1024))
    assert fb[peak_band, bin_1k] > 0, f"loudest band {peak_band} does not cover 1 kHz"


def test_mel_normalisations_and_saturation():
    mel = torch.tensor([[[1e-7, 0.01, 0.5, 3.0, 50.0]]])
    log = normalize_mel(mel, "log")
    assert torch.allclose(log[0, 0, 0], torch.log(torch.tensor(1e-5)))
    tanh = normalize_mel(mel, "tanh")
    assert tanh.max() <= 1 and tanh[0, 0, -1] > 0.999
    mm = normalize_mel(mel, "minmax")
    assert mm.min() == 0 and torch.isclose(mm.max(), torch.tensor(1.0))
    assert tanh_saturation(mel) == pytest.approx(2 / 5)  # 3.0 and 50.0 sit in saturation
    with pytest.raises(ConfigError, match="unknown"):
        normalize_mel(mel, "sqrt")


def test_config_refuses_uninvertible_stft():
    with pytest.raises(ConfigError, match="NOLA"):
        Config().with_overrides(["model.window=\"hann\"", "model.n_fft=240", "model.hop=240",
                                 "model.encoder_ratios=[2,4,5,6]"])
