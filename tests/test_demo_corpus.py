"""The built-in demo corpus as it lies in resources/demo: enough audio in little space, every file
24 kHz mono 16-bit FLAC, speech and music both present and listed in the README's manifest, quiet
stretches in the speech, no clipping; and the generator's refusal when its tools are missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqstudio.resources import demo_dir

DEMO_DIR = demo_dir()

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_demo_corpus.py"
FILES = sorted(DEMO_DIR.glob("*.flac"))
MANIFEST_ROW = re.compile(r"^\|\s*(\S+\.flac)\s*\|\s*(\w+)\s*\|\s*([\d.]+)\s*\|\s*(.*?)\s*\|$", re.M)


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    """Every demo file decoded to float64 samples, keyed by file name. Values are [T]."""
    return {path.name: sf.read(path, dtype="float64")[0] for path in FILES}


@pytest.fixture(scope="module")
def manifest() -> dict[str, tuple[str, float, str]]:
    """The README's manifest: file name -> (kind, seconds, description)."""
    text = (DEMO_DIR / "README.md").read_text(encoding="utf-8")
    return {name: (kind, float(seconds), what) for name, kind, seconds, what in MANIFEST_ROW.findall(text)}


def test_corpus_has_at_least_90_seconds_in_at_most_8_mib():
    assert len(FILES) >= 10, f"expected at least 10 demo files in {DEMO_DIR}, found {len(FILES)}"
    seconds = sum(sf.info(path).duration for path in FILES)
    size = sum(path.stat().st_size for path in FILES)
    assert seconds >= 90.0, f"demo corpus holds only {seconds:.1f} s"
    assert size <= 8 * 2**20, f"demo corpus takes {size} bytes"


def test_every_file_is_a_5_to_15_second_24khz_mono_16bit_flac():
    for path in FILES:
        info = sf.info(path)
        assert (info.format, info.subtype) == ("FLAC", "PCM_16"), path.name
        assert (info.samplerate, info.channels) == (24000, 1), path.name
        # Short files, so a validation split by file still leaves most of the audio to train on.
        assert 5.0 <= info.duration <= 15.0, f"{path.name}: {info.duration:.2f} s"


def test_manifest_lists_every_file_with_its_kind_and_length(manifest):
    assert set(manifest) == {path.name for path in FILES}
    for path in FILES:
        kind, seconds, what = manifest[path.name]
        assert kind in ("speech", "music") and path.name.startswith(f"{kind}-"), path.name
        assert seconds == pytest.approx(sf.info(path).duration, abs=0.01), path.name
        assert what, f"{path.name} has no description"
    kinds = [kind for kind, _, _ in manifest.values()]
    assert kinds.count("speech") >= 4 and kinds.count("music") >= 4


def test_speech_comes_from_at_least_four_voices(manifest):
    voices = {
        re.search(r"voice (\S+):", what).group(1) for kind, _, what in manifest.values() if kind == "speech"
    }
    assert len(voices) >= 4, voices


def test_speech_has_near_silent_stretches(decoded):
    window = 1200  # 50 ms at 24 kHz
    for name, audio in decoded.items():
        if not name.startswith("speech-"):
            continue
        frames = audio[: len(audio) // window * window].reshape(-1, window)
        rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
        # Pauses between sentences: where a codec's background noise has nothing to hide behind.
        assert np.count_nonzero(rms_db < -50.0) >= 6, f"{name} has too few quiet 50 ms windows"
        assert np.count_nonzero(rms_db > -30.0) >= len(frames) // 2, f"{name} is mostly quiet"


def test_no_file_clips_or_holds_nan(decoded):
    assert decoded, f"no demo files in {DEMO_DIR}"
    for name, audio in decoded.items():
        assert np.isfinite(audio).all(), name
        peak = np.abs(audio).max()
        assert 0.5 < peak < 1.0, f"{name}: peak {peak:.4f}"


def test_generator_refuses_in_one_line_when_its_tools_are_missing(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={"PATH": str(empty_bin)}, timeout=60,
    )
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert "espeak-ng" in message and "fluidsynth" in message and "apt-get install" in message
    assert not (tmp_path / "out").exists()
