"""Gradient shares at the decoder output, and the static and shares-mode backward passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vqstudio.config import Config
from vqstudio.model.codec import CodecOutput
from vqstudio.train.balancer import Balancer, gradient_shares, reaches
from vqstudio.train.losses import LossSuite, total
from test_losses import sine_and_noise

T = 8192
AT_OUTPUT = ["waveform_mse", "mel_l1/512", "mel_l1/1024", "mel_l1/2048", "mrstft", "complex_stft",
             "low_band_si_sdr", "phase_advance"]
OFF_BY_DEFAULT = {"complex_stft": 1.0, "low_band_si_sdr": 1.0, "phase_advance": 1.0}


class TinyCodec(nn.Module):
    """Conv encoder, one straight-through VQ level, conv decoder: enough to route real gradients."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Conv1d(1, 8, 16, stride=8, padding=4)
        self.codebook = nn.Parameter(torch.randn(16, 8) * 0.1)
        self.decoder = nn.ConvTranspose1d(8, 1, 16, stride=8, padding=4)

    def forward(self, wave: torch.Tensor) -> CodecOutput:
        z = self.encoder(wave)  # [B, 8, N]
        flat = z.transpose(1, 2).reshape(-1, 8)
        codes = torch.cdist(flat.detach(), self.codebook).argmin(-1)
        q = self.codebook[codes].reshape(z.shape[0], -1, 8).transpose(1, 2)
        quantized = z + (q - z).detach()
        return CodecOutput(
            audio=self.decoder(quantized),
            codes=codes.reshape(z.shape[0], 1, -1),
            latent=z,
            quantized=quantized,
            codebook_loss=F.mse_loss(q, z.detach()),
            commitment_loss=F.mse_loss(z, q.detach()),
            usage=torch.bincount(codes, minlength=16).float()[None],
            levels_used=1,
        )


@pytest.fixture(scope="module")
def suite() -> LossSuite:
    return LossSuite(Config())


def step(model: TinyCodec, suite: LossSuite, seed: int = 0):
    target = sine_and_noise(seed)
    out = model(target)
    return suite.terms(out, target), out.audio


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_shares_sum_to_one_over_the_terms_that_reach_the_output(suite):
    terms, audio = step(TinyCodec(), suite)
    weights = Config().loss.resolved_weights() | OFF_BY_DEFAULT
    assert [n for n in weights if reaches(terms[n], audio)] == AT_OUTPUT
    shares = gradient_shares(terms, audio, weights)
    assert set(shares) == set(AT_OUTPUT)  # codebook and commitment act on the encoder directly
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(0 < v < 1 for v in shares.values())


def test_a_term_at_weight_zero_has_no_share_in_static_mode(suite):
    model = TinyCodec()
    terms, audio = step(model, suite)
    weights = Config().loss.resolved_weights() | {"mrstft": 0.0}
    shares = gradient_shares(terms, audio, weights)
    assert shares["mrstft"] == 0.0
    assert sum(shares.values()) == pytest.approx(1.0)
    measured = Balancer().backward(terms, audio, weights, mode="static", measure=True)
    assert measured == pytest.approx(shares)


def test_share_follows_the_weight_in_static_mode(suite):
    terms, audio = step(TinyCodec(), suite)
    one = gradient_shares(terms, audio, {"waveform_mse": 1.0, "mrstft": 1.0})
    two = gradient_shares(terms, audio, {"waveform_mse": 2.0, "mrstft": 1.0})
    ratio = lambda s: s["waveform_mse"] / s["mrstft"]  # noqa: E731
    assert ratio(two) == pytest.approx(2 * ratio(one), rel=1e-5)


def test_static_backward_is_the_weighted_sum(suite):
    weights = Config().loss.resolved_weights() | {"mel_l1/1024": 3.0, "commitment": 0.5}
    model = TinyCodec()
    terms, _ = step(model, suite)
    total(terms, weights).backward()
    want = grads(model)

    model.zero_grad()
    terms, audio = step(model, suite)
    # Measuring the shares on the way (the default) must not touch the parameter gradients.
    assert Balancer().backward(terms, audio, weights, mode="static")
    got = grads(model)
    model.zero_grad()
    terms, audio = step(model, suite)
    assert Balancer().backward(terms, audio, weights, mode="static", measure=False) == {}
    unmeasured = grads(model)
    assert set(got) == set(want) == {"encoder.weight", "encoder.bias", "codebook",
                                     "decoder.weight", "decoder.bias"}
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-5, atol=1e-9), name
        assert torch.allclose(unmeasured[name], want[name], rtol=1e-5, atol=1e-9), name


def test_shares_mode_gives_each_term_its_weights_share_of_the_output_gradient(suite):
    weights = {"waveform_mse": 2.0, "mel_l1/1024": 1.0, "mrstft": 1.0, "codebook": 1.0,
               "commitment": 0.25}
    model = TinyCodec()
    terms, audio = step(model, suite)
    shares = Balancer().backward(terms, audio, weights, mode="shares")
    # Bias-corrected running norms equal this step's norms, so the split is exact at step one.
    assert shares == pytest.approx({"waveform_mse": 0.5, "mel_l1/1024": 0.25, "mrstft": 0.25})
    got = grads(model)

    # The same update built by hand: unit-norm output gradients mixed by weight share, plus the
    # quantizer's terms by ordinary weighted backward.
    model.zero_grad()
    terms, audio = step(model, suite)
    mix = sum(
        share * g / g.norm()
        for share, g in (
            (0.5, torch.autograd.grad(terms["waveform_mse"], audio, retain_graph=True)[0]),
            (0.25, torch.autograd.grad(terms["mel_l1/1024"], audio, retain_graph=True)[0]),
            (0.25, torch.autograd.grad(terms["mrstft"], audio, retain_graph=True)[0]),
        )
    )
    torch.autograd.backward([audio, terms["codebook"] + 0.25 * terms["commitment"]], [mix, None])
    want = grads(model)
    for name in want:
        assert torch.allclose(got[name], want[name], rtol=1e-4, atol=1e-9), name


