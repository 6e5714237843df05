"""The corpus on real folders: scanning and the skip report, the train/validation split rules, and
the segment sampler's determinism, weighting, caching and padding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.errors import ConfigError, NoAudioError

RATE = 16000


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, wave, rate=RATE, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, **kwargs)
    return path


def constant_files(folder, levels_and_seconds):
    """One float WAV per (level, seconds): every sample of file k equals its level, so a segment
    tells which file it came from."""
    for k, (level, seconds) in enumerate(levels_and_seconds):
        write(folder / f"c{k}.wav", np.full(int(seconds * RATE), level, np.float32), subtype="FLOAT")
    return scan_corpus(folder, RATE)


@pytest.fixture
def mixed_folder(tmp_path):
    """Good files in several formats and depths, bad files, and things that are not audio."""
    root = tmp_path / "corpus"
    write(root / "a.wav", tone(0.5))
    write(root / "sub" / "b.flac", tone(0.5, 660))
    write(root / "sub" / "deeper" / "c.ogg", tone(0.5, 880), format="OGG", subtype="VORBIS")
    write(root / "LOUD.WAV", tone(0.3))
    write(root / "short.aiff", tone(0.1))
    (root / "notes.wav").write_text("not audio at all\n" * 10)
    nan = tone(0.2)
    nan[5] = np.nan
    write(root / "sub" / "nan.wav", nan, subtype="FLOAT")
    cut = write(root / "cut.flac", np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (root / "readme.txt").write_text("ignored: not an audio extension")
    write(root / ".hidden.wav", tone(0.2))  # editor or OS litter is ignored
    return root


# -- scanning -------------------------------------------------------------------------------------


def test_scan_keeps_good_files_and_reports_the_bad(mixed_folder):
    seen = []
    corpus = scan_corpus(mixed_folder, 24000, progress=lambda done, total: seen.append((done, total)))
    names = [p.split("corpus/")[1] for p in (info.path for info in corpus.files)]
    assert names == ["LOUD.WAV", "a.wav", "short.aiff", "sub/b.flac", "sub/deeper/c.ogg"]
    skipped = {p.split("corpus/")[1]: reason for p, reason in corpus.skipped}
    assert set(skipped) == {"cut.flac", "notes.wav", "sub/nan.wav"}
    assert "not an audio file" in skipped["notes.wav"]
    assert "NaN" in skipped["sub/nan.wav"]
    assert "truncated" in skipped["cut.flac"]
    assert seen[-1] == (8, 8)
    assert corpus.duration == pytest.approx(0.5 * 3 + 0.3 + 0.1)

    report = corpus.report(segment_seconds=0.25)
    assert "5 audio files" in report and "0:00:02" not in report and "1.9 s" in report
    assert "Skipped 3 files" in report
    for name, reason in skipped.items():
        assert f"{name}: {reason}" in report
    assert "below 24000 Hz and will be upsampled" in report  # all are 16 kHz
    assert "short.aiff (0.10 s)" in report and "padded with silence" in report


def test_single_file_path_is_a_corpus(tmp_path):
    path = write(tmp_path / "one.wav", tone(0.4))
    corpus = scan_corpus(path, RATE)
    assert [info.path for info in corpus.files] == [str(path)]


def test_missing_folder(tmp_path):
    with pytest.raises(NoAudioError, match="does not exist") as caught:
        scan_corpus(tmp_path / "nope", RATE)
    assert str(tmp_path / "nope") in str(caught.value) and caught.value.fix


def test_folder_without_audio(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(NoAudioError, match="no audio files") as caught:
        scan_corpus(tmp_path, RATE)
    assert str(tmp_path) in str(caught.value) and ".flac" in str(caught.value)
    assert "choose another folder" in caught.value.fix


def test_folder_of_only_bad_files(tmp_path):
    (tmp_path / "a.wav").write_text("text")
    write(tmp_path / "z.wav", np.zeros(0, np.float32))
    with pytest.raises(NoAudioError) as caught:
        scan_corpus(tmp_path, RATE)
    message = str(caught.value)
    assert "none of the 2 audio files" in message and str(tmp_path) in message
    assert "a.wav: is not an audio file" in message and "z.wav: holds no audio frames" in message
    assert len(caught.value.skipped) == 2


# -- splitting ------------------------------------------------------------------------------------


def test_split_by_file_is_deterministic_and_disjoint(tmp_path):
    corpus = constant_files(tmp_path, [(k / 10, 0.05) for k in range(10)])
    train, val = corpus.split(0.2, seed=3)
    train_paths = {i.path for i in train.files}
    val_paths = {i.path for i in val.files}
    assert len(val_paths) == 2 and len(train_paths) == 8
    assert not train_paths & val_paths
    assert train_paths | val_paths == {i.path for i in corpus.files}
    again_train, again_val = corpus.split(0.2, seed=3)
    assert [i.path for i in again_val.files] == [i.path for i in val.files]
    held = {tuple(i.path for i in corpus.split(0.2, seed=s)[1].files) for s in range(8)}
    assert len(held) > 1  # the seed picks which files are held back
    assert (train.role, val.role) == ("training", "validation")


@pytest.mark.parametrize("n_files, fraction", [(2, 0.1), (2, 0.9), (3, 0.01), (3, 0.99)])
def test_split_of_few_files_keeps_both_sides(tmp_path, n_files, fraction):
    corpus = constant_files(tmp_path, [(0.1 * (k + 1), 0.05) for k in range(n_files)])
    train, val = corpus.split(fraction, seed=0)
    assert len(train.files) >= 1 and len(val.files) >= 1
    assert len(train.files) + len(val.files) == n_files


def test_one_file_is_split_by_time(tmp_path):
    """A ramp from 0 to 1: a sample's value is its position, so the split is visible."""
    frames = 2 * RATE
    write(tmp_path / "ramp.wav", (np.arange(frames) / frames).astype(np.float32), subtype="FLOAT")
    corpus = scan_corpus(tmp_path, RATE)
    train, val = corpus.split(0.1, seed=0)
    assert train.spans == [(0, int(frames * 0.9))] and val.spans == [(int(frames * 0.9), frames)]
    assert val.duration == pytest.approx(0.2) and train.duration == pytest.approx(1.8)
    assert "from 1.80 s to 2.00 s only" in val.report()

    segment = 800
    train_batch = SegmentSampler(train, RATE, segment, seed=1).batch(0, 64)
    val_batch = SegmentSampler(val, RATE, segment, seed=1).batch(0, 64)
    assert train_batch.max() < 0.9 <= val_batch.min()
    assert SegmentSampler(val, RATE, segment, seed=1).fixed_segments(4).min() >= 0.9


