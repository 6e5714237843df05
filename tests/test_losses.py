"""Loss terms: names, weights, MR-STFT against auraloss, mels against librosa, the adversary."""

from __future__ import annotations

import math

import auraloss
import librosa
import numpy as np
import pytest
import torch

from vqstudio.config import Config
from vqstudio.errors import ConfigError
from vqstudio.model.codec import CodecOutput
from vqstudio.train.discriminators import PeriodDiscriminator, SpectrogramDiscriminator
from vqstudio.train.losses import LossSuite, MultiResolutionStftLoss, total

SR = 24000
T = 8192


def make_output(audio: torch.Tensor, codebook: float = 0.3, commitment: float = 0.1) -> CodecOutput:
    b = audio.shape[0]
    latent = torch.randn(b, 4, 8)
    return CodecOutput(
        audio=audio,
        codes=torch.zeros(b, 2, 8, dtype=torch.long),
        latent=latent,
        quantized=latent,
        codebook_loss=torch.tensor(codebook),
        commitment_loss=torch.tensor(commitment),
        usage=torch.zeros(2, 16),
        levels_used=2,
    )


def sine_and_noise(seed: int, freq: float = 440.0, amp: float = 0.5, noise: float = 0.02):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / SR
    phase = torch.rand(2, 1, 1, generator=g) * 2 * math.pi
    wave = amp * torch.sin(2 * math.pi * freq * t + phase)
    return wave + noise * torch.randn(2, 1, T, generator=g)


def config(**loss) -> Config:
    return Config().with_overrides({f"loss.{k}": v for k, v in loss.items()})


def test_terms_are_named_scalars_and_parts_are_unweighted():
    cfg = config()
    suite = LossSuite(cfg)
    target = sine_and_noise(0)
    fake = sine_and_noise(1).requires_grad_()
    terms = suite.terms(make_output(fake), target)
    names = cfg.loss.term_names()
    assert names == [
        "waveform_mse", "codebook", "commitment",
        "mel_l1/512", "mel_l1/1024", "mel_l1/2048", "mrstft", "complex_stft", "low_band_si_sdr",
        "phase_advance",
    ]
    assert suite.logged_parts() == ["mrstft/sc", "mrstft/logmag", "mel/tanh_saturation"]
    assert list(terms) == names + suite.logged_parts()
    for name, value in terms.items():
        assert value.shape == () and torch.isfinite(value), name
    assert torch.allclose(terms["mrstft"], terms["mrstft/sc"] + terms["mrstft/logmag"])
    assert torch.allclose(terms["waveform_mse"], ((fake - target) ** 2).mean())
    assert terms["codebook"].item() == pytest.approx(0.3)
    assert not terms["mrstft/sc"].requires_grad  # a logged part cannot leak into the objective
    for name in names:
        if name not in ("codebook", "commitment"):
            assert terms[name].requires_grad, name


def test_terms_are_computed_at_weight_zero_and_total_weights_by_name():
    zero = {name: 0.0 for name in Config().loss.term_names()}
    suite = LossSuite(config(weights=zero))
    target, fake = sine_and_noise(0), sine_and_noise(1)
    terms = suite.terms(make_output(fake), target)
    assert all(terms[n].item() > 0 for n in zero)  # nothing skipped for being unweighted

    weights = {n: 0.5 + i for i, n in enumerate(zero)}
    expected = sum(weights[n] * terms[n].item() for n in zero)
    assert total(terms, weights).item() == pytest.approx(expected, rel=1e-6)
    # Logged parts are not terms: weighting by the term names alone never counts them.
    only_mrstft = total(terms, {"mrstft": 1.0})
    assert only_mrstft.item() == pytest.approx(terms["mrstft"].item())
    with pytest.raises(KeyError, match="adversarial"):
        total(terms, {"adversarial": 1.0})
    assert total(terms, {"adversarial": 0.0, "mrstft": 2.0}).item() == pytest.approx(
        2 * terms["mrstft"].item()
    )


RESOLUTIONS = [
    ([512, 1024, 2048], [128, 256, 512], [512, 1024, 2048]),  # the configuration's default
    ([1024, 2048, 512], [120, 240, 50], [600, 1200, 240]),  # auraloss's default: win < n_fft
]


