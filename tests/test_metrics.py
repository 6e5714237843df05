"""Tests of the evaluation metrics on generated signals with known answers: a speech-like clip with
silent gaps, white noise at a chosen SNR, low-pass noise, a -60 dBFS background."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, sosfilt

from vqstudio.audio.metrics import (
    aggregate,
    band_error_db,
    band_names,
    codebook_entropy,
    evaluate_pair,
    match_lengths,
    mel_distance,
    mrstft_distance,
    noise_floor,
    noise_floor_dbfs,
    pesq_score,
    si_sdr_db,
    stoi_score,
)
from vqstudio.errors import UserError

SR = 24000


def speech_like(seconds: float = 2.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Voiced bursts of 300 ms (a gliding 110-160 Hz pulse-like harmonic tone plus a breathy noise
    layer) separated by 200 ms of true silence: ``[T]`` float32, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 135 + 25 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 60))  # aliasing-free up to 60 * 160 Hz
    breath = 0.05 * rng.standard_normal(len(t))
    period, on, ramp = int(0.5 * sr), int(0.3 * sr), int(0.01 * sr)
    gate = np.zeros(period)
    gate[:on] = 1.0
    gate[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    gate[on - ramp : on] = gate[:ramp][::-1]
    gate = np.tile(gate, len(t) // period + 1)[: len(t)]
    wave = (voiced / np.max(np.abs(voiced)) + breath) * gate
    return (0.5 * wave / np.max(np.abs(wave))).astype(np.float32)


def at_snr(reference: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``reference + noise`` with the noise scaled to ``snr_db`` below the reference's energy."""
    ref = reference - reference.mean()
    gain = np.sqrt(np.sum(ref**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return (reference + gain * noise).astype(np.float32)


def test_identical_clips_score_perfect():
    ref = speech_like()
    assert si_sdr_db(ref, ref.copy()) > 100
    assert mel_distance(ref, ref.copy(), SR) == 0.0
    assert mrstft_distance(ref, ref.copy()) == pytest.approx(0.0, abs=1e-6)
    bands = band_error_db(ref, ref.copy(), SR)
    assert list(bands) == ["<1k", "1k-4k", "4k-8k", ">8k"]
    assert all(v == -math.inf or v < -100 for v in bands.values())


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_si_sdr_matches_the_snr_of_added_white_noise(snr_db):
    ref = speech_like(seed=1)
    noise = np.random.default_rng(2).standard_normal(len(ref))
    assert si_sdr_db(ref, at_snr(ref, noise, snr_db)) == pytest.approx(snr_db, abs=0.5)


def test_si_sdr_ignores_the_estimates_scale_and_accepts_tensors():
    ref = speech_like(seed=3)
    est = at_snr(ref, np.random.default_rng(4).standard_normal(len(ref)), 12.0)
    base = si_sdr_db(ref, est)
    assert si_sdr_db(ref, 0.25 * est) == pytest.approx(base, abs=1e-6)
    assert si_sdr_db(ref, 3.0 * est) == pytest.approx(base, abs=1e-6)
    as_tensors = si_sdr_db(torch.from_numpy(ref)[None, None], torch.from_numpy(est)[None])
    assert as_tensors == pytest.approx(base, abs=1e-6)


def test_spectral_distances_grow_as_the_noise_grows():
    ref = speech_like(seed=5)
    noise = np.random.default_rng(6).standard_normal(len(ref))
    mild, harsh = at_snr(ref, noise, 30.0), at_snr(ref, noise, 5.0)
    assert 0 < mel_distance(ref, mild, SR) < mel_distance(ref, harsh, SR)
    assert 0 < mrstft_distance(ref, mild) < mrstft_distance(ref, harsh)


def test_mrstft_distance_agrees_with_auraloss():
    auraloss = pytest.importorskip("auraloss")
    ref = speech_like(seed=7)
    est = at_snr(ref, np.random.default_rng(8).standard_normal(len(ref)), 10.0)
    sizes, hops = [512, 1024, 2048], [128, 256, 512]
    oracle = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=sizes, hop_sizes=hops, win_lengths=sizes, w_sc=1.0, w_log_mag=1.0, w_lin_mag=0.0
    )
    # auraloss takes (estimate, reference) and divides by the second argument's norm.
    expected = float(oracle(torch.from_numpy(est)[None, None], torch.from_numpy(ref)[None, None]))
    assert mrstft_distance(ref, est, sizes, hops) == pytest.approx(expected, rel=1e-3)


def test_noise_floor_finds_a_minus_60_dbfs_background_in_the_gaps():
    ref = speech_like(seconds=3.0, seed=9)
    hiss = np.random.default_rng(10).standard_normal(len(ref))
    hiss *= 10 ** (-60 / 20) / np.sqrt(np.mean(hiss**2))  # RMS exactly -60 dBFS
    floor = noise_floor(ref, ref + hiss, SR)
    assert floor.reason == ""
    # 200 ms gaps every 500 ms: most of each gap's ten 20 ms frames count as silent.
    assert floor.silent_frames >= 0.3 * floor.frames
    assert floor.dbfs == pytest.approx(-60.0, abs=1.5)
    louder = ref + hiss * 10 ** (20 / 20)  # the same hiss at -40 dBFS
    assert noise_floor_dbfs(ref, louder, SR) == pytest.approx(-40.0, abs=1.5)
    # A perfect reconstruction is exactly silent where the original is.
    assert noise_floor_dbfs(ref, ref.copy(), SR) == -math.inf


def test_noise_floor_is_nan_with_a_reason_when_the_original_never_falls_silent():
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    floor = noise_floor(tone, tone, SR)
    assert math.isnan(floor.dbfs) and floor.silent_frames == 0 and floor.frames == 50
    assert "-50 dBFS" in floor.reason
    assert math.isnan(noise_floor_dbfs(tone, tone, SR))


def test_low_pass_noise_shows_up_as_the_worst_band():
    ref = speech_like(seed=11)
    white = np.random.default_rng(12).standard_normal(len(ref))
    rumble = sosfilt(butter(8, 600, fs=SR, output="sos"), white)  # nothing above ~1 kHz
    bands = band_error_db(ref, at_snr(ref, rumble, 10.0), SR)
    assert max(bands, key=bands.get) == "<1k"
    assert bands["<1k"] > bands["4k-8k"] + 20


def test_bands_above_nyquist_are_left_out():
    sr = 16000
    ref = speech_like(sr=sr, seed=13)
    est = at_snr(ref, np.random.default_rng(14).standard_normal(len(ref)), 20.0)
    bands = band_error_db(ref, est, sr)
    assert list(bands) == ["<1k", "1k-4k", "4k-8k"]
    # White noise against a spectrum falling with frequency: the top band suffers most.
    assert bands["4k-8k"] > bands["<1k"]
    assert band_names([500, 1500]) == ["<500", "500-1.5k", ">1.5k"]


def test_codebook_entropy_of_uniform_and_single_code_usage():
    k = 64
    uniform = np.tile(np.arange(k), 10)
    single = np.full(k * 10, 7)
    codes = np.stack([uniform, single])  # [L=2, N]
    assert codebook_entropy(codes, k) == pytest.approx([1.0, 0.0], abs=1e-12)
    batched = torch.from_numpy(np.stack([codes, codes]))  # [B=2, L=2, N]
    assert codebook_entropy(batched, k) == pytest.approx([1.0, 0.0], abs=1e-12)
    half = np.tile(np.arange(k // 2), 20)[None]  # half the codebook, evenly
    assert codebook_entropy(half, k) == pytest.approx([math.log(k // 2) / math.log(k)])
    with pytest.raises(UserError, match="codebook of 32"):
        codebook_entropy(codes, 32)


def test_lengths_within_one_hop_are_trimmed_and_larger_gaps_refused():
    ref = speech_like(seed=15)
    ref2, est2 = match_lengths(ref, np.concatenate([ref, np.zeros(300, np.float32)]))
    assert len(ref2) == len(est2) == len(ref)
    assert si_sdr_db(ref, np.concatenate([ref, np.zeros(300, np.float32)])) > 100
    with pytest.raises(UserError, match=rf"{len(ref)} samples but estimate has {len(ref) - 5000}"):
        evaluate_pair(ref, ref[:-5000], SR)
    with pytest.raises(UserError, match="mono"):
        si_sdr_db(np.stack([ref, ref]), np.stack([ref, ref]))


def test_evaluate_pair_on_clips_read_back_from_files(tmp_path):
    ref = speech_like(seed=16)
    hiss = 10 ** (-55 / 20) * np.random.default_rng(17).standard_normal(len(ref))
    sf.write(tmp_path / "original.wav", ref, SR, subtype="FLOAT")
    sf.write(tmp_path / "reconstruction.wav", (ref + hiss).astype(np.float32), SR, subtype="FLOAT")
    original, sr = sf.read(tmp_path / "original.wav", dtype="float32")
    recon, _ = sf.read(tmp_path / "reconstruction.wav", dtype="float32")
    result = evaluate_pair(original, recon, sr)
    keys = {"si_sdr_db", "mel_distance", "mrstft_distance", "noise_floor_dbfs", "band_error_db"}
    assert keys <= set(result)
    assert result["noise_floor_dbfs"] == pytest.approx(-55.0, abs=1.5)
    assert 20 < result["si_sdr_db"] < 60
    assert set(result["band_error_db"]) == {"<1k", "1k-4k", "4k-8k", ">8k"}
    assert ("pesq" in result) == (importlib.util.find_spec("pesq") is not None)
    assert ("stoi" in result) == (importlib.util.find_spec("pystoi") is not None)


def test_aggregate_means_skip_nan_and_average_bands():
    nan = math.nan
    results = [
        {"si_sdr_db": 10.0, "noise_floor_dbfs": nan, "band_error_db": {"<1k": -20, ">8k": -5}},
        {"si_sdr_db": 20.0, "noise_floor_dbfs": -60.0, "band_error_db": {"<1k": -30, ">8k": nan}},
    ]
    means = aggregate(results)
    assert means["si_sdr_db"] == 15.0
    assert means["noise_floor_dbfs"] == -60.0
    assert means["band_error_db"] == {"<1k": -25.0, ">8k": -5.0}
    assert math.isnan(aggregate([{"noise_floor_dbfs": math.nan}])["noise_floor_dbfs"])
    assert aggregate([]) == {}


def test_optional_perceptual_scores_are_none_without_their_packages():
    ref = speech_like(seed=18)
    pesq_value, stoi_value = pesq_score(ref, ref, SR), stoi_score(ref, ref, SR)
    if importlib.util.find_spec("pesq") is None:
        assert pesq_value is None
    else:
        assert pesq_value > 4.0
    if importlib.util.find_spec("pystoi") is None:
        assert stoi_value is None
    else:
        assert stoi_value > 0.99
