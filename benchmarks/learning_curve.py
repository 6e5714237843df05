"""Does the default preset learn? Trains tiny-cpu on the demo corpus for a fixed wall time and
prints evaluation metrics on the demo validation split at the start and at the end.

    python benchmarks/learning_curve.py [--minutes 10] [--preset tiny-cpu] [--run DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from vqstudio.audio.io import read_audio
from vqstudio.audio.metrics import aggregate, evaluate_pair
from vqstudio.config import load_preset
from vqstudio.train.trainer import Trainer

EVAL_SECONDS = 10.0


def evaluate(trainer: Trainer) -> dict:
    sr = trainer.config.model.sample_rate
    rows = []
    for info in trainer.data.validation.files:
        wave = read_audio(info.path, sr, duration=EVAL_SECONDS)
        rows.append(evaluate_pair(wave, trainer.reconstruct(wave), sr))
    return aggregate(rows)


def row(label: str, step: int, m: dict) -> str:
    bands = " ".join(f"{k}:{v:6.1f}" for k, v in m["band_error_db"].items())
    return (f"{label:<6}{step:>7}{m['si_sdr_db']:>9.2f}{m['mel_distance']:>9.3f}"
            f"{m['mrstft_distance']:>9.3f}{m['noise_floor_dbfs']:>11.1f}  {bands}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--run", default=None, help="keep the run folder here")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    run = args.run or tempfile.mkdtemp(prefix="vqstudio-curve-")
    trainer = Trainer(load_preset(args.preset, args.set), run)
    files = ", ".join(info.path.rsplit("/", 1)[-1] for info in trainer.data.validation.files)
    print(f"{args.preset} on {trainer.device}, validation files: {files}; run folder {run}")
    header = f"{'when':<6}{'step':>7}{'SI-SDR':>9}{'mel':>9}{'MR-STFT':>9}{'floor dBFS':>11}  band error dB"
    print(header)
    print(row("start", trainer.step_count, evaluate(trainer)), flush=True)
    deadline = time.monotonic() + args.minutes * 60
    speeds = []
    while time.monotonic() < deadline:
        report = trainer.step()
        speeds.append(report.audio_seconds_per_second)
        if report.step % 500 == 0:
            print(f"  step {report.step}: {np.median(speeds[-100:]):.1f} audio-s/s", flush=True)
    trainer.save_checkpoint()
    print(row("end", trainer.step_count, evaluate(trainer)))
    print(f"median training speed {np.median(speeds):.1f} audio-seconds/s over {len(speeds)} steps")
    trainer.close()


if __name__ == "__main__":
    main()
