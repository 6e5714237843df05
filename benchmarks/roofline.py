"""How far the codec is from the machine's limit: work per second of audio against measured peak.

    python benchmarks/roofline.py --threads 2 [--preset tiny-cpu ...] [--profile]

Per preset: multiply-accumulates (MACs) per second of audio for the encoder, the quantizer, the
decoder body and the ISTFT head, counted twice (by ``torch.utils.flop_counter.FlopCounterMode``
and analytically from the layer shapes, so each checks the other; the FFT of the head is only in
the analytic count, the flop counter does not see FFTs). Then the machine's fp32 peak measured
with the same thread count (a large matmul and a wide conv1d), and the fraction of it that
inference (``reconstruct`` of 10 s) and a training step (forward + backward + AdamW, counted as
3x the forward MACs) reach. ``--profile`` adds where inference time goes (torch.profiler).
Times are process CPU time per thread by default (`--clock wall` for elapsed time). Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import _signal, train_speed  # noqa: E402

from vqstudio.config import load_preset, preset_names  # noqa: E402
from vqstudio.model import Codec  # noqa: E402
from vqstudio.model.decoder import AttentionBlock  # noqa: E402
from vqstudio.model.encoder import Downsample  # noqa: E402
from vqstudio.model.inference import reconstruct  # noqa: E402


def clock() -> float:
    """Seconds on the chosen clock: wall, or process CPU time per thread (``--clock cpu``, the
    default: on a shared machine wall time counts other processes; CPU time / threads is what the
    same work takes on that many dedicated cores, a little pessimistic where threads spin)."""
    if CLOCK == "wall":
        return time.perf_counter()
    return time.process_time() / torch.get_num_threads()


CLOCK = "cpu"


def median_seconds(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return float(np.median(times))


def peak_gmacs() -> dict[str, float]:
    """Measured fp32 GMAC/s of a 1024^3 matmul and of a 256 -> 256, kernel 7 conv1d."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    x, w = torch.randn(1, 256, 16000), torch.randn(256, 256, 7)
    with torch.inference_mode():
        mm = 1024**3 / median_seconds(lambda: a @ b) / 1e9
        conv = 256 * 256 * 7 * 16000 / median_seconds(lambda: torch.conv1d(x, w, padding=3)) / 1e9
    return {"matmul": mm, "conv1d": conv}


def counted_macs(module: nn.Module, *args) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():  # weight norm fails under inference_mode here
        module(*args)
    return counter.get_total_flops() / 2


def analytic_macs(module: nn.Module, x: torch.Tensor) -> float:
    """MACs of every Conv1d, Linear and attention product in ``module`` for input ``x``, from
    the shapes each layer actually sees (recorded with forward hooks)."""
    total = 0.0

    def conv_hook(layer, _inputs, output):
        nonlocal total
        total += output.numel() * layer.in_channels // layer.groups * layer.kernel_size[0]

    def linear_hook(layer, _inputs, output):
        nonlocal total
        total += output.numel() * layer.in_features

    def attention_hook(layer, inputs, _output):
        nonlocal total
        b, n, dim = inputs[0].shape
        total += 2 * b * n * n * dim  # q k^T and weights @ v, all heads together

    def downsample_hook(layer, _inputs, output):  # its conv may run functionally (padding folded)
        nonlocal total
        total += output.numel() * layer.conv.in_channels * layer.conv.kernel_size[0]

    inside = {id(layer.conv) for layer in module.modules() if isinstance(layer, Downsample)}
    hooks = []
    for layer in module.modules():
        if isinstance(layer, Downsample):
            hooks.append(layer.register_forward_hook(downsample_hook))
        elif isinstance(layer, nn.Conv1d) and id(layer) not in inside:
            hooks.append(layer.register_forward_hook(conv_hook))
        elif isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_hook(linear_hook))
        elif isinstance(layer, AttentionBlock):
            hooks.append(layer.register_forward_hook(attention_hook))
    try:
        with torch.no_grad():  # not inference_mode: there the encoder bypasses its Conv1d modules
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def parts(model: Codec, seconds: float) -> dict[str, tuple[float, float]]:
    """Per part: (flop-counter MACs, analytic MACs) per second of audio for a clip of ``seconds``
    (attention grows with the clip, so the figure is for that length)."""
    sr, cfg = model.sample_rate, model.config
    wave = _signal(1, int(seconds * sr), sr, "cpu")
    with torch.inference_mode():
        latent = model.encoder(wave)
        q = model.quantizer(latent, None).quantized
    frames = latent.shape[-1]
    body = _DecoderBody(model.decoder)
    with torch.inference_mode():
        features = body(q)
    head = model.decoder.head
    # Quantizer: each level's distances to K codewords (the argmin's matmul) and the projections.
    k, d, levels = cfg.codebook_size, cfg.codebook_dim, cfg.rvq_levels
    quantizer_analytic = levels * frames * (k * d + (2 * cfg.latent_dim * d if d != cfg.latent_dim else 0))
    n_fft, bins = cfg.n_fft, cfg.n_fft // 2 + 1
    head_proj = frames * head.proj.in_channels * head.proj.out_channels * head.proj.kernel_size[0]
    fft = frames * 2.5 * n_fft * math.log2(n_fft) / 2  # a real inverse FFT, in MAC-equivalents
    result = {
        "encoder": (counted_macs(model.encoder, wave), analytic_macs(model.encoder, wave)),
        "quantizer": (counted_macs(model.quantizer, latent), quantizer_analytic),
        "decoder": (counted_macs(body, q), analytic_macs(body, q)),
        "istft head": (counted_macs(head, features), head_proj + fft + frames * bins * 4),
    }
    return {name: (a / seconds, b / seconds) for name, (a, b) in result.items()}


