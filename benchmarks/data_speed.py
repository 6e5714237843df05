"""Data speed: corpus scans, batch throughput and memory at corpus scale. Figures, not assertions.

    python benchmarks/data_speed.py scan [--files 2000] [--folder DIR]
    python benchmarks/data_speed.py throughput [--rounds 3] [--batches 20] [--workers 0 1 2]
    python benchmarks/data_speed.py memory [--hours 2 20] [--steps 30]
    python benchmarks/data_speed.py resampler [--rounds 5]
    python benchmarks/data_speed.py all          # scan of 2,000 files, throughput, memory 1 h/4 h
    python benchmarks/data_speed.py table        # the issue's whole table: scans of 2,000 and
                                                 # 100,000 files, resampler, throughput, 2 h/20 h

scan: a folder of tiny generated WAVs (kept between runs; 100,000 files take ~1 min to write),
scanned with an empty corpus index (the first start, what every start cost before the index),
again (the second start), and after 1% of the files changed (those are checked again).

throughput: audio-seconds of batches per second, 16 x 1 s at 24 kHz cut from four 60 s 44.1 kHz
stereo WAVs: cached (decoded once, kept in memory), uncached folder (decoded and resampled on
every use) and a prepared dataset (int16 shards), each with 0, 1 and 2 worker processes. The
variants run interleaved, round after round, and the medians are printed; worker start-up is
timed apart.

resampler: the cost of one 1 s segment of a 44.1 kHz stereo 16-bit file at 24 kHz, split into its
parts (decode, mix-down, resample), CPU time at one thread; our tiled resampler against scipy's
resample_poly and libsoxr (the `soxr` package, HQ), interleaved; and how far libsoxr's range read
(with a 0.1 s margin each side) is from its whole-file resample, the reason we do not use it.

memory: a synthetic prepared dataset of N hours (24 kHz int16 written straight into shards, 30 s
per file) is trained from for a few steps of tiny-cpu in a fresh process, which prints its peak
resident memory and, at the end, its anonymous (heap) and file-backed (mapped shard) parts. The
generated data lives under /tmp/vqstudio-data-speed (``--keep`` keeps it; deleted otherwise).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

WORK = Path(tempfile.gettempdir()) / "vqstudio-data-speed"
RATE = 24000


def _fresh_cache() -> None:
    os.environ["VQSTUDIO_CACHE"] = tempfile.mkdtemp(prefix="index-", dir=WORK)


# -- scan ---------------------------------------------------------------------------------------


def tiny_wav_folder(files: int, folder: Path | None = None) -> Path:
    """``files`` 0.1 s 16 kHz WAVs, 1,000 per subfolder (written once, reused)."""
    if folder is not None:
        return folder  # given: used as it is
    folder = WORK / f"files{files}"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    for i in range(files):
        sub = folder / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"f{i:06d}.wav", (rng.standard_normal(1600) * 0.1).astype(np.float32),
                 16000, subtype="PCM_16")
    done.touch()
    return folder


def bench_scan(files: int, folder: Path | None) -> None:
    from vqstudio.audio.corpus import scan_corpus

    folder = tiny_wav_folder(files, folder)
    _fresh_cache()
    for label in ("first start (no index)", "second start (index)"):
        start = time.perf_counter()
        corpus = scan_corpus(folder, 16000)
        print(f"scan {files} files, {label}: {time.perf_counter() - start:.2f} s "
              f"({len(corpus.files)} usable)", flush=True)
    changed = sorted(folder.rglob("*.wav"))[:: 100]
    rng = np.random.default_rng(1)
    for path in changed:
        sf.write(path, (rng.standard_normal(800) * 0.1).astype(np.float32), 16000, subtype="PCM_16")
    start = time.perf_counter()
    corpus = scan_corpus(folder, 16000)
    print(f"scan {files} files, after {len(changed)} changed: {time.perf_counter() - start:.2f} s "
          f"({corpus.notes[-1].split(' (')[0]})", flush=True)


# -- throughput ---------------------------------------------------------------------------------


def stereo_folder() -> Path:
    folder = WORK / "stereo44k"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for k in range(4):
            wave = (rng.standard_normal((44100 * 60, 2)) * 0.1).astype(np.float32)
            sf.write(folder / f"s{k}.wav", wave, 44100, subtype="PCM_16")
        (folder / ".complete").touch()
    return folder


def bench_throughput(rounds: int, batches: int, worker_counts: list[int]) -> None:
    from vqstudio.audio.corpus import SegmentSampler, scan_corpus
    from vqstudio.audio.prefetch import BatchFeed
    from vqstudio.audio.prepared import prepare_corpus

    import torch

    torch.set_num_threads(1)  # as the trainer on a 2-core CPU (train/device.py)
    _fresh_cache()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    folder = stereo_folder()
    corpus = scan_corpus(folder, RATE)
    shards = WORK / "stereo44k-prepared"
    shutil.rmtree(shards, ignore_errors=True)
    prepared = scan_corpus(prepare_corpus(corpus, shards, RATE, progress=False).folder, RATE)
    sources = {
        "cached": SegmentSampler(corpus, RATE, RATE, 0),
        "folder": SegmentSampler(corpus, RATE, RATE, 0, cache_bytes=0),
        "prepared": SegmentSampler(prepared, RATE, RATE, 0),
    }
    sources["cached"].fixed_segments(8)  # fill the cache: every file is touched
    feeds = {}
    for name, sampler in sources.items():
        for workers in worker_counts:
            start = time.perf_counter()
            feed = BatchFeed(sampler, 16, workers=workers)
            feed.batch(0)
            feeds[name, workers] = feed
            if workers:
                print(f"start-up with {workers} worker(s) ({name}): "
                      f"{time.perf_counter() - start:.2f} s", flush=True)
    figures: dict[tuple[str, int], list[float]] = {key: [] for key in feeds}
    per_cut_cpu: dict[tuple[str, int], list[float]] = {key: [] for key in feeds}
    per_main_cpu: dict[tuple[str, int], list[float]] = {key: [] for key in feeds}
    step = 1000
    for _ in range(rounds):
        for key, feed in feeds.items():
            step += 10_000
            feed.batch(step)  # restart the stream here; untimed
            cut_before, main_before = feed.cutting_seconds, time.process_time()
            start = time.perf_counter()
            for s in range(step + 1, step + 1 + batches):
                feed.batch(s)
            seconds = batches * 16
            figures[key].append(seconds / (time.perf_counter() - start))
            per_cut_cpu[key].append(seconds / max(1e-9, feed.cutting_seconds - cut_before))
            main = time.process_time() - main_before
            per_main_cpu[key].append(seconds / main if main > 0 else float("inf"))
    print("wall: audio-s/s delivered; cut/CPU-s: audio-s cut per CPU-second of the process that "
          "cut it; main/CPU-s: audio-s per CPU-second the training process spent receiving it "
          "(for workers > 0, the ceiling of N idle cores is about min(N x cut, main))")
    for key, values in figures.items():
        name, workers = key
        print(f"throughput {name:8s} workers={workers}: wall {statistics.median(values):8.0f} "
              f"audio-s/s (median of {rounds}: {', '.join(f'{v:.0f}' for v in values)}); "
              f"cut {statistics.median(per_cut_cpu[key]):8.0f}/CPU-s; "
              f"main {statistics.median(per_main_cpu[key]):8.0f}/CPU-s")
    for feed in feeds.values():
        feed.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


# -- resampler ----------------------------------------------------------------------------------


def bench_resampler(rounds: int) -> None:
    import torch
    from scipy.signal import resample_poly

    from vqstudio.audio.io import _mix_down, audio_info, read_samples
    from vqstudio.audio.resampler import lowpass, resample

    torch.set_num_threads(1)
    path = stereo_folder() / "s0.wav"
    info = audio_info(path)
    starts = np.random.default_rng(0).integers(0, 44100 * 58, size=64)
    frames = 44100 + 600
    block = sf.read(path, frames=frames, dtype="float32", always_2d=True)[0]
    mono = _mix_down(block)

    def decode_float(k):
        with sf.SoundFile(path) as fh:
            fh.seek(int(starts[k]))
            fh.read(frames, dtype="float32", always_2d=True)

    def decode_int(k):
        with sf.SoundFile(path) as fh:
            fh.seek(int(starts[k]))
            fh.read(frames, dtype="int16", always_2d=True)

    parts = {
        "decode, float32 read": decode_float,
        "decode, int16 read (ours)": decode_int,
        "mix-down of a float32 block": lambda k: _mix_down(block),
        "resample, scipy resample_poly": lambda k: resample_poly(mono, 80, 147, window=lowpass(80, 147)),
        "resample, libsoxr HQ": None,
        "resample, tiled GEMM (ours)": lambda k: resample(mono, 44100, 24000),
        "whole segment read (ours)": lambda k: read_samples(path, 24000, int(starts[k]) * 80 // 147,
                                                            24000, info=info),
    }
    try:
        import soxr

        parts["resample, libsoxr HQ"] = lambda k: soxr.resample(mono, 44100, 24000, quality="HQ")
    except ImportError:
        del parts["resample, libsoxr HQ"]
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, work in parts.items():
            start = time.process_time()
            for k in range(len(starts)):
                work(k)
            times[name].append((time.process_time() - start) / len(starts) * 1e3)
    print("one 1 s segment, 44.1 kHz stereo PCM_16 -> 24 kHz mono, CPU ms at one thread "
          f"(median of {rounds} rounds of {len(starts)}):")
    for name, values in times.items():
        print(f"  {name:32s} {statistics.median(values):6.3f} ms")
    if "resample, libsoxr HQ" in parts:
        import soxr

        whole = soxr.resample(read_samples(path), 44100, 24000, quality="HQ")
        worst = 0.0
        for k in range(16):
            first = int(starts[k]) // 147 * 147  # an input frame on the output grid
            lo = first - 4410
            part = soxr.resample(read_samples(path, None, lo, 44100 + 8820), 44100, 24000,
                                 quality="HQ")[2400:26400]
            worst = max(worst, float(np.abs(part - whole[first * 80 // 147:][:24000]).max()))
        print(f"  libsoxr range read (0.1 s margins) vs its whole-file resample: max |error| "
              f"{worst:.2e} (ours: 0, bit for bit)")


# -- memory -------------------------------------------------------------------------------------


def synthetic_prepared(hours: float) -> Path:
    """A prepared dataset of ``hours`` of noise, 30 s per file, written straight into shards."""
    from vqstudio.audio.corpus import Corpus
    from vqstudio.audio.io import AudioInfo
    from vqstudio.audio.prepared import prepare_corpus

    out = WORK / f"prepared-{hours:g}h"
    count = int(round(hours * 3600 / 30))
    files = [AudioInfo(f"/synthetic/{i:06d}.wav", RATE, 30 * RATE, 1, 30.0, "WAV")
             for i in range(count)]
    corpus = Corpus(folder="/synthetic", sample_rate=RATE, files=files)
    rng = np.random.default_rng(0)
    prepare_corpus(corpus, out, RATE, progress=False,
                   read=lambda info, n: rng.standard_normal(n, dtype=np.float32) * 0.1)
    return out


def _status(*keys: str) -> dict[str, float]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in keys:
            found[name] = int(value.split()[0]) / 1024
    return found


def memory_child(folder: str, steps: int) -> None:
    from vqstudio.config import load_preset
    from vqstudio.train.trainer import Trainer

    config = load_preset("tiny-cpu", [f'data.path="{folder}"', "train.validate_every=0",
                                      "train.checkpoint_every=0", "data.workers=0"])
    trainer = Trainer(config, None, device="cpu")
    after_open = _status("VmRSS")["VmRSS"]
    for _ in trainer.steps(until=steps):
        pass
    trainer.close()
    end = _status("VmHWM", "RssAnon", "RssFile")
    print(f"after opening {after_open:.0f} MiB; peak {end['VmHWM']:.0f} MiB; at the end heap "
          f"{end['RssAnon']:.0f} MiB, mapped files {end['RssFile']:.0f} MiB")


def bench_memory(hours: list[float], steps: int) -> None:
    for h in hours:
        start = time.perf_counter()
        folder = synthetic_prepared(h)
        size = sum(p.stat().st_size for p in folder.glob("shard-*")) / 2**30
        print(f"{h:g} h prepared dataset ({size:.2f} GiB) written in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        done = subprocess.run([sys.executable, __file__, "memory-child", str(folder), str(steps)],
                              capture_output=True, text=True, check=True)
        print(f"training {steps} steps from {h:g} h: {done.stdout.strip()}", flush=True)
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("scan")
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--folder", type=Path, default=None, help="an existing folder of tiny WAVs")
    p = sub.add_parser("throughput")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p = sub.add_parser("memory")
    p.add_argument("--hours", type=float, nargs="+", default=[2, 20])
    p.add_argument("--steps", type=int, default=30)
    p = sub.add_parser("memory-child")
    p.add_argument("folder")
    p.add_argument("steps", type=int)
    p = sub.add_parser("resampler")
    p.add_argument("--rounds", type=int, default=5)
    p = sub.add_parser("all")
    p = sub.add_parser("table")
    for p in sub.choices.values():
        if p.prog.split()[-1] != "memory-child":
            p.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    if args.what == "memory-child":
        return memory_child(args.folder, args.steps)
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        if args.what == "table":
            for files in (2000, 100_000):
                bench_scan(files, None)
            bench_resampler(5)
            bench_throughput(5, 20, [0, 1, 2])
            bench_memory([2, 20], 30)
            return
        if args.what in ("scan", "all"):
            bench_scan(getattr(args, "files", 2000), getattr(args, "folder", None))
        if args.what in ("resampler", "all"):
            bench_resampler(getattr(args, "rounds", 5))
        if args.what in ("throughput", "all"):
            bench_throughput(getattr(args, "rounds", 3), getattr(args, "batches", 20),
                             getattr(args, "workers", [0, 1, 2]))
        if args.what in ("memory", "all"):
            bench_memory(getattr(args, "hours", [1, 4]), getattr(args, "steps", 30))
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
