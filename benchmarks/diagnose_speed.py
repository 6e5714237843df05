"""How long one diagnosis of a 10 s clip takes on the CPU, check by check.

    .venv/bin/python benchmarks/diagnose_speed.py [--run RUN | --preset seed-baseline]
        [--clip FILE] [--seconds 10] [--threads 1] [--repeats 3] [--mos]

The model is a run's latest checkpoint (``--run``) or a fresh one of ``--preset``; the clip is the
first 10 s of ``--clip`` (default: the demo corpus's longest speech file, repeated to length).
Each repeat reconstructs the clip once and runs every check on it, as ``diagnose()`` does; the
table gives the median wall and process-CPU seconds of each step (the machine may be shared, so
CPU time is the steadier figure). ``--mos`` adds DNSMOS; its first call also pays for importing
onnxruntime and librosa, shown as its own row. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vqstudio.audio.io import read_audio
from vqstudio.config import load_preset
from vqstudio.diagnose.runner import CHECKS, ON_REQUEST
from vqstudio.diagnose.subject import NotMeasured, Subject, reconstruct_clips
from vqstudio.model import Codec
from vqstudio.resources import demo_dir


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None)
    parser.add_argument("--preset", default="seed-baseline")
    parser.add_argument("--clip", default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mos", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.run:
        from vqstudio.experiments.checkpoint_ref import resolve_ref
        from vqstudio.experiments.corpus_eval import load_model

        ref = resolve_ref(args.run)
        config, (model, step) = ref.config, load_model(ref)
        what = f"{args.run} at step {step}"
    else:
        config = load_preset(args.preset)
        torch.manual_seed(0)
        model, what = Codec(config.model), f"a fresh {args.preset} model"
    sr = config.model.sample_rate
    path = args.clip or max(Path(demo_dir()).glob("speech-*.flac"), key=lambda p: p.stat().st_size)
    wave = read_audio(path, sr)
    n = int(args.seconds * sr)
    wave = np.resize(wave, n).astype(np.float32)  # repeated to length if shorter
    names = [k for k in CHECKS if k not in ON_REQUEST or args.mos]
    rows: dict[str, list[tuple[float, float]]] = {"reconstruct": []}
    if args.mos:
        from vqstudio.audio.distortion import dnsmos_available

        _, w, c = timed(dnsmos_available)
        rows["import speechmos"] = [(w, c)]
    for _ in range(args.repeats):
        if args.mos:
            from vqstudio.diagnose import mos

            mos._cache.clear()  # measure the scoring, not the cache
        clips, w, c = timed(lambda: reconstruct_clips(model, [(Path(path).name, wave, str(path))]))
        rows["reconstruct"].append((w, c))
        subject = Subject(config, clips, model, None)
        for name in names:
            def run(name=name):
                try:
                    subject.found.extend(CHECKS[name](subject))
                except NotMeasured:
                    pass
            _, w, c = timed(run)
            rows.setdefault(name, []).append((w, c))
    print(f"one diagnosis of a {args.seconds:g} s clip ({Path(path).name}) with {what}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'step':<24}{'wall s':>9}{'cpu s':>9}")
    total_w = total_c = 0.0
    for name, values in rows.items():
        w = statistics.median(v[0] for v in values)
        c = statistics.median(v[1] for v in values)
        if name != "import speechmos":
            total_w, total_c = total_w + w, total_c + c
        print(f"{name:<24}{w:>9.2f}{c:>9.2f}")
    print(f"{'total (one diagnosis)':<24}{total_w:>9.2f}{total_c:>9.2f}")


if __name__ == "__main__":
    main()
