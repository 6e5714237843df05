"""Thread CPU time of one training step, presets and variants interleaved (one thread).

    python benchmarks/step_cpu.py [ROW,ROW,...] [ROUNDS] [--profile]

Rows (default: all but ``speech``): ``baseline`` (seed-baseline), ``fixed`` (seed-fixed) and
seed-fixed without parts of it or with more (``fixed-noMR-noCX``, ``fixed-noCX``, ``fixed-noMR``,
``fixed-MR2`` (MR-STFT and complex_stft at 1024 and 2048 only), ``fixed-noEMA``, ``fixed-tanh``,
``fixed-leaky`` (leaky ReLU for ELU), ``fixed-finemel`` (128- and 256-point mel scales added),
``fixed-fine`` (and MR-STFT resolutions), ``fixed-finemel-leaky``, ``fixed-n960`` / ``fixed-n480``
(the ISTFT head's n_fft), ``fixed-n480-fine``, ``fixed-n480-spread`` (scales 128/512/2048)), so a difference in step cost
can be pinned on a term or on the codebook bookkeeping; ``tiny`` (tiny-cpu) and ``speech``
(speech-24k, adversarial: ~20 s a step). Each row warms up
6 steps; then every round runs 4 steps of each row in turn and the median thread CPU time per step
is printed with its ratio to the first row (thread CPU time, not wall: on a shared machine the
other processes' load falls out). ``--profile`` adds a torch.profiler table of 4 steps of each
row (``--profile-steps=N`` to change that). Figures, not assertions.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from vqstudio.config import load_preset
from vqstudio.train.trainer import Trainer

COMMON = ["train.cpu_threads=1", "train.validate_every=0", "train.checkpoint_every=0",
          "train.log_every=1000000", "loss.grad_share_every=0"]
FINE_MEL = ["loss.mel_scales=[128, 256, 512, 1024, 2048]", "loss.mel_bins=[16, 32, 64, 80, 128]"]
FINE_MR = ["loss.mrstft_fft_sizes=[128, 256, 512, 1024, 2048]", "loss.mrstft_hops=[32, 64, 128, 256, 512]",
           "loss.mrstft_win_lengths=[128, 256, 512, 1024, 2048]"]
ROWS = {
    "baseline": ("seed-baseline", []),
    "fixed": ("seed-fixed", []),
    "fixed-noMR-noCX": ("seed-fixed", ["loss.weights.mrstft=0", "loss.weights.complex_stft=0"]),
    "fixed-noCX": ("seed-fixed", ["loss.weights.complex_stft=0"]),
    "fixed-noMR": ("seed-fixed", ["loss.weights.mrstft=0"]),
    "fixed-MR2": ("seed-fixed", ["loss.mrstft_fft_sizes=[1024, 2048]", "loss.mrstft_hops=[256, 512]",
                                 "loss.mrstft_win_lengths=[1024, 2048]"]),
    "fixed-noEMA": ("seed-fixed", ["model.ema=false", "model.kmeans_init=false", "model.dead_code_replace_every=0"]),
    "fixed-tanh": ("seed-fixed", ['loss.mel_norm="tanh"']),
    "fixed-leaky": ("seed-fixed", ['model.activation="leaky_relu"']),
    # 128- and 256-point mel scales (and MR-STFT resolutions: fixed-fine) added to seed-fixed's
    "fixed-finemel": ("seed-fixed", FINE_MEL),
    "fixed-fine": ("seed-fixed", FINE_MEL + FINE_MR),
    "fixed-finemel-leaky": ("seed-fixed", FINE_MEL + ['model.activation="leaky_relu"']),
    "fixed-n960": ("seed-fixed", ["model.n_fft=960"]),  # the ISTFT head's window as seed-baseline's
    "fixed-n480": ("seed-fixed", ["model.n_fft=480"]),
    "fixed-n480-fine": ("seed-fixed", ["model.n_fft=480"] + FINE_MEL + FINE_MR),
    "fixed-n480-spread": ("seed-fixed", ["model.n_fft=480", "loss.mel_scales=[128, 512, 2048]",
                                         "loss.mel_bins=[16, 64, 128]", "loss.mrstft_fft_sizes=[128, 512, 2048]",
                                         "loss.mrstft_hops=[32, 128, 512]", "loss.mrstft_win_lengths=[128, 512, 2048]"]),
    "tiny": ("tiny-cpu", []),
    "speech": ("speech-24k", []),
}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]  # --profile-steps=N: see below
    selected = args[0].split(",") if args else [r for r in ROWS if r != "speech"]
    rounds = int(args[1]) if len(args) > 1 else 5
    torch.set_num_threads(1)
    trainers = {}
    for name in selected:
        torch.manual_seed(0)
        preset, sets = ROWS[name]
        trainers[name] = Trainer(load_preset(preset, COMMON + sets), None, device="cpu")
    for trainer in trainers.values():
        for _ in range(6):
            trainer.step()
    cpu: dict[str, list[float]] = {name: [] for name in trainers}
    for r in range(rounds):
        for name, trainer in trainers.items():
            for _ in range(4):
                start = time.thread_time()
                trainer.step()
                cpu[name].append(time.thread_time() - start)
        print("round", r, {n: round(statistics.median(v), 3) for n, v in cpu.items()}, flush=True)
    base = statistics.median(cpu[selected[0]])
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"{name:<20} median CPU s/step {median:.3f}  ratio {median / base:.3f}")
    if "--profile" in sys.argv:
        from torch.profiler import ProfilerActivity, profile

        steps = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--profile-steps=")), 4)
        for name in selected:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(steps):
                    trainers[name].step()
            print("=====", name)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    for trainer in trainers.values():
        trainer.close()


if __name__ == "__main__":
    main()
