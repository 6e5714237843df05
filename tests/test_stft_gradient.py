"""The loss terms' STFT with its hand-written backward (audio/stft_gradient.py): torch.stft's
values bit for bit, and autograd's gradient up to float rounding."""

from __future__ import annotations

import math

import pytest
import torch

from vqstudio.audio.spectral import StftParams
from vqstudio.audio.stft_gradient import stft_of_padded


def reference(stft: StftParams, x: torch.Tensor) -> torch.Tensor:
    """torch.stft with autograd's own backward: what StftParams.stft did before."""
    return torch.stft(x, stft.n_fft, hop_length=stft.hop, win_length=stft.win,
                      window=stft.window_tensor(x.device, x.dtype), center=True, pad_mode="reflect",
                      return_complex=True)


def graph_nodes(tensor: torch.Tensor) -> list[str]:
    """The names of the autograd nodes behind ``tensor``."""
    seen, todo = [], [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None:
            seen.append(type(node).__name__)
            todo += [n for n, _ in node.next_functions]
    return seen


def signal(seed: int, batch: int = 3, length: int = 6000) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 24000
    return 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(batch, length, generator=g)


@pytest.mark.parametrize("n_fft, hop, window", [
    (512, 128, "hann"), (1024, 256, "hann"), (2048, 512, "hann"), (960, 240, "hamming"),
    (400, 160, "hann"),  # a hop that does not divide n_fft: the frames are folded back
])
def test_values_are_torch_stft_and_the_gradient_autograd(n_fft, hop, window):
    stft = StftParams(n_fft, hop, window=window, padding="center")
    x = signal(n_fft).requires_grad_()
    ours, theirs = stft.stft(x), reference(stft, x)
    assert any("FramedStft" in name for name in graph_nodes(ours))  # the hand-written backward
    assert torch.equal(ours, theirs)
    upstream = torch.randn(theirs.shape, dtype=theirs.dtype, generator=torch.Generator().manual_seed(1))
    got = torch.autograd.grad(ours, x, upstream)[0]
    want = torch.autograd.grad(theirs, x, upstream)[0]
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


def test_gradcheck_in_float64_with_a_length_the_frames_do_not_cover():
    x = torch.randn(2, 70, dtype=torch.float64, requires_grad=True)  # 70 = 3 frames of hop 16 + 22
    window = torch.hann_window(32, periodic=True, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: stft_of_padded(v, window, 32, 16), (x,))
    assert torch.autograd.gradcheck(lambda v: stft_of_padded(v, window, 32, 12), (x,))


def test_without_a_graph_it_is_plain_torch_stft():
    stft = StftParams(512, 128)
    x = signal(3)
    with torch.no_grad():
        spec = stft.stft(x.requires_grad_())
    assert spec.grad_fn is None and torch.equal(spec, reference(stft, x.detach()))
