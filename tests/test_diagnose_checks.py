"""Each diagnosis check fires on a constructed case and stays quiet on a clean one.

The clips are built here: a speech-like original (harmonic bursts between pauses with a faint
floor, like a quiet room) and a reconstruction made from it with one known fault: white noise in
the pauses, a 100 Hz comb (the frame rate of hop 240 at 24 kHz), a delay and inversion, a DC
offset, clipping, a 6 dB level drop. The clean cases are the original itself and a near-perfect
reconstruction (the original plus noise 40 dB under its own floor). Checks that need a model get
a real tiny :class:`~vqstudio.model.Codec`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import TINY
from vqstudio.audio import distortion
from vqstudio.config import load_preset
from vqstudio.diagnose import alignment, background, codebooks, gradients, istft, levels, long_context, mels
from vqstudio.diagnose.runner import diagnose
from vqstudio.diagnose.subject import Clip, NotMeasured, Subject, quiet_region
from vqstudio.experiments.fork import change_kind
from vqstudio.model import Codec

SR = 24000
ROOM_DBFS = -90.0  # the original's own floor in its pauses


def speech_like(seconds: float = 4.0, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Voiced bursts (150 Hz and harmonics to 4 kHz, a syllable envelope) 0.5 s on, 0.4 s off."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 27))
    envelope = np.sin(2 * np.pi * t / 0.9).clip(0, None) ** 0.5 * ((t % 0.9) < 0.5)
    wave = amplitude * voice / np.max(np.abs(voice)) * envelope
    wave += rng.normal(0, 10 ** (ROOM_DBFS / 20), t.size)
    return wave.astype(np.float32)


def config(*extra: str):
    return load_preset("tiny-cpu", TINY + list(extra))


def subject(recon_of, *extra: str, model=None, seconds: float = 4.0) -> Subject:
    """A subject of two clips whose reconstructions are ``recon_of(original, clip index)``."""
    clips = []
    for i in range(2):
        original = speech_like(seconds, seed=i)
        clips.append(Clip(f"clip{i}", original, np.asarray(recon_of(original, i), np.float32)))
    return Subject(config(*extra), clips, model)


def near_perfect(x: np.ndarray, i: int = 0) -> np.ndarray:
    noise = np.random.default_rng(10 + i).normal(0, 10 ** ((ROOM_DBFS - 40) / 20), x.size)
    return x + noise


def hiss(x: np.ndarray, i: int, dbfs: float = -50.0) -> np.ndarray:
    return x + np.random.default_rng(i).normal(0, 10 ** (dbfs / 20), x.size)


def same(x: np.ndarray, i: int = 0) -> np.ndarray:
    return x


CLEAN = pytest.mark.parametrize("clean", [same, near_perfect], ids=["original", "near-perfect"])


def ids(findings) -> list[str]:
    return [f.id for f in findings]


# -- what plays in the pauses ------------------------------------------------------------------


def test_noise_floor_fires_on_white_noise_in_the_silences():
    noise = hiss
    [found] = background.noise_floor(subject(noise))
    assert found.id == "noise_floor" and found.severity == "bad"
    assert found.evidence["floor_dbfs"] == pytest.approx(-50, abs=1.5)
    assert found.evidence["over_original_db"] > 30
    assert found.listen is not None and found.listen.source == "reconstruction"
    # the tanh preset's remedies: log mels and the MR-STFT weight, live where the trainer says so
    remedies = {r.setting: r for r in background.noise_floor(subject(noise, 'loss.mel_norm="tanh"',
                                                                       "loss.weights.mrstft=0"))[0].remedies}
    assert remedies["loss.mel_norm"].value == "log"
    assert remedies["loss.weights.mrstft"].live
    assert all(r.live == (change_kind(r.setting) == "live") for r in remedies.values())


@CLEAN
def test_noise_floor_quiet_on_a_clean_reconstruction(clean):
    assert background.noise_floor(subject(clean)) == []


def word_tails(x: np.ndarray, i: int, dbfs: float = -45.0) -> np.ndarray:
    """Each burst's end smeared 40-80 ms into the pause (noise fading out): deeper in, clean."""
    frame = SR // 50
    _, frames, silent = distortion.silent_frames(x, SR, distortion.SILENCE_DBFS, 20.0)
    out = x.astype(np.float64).copy()
    rng = np.random.default_rng(i)
    for k in np.flatnonzero(silent[1:] & ~silent[:-1]) + 1:
        part = out[(k + 2) * frame : (k + 4) * frame]
        fade = np.linspace(1.0, 0.1, part.size)
        part += rng.normal(0, 10 ** (dbfs / 20), part.size) * fade
    return out


