"""The phase-advance term (``phase_advance``) on real speech: 0 for the original and for it at
another level, near 1 for the original's magnitudes with zero phase (the comb under the voice),
a finite gradient that points the phase the right way, and the term named, weighted 0 by
default, skipped when asked, and trained with its weight live."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal

from helpers import tiny_config, write_corpus
from vqstudio.audio.io import read_audio
from vqstudio.config import DEMO_DIR, Config
from vqstudio.model.codec import CodecOutput
from vqstudio.train.losses import LossSuite, SharedSpectra
from vqstudio.train.phase_advance_loss import PhaseAdvanceLoss
from vqstudio.train.trainer import Trainer

SR, HOP = 24000, 240


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio(DEMO_DIR / "speech-05-stairs.flac", SR)[: 3 * SR]


def _value(fake: np.ndarray, real: np.ndarray, n_fft: int = 2 * HOP) -> tuple[float, torch.Tensor]:
    x = torch.tensor(np.asarray(fake, np.float32)).reshape(1, 1, -1).requires_grad_(True)
    y = torch.tensor(np.asarray(real, np.float32)).reshape(1, 1, -1)
    value = PhaseAdvanceLoss(n_fft, HOP)(x, y, SharedSpectra(x, y))
    value.backward()
    return float(value.detach()), x.grad


def _zero_phase(wave: np.ndarray, n_fft: int) -> np.ndarray:
    _, _, spectrum = signal.stft(wave, SR, nperseg=n_fft, noverlap=n_fft - HOP)
    _, locked = signal.istft(np.abs(spectrum), SR, nperseg=n_fft, noverlap=n_fft - HOP)
    return locked[: len(wave)]


def test_it_reads_the_phase_not_the_level(speech):
    assert _value(speech, speech)[0] == pytest.approx(0.0, abs=1e-3)
    assert _value(0.5 * speech, speech)[0] == pytest.approx(0.0, abs=1e-3)
    for n_fft in (2 * HOP, 4 * HOP):
        locked, grad = _value(_zero_phase(speech, n_fft), speech, n_fft)
        assert locked > 0.5 and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_a_step_down_its_gradient_lowers_it(speech):
    locked = _zero_phase(speech, 2 * HOP)
    before, grad = _value(locked, speech)
    step = 1e-3 / float(grad.abs().max())
    after, _ = _value(locked - step * grad.reshape(-1).numpy(), speech)
    assert after < before


def test_the_suite_names_it_weights_it_zero_by_default_and_skips_it(speech):
    config = Config()
    assert "phase_advance" in config.loss.term_names()
    assert config.loss.resolved_weights()["phase_advance"] == 0.0
    suite = LossSuite(config.with_overrides({"loss.weights.phase_advance": 1.0}))
    real = torch.tensor(speech[:SR]).reshape(1, 1, -1)
    zero = torch.tensor(0.0)
    fake = torch.tensor(_zero_phase(speech[:SR], config.model.n_fft).astype(np.float32)).reshape(1, 1, -1)
    out = CodecOutput(audio=fake, codes=None, latent=None, quantized=None,
                      codebook_loss=zero, commitment_loss=zero, usage=None, levels_used=0)
    terms = suite.terms(out, real)
    direct = PhaseAdvanceLoss(config.model.n_fft, config.model.hop)(fake, real, SharedSpectra(fake, real))
    assert float(terms["phase_advance"]) == pytest.approx(float(direct))
    assert "phase_advance" not in suite.terms(out, real, skip=["phase_advance"])


def test_a_trainer_weighs_it_live(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=2)
    trainer = Trainer(tiny_config(corpus, ["model.dead_code_replace_every=0", "train.log_every=1"]))
    try:
        trainer.step()
        trainer.mailbox.set_weights({"phase_advance": 0.5})
        report = trainer.step()
        assert [e["changes"] for e in report.events if e["kind"] == "weights"] == [{"phase_advance": [0.0, 0.5]}]
        assert report.weights["phase_advance"] == 0.5
        assert 0.0 <= report.terms["phase_advance"] <= 2.0
    finally:
        trainer.close()