@pytest.mark.parametrize("ffts,hops,wins", RESOLUTIONS)
@pytest.mark.parametrize("signal", ["random", "sine+noise"])
def test_mrstft_agrees_with_auraloss(ffts, hops, wins, signal):
    if signal == "random":
        g = torch.Generator().manual_seed(3)
        real, fake = torch.randn(2, 1, T, generator=g), torch.randn(2, 1, T, generator=g)
    else:
        real, fake = sine_and_noise(0), sine_and_noise(1, amp=0.4, noise=0.05)
    oracle = auraloss.freq.MultiResolutionSTFTLoss(ffts, hops, wins, output="full")
    ours = MultiResolutionStftLoss(ffts, hops, wins)

    fake_a, fake_b = fake.clone().requires_grad_(), fake.clone().requires_grad_()
    want, want_sc, want_logmag, _, _ = oracle(fake_a, real)
    sc, logmag = ours(fake_b, real)
    assert abs((sc + logmag).item() - want.item()) < 1e-4
    assert abs(sc.item() - torch.stack(want_sc).mean().item()) < 1e-4
    assert abs(logmag.item() - torch.stack(want_logmag).mean().item()) < 1e-4
    # Same function, so the same gradient too.
    want.backward()
    (sc + logmag).backward()
    error = (fake_a.grad - fake_b.grad).norm() / fake_a.grad.norm()
    assert error < 1e-3


def _librosa_mel_l1(fake, real, n_fft, n_mels, norm):
    def mel(x):
        m = librosa.feature.melspectrogram(
            y=x[:, 0].numpy().astype(np.float64), sr=SR, n_fft=n_fft, hop_length=n_fft // 4,
            window="hann", center=True, pad_mode="reflect", power=1.0, n_mels=n_mels,
            htk=False, norm="slaney",
        )
        if norm == "log":
            return np.log(np.maximum(m, 1e-5))
        return np.tanh(m)

    return float(np.abs(mel(fake) - mel(real)).mean())


@pytest.mark.parametrize("norm", ["log", "tanh"])
def test_mel_terms_agree_with_librosa_and_follow_mel_norm(norm):
    suite = LossSuite(config(mel_norm=norm))
    target, fake = sine_and_noise(0), sine_and_noise(1, amp=0.3, noise=0.05)
    terms = suite.terms(make_output(fake), target)
    for n_fft, n_mels in zip([512, 1024, 2048], [64, 80, 128]):
        want = _librosa_mel_l1(fake, target, n_fft, n_mels, norm)
        assert terms[f"mel_l1/{n_fft}"].item() == pytest.approx(want, rel=1e-3)


def test_switching_mel_norm_changes_the_mel_terms():
    target, fake = sine_and_noise(0), sine_and_noise(1, amp=0.3, noise=0.05)
    values = {}
    for norm in ("log", "tanh", "minmax"):
        terms = LossSuite(config(mel_norm=norm)).terms(make_output(fake), target)
        values[norm] = terms["mel_l1/1024"].item()
    assert len({round(v, 6) for v in values.values()}) == 3, values
    assert 0 < values["minmax"] < 1  # both sides live in [0, 1]


def test_tanh_saturation_is_the_share_of_target_bins_in_saturation():
    suite = LossSuite(config(mel_norm="tanh"))
    quiet = sine_and_noise(0, amp=0.001, noise=0.0001)
    loud = sine_and_noise(0, amp=1.0, noise=0.3)
    quiet_share = suite.terms(make_output(quiet), quiet)["mel/tanh_saturation"].item()
    loud_share = suite.terms(make_output(loud), loud)["mel/tanh_saturation"].item()
    assert quiet_share == 0.0
    # Mean over scales of the share of bins where |tanh(mel)| > 0.99, computed independently.
    shares = [
        (np.tanh(librosa.feature.melspectrogram(
            y=loud[:, 0].numpy().astype(np.float64), sr=SR, n_fft=n, hop_length=n // 4,
            center=True, pad_mode="reflect", power=1.0, n_mels=m)) > 0.99).mean()
        for n, m in zip([512, 1024, 2048], [64, 80, 128])
    ]
    assert loud_share == pytest.approx(float(np.mean(shares)), abs=1e-3)
    assert loud_share > 0.01


def test_tanh_mels_barely_see_a_background_hiss_that_log_mels_see():
    """The seed's symptom: under tanh mels a faint hiss costs less than a 3 dB level error."""
    target = sine_and_noise(0, amp=0.5, noise=0.0)
    hiss = target + 0.003 * torch.randn(2, 1, T, generator=torch.Generator().manual_seed(5))
    level = 0.7 * target
    loss = {}
    for norm in ("log", "tanh"):
        suite = LossSuite(config(mel_norm=norm))
        loss[norm] = [suite.terms(make_output(x), target)["mel_l1/1024"].item()
                      for x in (hiss, level)]
    assert loss["log"][0] > 5 * loss["log"][1]
    assert loss["tanh"][0] < loss["tanh"][1]
    # Log mels are scale-free: a uniform gain error costs |log gain| in every bin above the floor.
    noisy = sine_and_noise(0, amp=1.0, noise=0.3)
    gain = LossSuite(config()).terms(make_output(0.7 * noisy), noisy)["mel_l1/1024"].item()
    assert gain == pytest.approx(-math.log(0.7), rel=1e-3)