class _DecoderBody(nn.Module):
    """The decoder up to the ISTFT head's input: ``[B, latent_dim, N]`` -> ``[B, dim, N]``."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, latent):
        dec = self.decoder
        x = dec.norm(dec.embed(latent).transpose(1, 2)).transpose(1, 2)
        for block in dec.convs:
            x = block(x)
        x = x.transpose(1, 2)
        for block in dec.attention:
            x = block(x)
        return dec.final_norm(x).transpose(1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="inference clip length")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: process CPU time / threads (default); wall: elapsed time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    torch.set_num_threads(args.threads)
    peak = peak_gmacs()
    best = max(peak.values())
    print(f"torch {torch.__version__}, {args.threads} threads, {CLOCK} clock; measured fp32 peak: "
          f"matmul {peak['matmul']:.1f} GMAC/s, conv1d {peak['conv1d']:.1f} GMAC/s")
    for name in args.preset or preset_names():
        config = load_preset(name)
        torch.manual_seed(0)
        model = Codec(config.model)
        sr = model.sample_rate
        table = parts(model, args.seconds)
        print(f"\n{name}: MMAC per second of audio (flop counter / analytic), {args.seconds:g} s clip")
        for part, (counted, analytic) in table.items():
            print(f"  {part:<11} {counted / 1e6:10.1f} / {analytic / 1e6:10.1f}")
        forward = sum(a for _, a in table.values())
        print(f"  {'total':<11} {sum(c for c, _ in table.values()) / 1e6:10.1f} / {forward / 1e6:10.1f}")
        wave = _signal(1, int(args.seconds * sr), sr, "cpu").view(-1).numpy()
        seconds = median_seconds(lambda: reconstruct(model, wave), repeats=3)
        realtime = args.seconds / seconds
        inference = forward * realtime / 1e9
        print(f"  inference: {realtime:7.1f}x real time = {inference:6.1f} GMAC/s "
              f"= {100 * inference / best:5.1f}% of peak")
        d = config.data
        batch = _signal(d.batch_size, int(d.segment_seconds * sr), sr, "cpu")
        segment_forward = sum(a for _, a in parts(model, d.segment_seconds).values())
        begin = clock()
        train_speed(model, batch, 1, args.train_steps, amp=False)  # 1 warm-up + the steps
        audio_per_s = (1 + args.train_steps) * d.batch_size * d.segment_seconds / (clock() - begin)
        training = 3 * segment_forward * audio_per_s / 1e9
        print(f"  training (model only, {d.batch_size} x {d.segment_seconds:g} s): "
              f"{audio_per_s:6.2f} audio-s/s = {training:6.1f} GMAC/s = {100 * training / best:5.1f}% of peak")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                reconstruct(model, wave)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
