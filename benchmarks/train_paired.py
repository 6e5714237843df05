"""Training steps of an older source tree against this one, interleaved in one process.

On a shared machine two runs minutes apart see different loads; here the old tree's ``vqstudio``
package is copied to a temporary folder as ``vqstudio_before`` (its own imports renamed, as
``loss_redraw_paired.py`` does) and each preset gets one trainer per tree, built from the same
preset with the same seed. After a warm-up, every round runs ``--steps`` steps of each trainer in
turn (the order reversed every other round), timing each step's thread CPU (one torch
thread: other processes' load falls out). Prints per preset the median CPU seconds per step of
each side, audio-seconds per CPU-second, and the ratio new / old; every trainer of every preset
takes its turn in each round, so seed-fixed / seed-baseline is a paired figure too. Figures, not
assertions.

    .venv/bin/python benchmarks/train_paired.py --old /tmp/old_tree \
        [--presets seed-baseline,seed-fixed,tiny-cpu,speech-24k] [--rounds 5] [--steps 3]

(make an old tree with ``git worktree add --detach /tmp/old_tree <commit>``.)
"""

from __future__ import annotations

import argparse
import importlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

BEFORE = "vqstudio_before"
IMPORT = re.compile(r"\bvqstudio(?=[.\s])")
SETTINGS = ["train.cpu_threads=1", "train.validate_every=0", "train.checkpoint_every=0",
            "train.checkpoint_minutes=0", "train.log_every=10", "train.heavy_every=100"]


def import_old(tree: Path, into: Path):
    """``tree``'s vqstudio package as ``vqstudio_before``: (its config module, its trainer module)."""
    target = into / BEFORE
    shutil.copytree(tree / "vqstudio", target, ignore=shutil.ignore_patterns("__pycache__"))
    for source in target.rglob("*.py"):
        source.write_text(IMPORT.sub(BEFORE, source.read_text()))
    (into / "resources").symlink_to(tree / "resources")  # presets and the demo corpus
    sys.path.insert(0, str(into))
    return (importlib.import_module(f"{BEFORE}.config"),
            importlib.import_module(f"{BEFORE}.train.trainer"))


def trainer_of(config_module, trainer_module, preset: str, extra: list[str]):
    torch.manual_seed(0)
    config = config_module.load_preset(preset, SETTINGS + extra)
    return trainer_module.Trainer(config, None, device="cpu"), config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the 'before' source tree")
    parser.add_argument("--presets", default="seed-baseline,seed-fixed,tiny-cpu,speech-24k")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps of one side per round")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], metavar="K=V",
                        help="a setting for every trainer (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp(prefix="vqstudio-train-paired-"))
    try:
        old_config, old_trainer = import_old(args.old.resolve(), scratch)
        new_config = importlib.import_module("vqstudio.config")
        new_trainer = importlib.import_module("vqstudio.train.trainer")
        print(f"old {args.old}, new {Path(__file__).resolve().parent.parent}; one torch thread; "
              f"{args.rounds} rounds x {args.steps} steps a side; thread CPU per step")
        trainers, audio = {}, {}
        for preset in args.presets.split(","):
            for label, (cm, tm) in (("old", (old_config, old_trainer)), ("new", (new_config, new_trainer))):
                trainer, config = trainer_of(cm, tm, preset, args.set)
                for _ in range(args.warmup):
                    trainer.step()
                trainers[preset, label] = trainer
            audio[preset] = config.data.batch_size * config.data.segment_seconds
        cpu = {key: [] for key in trainers}
        order = list(trainers)
        for r in range(args.rounds):
            for key in order if r % 2 == 0 else order[::-1]:
                for _ in range(args.steps):
                    start = time.thread_time()
                    trainers[key].step()
                    cpu[key].append(time.thread_time() - start)
        median = {key: statistics.median(values) for key, values in cpu.items()}
        for preset in audio:
            old, new = median[preset, "old"], median[preset, "new"]
            print(f"{preset:<14} old {old:.3f} s/step ({audio[preset] / old:5.2f} audio-s/CPU-s)  "
                  f"new {new:.3f} s/step ({audio[preset] / new:5.2f})  new/old {new / old:.3f}",
                  flush=True)
        if "seed-fixed" in audio and "seed-baseline" in audio:
            print("seed-fixed / seed-baseline per step: " + ", ".join(
                f"{label} {median['seed-fixed', label] / median['seed-baseline', label]:.3f}"
                for label in ("old", "new")))
        for trainer in trainers.values():
            trainer.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
