"""The encoder: waveform ``[B, 1, T]`` -> latent frames ``[B, latent_dim, N]``, ``N = ceil(T / hop)``.

A stem convolution, then one block per stride in ``model.encoder_ratios``: dilated residual units
at the block's input rate, then a strided convolution that doubles the channels. Plain ELU or SiLU
activations, or leaky ReLU (slope 0.1, HiFi-GAN's), keep it fast on a CPU (no snake); weight norm
is optional.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vqstudio.config import ACTIVATIONS, ModelConfig
from vqstudio.errors import ConfigError
from vqstudio.model.phase_conv import PhaseConv1d


LEAKY_SLOPE = 0.1  # model.activation = "leaky_relu": HiFi-GAN's slope


class Activation(nn.Module):
    """ELU, SiLU or leaky ReLU. With ``may_overwrite`` (its input is a fresh tensor nobody reads
    again) it works in place under ``torch.inference_mode``: the same values without a new
    full-rate tensor.
    Never in place while autograd records; there (on the CPU) its backward reads the output
    (:class:`_EluFromOutput`), equal to ``F.elu``'s to float rounding."""

    def __init__(self, name: str, may_overwrite: bool = False):
        super().__init__()
        if name not in ACTIVATIONS:
            raise ConfigError(f"model.activation = {name!r} is unknown",
                              f"use one of {', '.join(ACTIVATIONS)}")
        self.name = name
        self.may_overwrite = may_overwrite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inplace = self.may_overwrite and torch.is_inference_mode_enabled()
        if self.name == "silu":
            return F.silu(x, inplace=inplace)
        if self.name == "leaky_relu":
            return F.leaky_relu(x, LEAKY_SLOPE, inplace=inplace)
        if (torch.is_inference_mode_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and torch.get_num_threads() == 1):
            return elu_inference(x, inplace)  # at 2 threads its small pieces cost more
        if x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu":
            return _EluFromOutput.apply(x)  # training: a backward without exp
        return F.elu(x, inplace=inplace)

    def extra_repr(self) -> str:
        return self.name + (", may_overwrite" if self.may_overwrite else "")