def test_noise_floor_names_smeared_word_tails_and_proposes_shorter_windows():
    [found] = background.noise_floor(subject(word_tails))
    assert found.id == "pause_smear" and found.severity == "bad"
    assert "smears into the pauses" in found.title and "deeper in" in found.title
    assert found.evidence["near_sound_share"] > 0.99
    assert found.evidence["far_from_sound_dbfs"] < found.evidence["near_sound_dbfs"] - 20
    shorter, fix = found.remedies
    assert (shorter.setting, shorter.value) == ("model.n_fft", 480)  # two hops, from four
    assert not shorter.live and "a model change" in shorter.reason
    # the tests' shortest loss window is 256 points: 128 (5.3 ms) is added
    assert fix.setting == "loss.mel_scales" and fix.value == [128, 256, 512]
    assert fix.changes["loss.mel_bins"] == [16, *config().loss.mel_bins]
    assert fix.changes["loss.mrstft_fft_sizes"] == [128, 256, 512]
    assert fix.changes["loss.mrstft_hops"] == [32, 64, 128]
    assert not fix.live and "a loss change" in fix.reason
    # what --verify and a fork apply: every change, in one valid configuration
    assert fix.text.count(" --set ") == 4
    fixed = config(*fix.texts)
    assert fixed.loss.mel_scales == fix.value and fixed.loss.mrstft_win_lengths[0] == 128
    # the fixed configuration has nothing shorter to propose
    assert background.noise_floor(subject(word_tails, *fix.texts, *shorter.texts))[0].remedies == ()
    # a carpet stays a carpet
    assert background.noise_floor(subject(hiss))[0].id == "noise_floor"


def comb(x: np.ndarray, i: int, dbfs: float = -55.0) -> np.ndarray:
    """A buzz at every multiple of 100 Hz up to 4 kHz (the frame rate of hop 240), plus hiss."""
    t = np.arange(x.size) / SR
    buzz = sum(np.sin(2 * np.pi * 100 * k * t) for k in range(1, 41))
    buzz *= 10 ** (dbfs / 20) / np.sqrt(np.mean(buzz**2))
    hiss = np.random.default_rng(i).normal(0, 10 ** (-75 / 20), x.size)
    return x + buzz + hiss


def test_frame_rate_buzz_fires_on_a_100_hz_comb():
    [found] = background.frame_rate_buzz(subject(comb))
    assert found.id == "frame_rate_buzz" and found.severity == "bad"
    assert found.evidence["frame_rate_hz"] == 100
    assert found.evidence["harmonics_over_threshold"] >= 30
    assert found.evidence["max_over_neighbours_db"] > 20
    assert 100.0 in found.where["frequencies_hz"] and 1000.0 in found.where["frequencies_hz"]


@CLEAN
def test_frame_rate_buzz_quiet_on_a_clean_reconstruction(clean):
    assert background.frame_rate_buzz(subject(clean)) == []


def test_frame_rate_buzz_quiet_on_plain_hiss():
    assert background.frame_rate_buzz(subject(hiss)) == []


def test_quiet_region_is_the_longest_pause():
    x = speech_like(4.0)
    start, stop = quiet_region(x, SR)
    assert stop - start >= 0.3
    assert np.sqrt(np.mean(x[int(start * SR): int(stop * SR)] ** 2)) < 10 ** (-80 / 20)


# -- the mel normalisation ---------------------------------------------------------------------


def test_tanh_saturation_fires_with_tanh_mels_on_speech_with_pauses():
    [found] = mels.tanh_saturation(subject(hiss, 'loss.mel_norm="tanh"'))
    assert found.id == "tanh_saturation" and found.severity == "warn"
    ev = found.evidence
    assert ev["quiet_share"] > ev["warn_quiet_share"]
    assert ev["pause_loss_share_tanh"] < ev["pause_loss_share_log"]
    assert [r.text for r in found.remedies] == ['loss.mel_norm="log"']


def test_tanh_saturation_counts_saturated_bins_of_a_loud_clip():
    # Slaney-normalised magnitude mels of full-scale audio stay far under tanh's knee; only a
    # signal ~40 dB over full scale (as a model without output bound may produce) saturates.
    s = subject(same, 'loss.mel_norm="tanh"')
    for c in s.clips:
        c.original = speech_like(4.0, amplitude=100.0)
        c.reconstruction = 0.9 * c.original
    [found] = mels.tanh_saturation(s)
    assert found.evidence["saturated_share"] > found.evidence["warn_saturated_share"]