def test_segments_too_short_for_the_ffts_are_refused_with_the_fix():
    suite = LossSuite(config())
    short = torch.zeros(1, 1, 900)
    with pytest.raises(ConfigError, match="segment_seconds"):
        suite.terms(make_output(short), short)


def test_period_discriminator_folds_by_its_period():
    disc = PeriodDiscriminator(5)
    score, features = disc(torch.randn(2, 1, 1003))  # not a multiple of 5: padded
    assert features[0].shape[-1] == 5 and score.shape[-1] == 5
    assert features[0].shape[2] == math.ceil(math.ceil(1003 / 5) / 3)
    spec = SpectrogramDiscriminator(512)
    score, features = spec(torch.randn(2, 1, 4096))
    assert features[0].shape[1:3] == (32, 4096 // 128 + 1)  # [B, C, frames, bins]


def test_the_spectrogram_judge_on_channels_last_equals_its_plain_layout():
    """On the CPU the spectrogram discriminator convolves a channels-last copy (faster kernels):
    its score, feature maps and the gradients to its input and weights equal the plain layout's
    up to float rounding."""
    torch.manual_seed(0)
    fast, plain = SpectrogramDiscriminator(512), SpectrogramDiscriminator(512)
    plain.load_state_dict(fast.state_dict())
    plain.channels_last = False
    wave = (0.1 * torch.randn(2, 1, 4000)).requires_grad_()
    results = []
    for judge in (fast, plain):
        score, features = judge(wave)
        objective = score.square().mean() + sum(f.abs().mean() for f in features)
        grads = torch.autograd.grad(objective, [wave, *judge.parameters()])
        results.append(([score, *features], grads))
    (outs, grads), (ref_outs, ref_grads) = results
    assert outs[1].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(outs + list(grads), ref_outs + list(ref_grads)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.detach().abs().max())), (a - b).abs().max()


def test_adversarial_terms_reach_the_codec_but_not_the_discriminators():
    torch.manual_seed(0)
    suite = LossSuite(config(adversarial=True))
    target = sine_and_noise(0)
    fake = sine_and_noise(1).requires_grad_()
    terms = suite.terms(make_output(fake), target)
    assert {"adversarial", "feature_matching"} <= set(terms)
    total(terms, {"adversarial": 1.0, "feature_matching": 2.0}).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in suite.discriminators.parameters())
    assert all(p.requires_grad for p in suite.discriminators.parameters())  # restored

    # Least squares: the generator term is mean (1 - D(fake))^2 over discriminators.
    with torch.no_grad():
        judged = suite.discriminators(fake)
        want = np.mean([((1 - s) ** 2).mean().item() for s, _ in judged])
    assert terms["adversarial"].item() == pytest.approx(want, rel=1e-5)
    # A perfect reconstruction matches every feature map.
    same = suite.terms(make_output(target.clone()), target)
    assert same["feature_matching"].item() == pytest.approx(0.0, abs=1e-7)

    fake.grad = None
    d_loss = suite.discriminator_loss(target, fake)
    d_loss.backward()
    assert fake.grad is None  # the codec never sees the discriminators' own loss
    assert all(p.grad is not None for p in suite.discriminator_parameters())

    # Checkpoints carry the discriminators' weights.
    other = LossSuite(config(adversarial=True))
    other.load_discriminator_state_dict(suite.discriminator_state_dict())
    with torch.no_grad():
        assert torch.equal(other.discriminators(target)[0][0], suite.discriminators(target)[0][0])


def test_discriminators_learn_to_tell_noise_from_a_tone():
    torch.manual_seed(0)
    suite = LossSuite(
        config(adversarial=True, discriminator_periods=[2, 3], discriminator_fft_sizes=[512])
    )
    real = sine_and_noise(0, noise=0.0)[..., :4096]
    fake = 0.3 * torch.randn(2, 1, 4096)
    opt = torch.optim.Adam(suite.discriminators.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = suite.discriminator_loss(real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_discriminator_loss_without_adversarial_names_the_setting():
    suite = LossSuite(config())
    assert suite.discriminators is None and suite.discriminator_parameters() == []
    x = torch.zeros(1, 1, T)
    with pytest.raises(ConfigError, match="loss.adversarial"):
        suite.discriminator_loss(x, x)
