"""Audio in and out on real files: every readable format, mixing down, resampling, range reads,
atomic writes, and every kind of bad file ending in a readable AudioFileError."""

from __future__ import annotations

import os
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from vqstudio.audio.io import (
    audio_info,
    check_audio,
    read_audio,
    read_samples,
    resample,
    write_audio,
)
from vqstudio.errors import AudioFileError, UserError

RATE = 44100
MP3_OK = "MP3" in sf.available_formats()
needs_mp3 = pytest.mark.skipif(not MP3_OK, reason="this libsndfile has no MP3 support")


def sine(freq: float, seconds: float, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * rate / len(wave))


def stereo_file(tmp_path, name, fmt, subtype, seconds=1.0):
    """Left a 440 Hz sine, right the same at half level: the mono mix is 0.75 of the left."""
    left = sine(440, seconds)
    path = tmp_path / name
    sf.write(path, np.stack([left, 0.5 * left], axis=1), RATE, format=fmt, subtype=subtype)
    return path, 0.75 * left


# -- reading every format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, subtype, tolerance",
    [
        ("a.wav", "WAV", "FLOAT", 1e-7),
        ("a.flac", "FLAC", "PCM_24", 1e-6),
        ("a.aiff", "AIFF", "PCM_16", 1e-4),
        ("a.ogg", "OGG", "VORBIS", None),
        pytest.param("a.mp3", "MP3", "MPEG_LAYER_III", None, marks=needs_mp3),
    ],
)
def test_reads_each_format_as_mono_float32(tmp_path, name, fmt, subtype, tolerance):
    path, mono = stereo_file(tmp_path, name, fmt, subtype)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames, info.format) == (RATE, 2, RATE, fmt)
    assert info.duration == pytest.approx(1.0)
    wave = read_audio(path)
    assert wave.dtype == np.float32 and wave.shape == (RATE,)
    if tolerance is not None:  # lossless: the mix is exact
        np.testing.assert_allclose(wave, mono, atol=tolerance)
    else:  # lossy: same tone, same level
        assert dominant_frequency(wave, RATE) == pytest.approx(440, abs=2)
        rms = np.sqrt(np.mean(wave[4000:-4000] ** 2))
        assert rms == pytest.approx(0.75 * 0.5 / np.sqrt(2), rel=0.05)


def test_opposite_channels_mix_to_silence(tmp_path):
    left = sine(300, 0.2)
    path = tmp_path / "phase.wav"
    sf.write(path, np.stack([left, -left], axis=1), RATE, subtype="FLOAT")
    assert np.abs(read_audio(path)).max() == 0.0


# -- resampling -----------------------------------------------------------------------------------


def test_resample_keeps_frequency_amplitude_and_length():
    wave = sine(1000, 1.0, rate=44100, amp=0.5)
    out = resample(wave, 44100, 24000)
    assert out.dtype == np.float32 and out.shape == (24000,)
    assert dominant_frequency(out, 24000) == pytest.approx(1000, abs=1)
    middle = out[2000:-2000]
    assert np.sqrt(2 * np.mean(middle**2)) == pytest.approx(0.5, rel=0.005)
    reference = sine(1000, 1.0, rate=24000, amp=0.5)[2000:-2000]
    np.testing.assert_allclose(middle, reference, atol=2e-3)


def test_resample_removes_content_above_the_new_nyquist():
    """A 15 kHz tone cannot exist at 24 kHz; a proper low-pass removes it instead of folding it
    back to 9 kHz."""
    out = resample(sine(15000, 0.5, amp=0.5), 44100, 24000)
    assert np.abs(out[1000:-1000]).max() < 0.005  # below -40 dB


def test_resample_multichannel_and_identity():
    wave = np.stack([sine(500, 0.1), sine(700, 0.1)])
    out = resample(wave, 44100, 16000)
    assert out.shape == (2, 1600) and out.dtype == np.float32
    same = resample(wave, 44100, 44100)
    np.testing.assert_array_equal(same, wave)


def test_read_at_model_rate(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, sine(1000, 0.5), RATE, subtype="PCM_24")
    wave = read_audio(path, 24000)
    assert wave.shape == (12000,) and wave.dtype == np.float32
    assert dominant_frequency(wave, 24000) == pytest.approx(1000, abs=2)


