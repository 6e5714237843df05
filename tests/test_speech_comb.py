"""The frame-rate comb under speech (audio/speech_comb.py) on a real speech file: lines at
k x 100 Hz laid over the voice (frames resynthesized with a phase that does not advance) read as
a positive excess, a comb filter's notches there as a
negative one, a faithful copy and broadband hiss as about 0; too little sound says so."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from helpers import REPO
from vqstudio.audio.distortion import SILENCE_DBFS, silent_frames
from vqstudio.audio.io import read_audio
from vqstudio.audio.speech_comb import SPEECH_COMB_DB, speech_comb

SR = 24000
HOP = 240  # 100 frames per second


@pytest.fixture(scope="module")
def speech():
    return read_audio(REPO / "resources" / "demo" / "speech-05-stairs.flac", SR)


def _sounding(wave: np.ndarray) -> np.ndarray:
    """1 where a 20 ms frame of ``wave`` is louder than the silence line, per sample."""
    frame, _, silent = silent_frames(wave, SR, SILENCE_DBFS, 20.0)
    gate = np.repeat(~silent, frame).astype(float)
    return np.pad(gate, (0, len(wave) - len(gate)))


def test_a_faithful_copy_adds_nothing(speech):
    comb = speech_comb(speech, speech, SR, HOP)
    assert comb.reason == "" and comb.excess_db == 0.0
    assert (comb.grid, comb.grid_hz) == ("frame rate", 100.0) and comb.sounding_seconds > 5.0
    assert abs(comb.reference_median_db) < 3.0  # speech's own harmonics glide off the grid


def test_frames_whose_phase_does_not_advance_lay_lines_over_the_voice(speech):
    """The original's own magnitudes resynthesized with zero phase (what an ISTFT head does that
    has not learned the phase's advance from frame to frame): every frame adds a pulse at its
    centre, a comb at k x 100 Hz over the voice; random phase is noise, not a comb."""
    for n_fft in (2 * HOP, 4 * HOP):
        _, _, spectrum = signal.stft(speech, SR, nperseg=n_fft, noverlap=n_fft - HOP)
        _, locked = signal.istft(np.abs(spectrum), SR, nperseg=n_fft, noverlap=n_fft - HOP)
        assert speech_comb(speech, locked[: len(speech)], SR, HOP).excess_db > 2 * SPEECH_COMB_DB
        phase = np.exp(2j * np.pi * np.random.default_rng(0).random(spectrum.shape))
        _, noisy = signal.istft(np.abs(spectrum) * phase, SR, nperseg=n_fft, noverlap=n_fft - HOP)
        assert abs(speech_comb(speech, noisy[: len(speech)], SR, HOP).excess_db) < 1.0
    # Clicks at the frame rate in the pauses only are the pause comb's, not under the speech.
    pulses = np.zeros(len(speech))
    pulses[::HOP] = 0.05
    quiet = speech + pulses * (1.0 - _sounding(speech))
    assert abs(speech_comb(speech, quiet, SR, HOP).excess_db) < 1.0


def test_lines_on_the_bins_are_seen_when_the_heads_n_fft_is_given(speech):
    """A head whose every bin plays a steady tone at its centre lays lines every sample_rate /
    n_fft (50 Hz at n_fft 480), between the frame rate's multiples too: on the frame-rate grid
    alone they read as little (its neighbours carry them as well), on the bins as a comb."""
    t = np.arange(len(speech)) / SR
    phases = np.random.default_rng(2).random(80) * 2 * np.pi
    tones = sum(np.cos(2 * np.pi * 50 * k * t + phases[k]) for k in range(1, 80))
    lined = speech + 0.01 * tones * _sounding(speech)
    frame_rate_only = speech_comb(speech, lined, SR, HOP)
    both = speech_comb(speech, lined, SR, HOP, 2 * HOP)
    assert frame_rate_only.grid == "frame rate" and frame_rate_only.excess_db < SPEECH_COMB_DB
    assert (both.grid, both.grid_hz) == ("bin spacing", 50.0) and both.excess_db > 2 * SPEECH_COMB_DB
    # The frame rate's own comb is still the frame rate's when both grids are measured.
    locked = speech_comb(speech, _zero_phase(speech, 2 * HOP), SR, HOP, 2 * HOP)
    assert locked.grid == "frame rate" and locked.excess_db > 2 * SPEECH_COMB_DB
    assert speech_comb(speech, speech, SR, HOP, 2 * HOP).excess_db == 0.0


def test_notches_at_the_frame_rate_are_a_negative_excess_and_hiss_is_none(speech):
    notched = speech.copy()
    notched[HOP:] -= speech[:-HOP]  # x[n] - x[n - hop]: zeros at every k x 100 Hz
    assert speech_comb(speech, notched, SR, HOP).excess_db < -2 * SPEECH_COMB_DB
    hiss = np.random.default_rng(0).standard_normal(len(speech)) * 10 ** (-40 / 20)
    assert abs(speech_comb(speech, speech + hiss, SR, HOP).excess_db) < 1.5


def test_too_little_sound_says_so():
    t = np.arange(SR) / SR
    wave = np.zeros(2 * SR)
    wave[:SR // 20] = 0.3 * np.sin(2 * np.pi * 220 * t[:SR // 20])  # 50 ms of tone, then silence
    comb = speech_comb(wave, wave, SR, HOP)
    assert math.isnan(comb.excess_db) and "sounds for 0.06 s" in comb.reason


def _zero_phase(wave: np.ndarray, n_fft: int) -> np.ndarray:
    _, _, spectrum = signal.stft(wave, SR, nperseg=n_fft, noverlap=n_fft - HOP)
    _, locked = signal.istft(np.abs(spectrum), SR, nperseg=n_fft, noverlap=n_fft - HOP)
    return locked[: len(wave)].astype(np.float32)


def _subject(speech, recon):
    from vqstudio.config import load_preset
    from vqstudio.diagnose.subject import Clip, Subject

    return Subject(load_preset("seed-fixed"), [Clip("speech-05", speech, recon)])


def test_the_diagnosis_names_a_buzz_over_the_voice_and_stays_quiet_on_a_clean_copy(speech):
    """diagnose/speech_buzz.py: the zero-phase resynthesis is "a buzz over the voice" (bad: the
    lines stand over 10 dB), its clip and loudest second to listen to; the original itself and a
    copy with faint hiss give no finding; the pause checks see nothing in either."""
    from vqstudio.diagnose import background
    from vqstudio.diagnose.speech_buzz import SPEECH_COMB_BAD_DB
    from vqstudio.diagnose.speech_buzz import speech_comb as check

    (finding,) = check(_subject(speech, _zero_phase(speech, 2 * HOP)))
    assert finding.id == "speech_comb" and finding.severity == "bad"
    assert finding.title.startswith("A buzz over the voice") and "k x 100 Hz" in finding.title
    assert finding.evidence["excess_db"] > SPEECH_COMB_BAD_DB
    assert finding.listen.clip == "speech-05" and finding.listen.stop - finding.listen.start == 1.0
    (weight,) = finding.remedies  # the advance prior only moves the lines onto the bins
    assert (weight.setting, weight.value, weight.live) == ("loss.weights.phase_advance", 1.0, True)
    tried = _subject(speech, _zero_phase(speech, 2 * HOP))
    tried.config = tried.config.with_overrides({"loss.weights.phase_advance": 1.0})
    assert check(tried)[0].remedies == ()  # on already: nothing left to propose
    hiss = np.random.default_rng(1).standard_normal(len(speech)).astype(np.float32) * 1e-3
    for recon in (speech, speech + hiss):
        assert check(_subject(speech, recon)) == []
    assert background.frame_rate_buzz(_subject(speech, _zero_phase(speech, 2 * HOP))) == []


def test_the_diagnosis_names_notches_on_the_grid(speech):
    from vqstudio.diagnose.speech_buzz import speech_comb as check

    notched = speech.copy()
    notched[HOP:] -= speech[:-HOP]
    (finding,) = check(_subject(speech, notched))
    assert finding.title.startswith("Notches at the frame rate") and finding.evidence["excess_db"] < -8