def test_shares_mode_ignores_a_terms_raw_scale(suite):
    weights = {"waveform_mse": 1.0, "mrstft": 1.0}
    model = TinyCodec()
    terms, audio = step(model, suite)
    Balancer().backward(terms, audio, weights, mode="shares")
    want = grads(model)
    model.zero_grad()
    terms, audio = step(model, suite)
    terms["waveform_mse"] = terms["waveform_mse"] * 1000.0  # a loss in other units
    Balancer().backward(terms, audio, weights, mode="shares")
    for name, g in grads(model).items():
        assert torch.allclose(g, want[name], rtol=1e-4, atol=1e-9), name


def test_twice_the_weight_gets_about_twice_the_share_while_training(suite):
    weights = {"waveform_mse": 2.0, "mel_l1/512": 1.0, "mrstft": 1.0, "codebook": 1.0,
               "commitment": 0.25}
    model = TinyCodec()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    balancer = Balancer(ema_decay=0.9)
    history = []
    for i in range(8):
        terms, audio = step(model, suite, seed=i)
        opt.zero_grad()
        history.append(balancer.backward(terms, audio, weights, mode="shares"))
        opt.step()
    # A term whose gradient norm is steady (waveform, mel) keeps its split every step; one whose
    # norm jumps from batch to batch (MR-STFT on a near-silent output) keeps it on average only,
    # because the running norm it is divided by lags.
    for shares in history:
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares["waveform_mse"] / shares["mel_l1/512"] == pytest.approx(2.0, rel=0.2)
    mean = {n: sum(h[n] for h in history) / len(history) for n in history[0]}
    assert mean == pytest.approx(
        {"waveform_mse": 0.5, "mel_l1/512": 0.25, "mrstft": 0.25}, rel=0.15
    )
    # With static weights the same terms split very differently: the weights alone say little.
    terms, audio = step(model, suite)
    static = gradient_shares(terms, audio, weights)
    assert static["waveform_mse"] / static["mrstft"] < 0.5

    restored = Balancer(ema_decay=0.9)
    restored.load_state_dict(balancer.state_dict())
    assert restored.running_norm("mrstft") == pytest.approx(balancer.running_norm("mrstft"))


def test_quantizer_terms_are_backpropagated_directly_in_shares_mode(suite):
    weights = {"waveform_mse": 0.0, "mrstft": 0.0, "codebook": 2.0, "commitment": 0.5}
    model = TinyCodec()
    terms, audio = step(model, suite)
    shares = Balancer().backward(terms, audio, weights, mode="shares")
    assert shares == {"waveform_mse": 0.0, "mrstft": 0.0}
    got = grads(model)
    assert "decoder.weight" not in got  # nothing came through the output

    model.zero_grad()
    terms, _ = step(model, suite)
    (2.0 * terms["codebook"] + 0.5 * terms["commitment"]).backward()
    want = grads(model)
    assert set(got) == set(want)
    for name in want:
        assert torch.allclose(got[name], want[name]), name


def test_unknown_mode_is_refused(suite):
    terms, audio = step(TinyCodec(), suite)
    with pytest.raises(ValueError, match="shares"):
        Balancer().backward(terms, audio, {"mrstft": 1.0}, mode="dynamic")


def test_with_the_real_codec_the_quantizer_terms_bypass_the_output(suite):
    from vqstudio.model.codec import Codec

    torch.manual_seed(0)
    config = Config()
    codec = Codec(config.model)
    target = sine_and_noise(0)
    out = codec(target)
    terms = suite.terms(out, target)
    weights = config.loss.resolved_weights() | OFF_BY_DEFAULT
    assert [n for n in weights if reaches(terms[n], out.audio)] == AT_OUTPUT
    shares = Balancer().backward(terms, out.audio, weights, mode="shares")
    assert shares == pytest.approx({n: 1 / len(AT_OUTPUT) for n in AT_OUTPUT})
    # Every trainable parameter got a gradient: the decoder through the output, the encoder through
    # the output and the commitment term.
    missing = [n for n, p in codec.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_a_non_finite_step_leaves_the_running_norms_alone(suite):
    weights = {"waveform_mse": 1.0, "mrstft": 1.0}
    model = TinyCodec()
    balancer = Balancer()
    terms, audio = step(model, suite)
    balancer.backward(terms, audio, weights, mode="shares")
    before = balancer.running_norm("waveform_mse")
    terms, audio = step(model, suite, seed=1)
    terms["waveform_mse"] = terms["waveform_mse"] * float("nan")
    balancer.backward(terms, audio, weights, mode="shares")
    assert balancer.running_norm("waveform_mse") == before
    assert not torch.isfinite(model.decoder.weight.grad).all()  # the trainer sees it and skips