def test_one_file_time_split_does_not_overlap_after_resampling(tmp_path):
    frames = RATE
    write(tmp_path / "ramp.wav", (np.arange(frames) / frames).astype(np.float32), subtype="FLOAT")
    train, val = scan_corpus(tmp_path, 24000).split(0.1, seed=0)
    train_s = SegmentSampler(train, 24000, 100, seed=0)
    val_s = SegmentSampler(val, 24000, 100, seed=0)
    (_, train_stop), (val_first, _) = train_s.spans[0], val_s.spans[0]
    assert train_stop <= val_first


def test_split_refuses_a_fraction_outside_zero_and_one(tmp_path):
    corpus = constant_files(tmp_path, [(0.1, 0.05), (0.2, 0.05)])
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ConfigError, match="val_fraction"):
            corpus.split(bad, seed=0)


# -- sampling -------------------------------------------------------------------------------------


@pytest.fixture
def tone_corpus(tmp_path):
    """Three 44.1 kHz files of different lengths, sampled at 24 kHz."""
    rng = np.random.default_rng(0)
    for k, seconds in enumerate([0.5, 1.0, 1.5]):
        noise = 0.1 * rng.standard_normal(int(seconds * 44100))
        stereo = np.stack([tone(seconds, 300 * (k + 1), 44100), noise.astype(np.float32)], 1)
        write(tmp_path / f"t{k}.flac", stereo, 44100, subtype="PCM_24")
    return scan_corpus(tmp_path, 24000)


def test_batches_have_the_agreed_shape(tone_corpus):
    batch = SegmentSampler(tone_corpus, 24000, 4800, seed=0).batch(0, 6)
    assert batch.shape == (6, 1, 4800) and batch.dtype == torch.float32
    assert torch.isfinite(batch).all() and batch.abs().max() > 0.1


