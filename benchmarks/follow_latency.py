"""Follow latency: a row written by a real trainer process -> drawn in the app following it.

    .venv/bin/python benchmarks/follow_latency.py [--seconds 20] [--intervals 50,200,500]

A real ``vqstudio train`` subprocess trains a tiny model (one torch thread, a row every step) into
a temporary run folder; this process opens that folder in the real MainWindow (offscreen), which
follows it (``app/follow.py``). Per row: from its ``wall_time`` (``time.time()`` in the trainer,
just before the row is written) to the end of the first window redraw that has it in the store
(the Losses panel draws there). The poll interval is switched between the ``--intervals`` every
2 s, interleaved, so every interval sees the same trainer at the same load. Also the cost of one
poll on the GUI thread (``RunFollower.poll``), with and without new rows.

Prints, per interval: rows, latency p50/p99 (ms) and poll cost p50/p99 (µs). With
``--checkpoint-every N`` the trainer also saves a checkpoint every N steps, and each one's way to
the screen is timed: from the checkpoint file's mtime to the probe heard through it landing in the
store (``latest.json`` seen by a poll, then the model loaded and the probe clip reconstructed on
the follower's checkpoint thread). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from alsa_null import write_asoundrc  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-follow-home-"))
write_asoundrc(_HOME, "paced")
os.environ["HOME"] = str(_HOME)

import numpy as np  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from helpers import tiny_sets, write_corpus  # noqa: E402
from vqstudio.app.window import MainWindow  # noqa: E402
from vqstudio.experiments.run_tail import who_trains  # noqa: E402
from vqstudio.train.checkpoint import checkpoint_name  # noqa: E402

SWITCH_S = 2.0


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time, all intervals together")
    parser.add_argument("--intervals", default="50,200,500", help="poll intervals in ms, interleaved")
    parser.add_argument("--checkpoint-every", type=int, default=100000, metavar="N",
                        help="trainer checkpoint cadence in steps (also times checkpoint -> probe heard)")
    args = parser.parse_args()
    intervals = [int(v) for v in args.intervals.split(",")]

    root = Path(tempfile.mkdtemp(prefix="vqstudio-follow-"))
    corpus = write_corpus(root / "corpus", files=2)
    run = root / "run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
         "--steps", "10000000", *tiny_sets(), "--set", f"train.checkpoint_every={args.checkpoint_every}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
    )
    app = QApplication.instance() or QApplication([])
    try:
        deadline = time.monotonic() + 180
        while not (who_trains(run).state == "training" and (run / "metrics.csv").is_file()):
            if trainer.poll() is not None or time.monotonic() > deadline:
                print("the trainer did not start:", trainer.stderr.read().decode()[-2000:])
                return 1
            time.sleep(0.1)
        win = MainWindow(QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat), player=None)
        win.show()
        if not win.open_run(run) or not win.follower.active:
            print("the window did not follow the run")
            return 1
        while win.opening.busy:  # what it logged so far is read in the background first
            app.processEvents()
            time.sleep(0.002)
        follower, store = win.follower, win.store

        current = {"interval": intervals[0]}
        waiting: list[tuple[float, int]] = []  # (wall_time, interval) of rows in the store, not yet drawn
        latency = {i: [] for i in intervals}
        poll_idle = {i: [] for i in intervals}
        poll_rows = {i: [] for i in intervals}

        append_rows = store.append_rows

        def noted_append(columns):
            for t in columns.get("wall_time", ()):
                waiting.append((float(t), current["interval"]))
            append_rows(columns)

        store.append_rows = noted_append
        heard: list[float] = []  # ms from a checkpoint's mtime to its probe in the store
        on_probe = store.on_probe

        def noted_probe(payload):
            try:
                saved = (run / "checkpoints" / checkpoint_name(int(payload["step"]))).stat().st_mtime
                heard.append((time.time() - saved) * 1000)
            except OSError:  # rotated away already
                pass
            on_probe(payload)

        store.on_probe = noted_probe
        poll = follower.poll

        def timed_poll():
            before = len(waiting)
            start = time.perf_counter()
            poll()
            cost = (time.perf_counter() - start) * 1e6
            (poll_rows if len(waiting) > before else poll_idle)[current["interval"]].append(cost)

        follower.timer.timeout.disconnect()
        follower.timer.timeout.connect(timed_poll)
        redraw = win.redraw

        def timed_redraw():
            redraw()
            if waiting:
                now = time.time()
                for wall, interval in waiting:
                    latency[interval].append((now - wall) * 1000)
                waiting.clear()

        win.redraw_timer.timeout.disconnect()
        win.redraw_timer.timeout.connect(timed_redraw)

        end = time.monotonic() + args.seconds
        for interval in itertools.cycle(intervals):
            if time.monotonic() >= end:
                break
            current["interval"] = interval
            follower.timer.setInterval(interval)
            waiting.clear()  # rows read under the previous interval are not counted
            switch = time.monotonic() + SWITCH_S
            while time.monotonic() < switch:
                app.processEvents()
                time.sleep(0.002)
        print(f"trainer: {store.current_step} steps logged; redraw every {win.redraw_timer.interval()} ms; "
              f"{os.cpu_count()} CPU cores")
        print(f"{'poll ms':>8} {'rows':>6} {'latency p50':>12} {'p99':>8}   {'poll µs idle p50':>16} "
              f"{'p99':>7}   {'with rows p50':>13} {'p99':>7}")
        for i in intervals:
            lat = latency[i]
            print(f"{i:>8} {len(lat):>6} {pct(lat, 50):>10.0f}ms {pct(lat, 99):>6.0f}ms   "
                  f"{pct(poll_idle[i], 50):>16.0f} {pct(poll_idle[i], 99):>7.0f}   "
                  f"{pct(poll_rows[i], 50):>13.0f} {pct(poll_rows[i], 99):>7.0f}")
        if heard:
            print(f"checkpoint saved -> probe heard through it in the store: {len(heard)} checkpoints, "
                  f"p50 {pct(heard, 50):.0f} ms, p99 {pct(heard, 99):.0f} ms")
        win.close()
    finally:
        trainer.terminate()
        try:
            trainer.wait(60)
        except subprocess.TimeoutExpired:
            trainer.kill()
            trainer.wait()
        trainer.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