# -- range reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, subtype",
    [("r.wav", "PCM_16"), ("r.flac", "PCM_16"), pytest.param("r.mp3", None, marks=needs_mp3)],
)
def test_range_reads_match_the_whole_file(tmp_path, name, subtype):
    rng = np.random.default_rng(0)
    noise = (0.2 * rng.standard_normal(3 * RATE)).astype(np.float32)
    path = tmp_path / name
    sf.write(path, np.stack([sine(440, 3.0), noise], axis=1), RATE, subtype=subtype)
    native = read_audio(path)
    np.testing.assert_array_equal(read_audio(path, start=1.0, duration=0.5), native[RATE : RATE + RATE // 2])
    whole = read_audio(path, 24000)
    assert len(whole) == 72000
    for first, count in [(0, 1000), (7, 333), (30011, 24000), (71000, 5000)]:
        part = read_samples(path, 24000, first, count)
        expected = whole[first : first + count]
        assert len(part) == len(expected)
        np.testing.assert_array_equal(part, expected)  # bit for bit (tests/test_resampler.py)


def test_range_read_past_the_end_is_refused(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, sine(440, 0.1), RATE)
    with pytest.raises(AudioFileError, match="no audio at 5.000 s"):
        read_audio(path, start=5.0)


def test_long_file_is_read_in_float32_blocks(tmp_path):
    """20 s of stereo: the float64 whole file would be 15 MB, the float32 stereo 7.7 MB; reading
    to mono in blocks needs little more than the 3.8 MB result."""
    rate = 48000
    frames = 20 * rate
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as fh:
        block = np.stack([sine(440, 1.0, rate), sine(660, 1.0, rate)], axis=1)
        for _ in range(20):
            fh.write(block)
    tracemalloc.start()
    try:
        wave = read_audio(path)
        _, whole_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        part = read_audio(path, start=10.0, duration=1.0)
        _, part_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wave.shape == (frames,) and wave.dtype == np.float32
    assert whole_peak < wave.nbytes + 2_000_000
    assert part.shape == (rate,)
    assert part_peak < wave.nbytes + part.nbytes + 2_000_000  # wave is still held here


# -- writing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, atol", [(".wav", 0.0), (".flac", 2e-7)])
def test_write_round_trip_leaves_no_temporary_file(tmp_path, suffix, atol):
    mono = sine(440, 0.25, 24000)
    path = tmp_path / f"out{suffix}"
    write_audio(path, mono, 24000)
    np.testing.assert_allclose(read_audio(path), mono, atol=atol)
    stereo = np.stack([mono, -mono])  # [C, T]
    write_audio(path, stereo, 24000)  # overwrites
    info = audio_info(path)
    assert (info.channels, info.frames, info.sample_rate) == (2, len(mono), 24000)
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_write_makes_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "clip.flac"
    write_audio(path, sine(440, 0.05, 24000), 24000)
    assert audio_info(path).frames == 1200


def test_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "keep.flac"
    write_audio(path, sine(440, 0.1, 24000), 24000)
    before = path.read_bytes()
    # FLAC cannot store 700 kHz: libsndfile fails after the temporary file was created
    with pytest.raises(AudioFileError, match="could not be written") as caught:
        write_audio(path, sine(440, 0.1, 24000), 700_000)
    assert caught.value.fix
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.flac"]


def test_write_onto_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "taken.wav").mkdir()
    with pytest.raises(AudioFileError, match="taken.wav"):
        write_audio(tmp_path / "taken.wav", sine(440, 0.1, 24000), 24000)
    assert os.listdir(tmp_path) == ["taken.wav"]
    assert (tmp_path / "taken.wav").is_dir()


def test_write_refuses_bad_audio_and_unknown_suffix(tmp_path):
    bad = sine(440, 0.1, 24000)
    bad[10] = np.nan
    with pytest.raises(AudioFileError, match="NaN"):
        write_audio(tmp_path / "nan.wav", bad, 24000)
    with pytest.raises(AudioFileError, match=r"\.mp4.*use \.wav or \.flac"):
        write_audio(tmp_path / "x.mp4", sine(440, 0.1, 24000), 24000)
    assert os.listdir(tmp_path) == []


# -- bad files ------------------------------------------------------------------------------------


def patched_rate_wav(tmp_path, rate: int):
    path = tmp_path / f"rate{rate}.wav"
    sf.write(path, sine(440, 0.1), RATE, subtype="PCM_16")
    header = bytearray(path.read_bytes())
    header[24:28] = struct.pack("<I", rate)  # fmt chunk: sample rate
    header[28:32] = struct.pack("<I", rate * 2)  # byte rate
    path.write_bytes(bytes(header))
    return path


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_bad(tmp_path, kind: str):
    if kind == "missing":
        return tmp_path / "gone.wav"
    if kind == "dangling link":
        (tmp_path / "link.wav").symlink_to(tmp_path / "nowhere.wav")
        return tmp_path / "link.wav"
    if kind == "folder":
        (tmp_path / "x.wav").mkdir()
        return tmp_path / "x.wav"
    if kind == "pipe":
        os.mkfifo(tmp_path / "pipe.wav")
        return tmp_path / "pipe.wav"
    if kind == "text":
        path = tmp_path / "notes.wav"
        path.write_text("these are my notes, not audio\n" * 20)
        return path
    if kind == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
        return path
    if kind == "zero frames":
        path = tmp_path / "zero.wav"
        sf.write(path, np.zeros(0, np.float32), RATE)
        return path
    if kind in ("nan", "inf"):
        wave = sine(440, 2.0)
        wave[70000] = np.nan if kind == "nan" else np.inf  # in the second block
        path = tmp_path / f"{kind}.wav"
        sf.write(path, wave, RATE, subtype="FLOAT")
        return path
    if kind == "rate 1 Hz":
        return patched_rate_wav(tmp_path, 1)
    if kind == "rate 2 MHz":
        return patched_rate_wav(tmp_path, 2_000_000)
    if kind == "truncated wav":
        path = tmp_path / "cut.wav"
        sf.write(path, sine(440, 1.0), RATE, subtype="PCM_16")
        return cut_in_half(path)
    if kind == "truncated aiff":
        path = tmp_path / "cut.aiff"
        sf.write(path, sine(440, 1.0), RATE, subtype="PCM_16")
        return cut_in_half(path)
    if kind == "truncated flac":
        path = tmp_path / "cut.flac"
        rng = np.random.default_rng(1)
        sf.write(path, (0.3 * rng.standard_normal(2 * RATE)).astype(np.float32), RATE)
        return cut_in_half(path)
    if kind == "truncated ogg":
        path = tmp_path / "cut.ogg"
        sf.write(path, sine(440, 1.0), RATE, format="OGG", subtype="VORBIS")
        return cut_in_half(path)
    raise AssertionError(kind)


BAD_FILES = {
    "missing": "does not exist",
    "dangling link": "is a link that leads nowhere",
    "folder": "is a folder",
    "pipe": "not a regular file",
    "text": "not an audio file",
    "empty": "is empty",
    "zero frames": "no audio frames",
    "nan": "NaN or infinite samples",
    "inf": "NaN or infinite samples",
    "rate 1 Hz": "sample rate of 1 Hz",
    "rate 2 MHz": "sample rate of 2000000 Hz",
    "truncated wav": "is truncated",
    "truncated aiff": "is truncated",
    "truncated flac": "truncated or corrupt",
    "truncated ogg": "cut off",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_raises_a_readable_error(tmp_path, kind):
    path = make_bad(tmp_path, kind)
    with pytest.raises(AudioFileError) as caught:
        check_audio(path)
    error = caught.value
    assert isinstance(error, UserError)
    assert error.path == str(path) and str(path) in str(error)
    assert BAD_FILES[kind] in error.reason
    assert error.fix  # every message says what to do
    # reading the file gives the same refusal, not a traceback from deeper down
    with pytest.raises(AudioFileError, match=BAD_FILES[kind]):
        read_audio(path, 24000)


def test_nan_position_is_reported(tmp_path):
    with pytest.raises(AudioFileError, match=r"first at 1\.587 s"):
        check_audio(make_bad(tmp_path, "nan"))


def test_header_checks_pass_for_a_nan_file_but_decoding_does_not(tmp_path):
    """audio_info only reads the header; the scan uses check_audio, which decodes everything."""
    path = make_bad(tmp_path, "nan")
    assert audio_info(path).frames == 2 * RATE
    with pytest.raises(AudioFileError):
        check_audio(path)