class _EluFromOutput(torch.autograd.Function):
    """``F.elu`` whose backward reads its output: ``g * (y > 0 ? 1 : y + 1)``, ATen's
    ``elu_backward(is_result=True)``, one pass and no ``exp`` (``F.elu``'s backward takes the
    input and computes ``exp(x)`` again). The same values; the gradient within float rounding of
    ``F.elu``'s (``y + 1`` for ``exp(x)``). Forward + backward of 8 x 16 x 24000, one thread:
    21.4 -> 12.8 ms. Saving the output instead of the input also lets the input go early (the
    next convolution saves the output anyway). Once differentiable."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = F.elu(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, True, y)


ELU_CHUNK = 1 << 16  # elements per piece of elu_inference: its four passes stay in L2


def elu_inference(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """ELU for inference on the CPU: ``max(x, exp(min(x, 0)) - 1)`` computed ``ELU_CHUNK``
    elements at a time, within 6e-8 of ``F.elu`` (``exp(x) - 1`` rounds where ``expm1`` does
    not, near 0). ATen's ELU is ``expm1``, ~2x the cost of ``exp``; this is ~0.8x of F.elu's time
    on a full-rate tensor at one thread (at two, its pieces are too small to share: 1.4-1.7x the
    CPU of F.elu, so :class:`Activation` uses it at one thread only). Any dense layout; another
    one goes to ``F.elu``."""
    dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    if not dense or x.numel() < ELU_CHUNK:
        return F.elu(x, inplace=inplace)
    out = x if inplace else torch.empty_like(x)  # the same strides as x: dense, so flat views
    source = x.as_strided((x.numel(),), (1,), x.storage_offset())
    target = out.as_strided((out.numel(),), (1,), out.storage_offset())
    scratch = torch.empty(ELU_CHUNK, dtype=x.dtype)
    for start in range(0, source.numel(), ELU_CHUNK):
        piece, dest = source[start : start + ELU_CHUNK], target[start : start + ELU_CHUNK]
        negative = scratch[: piece.numel()]
        torch.clamp(piece, max=0.0, out=negative)
        negative.exp_().sub_(1.0)
        torch.maximum(piece, negative, out=dest)
    return out


def make_activation(name: str, may_overwrite: bool = False) -> nn.Module:
    """``"elu"``, ``"silu"`` or ``"leaky_relu"`` as a module (see :class:`Activation` for
    ``may_overwrite``)."""
    return Activation(name, may_overwrite)


def conv1d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    padding: int = 0,
    weight_norm: bool = False,
) -> nn.Module:
    # A dilated one runs over the signal's phases (model/phase_conv.py): the same parameters.
    kind = PhaseConv1d if dilation > 1 else nn.Conv1d
    conv = kind(
        in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, padding=padding
    )
    if weight_norm:
        conv = nn.utils.parametrizations.weight_norm(conv)
    return conv


class ResidualUnit(nn.Module):
    """``x + conv1x1(act(dilated_conv7(act(x))))`` at constant length: ``[B, C, L]`` -> ``[B, C, L]``."""

    def __init__(self, channels: int, dilation: int, activation: str, weight_norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            make_activation(activation),
            conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation,
                   weight_norm=weight_norm),
            make_activation(activation, may_overwrite=True),  # a fresh conv output
            conv1d(channels, channels, 1, weight_norm=weight_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place on the fresh conv output (autograd does not need it): one full-rate tensor
        # fewer per unit, the same bits as ``x + body(x)``.
        return self.body(x).add_(x)


class Downsample(nn.Module):
    """Strided convolution, kernel ``2 * stride``: ``[B, C_in, L]`` -> ``[B, C_out, L / stride]``.

    ``L`` must be a multiple of ``stride``; the ``stride`` samples of padding are split so that
    every output frame sees its own ``stride`` inputs and half a stride either side.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, activation: str, weight_norm: bool
    ):
        super().__init__()
        self.pad = (stride // 2, stride - stride // 2)
        self.act = make_activation(activation, may_overwrite=True)  # the previous layer's output
        self.conv = conv1d(in_channels, out_channels, 2 * stride, stride=stride, weight_norm=weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.pad
        if left == right and x.shape[1] <= FOLD_PAD_CHANNELS_TRAINING and x.device.type == "cpu":
            # the convolution pads: no padded copy of a full-rate input (equal to float rounding)
            conv = self.conv
            return F.conv1d(self.act(x), conv.weight, conv.bias, stride=conv.stride, padding=left)
        return self.conv(F.pad(self.act(x), self.pad))


# A downsampling convolution with at most this many input channels pads inside the 2-D convolution
# under inference (one thread, thread CPU, the padded copy against the folded padding: 16 ch x
# 240000 stride 4 1.62x, 32 x 240000 stride 2 1.49x, 32 x 60000 stride 6 1.16x, the same bits; but
# 64 x 10000 stride 10 0.95x and 256 x 6000 stride 8 0.31x, where oneDNN picks a slower kernel).
FOLD_PAD_CHANNELS = 32
# The same outside inference (the 1-D path training takes), where it pays at fewer channels:
# forward + backward, batch 8, one thread: 16 x 24000 stride 4 78 -> 65 ms; 32 x 6000 stride 6
# 25.7 vs 25.8, 64 x 1000 stride 10 13.2 vs 13.6 (not bit-exact: ~2e-6 on the values).
FOLD_PAD_CHANNELS_TRAINING = 16


class Encoder(nn.Module):
    """Waveform ``[B, 1, T]`` -> latent ``[B, latent_dim, ceil(T / hop)]``.

    Inputs of any length are zero-padded at the end to a multiple of ``hop`` first.

    Under ``torch.inference_mode`` (and ``channels_last_inference``) the same layers run as 2-D
    convolutions on channels-last ``[B, C, 1, T]`` tensors: oneDNN's kernels for that layout are
    2-3x faster than its 1-D ones at the few channels of the full-rate layers. The weights are
    the same parameters; the result equals the 1-D path up to float rounding (tested). A
    downsampling convolution with an even stride and few channels (``FOLD_PAD_CHANNELS``) pads
    inside the convolution instead of copying its input padded (the same bits). Training
    keeps the 1-D path, whose backward is the faster one.
    """

    channels_last_inference = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        wn = config.weight_norm
        act = config.activation
        self.hop = math.prod(config.encoder_ratios)
        channels = config.encoder_channels
        layers: list[nn.Module] = [conv1d(1, channels, 7, padding=3, weight_norm=wn)]
        for stride in config.encoder_ratios:
            layers += [ResidualUnit(channels, d, act, wn) for d in config.encoder_dilations]
            layers.append(Downsample(channels, 2 * channels, stride, act, wn))
            channels *= 2
        layers.append(make_activation(act, may_overwrite=True))
        layers.append(conv1d(channels, config.latent_dim, 3, padding=1, weight_norm=wn))
        self.layers = nn.Sequential(*layers)

    @property
    def context(self) -> int:
        """Samples of input either side of a frame's own ``hop`` samples that can reach it, rounded
        up to whole frames: ``sum((kernel - 1) * dilation * input_stride)`` over the convolutions
        (a bound: it counts each kernel's whole width on both sides)."""
        total, stride = 0, 1
        for layer in self.layers.modules():
            if isinstance(layer, nn.Conv1d):
                total += (layer.kernel_size[0] - 1) * layer.dilation[0] * stride
                stride *= layer.stride[0]
        return -(-total // self.hop) * self.hop

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        extra = -wave.shape[-1] % self.hop
        if extra:
            wave = F.pad(wave, (0, extra))
        if self.channels_last_inference and torch.is_inference_mode_enabled():
            x = wave.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return _run_2d(self.layers, x, owned=False).squeeze(2)
        return self.layers(wave)


def _run_2d(layer: nn.Module, x: torch.Tensor, owned: bool = True) -> torch.Tensor:
    """``layer`` applied to a channels-last ``[B, C, 1, T]`` tensor, its Conv1d as Conv2d.
    ``owned``: ``x`` was made in here (not the caller's), so a residual unit may add into it."""
    if isinstance(layer, nn.Conv1d):
        return _conv_2d(layer, x, layer.padding[0])
    if isinstance(layer, nn.Sequential):
        for part in layer:
            x, owned = _run_2d(part, x, owned), True
        return x
    if isinstance(layer, ResidualUnit):
        first, conv, second, pointwise = layer.body
        h = second(_run_2d(conv, first(x)))
        return _pointwise_add(pointwise, h, x if owned else x.clone())
    if isinstance(layer, Downsample):
        left, right = layer.pad
        if left == right and x.shape[1] <= FOLD_PAD_CHANNELS:
            # an even stride at few channels: the convolution pads, no padded copy of the input
            return _conv_2d(layer.conv, layer.act(x), left)
        return _run_2d(layer.conv, F.pad(layer.act(x), layer.pad))
    return layer(x)  # activations: element-wise, any layout


def _fused_add_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise_")
    except (AttributeError, RuntimeError):
        return False


FUSED_ADD = _fused_add_available()


def _pointwise_add(conv: nn.Conv1d, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``conv(h) + residual`` for a residual unit's 1x1 ``conv`` (channels-last ``[B, C, 1, T]``).
    On the CPU in float32 oneDNN's convolution adds it into ``residual`` itself (a post-op): no
    output tensor and no pass for the add, and outside oneDNN's 1x1 path at one thread, which
    copies the bias into a fresh output first (16 x 240000: 4.96 -> 2.38 ms, one thread). The same
    bits as the convolution then ``add_`` at 16..128 channels, 2.4e-7 at 4 (tested within float
    rounding). Else, or under autocast, the convolution and ``add_`` as before."""
    layout = torch.channels_last
    if (FUSED_ADD and residual.device.type == "cpu" and residual.dtype == h.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and conv.kernel_size[0] == 1
            and conv.stride[0] == 1 and conv.padding[0] == 0 and conv.groups == 1
            and residual.shape == h.shape and residual.is_contiguous(memory_format=layout)
            and h.is_contiguous(memory_format=layout)):
        weight = conv.weight.unsqueeze(2).contiguous(memory_format=layout)
        return torch.ops.mkldnn._convolution_pointwise_(
            residual, h, weight, conv.bias, [0, 0], [1, 1], [1, 1], 1, "add", 1.0, None, [], None)
    return _conv_2d(conv, h, 0).add_(residual)


def _conv_2d(conv: nn.Conv1d, x: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv`` on a channels-last ``[B, C, 1, T]`` tensor as a 2-D convolution, zero-padding
    ``padding`` samples either side."""
    if (conv.in_channels == 1 and conv.groups == 1 and conv.stride[0] == 1
            and conv.dilation[0] == 1 and x.dtype == torch.float32
            and not torch.is_autocast_enabled(x.device.type)):
        return _single_channel_conv(conv, x, padding)
    weight = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, weight, conv.bias, stride=(1, conv.stride[0]), padding=(0, padding),
                    dilation=(1, conv.dilation[0]))


def _single_channel_conv(conv: nn.Conv1d, x: torch.Tensor, padding: int) -> torch.Tensor:
    """The stem: ``conv`` of one input channel on ``[B, 1, 1, T]`` as one matrix product of the
    signal's ``kernel``-sample windows ``[T', kernel]`` and the weights ``[kernel, C]``, whose
    ``[T', C]`` result is the channels-last output. oneDNN's convolution from one channel is
    slow (1 -> 16 channels, kernel 7, 240000 samples, one thread: 22.5 ms; this 4.3 ms; 1 -> 32:
    46.3 -> 7.6 ms); equal up to float rounding (the sums in another order, tested)."""
    b, kernel, out = x.shape[0], conv.kernel_size[0], conv.out_channels
    signal = F.pad(x.reshape(b, -1), (padding, padding))
    windows = signal.unfold(1, kernel, 1)  # [B, T', kernel], a view
    weight = conv.weight.reshape(out, kernel).t()
    if b == 1:
        y = torch.addmm(conv.bias, windows[0], weight) if conv.bias is not None else windows[0] @ weight
    else:
        y = torch.matmul(windows, weight)
        if conv.bias is not None:
            y = y.add_(conv.bias)
    return y.reshape(b, 1, -1, out).permute(0, 3, 1, 2)  # [B, C, 1, T'] channels-last
