"""Reconstructing a clip: long clips encoded in chunks give the whole clip's latent and codes,
reconstruct leaves the model usable for training, and the CPU's autocast and compile paths run."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import torch

from test_codec import small_config as codec_config
from vqstudio.config import ModelConfig
from vqstudio.model import Codec
from vqstudio.model import inference
from vqstudio.model.inference import encode_in_chunks, reconstruct


def small_config(**overrides) -> ModelConfig:
    return codec_config(**{"kmeans_init": False, **overrides})


def tone(samples: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 8000
    return (0.3 * torch.sin(2 * math.pi * 330 * t) + 0.05 * torch.randn(samples, generator=g)).view(1, 1, -1)


def test_context_is_the_encoders_reach_and_chunks_with_it_give_the_whole_latent():
    torch.manual_seed(0)
    codec = Codec(small_config()).eval()
    encoder = codec.encoder
    # stem 6, then (6 + 18) per unit at stride 1 and 3 ... : the bound, in whole frames.
    assert encoder.context % encoder.hop == 0 and encoder.context > 0
    x = tone(6 * 97 + 5)  # not a whole number of frames
    with torch.inference_mode():
        whole = encoder(x)
        for chunk in (1, 7, 40, 96, 97):
            chunked = encode_in_chunks(encoder, x, chunk)
            assert chunked.shape == whole.shape
            torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
            q_whole, q_chunked = codec.quantizer(whole, None), codec.quantizer(chunked, None)
            assert torch.equal(q_whole.codes, q_chunked.codes), chunk
        # Too little context is not equal: the test can tell.
        with_less = _with_context(encoder, encoder.context // 4)
        assert not torch.allclose(encode_in_chunks(with_less, x, 7), whole, atol=1e-4)


def _with_context(encoder, samples):
    class Shallow(type(encoder)):
        context = samples
    shallow = Shallow.__new__(Shallow)
    shallow.__dict__ = encoder.__dict__
    return shallow


def test_a_long_clip_is_reconstructed_in_chunks_like_a_short_one(monkeypatch):
    torch.manual_seed(0)
    codec = Codec(small_config()).eval()
    wave = tone(6 * 300 + 1).view(-1).numpy()
    whole, whole_codes = reconstruct(codec, wave, with_codes=True)
    monkeypatch.setattr(inference, "CHUNK_SECONDS", 6 * 25 / 8000)  # 25 frames per chunk
    chunked, chunked_codes = reconstruct(codec, wave, with_codes=True)
    assert np.array_equal(whole_codes, chunked_codes)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-5)
    assert chunked.shape == wave.shape


def test_reconstruct_first_then_train_leaves_no_inference_tensors_behind():
    # The STFT window is cached on first use; made under inference_mode it could not be saved
    # for backward, and the first training step after an early reconstruction failed.
    torch.manual_seed(0)
    codec = Codec(small_config(n_fft=36, hop=6, window="blackman")).train()
    reconstruct(codec, tone(600).view(-1).numpy())
    assert codec.training
    out = codec(tone(600))
    (out.audio - tone(600)).abs().mean().backward()
    assert codec.decoder.head.proj.weight.grad is not None


def test_bf16_autocast_reconstruction_on_the_cpu_is_close_to_float32():
    torch.manual_seed(0)
    codec = Codec(small_config()).eval()
    wave = tone(6 * 80).view(-1).numpy()
    exact = reconstruct(codec, wave)
    bf16 = reconstruct(codec, wave, amp=True)
    assert bf16.dtype == np.float32 and np.isfinite(bf16).all()
    assert np.abs(bf16 - exact).max() < 0.1 * np.abs(exact).max() + 1e-3


COMPILE_STEP = """
import torch
from vqstudio.model.decoder import AttentionBlock, ConvNeXtBlock
torch.manual_seed(0)
blocks = torch.nn.Sequential(ConvNeXtBlock(16, 0.5), _T := type("T", (torch.nn.Module,), {
    "forward": lambda self, x: x.transpose(1, 2)})(), AttentionBlock(16, 2, 0.5))