def test_batches_are_a_function_of_seed_step_and_rank(tone_corpus):
    first = SegmentSampler(tone_corpus, 24000, 2400, seed=7)
    run = [first.batch(step, 4) for step in range(6)]
    resumed = SegmentSampler(tone_corpus, 24000, 2400, seed=7)  # a fresh process resuming at 3
    for step in range(3, 6):
        assert torch.equal(resumed.batch(step, 4), run[step])
    assert not torch.equal(run[0], run[1])
    assert not torch.equal(first.batch(2, 4, rank=1, world=2), run[2])
    other_seed = SegmentSampler(tone_corpus, 24000, 2400, seed=8)
    assert not torch.equal(other_seed.batch(0, 4), run[0])
    with pytest.raises(ValueError, match="rank 2"):
        first.batch(0, 4, rank=2, world=2)


def test_reading_by_range_gives_the_cached_samples(tone_corpus):
    cached = SegmentSampler(tone_corpus, 24000, 2400, seed=5)
    uncached = SegmentSampler(tone_corpus, 24000, 2400, seed=5, cache_bytes=0)
    for step in range(3):
        torch.testing.assert_close(uncached.batch(step, 8), cached.batch(step, 8), atol=1e-6, rtol=0)
    assert uncached.cached_bytes == 0
    assert cached.cached_bytes == 4 * 24000 * 3  # 3 s of audio at 24 kHz, float32


def test_cache_stays_within_its_budget(tone_corpus):
    budget = 4 * 24000 * 2  # room for 2 s: the 0.5 s and 1.0 s files, not the 1.5 s one
    sampler = SegmentSampler(tone_corpus, 24000, 2400, seed=0, cache_bytes=budget)
    for step in range(10):
        sampler.batch(step, 8)
    assert 0 < sampler.cached_bytes <= budget


def test_files_are_picked_in_proportion_to_duration(tmp_path):
    corpus = constant_files(tmp_path, [(0.25, 1.0), (0.75, 3.0)])
    sampler = SegmentSampler(corpus, RATE, 50, seed=0)
    levels = torch.cat([sampler.batch(step, 250)[:, 0, 0] for step in range(8)])
    share_long = (levels == 0.75).float().mean().item()
    assert share_long == pytest.approx(0.75, abs=0.04)  # 2000 draws: std ~0.01


def test_short_files_are_padded_with_silence(tmp_path):
    corpus = constant_files(tmp_path, [(0.5, 0.01)])  # 160 samples
    sampler = SegmentSampler(corpus, RATE, 400, seed=0)
    batch = sampler.batch(0, 3)
    assert torch.all(batch[:, 0, :160] == 0.5) and torch.all(batch[:, 0, 160:] == 0)
    assert "c0.wav (0.01 s)" in corpus.report(segment_seconds=400 / RATE)


def test_fixed_segments_are_fixed_and_spread(tmp_path):
    corpus = constant_files(tmp_path, [(0.2, 1.0), (0.4, 1.0), (0.6, 1.0), (0.8, 1.0)])
    one = SegmentSampler(corpus, RATE, 800, seed=0).fixed_segments(8)
    other = SegmentSampler(corpus, RATE, 800, seed=99).fixed_segments(8)
    assert one.shape == (8, 1, 800) and torch.equal(one, other)
    levels = sorted(set(one[:, 0, 0].tolist()))
    assert levels == pytest.approx([0.2, 0.4, 0.6, 0.8])  # every file is represented


@pytest.mark.parametrize("channels", [2, 6, 8])
def test_fast_mixdown_is_numpys_mean_and_resampling_scipys(tmp_path, channels):
    """The segment reader's shortcuts: the column-wise mix-down is bit for bit numpy's mean; the
    tiled resampler is scipy's resample_poly of the whole file within float32 rounding, and a
    range of it is bit for bit the whole file's (tests/test_resampler.py)."""
    from scipy.signal import resample_poly

    from vqstudio.audio.io import read_samples, resample

    wave = np.random.default_rng(channels).standard_normal((44100, channels)).astype(np.float32)
    path = write(tmp_path / "multi.wav", wave * 0.1, 44100, subtype="FLOAT")
    mono = sf.read(path, dtype="float32")[0].mean(axis=1, dtype=np.float32)
    assert np.array_equal(read_samples(path), mono)
    whole = read_samples(path, 24000)
    assert np.array_equal(whole, resample(mono, 44100, 24000))
    assert np.abs(whole - resample_poly(mono, 80, 147)).max() < 5e-7
    assert np.array_equal(read_samples(path, 24000, 5000, 3000), whole[5000:8000])
