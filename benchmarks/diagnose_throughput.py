"""Training throughput while the Diagnosis panel refreshes, against training alone, interleaved.

    .venv/bin/python benchmarks/diagnose_throughput.py [--preset tiny-cpu] [--blocks 4] [--steps 4]
        [--threads 1]

Trains ``--preset`` on the demo corpus in this thread, in blocks of ``--steps`` steps, alternating
a block alone with a block during which a second thread diagnoses the run's checkpoint over and
over, exactly as the panel does (the checkpoint is saved between steps at the start of the block,
as the panel's ``save_checkpoint`` command would, and the diagnosis loads its own copy of the model
from it). Prints the audio-seconds per second of each block and the medians and their ratio.
torch's thread cap is the process's, shared by both threads, as in the app. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import torch

from vqstudio.config import load_preset
from vqstudio.diagnose.runner import diagnose
from vqstudio.train.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--blocks", type=int, default=4, help="blocks of each kind")
    parser.add_argument("--steps", type=int, default=4, help="training steps per block")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    config = load_preset(args.preset, [f"train.cpu_threads={args.threads}", "train.checkpoint_every=0",
                                       "train.validate_every=0"])
    audio_per_step = config.data.batch_size * config.data.segment_seconds
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder)
        torch.set_num_threads(args.threads)
        trainer.step()  # warm up
        rates: dict[str, list[float]] = {"alone": [], "diagnosing": []}
        diagnoses = 0
        try:
            for block in range(2 * args.blocks):
                kind = "alone" if block % 2 == 0 else "diagnosing"
                stop = threading.Event()
                worker = None
                if kind == "diagnosing":
                    trainer.save_checkpoint(reason="diagnosis")
                    step = trainer.step_count

                    def loop(step=step):
                        nonlocal diagnoses
                        while not stop.is_set():
                            diagnose(f"{folder}:{step}")
                            diagnoses += 1

                    worker = threading.Thread(target=loop, name="diagnosis", daemon=True)
                    worker.start()
                start = time.perf_counter()
                for _ in range(args.steps):
                    trainer.step()
                elapsed = time.perf_counter() - start
                stop.set()
                if worker is not None:
                    worker.join()
                rates[kind].append(args.steps * audio_per_step / elapsed)
                print(f"block {block + 1:>2} {kind:<11}{rates[kind][-1]:8.2f} audio-s/s", flush=True)
        finally:
            trainer.close()
    alone, busy = statistics.median(rates["alone"]), statistics.median(rates["diagnosing"])
    print(f"median alone {alone:.2f} audio-s/s, while diagnosing {busy:.2f} audio-s/s: "
          f"{busy / alone:.2f} x ({diagnoses} diagnoses ran, {args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
