"""The denoised source: a reconstruction through spectral gating (noisereduce) has a lower floor
in the original's silences, keeps the sound, and ``vqstudio compare --denoise`` adds its row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import one_line_error, run_cli, train_tiny_run
from vqstudio.audio.distortion import silence_floor
from vqstudio.audio.io import read_audio
from vqstudio.errors import UserError
from vqstudio.experiments.denoise import check_strength, denoise
from vqstudio.resources import demo_dir

SR = 24000


def _speech(seconds: float = 6.0) -> np.ndarray:
    """A real recording with real pauses: the demo corpus's speech."""
    return read_audio(demo_dir() / "speech-06-listening.flac", SR, duration=seconds).astype(np.float32)


def _noisy_reconstruction(original: np.ndarray, level: float = 0.003) -> np.ndarray:
    """What a weak codec gives: the signal a little off, and a hiss that never stops."""
    hiss = level * np.random.default_rng(0).standard_normal(original.size)
    return (0.97 * original + hiss).astype(np.float32)


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))


def test_denoising_lowers_the_floor_in_silences_more_with_more_strength():
    original = _speech()
    noisy = _noisy_reconstruction(original)
    before = silence_floor(original, noisy, SR)
    assert before.reason == "" and before.silent_seconds > 0.5, before
    voiced = np.abs(original) > 0.02
    floors, kept = {}, {}
    for strength in (0.0, 0.5, 1.0):
        out = denoise(noisy, SR, strength)
        assert out.shape == noisy.shape and out.dtype == np.float32
        floors[strength] = silence_floor(original, out, SR).dbfs
        kept[strength] = _db(out[voiced]) - _db(noisy[voiced])
    assert floors[0.0] == pytest.approx(before.dbfs) and kept[0.0] == 0.0, "strength 0 leaves it"
    assert floors[0.5] < before.dbfs - 4.0, floors
    assert floors[1.0] < floors[0.5] - 10.0, floors
    for strength in (0.5, 1.0):  # a denoiser, not a volume knob: the pauses fall far more
        assert before.dbfs - floors[strength] > 2 * -kept[strength], (floors, kept)


def test_short_or_silent_audio_comes_back_unchanged_and_bad_strength_is_named():
    short = np.full(300, 0.1, np.float32)
    np.testing.assert_array_equal(denoise(short, SR, 1.0), short)
    np.testing.assert_array_equal(denoise(np.zeros(SR, np.float32), SR, 1.0), np.zeros(SR))
    for bad in (-0.1, 1.5, "loud", float("nan")):
        with pytest.raises(UserError, match="strength"):
            check_strength(bad)


def test_compare_with_denoise_adds_a_denoised_row_per_run(tmp_path):
    run, corpus = train_tiny_run(tmp_path, steps=4, checkpoint_every=4)
    out = tmp_path / "compare.json"
    result = run_cli("compare", str(run), "--data", str(corpus), "--denoise", "0.9", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[1].startswith("r:4 ") and rows[2].startswith("r:4 denoised 0.9"), result.stdout
    plain, denoised = json.loads(out.read_text())
    assert "variant" not in plain and denoised["variant"] == "denoised 0.9"
    assert denoised["run"] == plain["run"] and denoised["step"] == plain["step"] == 4
    assert denoised["si_sdr_db"] != plain["si_sdr_db"], "the denoised row measures other audio"
    assert denoised["codebook_entropy"] == plain["codebook_entropy"], "same codes"

    error = one_line_error(run_cli("compare", str(run), "--data", str(corpus), "--denoise", "2"))
    assert "--denoise must be from 0 to 1" in error