def test_tanh_saturation_quiet_with_log_mels():
    assert "tanh_saturation" not in ids(mels.tanh_saturation(subject(same, 'loss.mel_norm="log"')))


# -- the waveform ------------------------------------------------------------------------------


def test_waveform_misalignment_finds_the_delay_and_the_inversion():
    delayed = lambda x, i: -np.concatenate([np.zeros(30, np.float32), x[:-30]])
    [found] = alignment.waveform_misalignment(subject(delayed))
    assert found.id == "waveform_misalignment" and found.severity == "bad"
    assert found.evidence["best_delay_samples"] == 30
    assert found.evidence["best_polarity"] == -1
    assert found.evidence["aligned_si_sdr_db"] > 30
    assert found.listen.source == "residual"


@CLEAN
def test_waveform_misalignment_quiet_on_a_clean_reconstruction(clean):
    assert alignment.waveform_misalignment(subject(clean)) == []


def test_dc_offset_fires_and_stays_quiet():
    [found] = levels.dc_offset(subject(lambda x, i: x + 0.05))
    assert found.id == "dc_offset" and found.evidence["offset"] == pytest.approx(0.05, abs=1e-3)
    assert levels.dc_offset(subject(near_perfect)) == []


def test_clipping_fires_and_stays_quiet():
    [found] = levels.clipping(subject(lambda x, i: 4.0 * x))
    assert found.id == "clipping" and found.severity == "bad" and found.evidence["share"] > 0.01
    assert found.listen.stop > found.listen.start
    assert levels.clipping(subject(near_perfect)) == []


def test_level_mismatch_fires_on_6_db_and_stays_quiet():
    [found] = levels.level_mismatch(subject(lambda x, i: 0.5 * x))
    assert found.id == "level_mismatch" and found.severity == "bad"
    assert found.evidence["level_difference_db"] == pytest.approx(-6.02, abs=0.05)
    assert "quieter" in found.title
    [found] = levels.level_mismatch(subject(lambda x, i: 1.5 * x))
    assert found.severity == "warn" and "louder" in found.title
    assert levels.level_mismatch(subject(near_perfect)) == []


# -- the quantizer -----------------------------------------------------------------------------


def with_codes(s: Subject, codes_of) -> Subject:
    for i, c in enumerate(s.clips):
        c.codes = codes_of(i)
    return s


def test_codebook_collapse_fires_on_one_code_and_names_the_level():
    rng = np.random.default_rng(0)
    collapsed = lambda i: np.stack([rng.integers(0, 32, 400), np.zeros(400, np.int64)])
    [found] = codebooks.codebook_collapse(with_codes(subject(same), collapsed))
    assert found.id == "codebook_collapse" and found.severity == "bad"
    assert found.where["levels"] == [2]
    settings = {r.setting for r in found.remedies}
    assert {"model.kmeans_init", "model.ema", "model.dead_code_replace_every"} & settings or not settings


def test_codebook_collapse_quiet_on_codes_that_use_the_book():
    rng = np.random.default_rng(0)
    spread = lambda i: rng.integers(0, 32, (2, 400))
    assert codebooks.codebook_collapse(with_codes(subject(same), spread)) == []


def test_codebook_collapse_needs_codes():
    with pytest.raises(NotMeasured):
        codebooks.codebook_collapse(subject(same))


def test_unused_levels_names_a_level_that_adds_nothing():
    [found] = codebooks.levels_finding([1.00, 0.80, 0.80, 0.70])
    assert found.id == "unused_levels" and found.where["levels"] == [3]
    assert found.evidence["mel_distance_by_levels"] == [1.00, 0.80, 0.80, 0.70]
    assert found.severity == "info"  # adds nothing; a level that makes it worse is a warning
    assert codebooks.levels_finding([1.00, 0.80, 0.81, 0.70])[0].severity == "warn"


def test_unused_levels_quiet_when_every_level_helps():
    assert codebooks.levels_finding([1.00, 0.80, 0.70, 0.62]) == []


def test_long_context_fires_when_the_whole_clip_is_worse_than_its_pieces():
    [found] = long_context.context_finding("c", 10.0, 1.0, 1.0, np.arange(4.0), [1.0] * 4, [1.6, 1.5, 1.7, 2.0])
    assert found.id == "long_context" and found.severity == "bad"
    assert found.listen.start == 3.0  # the window that got worst
    assert long_context.context_finding("c", 10.0, 1.0, 1.0, np.arange(4.0), [1.0] * 4, [1.0, 1.02, 0.98, 1.01]) == []


