"""Training speed per preset, headless: audio-seconds trained per wall-clock second.

    python benchmarks/train_speed.py [--preset NAME ...] [--steps 10] [--device cpu|cuda]

Runs the full training step (every loss term, the optimizer, the trainer's bookkeeping) on the
demo corpus without a run folder. On the CPU it reports both the GUI-friendly default (all cores
but one) and all cores.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from vqstudio.config import load_preset, preset_names
from vqstudio.train.trainer import Trainer


def measure(preset: str, device: str, threads: int, steps: int, warmup: int = 2) -> tuple[float, float]:
    config = load_preset(preset, [f"train.cpu_threads={threads}", "train.validate_every=0",
                                  "train.checkpoint_every=0", "train.log_every=1000000"])
    trainer = Trainer(config, None, device=device)
    for _ in range(warmup):
        trainer.step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    audio = steps * config.data.batch_size * config.data.segment_seconds
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    trainer.close()
    return audio / seconds, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cores = os.cpu_count() or 1
    print(f"torch {torch.__version__}, {cores} CPU cores")
    print(f"{'preset':<15}{'device':<8}{'threads':>8}{'params (M)':>12}{'audio-s/s':>11}")
    for preset in args.preset or preset_names():
        for device in devices:
            thread_choices = [max(1, cores - 1), cores] if device == "cpu" else [cores]
            for threads in dict.fromkeys(thread_choices):
                speed, params = measure(preset, device, threads, args.steps)
                print(f"{preset:<15}{device:<8}{threads:>8}{params:>12.2f}{speed:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
