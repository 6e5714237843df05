"""The codec: output length equals input length for any length, gradients reach the encoder
through the quantizer, first-k-level decoding, autocast, checkpoints, and every preset builds."""

from __future__ import annotations

import io
import math

import pytest
import torch

from vqstudio.audio.spectral import StftParams
from vqstudio.config import ModelConfig, load_preset, preset_names, preset_summary
from vqstudio.errors import ConfigError
from vqstudio.model import Codec, CodecOutput
from vqstudio.model.heads import ISTFTHead


def small_config(**overrides) -> ModelConfig:
    values = dict(
        sample_rate=8000,
        encoder_channels=4,
        encoder_ratios=[2, 3],
        encoder_dilations=[1, 3],
        hop=6,
        latent_dim=8,
        rvq_levels=3,
        codebook_size=16,
        codebook_dim=8,
        decoder_dim=16,
        decoder_conv_blocks=1,
        attention_blocks=1,
        attention_heads=2,
        n_fft=24,
    )
    values.update(overrides)
    return ModelConfig(**values)


@pytest.mark.parametrize("padding", ["center", "same"])
def test_output_length_equals_input_length_for_odd_lengths(padding):
    torch.manual_seed(0)
    codec = Codec(small_config(padding=padding)).train()
    for length in (1, 5, 6, 7, 97, 601):
        out = codec(torch.randn(2, 1, length))
        assert isinstance(out, CodecOutput)
        n = math.ceil(length / 6)
        assert out.audio.shape == (2, 1, length)
        assert out.codes.shape == (2, 3, n)
        assert out.latent.shape == (2, 8, n) and out.quantized.shape == (2, 8, n)
        assert out.usage.shape == (3, 16)
        assert torch.isfinite(out.audio).all()
        assert codec.encode(torch.randn(1, 1, length)).shape == (1, 3, n)
        assert codec.decode(out.codes).shape == (2, 1, n * 6)
        assert codec.decode(out.codes, length=length).shape == (2, 1, length)


@pytest.mark.parametrize("padding", ["center", "same"])
def test_istft_head_gives_hop_samples_per_frame(padding):
    stft = StftParams(64, 16, padding=padding)
    head = ISTFTHead(8, stft, log_magnitude_clip=4.6)
    assert head(torch.randn(2, 8, 11)).shape == (2, 1, 11 * 16)


def test_istft_head_clips_the_log_magnitude():
    stft = StftParams(64, 16, padding="same")
    head = ISTFTHead(4, stft, log_magnitude_clip=0.0)  # magnitude at most 1 in every bin
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
        head.proj.bias[: stft.n_bins] = 50.0  # exp(50) unless clipped
    wave = head(torch.zeros(1, 4, 20))
    spec = stft.stft(wave[:, 0])
    assert spec.abs().max() <= 1.0 + 1e-3


def test_reconstruction_gradient_reaches_every_encoder_weight():
    torch.manual_seed(0)
    codec = Codec(small_config(ema=True)).train()
    x = torch.randn(2, 1, 120)
    out = codec(x)
    (out.audio - x).abs().mean().backward()  # no quantizer loss: only the straight-through path
    for name, p in codec.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in codec.decoder.named_parameters():
        assert p.grad is not None, name


def test_decode_of_first_k_levels_equals_forward_with_k_levels():
    torch.manual_seed(0)
    codec = Codec(small_config(rvq_levels=4)).train()
    x = torch.randn(2, 1, 100)
    codec(x)  # k-means initialisation
    codec.eval()
    codes = codec.encode(x)
    with torch.no_grad():
        for k in range(1, 5):
            out = codec(x, levels=k)
            assert out.levels_used == k
            assert torch.equal(out.codes, codes[:, :k])
            assert torch.allclose(codec.decode(codes, levels=k, length=100), out.audio, atol=1e-5)
            assert torch.allclose(codec.decode(codes[:, :k], length=100), out.audio, atol=1e-5)
    with pytest.raises(ConfigError, match="levels = 0"):
        codec(x, levels=0)


def test_encode_changes_no_statistics_even_in_training_mode():
    torch.manual_seed(0)
    codec = Codec(small_config()).train()
    codec(torch.randn(2, 1, 60))
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    codec.encode(torch.randn(2, 1, 60))
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())


def test_state_dict_round_trip_through_weights_only_load():
    torch.manual_seed(0)
    config = small_config(weight_norm=True, activation="silu")
    codec = Codec(config).train()
    for _ in range(2):
        codec(torch.randn(2, 1, 90))
    buffer = io.BytesIO()
    torch.save(codec.state_dict(), buffer)
    buffer.seek(0)
    other = Codec(config)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    codec.eval(), other.eval()
    x = torch.randn(1, 1, 90)
    with torch.no_grad():
        assert torch.equal(codec(x).audio, other(x).audio)
    assert torch.equal(codec.quantizer.stats()["usage"], other.quantizer.stats()["usage"])


