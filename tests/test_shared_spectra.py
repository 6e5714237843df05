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
    with CountStfts() as counter:
        terms = suite.terms(output(fake), target)
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
    with CountStfts() as counter:
        terms = suite.terms(output(fake), target)
    assert counter.count == 2 * 4  # 512, 1024, 2048 shared; 256 with its own window is not
    sc, logmag = suite.mrstft(fake, target)
    assert torch.equal(sc + logmag, terms["mrstft"])
