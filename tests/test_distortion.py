"""The distortion measures fire on a constructed case and stay quiet on a clean one: a hiss carpet
in the pauses (per band), a buzz at the frame rate, and DNSMOS's background score, on a real
speech file of the demo corpus."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO
from vqstudio.audio import distortion
from vqstudio.audio.io import read_audio
from vqstudio.errors import UserError

SR = 24000
HOP = 240  # frame rate 100 Hz, as tiny-cpu and seed-baseline


@pytest.fixture(scope="module")
def speech():
    return read_audio(REPO / "resources" / "demo" / "speech-01-harbour.flac", SR)


def _hiss(n: int, dbfs: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * 10 ** (dbfs / 20)


def _buzz(n: int, amplitude: float = 0.1) -> np.ndarray:
    pulses = np.zeros(n)
    pulses[::HOP] = amplitude  # one click per frame: a comb at k * 100 Hz
    return pulses


def test_silence_floor_reads_the_hiss_level_overall_and_per_band(speech):
    noisy = speech + _hiss(len(speech), -60.0)
    floor = distortion.silence_floor(speech, noisy, SR)
    assert floor.silent_seconds > 1.0 and floor.reason == ""
    assert floor.dbfs == pytest.approx(-60.0, abs=0.5)
    assert floor.reference_dbfs == -math.inf  # espeak's pauses are digital silence
    assert floor.above_reference_db == math.inf
    # White noise: each band's share follows its width (<1k is 1/12 of 0..12 kHz).
    assert floor.bands_dbfs["<1k"] == pytest.approx(-60.0 + 10 * math.log10(1 / 12), abs=1.0)
    assert floor.bands_dbfs[">8k"] == pytest.approx(-60.0 + 10 * math.log10(4 / 12), abs=1.0)
    total = sum(10 ** (v / 10) for v in floor.bands_dbfs.values())
    assert 10 * math.log10(total) == pytest.approx(floor.dbfs, abs=0.05)
    # Quiet on a clean one: the original itself has nothing in its pauses.
    assert distortion.silence_floor(speech, speech, SR).dbfs == -math.inf


def test_silence_floor_keeps_word_edges_apart_and_says_when_there_is_no_silence(speech):
    # A decaying tail right after every word is counted at the edge, not in the floor.
    frame = SR // 50
    _, frames, silent = distortion.silent_frames(speech, SR, distortion.SILENCE_DBFS, 20.0)
    tails = np.zeros(len(speech))
    for i in np.flatnonzero(silent[1:] & ~silent[:-1]) + 1:
        tails[i * frame : (i + 1) * frame] = _hiss(frame, -40.0, seed=int(i))
    floor = distortion.silence_floor(speech, speech + tails, SR)
    assert floor.dbfs == -math.inf and floor.edge_dbfs > -50.0
    assert distortion.silence_floor(speech, speech + tails, SR, guard_frames=0).dbfs > -55.0
    loud = _hiss(SR, -20.0)
    result = distortion.silence_floor(loud, loud, SR)
    assert math.isnan(result.dbfs) and "no frame quieter than -50 dBFS" in result.reason


def test_silence_floor_tells_smeared_word_tails_from_a_carpet(speech):
    # Tails 40-80 ms after each word (past the guard, within NEAR_SOUND_MS): all of the floor is
    # near sound and the pauses' depths stay silent; a carpet is as loud far from sound as near.
    frame = SR // 50
    _, frames, silent = distortion.silent_frames(speech, SR, distortion.SILENCE_DBFS, 20.0)
    tails = np.zeros(len(speech))
    for i in np.flatnonzero(silent[1:] & ~silent[:-1]) + 1:
        part = tails[(i + 1) * frame : (i + 4) * frame]
        part[:] = _hiss(part.size, -50.0, seed=int(i))
    tails[: frames * frame] *= np.repeat(silent, frame)  # only inside the pauses
    smear = distortion.silence_floor(speech, speech + tails, SR)
    assert smear.near_share > 0.999 and smear.far_dbfs == -math.inf
    assert -62.0 < smear.near_dbfs < -50.0 and smear.dbfs > -65.0
    carpet = distortion.silence_floor(speech, speech + _hiss(len(speech), -60.0), SR)
    assert carpet.near_dbfs == pytest.approx(-60.0, abs=1.0)
    assert carpet.far_dbfs == pytest.approx(-60.0, abs=1.0)
    assert 0.05 < carpet.near_share < 0.95  # the share of the pauses that lies near sound
    assert math.isnan(distortion.silence_floor(speech, speech, SR).near_share)


def test_frame_rate_comb_fires_on_a_buzz_and_stays_quiet_on_hiss(speech):
    hiss = _hiss(len(speech), -60.0)
    buzzing = distortion.frame_rate_comb(speech, speech + hiss + _buzz(len(speech)), SR, HOP)
    assert buzzing.frame_rate == 100.0 and buzzing.harmonics == 40  # up to 4 kHz
    assert buzzing.median_db > 15.0 and buzzing.above_threshold > 30
    assert buzzing.loudest_dbfs > -70.0 and buzzing.audible_max_db > 15.0
    clean = distortion.frame_rate_comb(speech, speech + hiss, SR, HOP)
    assert abs(clean.median_db) < 1.5 and clean.max_db < 3.0 and clean.above_threshold == 0
    # A comb at another rate is not this model's frame rate.
    other = distortion.frame_rate_comb(speech, speech + hiss + _buzz(len(speech)), SR, 320)
    assert other.median_db < 6.0


def test_an_inaudible_comb_is_reported_but_not_counted(speech):
    faint = speech + _hiss(len(speech), -130.0) + _buzz(len(speech), amplitude=1e-4)
    comb = distortion.frame_rate_comb(speech, faint, SR, HOP)
    assert comb.median_db > 10.0  # the peaks stand out ...
    assert comb.loudest_dbfs < distortion.INAUDIBLE_DBFS  # ... far below anything audible
    assert comb.above_threshold == 0 and comb.audible_max_db == -math.inf


def test_the_worst_clips_audible_comb_sums_up_a_corpus(speech):
    """One buzzing clip among clean ones is the corpus's comb (a mean would halve it), a comb at
    -100 dBFS is none (0 dB, not the raw ratio), and a clip without quiet passages counts for
    nothing."""
    buzzing = speech + _hiss(len(speech), -60.0) + _buzz(len(speech))
    faint = speech + _hiss(len(speech), -130.0) + _buzz(len(speech), amplitude=1e-4)
    loud = _hiss(2 * SR, -20.0)
    figures = {name: distortion.distortion_figures(ref, est, SR, HOP) for name, (ref, est) in
               {"buzzing": (speech, buzzing), "faint": (speech, faint), "loud": (loud, loud)}.items()}
    assert figures["faint"]["comb_max_db"] > 10.0  # the raw figure calls it a comb
    assert figures["buzzing"]["comb_audible_db"] > 15.0
    worst = distortion.worst_audible_comb(list(figures.values()))
    assert worst == figures["buzzing"]["comb_audible_db"]
    assert distortion.worst_audible_comb([figures["faint"], figures["loud"]]) == 0.0
    assert math.isnan(distortion.worst_audible_comb([figures["loud"]]))
    assert math.isnan(distortion.worst_audible_comb([]))


def test_frame_rate_comb_needs_quiet_passages():
    loud = _hiss(2 * SR, -20.0)
    comb = distortion.frame_rate_comb(loud, loud, SR, HOP)
    assert math.isnan(comb.median_db) and "below -50 dBFS" in comb.reason


def test_dnsmos_background_drops_with_hiss_and_stays_high_on_clean_speech(speech):
    assert distortion.dnsmos_available()
    clean = distortion.dnsmos(speech, SR)
    hissy = distortion.dnsmos(speech + _hiss(len(speech), -40.0), SR)
    assert clean.background > 3.7  # espeak's pauses are silent
    assert hissy.background < clean.background - 0.8
    for score in (clean.signal, clean.overall, clean.p808, hissy.background):
        assert 1.0 <= score <= 5.0


def test_dnsmos_without_speechmos_says_what_to_install(tmp_path):
    # A real interpreter in which the package cannot be imported (as on an install without it).
    code = (
        "import sys; sys.modules['speechmos'] = None\n"
        "import numpy as np\n"
        "from vqstudio.audio import distortion\n"
        "print(distortion.dnsmos_available())\n"
        "try:\n"
        "    distortion.dnsmos(np.zeros(24000), 24000)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "False"
    assert lines[1].startswith("UserError") and "speechmos" in lines[1] and "pip install" in lines[1]


def test_dnsmos_refuses_a_clip_too_short_to_score():
    with pytest.raises(UserError, match="at least 0.1 s"):
        distortion.dnsmos(np.zeros(100), SR)
