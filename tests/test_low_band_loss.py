"""The low-band SI-SDR term (``low_band_si_sdr``): its value on real speech, what it ignores, its
gradient, and its settings (a weight, and ``loss.low_band_hz`` validated and live)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import tiny_config, write_corpus
from vqstudio.audio.io import read_audio
from vqstudio.audio.metrics import si_sdr_db
from vqstudio.config import DEMO_DIR, Config
from vqstudio.errors import ConfigError
from vqstudio.model.codec import CodecOutput
from vqstudio.train.losses import LossSuite
from vqstudio.train.low_band_loss import LowBandSiSdrLoss
from vqstudio.train.trainer import Trainer

SR = 24000
T = 24000


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """One second of a demo speech file, ``[1, 1, T]``."""
    wave = read_audio(DEMO_DIR / "speech-01-harbour.flac", SR)
    return torch.from_numpy(np.ascontiguousarray(wave[SR: SR + T], np.float32)).reshape(1, 1, T)


def _band(x: np.ndarray, low: int, high: int) -> np.ndarray:
    """``x`` with only rfft bins ``low .. high - 1`` kept."""
    spec = np.fft.rfft(x)
    kept = np.zeros_like(spec)
    kept[low:high] = spec[low:high]
    return np.fft.irfft(kept, n=len(x))


def _noise(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 1, T, generator=torch.Generator().manual_seed(seed))


def test_it_is_minus_the_si_sdr_of_the_low_passed_waveforms(speech):
    loss = LowBandSiSdrLoss(SR, 1000.0)
    fake = 0.8 * speech + 0.02 * _noise()
    k = loss.bins(T)
    assert k == 999  # bins 1 .. 999 at 1 Hz spacing: strictly below 1000 Hz, no DC
    real_low = _band(speech.double().flatten().numpy(), 1, k + 1)
    fake_low = _band(fake.double().flatten().numpy(), 1, k + 1)
    expected = si_sdr_db(real_low, fake_low)
    assert 5 < expected < 40  # a finite, plausible SI-SDR (the white noise is mostly above the band)
    assert float(loss.si_sdr(fake, speech)) == pytest.approx(expected, abs=0.02)
    value = float(loss(fake, speech))
    assert value == pytest.approx(10 * np.log10(1 + 10 ** (-expected / 10)), abs=0.002)
    # never below 0; about -SI-SDR where that is poor, 3 dB at 0 dB
    poor = 0.2 * speech + torch.roll(speech, 200, dims=-1)
    poor_sdr = float(loss.si_sdr(poor, speech))
    assert poor_sdr < -5 and float(loss(poor, speech)) == pytest.approx(-poor_sdr, abs=1.0)
    assert float(loss(speech, speech)) == pytest.approx(0.0, abs=1e-4)


def test_nothing_above_the_band_and_no_loudness_changes_it(speech):
    loss = LowBandSiSdrLoss(SR, 1000.0)
    fake = speech + 0.05 * _noise()
    hiss = torch.from_numpy(_band(_noise(1).double().flatten().numpy(), 1000, T // 2 + 1)).float()
    base = float(loss(fake, speech))
    assert float(loss(fake + 0.3 * hiss.reshape(1, 1, T), speech)) == pytest.approx(base, abs=1e-3)
    assert float(loss(0.25 * fake, speech)) == pytest.approx(base, abs=1e-3)
    # ... while the same hiss below the cut-off, or a delay, costs
    low_hiss = torch.from_numpy(_band(_noise(1).double().flatten().numpy(), 1, 999)).float()
    assert float(loss(fake + 0.3 * low_hiss.reshape(1, 1, T), speech)) > base + 2
    delayed = torch.roll(speech, 12, dims=-1)  # 0.5 ms: the magnitudes stay, the phase turns
    assert float(loss(delayed, speech)) > float(loss(speech + 0.05 * _noise(), speech)) + 2


def test_its_gradient_is_the_derivative_and_descending_it_aligns_the_waveform(speech):
    loss = LowBandSiSdrLoss(SR, 1000.0)
    small = 2400
    real = speech[..., :small].double()
    fake = (torch.roll(real, 3, dims=-1) + 0.05 * _noise()[..., :small].double()).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: LowBandSiSdrLoss(SR, 1000.0)(f, real), (fake,))
    fake = (torch.roll(speech, 6, dims=-1) + 0.02 * _noise()).requires_grad_()
    before = loss(fake, speech)
    before.backward()
    with torch.no_grad():
        stepped = fake - 0.05 * fake.grad / fake.grad.norm() * fake.norm()
    assert float(loss(stepped, speech)) < float(before.detach()) - 0.5
    assert torch.isfinite(fake.grad).all()


def test_a_silent_batch_stays_finite():
    loss = LowBandSiSdrLoss(SR, 1000.0)
    fake = torch.zeros(2, 1, T, requires_grad=True)
    value = loss(fake, torch.zeros(2, 1, T))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(fake.grad).all()


def test_a_segment_too_short_for_the_band_is_refused_naming_the_fix():
    with pytest.raises(ConfigError) as caught:
        LowBandSiSdrLoss(SR, 10.0)(torch.zeros(1, 1, 1200), torch.zeros(1, 1, 1200))
    assert "loss.low_band_hz" in str(caught.value) and "segment_seconds" in caught.value.fix


def test_the_suite_names_it_weights_it_zero_by_default_and_skips_it(speech):
    config = Config()
    assert "low_band_si_sdr" in config.loss.term_names()
    assert config.loss.resolved_weights()["low_band_si_sdr"] == 0.0
    suite = LossSuite(config.with_overrides({"loss.weights.low_band_si_sdr": 0.5,
                                             "loss.low_band_hz": 500.0}))
    zero = torch.tensor(0.0)
    fake = 0.9 * speech + 0.02 * _noise()
    out = CodecOutput(audio=fake, codes=None, latent=None, quantized=None,
                      codebook_loss=zero, commitment_loss=zero, usage=None, levels_used=0)
    terms = suite.terms(out, speech)
    assert float(terms["low_band_si_sdr"]) == pytest.approx(float(LowBandSiSdrLoss(SR, 500.0)(fake, speech)))
    assert "low_band_si_sdr" not in suite.terms(out, speech, skip=["low_band_si_sdr"])


@pytest.mark.parametrize("hz", [0, -5, 12001])
def test_a_cut_off_outside_the_band_is_refused(hz):
    with pytest.raises(ConfigError) as caught:
        Config().with_overrides({"loss.low_band_hz": hz})
    assert "loss.low_band_hz" in str(caught.value) and "1000" in caught.value.fix


def test_the_cut_off_changes_live_and_a_bad_one_is_refused(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=2)
    trainer = Trainer(tiny_config(corpus, ["model.dead_code_replace_every=0",
                                           "loss.weights.low_band_si_sdr=0.1"]))
    try:
        trainer.step()
        trainer.mailbox.set("low_band_hz", 2000.0)
        events = [e for e in trainer.step().events if e["kind"] in ("low_band_hz", "refused")]
        assert [(e["kind"], e["old"], e["new"]) for e in events] == [("low_band_hz", 1000.0, 2000.0)]
        assert trainer.losses.low_band.cutoff_hz == 2000.0 == trainer.config.loss.low_band_hz
        trainer.mailbox.set("low_band_hz", 0.0)
        events = [e for e in trainer.step().events if e["kind"] in ("low_band_hz", "refused")]
        assert events[0]["kind"] == "refused" and "loss.low_band_hz" in events[0]["reason"]
        assert trainer.losses.low_band.cutoff_hz == 2000.0
    finally:
        trainer.close()


def _trained(corpus, sets: list[str], steps: int, switch_on_at: int | None = None) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(tiny_config(corpus, ["model.dead_code_replace_every=0", *sets]))
    for _ in range(steps):
        if trainer.step_count == switch_on_at:
            trainer.mailbox.set("weights", {"low_band_si_sdr": 0.5})
        trainer.step()
    return trainer


def test_from_step_starts_the_term_there_as_a_weight_change_at_that_step_would(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=2)
    scheduled = _trained(corpus, ["loss.weights.low_band_si_sdr=0.5", "loss.low_band_from_step=3"], 5)
    switched = _trained(corpus, [], 5, switch_on_at=3)  # weight 0, then 0.5 from step 3 on
    never = _trained(corpus, ["loss.weights.low_band_si_sdr=0.5", "loss.low_band_from_step=100"], 5)
    off = _trained(corpus, [], 5)
    try:
        assert scheduled.weights["low_band_si_sdr"] == 0.5 and scheduled.weights_now()["low_band_si_sdr"] == 0.5
        assert never.weights_now()["low_band_si_sdr"] == 0.0
        for a, b, c, d in zip(scheduled.model.parameters(), switched.model.parameters(),
                              never.model.parameters(), off.model.parameters()):
            assert torch.equal(a, b)  # the same steps: the term's gradient from step 3 on
            assert torch.equal(c, d)  # not started yet: as if it were not there
        assert any(not torch.equal(a, c) for a, c in zip(scheduled.model.parameters(), never.model.parameters()))
        never.mailbox.set("low_band_from_step", -1)
        events = [e for e in never.step().events if e["kind"] in ("low_band_from_step", "refused")]
        assert events[0]["kind"] == "refused" and "loss.low_band_from_step" in events[0]["reason"]
        never.mailbox.set("low_band_from_step", 2)
        events = [e for e in never.step().events if e["kind"] == "low_band_from_step"]
        assert (events[0]["old"], events[0]["new"]) == (100, 2)
        assert never.weights_now()["low_band_si_sdr"] == 0.5
    finally:
        for t in (scheduled, switched, never, off):
            t.close()
