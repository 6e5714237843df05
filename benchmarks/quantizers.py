"""Quantizer kinds and the seed presets side by side, at equal steps: one command, one table.

    python benchmarks/quantizers.py [--steps 400] [--rows kinds,presets] [--eval validation|speech]
                                    [--threads 1] [--dnsmos] [--json OUT] [--report-at 100,200]
                                    [--row NAME=PRESET;KEY=VALUE;...]
    python benchmarks/quantizers.py --runs RUN[:CKPT] ... [--eval ...] [--dnsmos]

Issue 10's table (each kind at tiny-cpu's size, seed-baseline against seed-fixed, equal steps) is
the default rows: ``python benchmarks/quantizers.py --steps 300 --report-at 200 --eval speech
--dnsmos`` (seven rows; ~1 h 40 min of one contended core at 300 steps on a shared 2-core machine).

``--runs`` trains nothing: it measures checkpoints of existing run folders (``vqstudio train``
runs, forks) on the same table, so variants trained apart can be set beside each other (their
audio-s/s column is empty: speed is only compared between rows trained interleaved).

Rows: every quantizer kind at tiny-cpu's size (rvq, rvq + rotation trick, rvq_factorized with
8-dimensional codes, rvq_factorized + rotation, rfsq with levels [8, 8, 4]), and seed-baseline
against seed-fixed. All rows train on the demo corpus's training split, *interleaved* in chunks of
steps so the background load of a shared machine falls on every row alike; audio-s/s is each
row's median over its chunks. Then each model reconstructs the evaluation files (the validation
split, or with ``--eval speech`` every speech file of the demo corpus, which includes training
files) and the table gives, as means over files:

- usage: per level, the share of the K codes used on those files (``/``-separated, level 1 first);
- mel: multi-scale log-mel L1 distance (lower is better);
- floor: the reconstruction's level where the original is silent (dBFS, lower is better), and
  (all) the same with the frames at the pauses' edges counted in, (deep) only the frames over
  100 ms from any sound: the carpet without the words' tails;
- comb: median / max over harmonics of the peak at k * sample_rate / hop over the neighbouring
  bins in quiet passages (dB; ~0 means no buzz), and the loudest harmonic's level (dBFS: below
  -90 it is inaudible whatever it stands over); "audible": the worst file's loudest harmonic
  louder than -90 dBFS over its neighbours, 0 when none is (``vqstudio compare``'s column);
  "speech": the same harmonics where the original sounds, the reconstruction's median over the
  original's (dB; + lines the model lays over the voice, - notches; 0 is faithful);
- SI-SDR (dB, higher is better) and, with ``--dnsmos``, DNSMOS background and signal (the voice
  itself; speech files only).

Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from vqstudio.audio.corpus import scan_corpus
from vqstudio.config import DEMO_DIR, load_preset
from vqstudio.experiments.checkpoint_ref import resolve_ref
from vqstudio.experiments.corpus_eval import evaluate_on_corpus, load_model, pick_files
from vqstudio.train.trainer import Trainer

KIND_ROWS = {
    "rvq": ("tiny-cpu", []),
    "rvq+rotation": ("tiny-cpu", ['model.gradient_estimator="rotation"']),
    "rvq_factorized": ("tiny-cpu", ['model.quantizer="rvq_factorized"', "model.codebook_dim=8"]),
    "rvq_factorized+rotation": ("tiny-cpu", ['model.quantizer="rvq_factorized"', "model.codebook_dim=8",
                                             'model.gradient_estimator="rotation"']),
    "rfsq": ("tiny-cpu", ['model.quantizer="rfsq"', "model.fsq_levels=[8, 8, 4]"]),
}
PRESET_ROWS = {"seed-baseline": ("seed-baseline", []), "seed-fixed": ("seed-fixed", [])}
CHUNK = 10  # steps per row before the next row trains


def _rows(selection: str, extra: list[str] = ()) -> dict[str, tuple[str, list[str]]]:
    """The named row sets, then each ``--row NAME=PRESET;key=value;...`` (a variant trained
    interleaved with the others, on the same table)."""
    rows: dict[str, tuple[str, list[str]]] = {}
    for part in filter(None, (p.strip() for p in selection.split(","))):  # "" : only --row
        rows.update({"kinds": KIND_ROWS, "presets": PRESET_ROWS}[part])
    for text in extra:
        name, _, spec = text.partition("=")
        preset, *sets = [p.strip() for p in spec.split(";") if p.strip()]
        rows[name.strip()] = (preset, sets)
    return rows


def train_interleaved(rows, steps: int, threads: int, data: str | None,
                      report=None, report_at: tuple[int, ...] = ()) -> dict[str, dict]:
    common = [f"train.cpu_threads={threads}", "train.validate_every=0", "train.checkpoint_every=0",
              "train.log_every=1000000", "loss.grad_share_every=0"]
    if data:
        common.append(f'data.path="{data}"')
    trainers = {}
    for name, (preset, sets) in rows.items():
        torch.manual_seed(0)
        trainers[name] = Trainer(load_preset(preset, common + sets), None, device="cpu")
    speeds: dict[str, list[float]] = {name: [] for name in rows}
    done = 0
    while done < steps:
        n = min(CHUNK, steps - done)
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(n):
                trainer.step()
            seconds = time.perf_counter() - start
            d = trainer.config.data
            speeds[name].append(n * d.batch_size * d.segment_seconds / seconds)
        done += n
        print(f"  trained {done}/{steps} steps", file=sys.stderr, flush=True)
        if report is not None and done in report_at and done < steps:
            report(_trained(trainers, speeds), done)
    return _trained(trainers, speeds)


def _trained(trainers, speeds) -> dict[str, dict]:
    return {name: {"model": t.model, "config": t.config, "speed": statistics.median(speeds[name]),
                   "trainer": t} for name, t in trainers.items()}


def from_runs(refs: list[str]) -> dict[str, dict]:
    """Rows from run folders' checkpoints (``RUN``, ``RUN:STEP``, ``RUN:best``): nothing trained."""
    rows = {}
    for text in refs:
        ref = resolve_ref(text)
        model, step = load_model(ref)
        rows[f"{Path(ref.run.path).name}@{step}"] = {"model": model, "config": ref.config,
                                                    "speed": math.nan}
    return rows