def test_bf16_autocast_keeps_quantizer_and_istft_in_float32():
    torch.manual_seed(0)
    codec = Codec(small_config()).train()
    x = torch.randn(2, 1, 96)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = codec(x)
    assert out.audio.dtype == torch.float32 and torch.isfinite(out.audio).all()
    assert out.quantized.dtype == torch.float32
    assert out.codebook_loss.dtype == torch.float32 and out.commitment_loss.dtype == torch.float32
    ((out.audio - x).abs().mean() + out.commitment_loss).backward()
    assert all(torch.isfinite(p.grad).all() for p in codec.parameters() if p.grad is not None)


def test_wrong_input_shape_is_refused_with_the_shape():
    codec = Codec(small_config())
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        codec(torch.randn(2, 100))


def test_parameter_counts_add_up():
    codec = Codec(small_config(ema=False))
    parts = codec.parameter_counts()
    assert sum(parts.values()) == codec.parameter_count() > 0
    assert parts["quantizer"] == 3 * 16 * 8  # non-EMA codebooks are parameters


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_forward_backward():
    torch.manual_seed(0)
    codec = Codec(small_config()).cuda().train()
    x = torch.randn(2, 1, 301, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = codec(x)
    assert out.audio.shape == x.shape and out.audio.dtype == torch.float32
    ((out.audio - x).abs().mean() + out.commitment_loss).backward()
    codec.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        assert codec.decode(codec.encode(x), length=301).shape == x.shape


def test_every_preset_builds_and_runs():
    names = preset_names()
    for name in ("tiny-cpu", "seed-baseline", "speech-24k", "music-44k"):
        assert name in names
    for name in names:
        config = load_preset(name)
        assert preset_summary(name), f"{name} has no one-line description"
        torch.manual_seed(0)
        codec = Codec(config.model)
        m = config.model
        x = torch.randn(1, 1, m.hop * 3 + 1)
        with torch.no_grad():
            out = codec.eval()(x)
        assert out.audio.shape == x.shape, name
        assert out.codes.shape == (1, m.rvq_levels, 4), name
        if name == "tiny-cpu":
            assert 1e6 <= codec.parameter_count() <= 2e6


def test_presets_say_what_they_promise():
    tiny = load_preset("tiny-cpu")
    assert tiny.model.sample_rate == 24000 and tiny.model.hop == 240
    assert (tiny.model.rvq_levels, tiny.model.codebook_size) == (4, 256)
    assert tiny.loss.mel_norm == "log" and tiny.loss.resolved_weights()["mrstft"] > 0

    seed = load_preset("seed-baseline")
    m, w = seed.model, seed.loss.resolved_weights()
    assert seed.loss.mel_norm == "tanh" and w["mrstft"] == 0
    assert not m.ema and not m.kmeans_init and m.dead_code_replace_every == 0
    assert m.attention_blocks > 0
    assert all(w[n] > 0 for n in ("waveform_mse", "codebook", "commitment"))
    assert all(w[f"mel_l1/{n}"] > 0 for n in seed.loss.mel_scales) and len(seed.loss.mel_scales) > 1

    speech = load_preset("speech-24k").model
    assert speech.hop == 320 and speech.encoder_ratios == [2, 4, 5, 8] and speech.n_fft == 1280
    bits = speech.sample_rate / speech.hop * speech.rvq_levels * math.log2(speech.codebook_size)
    assert bits == 6000

    music = load_preset("music-44k")
    assert music.model.sample_rate == 44100 and music.model.encoder_ratios == [2, 4, 8, 8]
    assert (music.model.rvq_levels, music.model.codebook_size) == (9, 1024)
    w = music.loss.resolved_weights()
    assert all(w[f"mel_l1/{n}"] == 15 for n in music.loss.mel_scales)
    assert w["commitment"] == 0.25 and w["codebook"] == 1


def test_leaky_relu_encoder_passes_a_tenth_of_the_negative_side_and_trains():
    from vqstudio.config import DEFAULT_PRESET
    from vqstudio.model.encoder import Activation

    x = torch.linspace(-2.0, 2.0, 41)
    assert torch.equal(Activation("leaky_relu")(x), torch.where(x > 0, x, 0.1 * x))
    torch.manual_seed(0)
    codec = Codec(small_config(activation="leaky_relu")).train()
    wave = torch.randn(2, 1, 6 * 40)
    out = codec(wave)
    (out.audio - wave).square().mean().backward()
    grads = [p.grad for p in codec.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    # any other name is refused with the choices in the message
    with pytest.raises(ConfigError, match="leaky_relu"):
        load_preset(DEFAULT_PRESET, ['model.activation="relu"'])