# -- the decoder and the losses, on a real tiny model -------------------------------------------


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return Codec(config().model)


def test_istft_overlap_fires_off_cola_and_stays_quiet_at_two_frames_per_sample():
    found = istft.istft(subject(same, "model.n_fft=600"))  # Hann at 2.5 hops: not COLA
    [overlap] = [f for f in found if f.id == "istft/overlap"]
    assert overlap.evidence["overlap"] == 2.5 and not overlap.evidence["cola"]
    assert overlap.remedies[0].setting == "model.n_fft" and overlap.remedies[0].value == 480
    # Hann at 50 % is COLA, and seed-fixed's choice: nothing to say
    assert "istft/overlap" not in ids(istft.istft(subject(same, "model.n_fft=480")))


def test_istft_magnitude_clip_fires_when_the_head_sits_at_its_ceiling(codec):
    head = codec.decoder.head
    bias = head.proj.bias.detach().clone()
    try:
        with torch.no_grad():
            head.proj.bias[: head.proj.out_channels // 2] = head.log_magnitude_clip + 5.0
        found = istft.istft(subject(same, model=codec, seconds=1.0))
    finally:
        with torch.no_grad():
            head.proj.bias.copy_(bias)
    clip = next(f for f in found if f.id == "istft/magnitude_clip")
    assert clip.evidence["clipped_bin_share"] > 0.9


def test_istft_quiet_on_the_default_head(codec):
    assert istft.istft(subject(same, model=codec, seconds=1.0)) == []


def measured_shares(codec, weights: dict[str, float]) -> dict[str, float]:
    sets = [f"loss.weights.{k}={v}" for k, v in weights.items()]
    zero = [f"loss.weights.{k}=0" for k in config().loss.resolved_weights() if k not in weights]
    s = subject(same, *sets, *zero, model=codec, seconds=1.0)
    return s, gradients.measure_shares(s)


def test_loss_dominance_fires_on_a_starved_term_and_a_dominant_one(codec):
    s, shares = measured_shares(codec, {"waveform_mse": 1.0, "mel_l1/256": 1e-6})
    found = {f.id: f for f in gradients.loss_dominance(s)}
    assert shares["waveform_mse"] > 0.99
    assert "loss_dominance/dominant" in found
    starved = found["loss_dominance/starved/mel_l1/256"]
    assert starved.remedies[0].setting == "loss.weights.mel_l1/256" and starved.remedies[0].live


def test_loss_dominance_quiet_when_the_shares_are_even(codec):
    _, shares = measured_shares(codec, {"waveform_mse": 1.0, "mel_l1/256": 1.0})
    even = {"waveform_mse": 1.0 / shares["waveform_mse"], "mel_l1/256": 1.0 / shares["mel_l1/256"]}
    s, shares = measured_shares(codec, even)
    assert shares["waveform_mse"] == pytest.approx(0.5, abs=0.02)
    assert gradients.loss_dominance(s) == []


# -- the whole diagnosis -------------------------------------------------------------------------


def test_diagnose_a_model_on_arrays_ranks_findings_and_skips_dnsmos_unless_asked(codec):
    clips = [("speech", speech_like(2.0))]
    d = diagnose(codec, clips, config=config(), step=7)
    assert d.step == 7 and d.clips == ["speech"]
    assert [f.rank for f in d.findings] == sorted((f.rank for f in d.findings), reverse=True)
    assert "background_mos" in d.skipped and "--mos" in d.skipped["background_mos"]
    ran = set(d.seconds)
    assert {"noise_floor", "loss_dominance", "unused_levels", "istft", "long_context"} <= ran
    assert "background_mos" not in ran
    # an untrained model is far from its input: the waveform check must say so
    assert "waveform_misalignment" in d.ids
    out = d.to_dict()
    assert out["step"] == 7 and all({"id", "severity", "title", "evidence", "remedies"} <= set(f)
                                    for f in out["findings"])


def test_misalignment_remedy_takes_the_weight_sized_by_the_gradient_share(codec):
    s, _ = measured_shares(codec, {"waveform_mse": 1.0, "mel_l1/256": 1e4})
    starved = {f.id: f for f in gradients.loss_dominance(s)}["loss_dominance/starved/waveform_mse"]
    delayed = subject(lambda x, i: -np.roll(x, 30))
    delayed.found = [starved]
    [found] = alignment.waveform_misalignment(delayed)
    assert found.remedies[0].value == starved.remedies[0].value > 4.0