def print_table(rows: dict[str, dict], which: str, dnsmos: bool, steps: int | None) -> dict:
    header = (f"{'row':<25}{'usage per level':<26}{'mel':>7}{'floor':>7}{'(all)':>7}{'(deep)':>7}"
              f"{'comb med/max dB':>17}{'at dBFS':>8}{'audible':>8}{'speech':>7}{'SI-SDR':>8}{'audio-s/s':>10}"
              + (f"{'BAK':>6}{'SIG':>6}" if dnsmos else ""))
    print(f"-- after {steps} steps, on the {which} files" if steps is not None else f"-- on the {which} files")
    print(header)
    results = {}
    for name, entry in rows.items():
        files = evaluation_files(entry["config"], which)
        r = evaluate(entry["model"], entry["config"], files, dnsmos)
        r["audio_seconds_per_second"] = entry["speed"]
        r["files"] = [Path(f.path).name for f in files]
        results[name] = r
        usage = "/".join(f"{u:.2f}" for u in r["usage"])
        line = (f"{name:<25}{usage:<26}{r['mel']:>7.3f}{r['floor']:>7.1f}{r['floor_all']:>7.1f}{r['floor_deep']:>7.1f}"
                f"{r['comb_median']:>9.1f} /{r['comb_max']:>6.1f}{r['comb_loudest_dbfs']:>8.1f}"
                f"{r['comb_audible']:>8.1f}{r['speech_comb']:>7.1f}{r['si_sdr']:>8.2f}"
                f"{entry['speed']:>10.1f}" + (f"{r['bak']:>6.2f}{r['sig']:>6.2f}" if dnsmos else ""))
        print(line, flush=True)
    return results


def evaluation_files(config, which: str) -> list:
    """The validation split the trainer held back (the same split call), or the speech files."""
    corpus = scan_corpus(config.data.path or DEMO_DIR, config.model.sample_rate)
    if which == "speech":
        return pick_files(corpus, config, "all", "speech*")
    return pick_files(corpus, config, "validation")


def evaluate(model, config, files: list, dnsmos: bool) -> dict[str, float | list[float]]:
    """``vqstudio compare``'s figures (:func:`vqstudio.experiments.corpus_eval.evaluate_on_corpus`)
    of whole files, under this table's names."""
    s = evaluate_on_corpus(model, config, files, max_seconds=None, mos=dnsmos)
    names = {"mel": "mel_distance", "floor": "pause_floor_dbfs", "floor_all": "noise_floor_dbfs",
             "floor_deep": "pause_deep_dbfs",
             "comb_median": "comb_median_db", "comb_max": "comb_max_db",
             "comb_loudest_dbfs": "comb_loudest_dbfs", "comb_audible": "comb_audible_worst_db",
             "speech_comb": "speech_comb_db", "si_sdr": "si_sdr_db"}
    if dnsmos:
        names["bak"] = "dnsmos_background"
        names["sig"] = "dnsmos_signal"
    out: dict[str, float | list[float]] = {k: float(s.get(v, math.nan)) for k, v in names.items()}
    out["usage"] = s["codebook_usage"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rows", default="kinds,presets", help="kinds, presets or both")
    parser.add_argument("--eval", default="validation",
                        help="validation, speech, or both ('validation,speech': one table each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None, help="corpus folder (default: the demo corpus)")
    parser.add_argument("--dnsmos", action="store_true", help="add DNSMOS background (speechmos)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--report-at", default="", help="also print the table after these steps")
    parser.add_argument("--row", action="append", default=[], metavar="NAME=PRESET;KEY=VALUE;...",
                        help="also train this variant, e.g. 'c0.5=seed-fixed;loss.complex_stft_power=0.5'")
    parser.add_argument("--runs", nargs="+", default=None, metavar="RUN[:CKPT]",
                        help="measure these run folders' checkpoints instead of training rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = _rows(args.rows, args.row)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps per row, "
          f"evaluated on the {args.eval} files", flush=True)
    started = time.perf_counter()
    sets = [w.strip() for w in args.eval.split(",") if w.strip()]
    if not sets or any(w not in ("validation", "speech") for w in sets):
        parser.error(f"--eval {args.eval}: use validation, speech or validation,speech")

    def tables(trained, steps):
        return {which: print_table(trained, which, args.dnsmos, steps) for which in sets}

    if args.runs:
        results = tables(from_runs(args.runs), None)
    else:
        at = tuple(int(x) for x in args.report_at.split(",") if x.strip())
        trained = train_interleaved(rows, args.steps, args.threads, args.data, tables, at)
        results = tables(trained, args.steps)
        for entry in trained.values():
            entry["trainer"].close()
    print(f"{time.perf_counter() - started:.0f} s in all", flush=True)
    if args.json:
        from vqstudio.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
