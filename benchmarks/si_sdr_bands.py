"""Where a reconstruction's waveform lines up with the original: SI-SDR per frequency band.

    python benchmarks/si_sdr_bands.py RUN[:CKPT] ... [--match 'speech*'] [--data DIR]

SI-SDR of the whole clip is dominated by its loudest band (speech: below 1 kHz). Here both clips
are cut into bands (6th-order Butterworth, zero phase) and SI-SDR is taken per band, beside the
original's level in that band, as means over the chosen files: a band at -30 dB is one whose
phase the model has not learned at all, whatever its magnitude. Figures, not assertions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import signal

from vqstudio.audio.corpus import scan_corpus
from vqstudio.audio.io import read_audio
from vqstudio.audio.metrics import si_sdr_db
from vqstudio.config import DEMO_DIR
from vqstudio.experiments.checkpoint_ref import resolve_ref
from vqstudio.experiments.corpus_eval import load_model, pick_files
from vqstudio.model.inference import reconstruct

EDGES = (500.0, 1000.0, 2000.0, 4000.0)


def bands(sample_rate: int):
    """(name, second-order sections) per band: below the first edge, between edges, above the last."""
    bounds = [0.0, *EDGES, sample_rate / 2]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo == 0:
            sos = signal.butter(6, hi, btype="lowpass", fs=sample_rate, output="sos")
        elif hi >= sample_rate / 2:
            sos = signal.butter(6, lo, btype="highpass", fs=sample_rate, output="sos")
        else:
            sos = signal.butter(6, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
        out.append((f"{lo / 1000:g}-{hi / 1000:g}k", sos))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="+", metavar="RUN[:CKPT]")
    parser.add_argument("--data", default=None, help="corpus (default: the first run's, or the demo)")
    parser.add_argument("--match", default="speech*", help="file names to measure (a glob)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    first = resolve_ref(args.refs[0])
    sr = first.config.model.sample_rate
    corpus = scan_corpus(args.data or first.config.data.path or DEMO_DIR, sr)
    files = pick_files(corpus, first.config, "all", args.match)
    cut = bands(sr)
    waves = [read_audio(f.path, sr) for f in files]
    print(f"{len(files)} files matching {args.match!r}; SI-SDR dB per band (the original's level dBFS)")
    print(f"{'run:step':<28}{'all':>8}" + "".join(f"{name:>16}" for name, _ in cut))
    for text in args.refs:
        ref = resolve_ref(text)
        model, step = load_model(ref)
        whole, per_band, levels = [], [[] for _ in cut], [[] for _ in cut]
        for wave in waves:
            est = np.asarray(reconstruct(model, wave), np.float64)[: len(wave)]
            whole.append(si_sdr_db(wave, est))
            for i, (_, sos) in enumerate(cut):
                a, b = signal.sosfiltfilt(sos, wave), signal.sosfiltfilt(sos, est)
                per_band[i].append(si_sdr_db(a, b))
                levels[i].append(10 * np.log10(np.mean(a**2) + 1e-20))
        cells = "".join(f"{np.mean(v):>9.1f} ({np.mean(lv):>4.0f})" for v, lv in zip(per_band, levels))
        print(f"{Path(ref.run.path).name + ':' + str(step):<28}{np.mean(whole):>8.2f}{cells}", flush=True)


if __name__ == "__main__":
    main()
