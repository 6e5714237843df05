"""The encoder's training-path convolutions: the dilated ones run over phases (model/phase_conv.py)
and the first downsampling layer pads inside its convolution; the same values and gradients as
the plain ``F.conv1d`` calls, in training and in the encoder as a whole."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vqstudio.config import ModelConfig
from vqstudio.model.encoder import Encoder
from vqstudio.model.phase_conv import PhaseConv1d, phase_conv1d


@pytest.mark.parametrize("channels, length, dilation, kernel", [
    (16, 2400, 3, 7), (32, 600, 3, 7), (8, 1000, 3, 7), (8, 1001, 9, 7), (5, 97, 2, 3), (4, 50, 5, 7),
])
def test_values_and_gradients_equal_the_dilated_convolution(channels, length, dilation, kernel):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(3, channels, length, generator=g, requires_grad=True)
    weight = torch.randn(channels + 2, channels, kernel, generator=g, requires_grad=True)
    bias = torch.randn(channels + 2, generator=g, requires_grad=True)
    padding = dilation * (kernel // 2)
    ours = phase_conv1d(x, weight, bias, dilation, padding)
    reference = F.conv1d(x, weight, bias, padding=padding, dilation=dilation)
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6 * float(reference.detach().abs().max()))
    upstream = torch.randn(reference.shape, generator=g)
    grads = torch.autograd.grad(ours, (x, weight, bias), upstream)
    expected = torch.autograd.grad(reference, (x, weight, bias), upstream)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max())), (got - want).abs().max()


def test_in_float64_it_is_the_same_function():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 31, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 7, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: phase_conv1d(*a, 3, 9), (x, w, b))
    assert torch.allclose(phase_conv1d(x, w, b, 3, 9), F.conv1d(x, w, b, padding=9, dilation=3))


def test_the_module_keeps_the_conv1d_parameters_and_falls_back_where_it_does_not_apply():
    conv = PhaseConv1d(4, 4, 7, dilation=3, padding=9)
    plain = nn.Conv1d(4, 4, 7, dilation=3, padding=9)
    plain.load_state_dict(conv.state_dict())  # the same keys and shapes
    x = torch.randn(2, 4, 120)
    assert torch.allclose(conv(x), plain(x), atol=1e-6)
    odd = PhaseConv1d(4, 4, 7, dilation=3, padding=4)  # padding not a multiple of the dilation
    odd.load_state_dict(conv.state_dict())
    assert torch.equal(odd(x), F.conv1d(x, odd.weight, odd.bias, padding=4, dilation=3))


@pytest.mark.parametrize("weight_norm", [False, True])
def test_the_encoder_trains_as_with_dilated_convolutions(weight_norm):
    """The whole encoder (dilations 1, 3, 9; segment lengths not multiples of 3 or 9 at the
    lower rates) against the same weights with every convolution a plain nn.Conv1d."""
    config = ModelConfig(encoder_dilations=[1, 3, 9], weight_norm=weight_norm)
    torch.manual_seed(0)
    ours = Encoder(config)
    assert any(isinstance(m, PhaseConv1d) for m in ours.modules())
    plain = Encoder(config)
    plain.load_state_dict(ours.state_dict())
    for module in plain.modules():
        if isinstance(module, PhaseConv1d):
            module.forward = nn.Conv1d.forward.__get__(module)  # the dilated 1-D kernel
    wave = torch.randn(2, 1, 3 * config.hop + 17)
    out, ref = ours(wave), plain(wave)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5 * float(ref.detach().abs().max()))
    upstream = torch.randn(ref.shape)
    got = torch.autograd.grad(out, list(ours.parameters()), upstream)
    want = torch.autograd.grad(ref, list(plain.parameters()), upstream)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * float(b.abs().max())), (a - b).abs().max()


@pytest.mark.parametrize("channels, stride", [(16, 4), (8, 6), (32, 6)])
def test_a_downsampling_layer_padding_inside_the_convolution_trains_as_with_the_padded_copy(channels, stride):
    """At few channels the training path's downsampling convolution pads inside the convolution
    (no padded copy of the input): values and gradients as ``conv(F.pad(act(x)))`` to float
    rounding; wider layers take the padded copy itself."""
    from vqstudio.model.encoder import FOLD_PAD_CHANNELS_TRAINING, Downsample

    torch.manual_seed(channels)
    layer = Downsample(channels, 2 * channels, stride, "elu", weight_norm=False)
    x = torch.randn(2, channels, 50 * stride, requires_grad=True)
    ours = layer(x)
    reference = layer.conv(F.pad(layer.act(x), layer.pad))
    if channels > FOLD_PAD_CHANNELS_TRAINING:
        assert torch.equal(ours, reference)
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6 * float(reference.detach().abs().max()))
    upstream = torch.randn(reference.shape)
    got = torch.autograd.grad(ours, [x, *layer.parameters()], upstream)
    want = torch.autograd.grad(reference, [x, *layer.parameters()], upstream)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_the_training_elu_has_f_elu_values_and_gradient_from_its_output():
    """Training's ELU (encoder.Activation, autograd recording on the CPU) takes its backward from
    the output: the values are F.elu's bit for bit, the gradient F.elu's to float rounding, also
    and in float64 (gradcheck)."""
    from vqstudio.model.encoder import Activation

    x = (3 * torch.randn(4, 8, 500)).requires_grad_()
    act = Activation("elu")
    y = act(x)
    assert "EluFromOutput" in type(y.grad_fn).__name__
    assert torch.equal(y, F.elu(x))
    upstream = torch.randn(y.shape)
    got = torch.autograd.grad(y, x, upstream)[0]
    want = torch.autograd.grad(F.elu(x), x, upstream)[0]
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    x64 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(act, (x64,))
