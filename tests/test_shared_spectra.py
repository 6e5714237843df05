"""The loss suite computes each STFT once per step and signal, with bit-identical loss values."""

from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vqstudio.config import Config
from vqstudio.model.codec import CodecOutput
from vqstudio.train.losses import LossSuite

SR, T = 24000, 8192


class CountStfts(TorchDispatchMode):
    """Counts the forward real-to-complex FFTs (one per torch.stft call)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket is torch.ops.aten._fft_r2c:
            self.count += 1
        return func(*args, **(kwargs or {}))


def signals():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(T) / SR
    target = 0.5 * torch.sin(2 * math.pi * 440 * t).expand(2, 1, T) + 0.02 * torch.randn(2, 1, T, generator=g)
    fake = (target + 0.05 * torch.randn(2, 1, T, generator=g)).requires_grad_()
    return fake, target


def output(audio):
    latent = torch.zeros(2, 4, 8)
    return CodecOutput(audio, torch.zeros(2, 1, 8, dtype=torch.long), latent, latent,
                       torch.tensor(0.0), torch.tensor(0.0), torch.zeros(1, 4), 1)


def test_each_stft_runs_once_per_signal_and_the_terms_are_bit_identical():
    suite = LossSuite(Config())  # mel scales and MR-STFT resolutions are the same three STFTs
    fake, target = signals()
    # low_band_si_sdr's whole-segment rfft is no STFT, phase_advance's is at the ISTFT head's
    # resolution (its own test): both left out
    with CountStfts() as counter:
        terms = suite.terms(output(fake), target, skip=("low_band_si_sdr", "phase_advance"))
    assert counter.count == 2 * 3  # fake and target at 512, 1024, 2048; was 2 * 6

    # Each term alone, every STFT computed for it (the old way): the same bits.
    for mel_loss in suite.mel_losses:
        alone, _ = mel_loss(fake, target)
        assert torch.equal(alone, terms[f"mel_l1/{mel_loss.n_fft}"]), mel_loss.n_fft
    sc, logmag = suite.mrstft(fake, target)
    assert torch.equal(sc + logmag, terms["mrstft"])

    # The gradient through the shared spectra is the sum of the terms' own gradients.
    names = [n for n in terms if n.startswith("mel_l1/")] + ["mrstft"]
    shared = torch.autograd.grad(sum(terms[n] for n in names), fake)[0]
    separate = sum(torch.autograd.grad(mel(fake, target)[0], fake)[0] for mel in suite.mel_losses)
    separate = separate + torch.autograd.grad(sum(suite.mrstft(fake, target)), fake)[0]
    assert (shared - separate).abs().max() <= 1e-5 * shared.abs().max()  # float32 rounding
    assert shared.abs().max() > 0


def test_different_resolutions_are_not_shared():
    cfg = Config().with_overrides({"loss.mrstft_fft_sizes": [256, 1024, 2048],
                                   "loss.mrstft_hops": [64, 256, 512],
                                   "loss.mrstft_win_lengths": [200, 1024, 2048]})
    suite = LossSuite(cfg)
    fake, target = signals()
    # low_band_si_sdr's whole-segment rfft is no STFT, phase_advance's is at the ISTFT head's
    # resolution (its own test): both left out
    with CountStfts() as counter:
        terms = suite.terms(output(fake), target, skip=("low_band_si_sdr", "phase_advance"))
    assert counter.count == 2 * 4  # 512, 1024, 2048 shared; 256 with its own window is not
    sc, logmag = suite.mrstft(fake, target)
    assert torch.equal(sc + logmag, terms["mrstft"])


def test_the_mel_terms_equal_the_mels_of_the_spectra_magnitudes():
    """The mel terms take |X| from the one spectral pass and project it frames-major; against the
    mel of the complex spectrum as MelSpectrogram computes it (abs, then the filterbank), value
    and gradient agree to float rounding, under every normalisation."""
    from vqstudio.audio.spectral import normalize_mel

    fake, target = signals()
    for norm in ("log", "tanh", "minmax"):
        suite = LossSuite(Config().with_overrides({"loss.mel_norm": norm}))
        terms = suite.terms(output(fake), target)
        for mel_loss in suite.mel_losses:
            stft, mel = mel_loss.mel.stft_params, mel_loss.mel
            ours = terms[f"mel_l1/{mel_loss.n_fft}"]
            fake_mel = mel.from_spectrum(stft.stft(fake.reshape(2, -1)))
            real_mel = mel.from_spectrum(stft.stft(target.reshape(2, -1)))
            reference = (normalize_mel(fake_mel, norm) - normalize_mel(real_mel, norm)).abs().mean()
            assert torch.allclose(ours, reference, rtol=1e-5), (norm, mel_loss.n_fft)
            got = torch.autograd.grad(ours, fake, retain_graph=True)[0]
            want = torch.autograd.grad(reference, fake)[0]
            assert (got - want).abs().max() <= 1e-4 * want.abs().max(), (norm, mel_loss.n_fft)