compiled = torch.compile(blocks, dynamic=False)
x = torch.randn(2, 16, 12)
exact = blocks(x)  # eager float32
with torch.autocast("cpu", dtype=torch.bfloat16):
    out = compiled(x)
error = (out.float() - exact).abs().max()
assert out.shape == (2, 12, 16) and torch.isfinite(out).all()
assert 0 < error < 0.05, error  # bf16 matmuls ran (not bit-equal to float32), and close
out.float().square().mean().backward()
assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in blocks.parameters())
print("compiled bf16 step ok")
"""


def test_compiled_decoder_blocks_train_a_step_under_bf16_autocast_on_the_cpu():
    # What the GPU check does with torch.compile, as far as a CPU can: the decoder's blocks
    # (the part of the codec inductor generates code for; the ISTFT's complex ops stay eager)
    # compiled, a bf16 autocast forward close to eager, a backward with finite gradients. In a
    # subprocess: inductor leaves compile worker threads behind.
    done = subprocess.run([sys.executable, "-c", COMPILE_STEP], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled bf16 step ok" in done.stdout


def test_residual_units_add_in_place_with_the_same_bits_and_gradients():
    from vqstudio.model.encoder import ResidualUnit

    torch.manual_seed(0)
    for weight_norm in (False, True):
        unit = ResidualUnit(8, 3, "elu", weight_norm)
        x = torch.randn(2, 8, 50, requires_grad=True)
        out = unit(x)
        assert torch.equal(out, x + unit.body(x))
        out.square().sum().backward()
        expected = torch.autograd.grad((x + unit.body(x)).square().sum(), x)[0]
        assert torch.equal(x.grad, expected)


def test_activations_work_in_place_only_under_inference_mode_with_the_same_bits():
    torch.manual_seed(0)
    for activation in ("elu", "silu", "leaky_relu"):
        codec = Codec(small_config(activation=activation, weight_norm=True)).eval()
        codec.encoder.channels_last_inference = False  # the same layout as under no_grad
        x = tone(6 * 40)
        with torch.no_grad():  # autograd off but not inference mode: nothing in place
            expected = codec.encoder(x)
        with torch.inference_mode():
            kept = x.clone()
            latent = codec.encoder(x)
        assert torch.equal(latent, expected), activation
        assert torch.equal(x, kept)  # the caller's input is never overwritten
    # While autograd records, the gradient is computed as before (from the inputs).
    unit_in = torch.randn(1, 4, 30, requires_grad=True)
    act = codec.encoder.layers[1].body[2]
    assert act.may_overwrite
    out = act(unit_in)
    assert out.data_ptr() != unit_in.data_ptr()


def test_inference_runs_the_encoder_channels_last_with_the_same_codes():
    from vqstudio.model.encoder import Encoder

    assert Encoder.channels_last_inference  # what reconstruct gets
    torch.manual_seed(0)
    for weight_norm in (False, True):
        codec = Codec(small_config(weight_norm=weight_norm)).eval()
        x = tone(6 * 400 + 5, seed=1)
        with torch.no_grad():
            plain = codec.encoder(x)
            plain_codes = codec.quantizer(plain, None).codes
        with torch.inference_mode():
            kept = x.clone()
            fast = codec.encoder(x)
            fast_codes = codec.quantizer(fast, None).codes
        assert torch.equal(x, kept)
        assert fast.shape == plain.shape
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
        assert torch.equal(fast_codes, plain_codes), weight_norm
        # reconstruct (inference mode) against the codec's own forward under no_grad
        with torch.no_grad():
            expected = codec(x).audio.view(-1).numpy()
        np.testing.assert_allclose(reconstruct(codec, x.view(-1).numpy()), expected, rtol=0, atol=1e-5)


def test_the_gpu_checks_every_term_step_runs_on_the_cpu_under_bf16_autocast(corpus):
    # gpu_check.sh's part 2 as far as a CPU can: every loss term weighted (adversarial too), the
    # trainer's steps, then a bf16 autocast ("cpu") forward + backward whose gradients reach
    # every codec parameter, finite. A real subprocess of the very script the GPU check runs.
    from helpers import REPO, TINY

    sets = [a for item in TINY + [f"data.path={corpus}"] for a in ("--set", item)]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "every_term_step.py"),
                           "--device", "cpu", "--preset", "tiny-cpu", "--steps", "2", *sets],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "0 without a gradient, 0 with a non-finite one" in done.stdout
    assert "feature_matching=2" in done.stdout and "complex_stft=1" in done.stdout
    assert "bf16 step with every term on cpu: ok" in done.stdout


def test_inference_elu_is_within_float_rounding_of_elu_in_any_layout_and_keeps_the_codes():
    from vqstudio.model.encoder import ELU_CHUNK, elu_inference

    torch.manual_seed(0)
    values = torch.cat([torch.randn(3 * ELU_CHUNK) * 4, torch.tensor([0.0, -0.0, -1e-9, 1e-9, -50.0, 30.0])])
    for shape, layout in (((values.numel(),), torch.contiguous_format),
                          ((1, 6, 1, values.numel() // 6), torch.channels_last)):
        x = values[: math.prod(shape)].reshape(shape).contiguous(memory_format=layout)
        expected = torch.nn.functional.elu(x)
        kept = x.clone()
        out = elu_inference(x)
        assert torch.equal(x, kept) and out.stride() == x.stride()
        torch.testing.assert_close(out, expected, rtol=0, atol=2e-7)
        assert torch.equal(out > 0, expected > 0) and out.min() >= -1
        same = elu_inference(x, inplace=True)
        assert same.data_ptr() == x.data_ptr() and torch.equal(same, out)
    strided = torch.randn(4, 2 * ELU_CHUNK)[:, ::2]  # not dense: F.elu itself
    assert torch.equal(elu_inference(strided), torch.nn.functional.elu(strided))

    # At one thread the encoder's activations under inference mode are elu_inference: the same
    # codes as the plain path, the latent within float rounding.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        codec = Codec(small_config()).eval()
        x = tone(8000 * 3, seed=2)
        with torch.no_grad():
            plain = codec.encoder(x)
        with torch.inference_mode():
            fast = codec.encoder(x)
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
        assert torch.equal(codec.quantizer(fast, None).codes, codec.quantizer(plain, None).codes)
    finally:
        torch.set_num_threads(threads)


def test_residual_units_add_into_their_own_input_by_onednn_within_float_rounding(monkeypatch):
    from vqstudio.model import encoder
    from vqstudio.model.encoder import ResidualUnit, _run_2d

    if not encoder.FUSED_ADD:
        import pytest

        pytest.skip("this torch has no oneDNN convolution with a fused add")
    torch.manual_seed(0)
    for channels, weight_norm in ((16, False), (4, True)):
        unit = ResidualUnit(channels, 3, "elu", weight_norm).eval()
        x = torch.randn(2, channels, 1, 3001).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            monkeypatch.setattr(encoder, "FUSED_ADD", False)
            plain = _run_2d(unit, x.clone())
            monkeypatch.setattr(encoder, "FUSED_ADD", True)
            kept = x.clone()
            fused = _run_2d(unit, x, owned=False)  # the caller's tensor: never written
            assert torch.equal(x, kept)
            owned = x.clone()
            into = _run_2d(unit, owned)  # made in the encoder: the sum is written into it
        assert into.data_ptr() == owned.data_ptr() and torch.equal(into, fused)
        assert fused.is_contiguous(memory_format=torch.channels_last)
        # within float rounding (on this machine's oneDNN the same bits at 16..128 channels)
        torch.testing.assert_close(fused, plain, rtol=0, atol=1e-6)


def test_the_one_channel_stem_is_a_matrix_product_within_float_rounding_of_the_convolution():
    from torch import nn

    from vqstudio.model.encoder import _single_channel_conv

    torch.manual_seed(0)
    for batch, bias, padding in ((1, True, 3), (3, True, 3), (2, False, 0)):
        conv = nn.Conv1d(1, 16, 7, padding=padding, bias=bias)
        x = torch.randn(batch, 1, 1, 5003).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            expected = torch.nn.functional.conv2d(x, conv.weight.unsqueeze(2), conv.bias,
                                                  padding=(0, padding))
            out = _single_channel_conv(conv, x, padding)
        assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
