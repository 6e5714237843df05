"""The tiled polyphase resampler: scipy's resample_poly outputs (same filter) within float32
rounding, range reads bit for bit equal to the whole-file resample at every common ratio, the
same bits at any torch thread count, and the integer decode of 16/24-bit PCM equal to the float
decode it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from vqstudio.audio.io import read_audio, read_samples
from vqstudio.audio.resampler import lowpass, polyphase, ratio, read_resampled, resample

RATIOS = [(44100, 24000), (48000, 24000), (16000, 24000), (22050, 24000), (8000, 44100),
          (96000, 24000), (24000, 16000), (44100, 48000), (22050, 16000), (44056, 24000)]
# float32 rounding of a 37..60-tap dot product summed in another order: a few ulps of the output
SCIPY_BOUND = 5e-7


def noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def reader(wave: np.ndarray):
    def decode(out: np.ndarray, start: int) -> None:
        assert 0 <= start and start + len(out) <= len(wave)  # asks only for frames in the file
        out[:] = wave[start : start + len(out)]

    return decode


@pytest.mark.parametrize("rates", RATIOS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_outputs_are_resample_polys_within_float_rounding(rates):
    fr, to = rates
    wave = noise(0.7, fr)
    up, down = ratio(fr, to)
    expected = resample_poly(wave, up, down, window=lowpass(up, down))
    got = resample(wave, fr, to)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < SCIPY_BOUND


@pytest.mark.parametrize("rates", RATIOS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_a_range_read_is_the_whole_resample_bit_for_bit(rates):
    fr, to = rates
    wave = noise(1.3, fr, seed=1)
    whole = resample(wave, fr, to)
    n = len(whole)
    rng = np.random.default_rng(2)
    ranges = [(0, 0), (0, 1), (0, n), (n - 1, 1), (5, 333)] + [
        (int(f), int(rng.integers(1, n - f + 1))) for f in rng.integers(0, n - 1, size=12)]
    for first, count in ranges:
        part = read_resampled(reader(wave), len(wave), fr, to, first, count)
        assert np.array_equal(part, whole[first : first + count]), (first, count)


def test_the_same_bits_at_any_thread_count():
    wave = noise(2.0, 44100)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = resample(wave, 44100, 24000)
        torch.set_num_threads(2)
        two = resample(wave, 44100, 24000)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, two)


def test_odd_ratios_take_the_scipy_path_and_common_ones_the_matrix():
    assert polyphase(*ratio(44100, 24000)).fits
    assert polyphase(*ratio(16000, 24000)).fits
    assert not polyphase(*ratio(44056, 24000)).fits  # a 3000 x 5542 matrix, mostly zeros


@pytest.mark.parametrize("suffix, subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"),
                                             (".wav", "PCM_24"), (".flac", "PCM_24")])
@pytest.mark.parametrize("channels", [1, 2])
def test_integer_decoding_equals_the_float_decode(tmp_path, suffix, subtype, channels):
    wave = np.clip(noise(1.0 * channels, 44100).reshape(-1, channels) * 2, -1, 1)
    wave[:5], wave[5:10] = 1.0, -1.0  # full scale both ways
    path = tmp_path / f"pcm{suffix}"
    sf.write(path, wave, 44100, subtype=subtype)
    floats, _ = sf.read(path, dtype="float32", always_2d=True)
    mono = floats[:, 0].copy()
    if channels == 2:
        mono += floats[:, 1]
        mono /= np.float32(2)
    assert np.array_equal(read_audio(path), mono)
    assert np.array_equal(read_samples(path, None, 1234, 5000), mono[1234:6234])
    assert np.array_equal(read_audio(path, 24000), resample(mono, 44100, 24000))
