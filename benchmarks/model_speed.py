"""Model speed per preset: parameter count, training throughput and inference real-time factor.

    python benchmarks/model_speed.py                      # every preset, CPU (+ CUDA if present)
    python benchmarks/model_speed.py --preset tiny-cpu --device cpu --steps 10
    python benchmarks/model_speed.py --preset speech-24k --device cuda --compare-compile

Training: forward + backward + AdamW step on a batch shaped as the preset says (batch_size x
segment_seconds), with a stand-in objective (L1 on the waveform + codebook + commitment) so the
figure measures the model alone, not the losses module. Reported in audio-seconds per second.
Inference: encode + decode of 10 s of audio without gradients, as a real-time factor
(seconds of compute per second of audio; below 1 is faster than real time).
On CUDA both run under bf16 autocast. Torch uses all CPU cores. Figures, not assertions.

``--compare-compile`` instead times the same training step three ways in one run, interleaved
(eager float32, eager bf16 autocast, ``torch.compile`` + bf16 autocast) and prints each one's
median and its speed-up over eager float32 (on the CPU, bf16 autocast only helps where the cores
have bf16 instructions). The compile's first-call cost is reported apart.

``--compare-layout`` times ``reconstruct`` of 10 s with the encoder's channels-last inference path
on and off, interleaved, in wall time and in process CPU time (CPU time / threads is the figure to
trust on a shared machine: wall time there counts other people's processes), and prints the real-
time factors and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqstudio.config import load_preset, preset_names  # noqa: E402
from vqstudio.model import Codec  # noqa: E402

INFERENCE_SECONDS = 10.0


def _signal(batch: int, samples: int, sample_rate: int, device) -> torch.Tensor:
    """Harmonic tones in noise: enough structure that the codes are not all alike."""
    t = torch.arange(samples, device=device) / sample_rate
    f0 = 110.0 * 2 ** torch.rand(batch, 1, 1, device=device) * 2
    tones = sum(torch.sin(2 * torch.pi * f0 * h * t) / h for h in range(1, 6))
    return 0.2 * tones + 0.01 * torch.randn(batch, 1, samples, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(model: Codec, batch: torch.Tensor, amp: bool, forward=None):
    """One forward + backward + AdamW step as a function (``forward`` defaults to ``model``)."""
    device = batch.device
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    forward = model if forward is None else forward

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = forward(batch)
        loss = (out.audio.float() - batch).abs().mean() + out.codebook_loss + 0.25 * out.commitment_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def train_speed(model: Codec, batch: torch.Tensor, warmup: int, steps: int, amp: bool) -> float:
    """Audio-seconds per second of forward + backward + optimizer step."""
    device = batch.device
    step = training_step(model, batch, amp)
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    return steps * batch.shape[0] * batch.shape[-1] / model.sample_rate / seconds


@torch.inference_mode()
def inference_rtf(model: Codec, wave: torch.Tensor, repeats: int, amp: bool) -> float:
    """Seconds of compute per second of audio for encode + decode."""
    device = wave.device
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        model.decode(model.encode(wave), length=wave.shape[-1])  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model.decode(model.encode(wave), length=wave.shape[-1])
        _sync(device)
    seconds = (time.perf_counter() - start) / repeats
    return seconds / (wave.shape[-1] / model.sample_rate)


def compare_compile(name: str, device: torch.device, steps: int) -> None:
    """Eager float32 against bf16 autocast and torch.compile + bf16, interleaved, one preset."""
    config = load_preset(name)
    m, d = config.model, config.data
    torch.manual_seed(0)
    model = Codec(m).to(device)
    batch = _signal(d.batch_size, int(round(d.segment_seconds * m.sample_rate)), m.sample_rate, device)
    compiled = torch.compile(model)
    variants = {
        "eager fp32": training_step(model, batch, amp=False),
        "eager bf16": training_step(model, batch, amp=True),
        "compile bf16": training_step(model, batch, amp=True, forward=compiled),
    }
    start = time.perf_counter()
    variants["compile bf16"]()
    _sync(device)
    print(f"{name} on {device}: torch.compile first step {time.perf_counter() - start:.1f} s")
    for step in variants.values():  # warm-up
        step()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(steps):
        for label, step in variants.items():
            _sync(device)
            begin = time.perf_counter()
            step()
            _sync(device)
            times[label].append(time.perf_counter() - begin)
    audio = d.batch_size * d.segment_seconds
    base = sorted(times["eager fp32"])[steps // 2]
    for label, samples in times.items():
        median = sorted(samples)[steps // 2]
        print(f"  {label:<13} {median * 1e3:9.1f} ms/step  {audio / median:8.1f} audio-s/s  "
              f"x{base / median:.2f} vs eager fp32")


def compare_layout(name: str, threads: int, repeats: int) -> None:
    """reconstruct of 10 s: channels-last encoder on/off, interleaved, wall and CPU time."""
    import numpy as np

    from vqstudio.model.encoder import Encoder
    from vqstudio.model.inference import reconstruct

    config = load_preset(name)
    torch.manual_seed(0)
    model = Codec(config.model)
    sr = model.sample_rate
    wave = _signal(1, int(INFERENCE_SECONDS * sr), sr, "cpu").view(-1).numpy()
    figures: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for i in range(repeats + 1):
        for layout in (False, True):
            Encoder.channels_last_inference = layout
            wall, cpu = time.perf_counter(), time.process_time()
            reconstruct(model, wave)
            if i:  # the first round is warm-up
                figures[layout].append((time.perf_counter() - wall, time.process_time() - cpu))
    Encoder.channels_last_inference = True
    medians = {k: np.median(np.array(v), axis=0) for k, v in figures.items()}
    for layout, (wall, cpu) in medians.items():
        print(f"{name} reconstruct 10 s, encoder {'channels-last' if layout else '1-D       '}: "
              f"wall {wall * 1e3:7.1f} ms ({INFERENCE_SECONDS / wall:5.1f}x real time), "
              f"CPU {cpu * 1e3:7.1f} ms ({INFERENCE_SECONDS * threads / cpu:5.1f}x real time "
              f"on {threads} dedicated threads)")
    (w1, c1), (w0, c0) = medians[True], medians[False]
    print(f"{name}: channels-last / 1-D: wall {w1 / w0:.3f}, CPU {c1 / c0:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset name (repeatable; default all)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--compare-compile", action="store_true",
                        help="eager fp32 vs bf16 vs torch.compile + bf16 training steps")
    parser.add_argument("--compare-layout", action="store_true",
                        help="reconstruct with the channels-last encoder on and off, interleaved")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.compare_layout:
        for name in args.preset or ["tiny-cpu", "speech-24k"]:
            compare_layout(name, args.threads, args.steps)
        return
    if args.compare_compile:
        device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
        for name in args.preset or ["tiny-cpu"]:
            compare_compile(name, device, args.steps)
        return
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    names = args.preset or preset_names()
    print(f"torch {torch.__version__}, {args.threads} CPU threads, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA'}")
    header = (f"{'preset':<14} {'device':<6} {'params':>9} {'batch':>10} {'train a-s/s':>12} "
              f"{'infer RTF':>10} {'x realtime':>11}")
    print(header)
    print("-" * len(header))
    for name in names:
        config = load_preset(name)
        m, d = config.model, config.data
        segment = int(round(d.segment_seconds * m.sample_rate))
        for device in devices:
            torch.manual_seed(0)
            model = Codec(m).to(device)
            amp = device.type == "cuda"
            # Big presets on the CPU: fewer steps, the figure is what matters, not its decimals.
            big = device.type == "cpu" and model.parameter_count() > 10e6
            steps, warmup = (max(2, args.steps // 5), 1) if big else (args.steps, args.warmup)
            batch = _signal(d.batch_size, segment, m.sample_rate, device)
            train = train_speed(model, batch, warmup, steps, amp)
            wave = _signal(1, int(INFERENCE_SECONDS * m.sample_rate), m.sample_rate, device)
            rtf = inference_rtf(model, wave, repeats=3 if device.type == "cuda" else 1, amp=amp)
            print(
                f"{name:<14} {device.type:<6} {model.parameter_count() / 1e6:>8.2f}M "
                f"{d.batch_size:>3} x {d.segment_seconds:<4g}s {train:>12.1f} {rtf:>10.4f} "
                f"{1 / rtf:>10.1f}x",
                flush=True,
            )
            del model, batch, wave


if __name__ == "__main__":
    main()
