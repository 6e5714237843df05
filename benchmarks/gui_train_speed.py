"""Training speed with the GUI open: audio-seconds per second of wall clock and per second of the
training thread's own CPU time, one torch thread.

    cd TREE && PYTHONPATH=. python /path/to/gui_train_speed.py [--preset seed-fixed] [--seconds 40]

Runs the tree it is started in (the current directory's ``vqstudio`` and ``benchmarks/
gui_benchmark.py``, whatever tree this file lies in), so ``interleaved.py`` can run it under an
old and a new tree in turn:

    python benchmarks/interleaved.py --old /tmp/old_tree --repeat 3 -- \\
        $PWD/benchmarks/gui_train_speed.py --preset seed-fixed --figure cpu

The real window (offscreen unless DISPLAY is set, as gui_benchmark.py sets it up) with every panel
live trains the preset through the worker with ``train.cpu_threads=1``; after 3 steps and the first
probe clip it counts steps for ``--seconds`` and reads the training thread's CPU time from
``/proc/self/task/<tid>/stat`` (utime + stime) at both ends. The wall figure counts the machine's
load; the CPU figure is what the training thread itself spends, GUI included (its emits, probe
reconstructions, snapshots). The last number printed is ``--figure``'s (``wall`` or ``cpu``).
Like the app, it first applies what ``vqstudio.cli.main`` sets before any thread (``--bare``: not).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))

import gui_benchmark  # noqa: E402  (sets HOME, the null ALSA device and the offscreen platform)

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process."""
    with open(f"/proc/self/task/{native_id}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def measure(preset: str, seconds: float) -> dict:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from vqstudio.app.main import make_player
    from vqstudio.app.theme import apply_theme
    from vqstudio.app.window import MainWindow
    from vqstudio.config import load_preset

    config = load_preset(preset, ["train.cpu_threads=1", "train.validate_every=0",
                                  "train.checkpoint_every=0"])
    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    settings = QSettings(str(gui_benchmark._HOME / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, make_player())
    window.resize(1500, 920)
    window.show()
    window.set_new_run(config, gui_benchmark._HOME / "run")
    window.start_training()
    state: dict = {}

    def training_thread() -> int:
        return next(t.native_id for t in threading.enumerate() if t.name == "vqstudio-training")

    def begin() -> None:
        if window.store.current_step < gui_benchmark.WARMUP_STEPS or not window.store.probe:
            QTimer.singleShot(100, begin)
            return
        state.update(tid=training_thread(), wall=time.perf_counter(), step=window.store.current_step)
        state["cpu"] = thread_cpu(state["tid"])
        QTimer.singleShot(int(seconds * 1000), end)

    def end() -> None:
        cpu = thread_cpu(state["tid"]) - state["cpu"]
        steps = window.store.current_step - state["step"]
        wall = time.perf_counter() - state["wall"]
        audio = steps * config.data.batch_size * config.data.segment_seconds
        state.update(steps=steps, wall_s=wall, cpu_s=cpu, per_wall=audio / wall,
                     per_cpu=audio / max(cpu, 1e-9))
        window.close()
        app.quit()

    QTimer.singleShot(0, begin)
    app.exec()
    return state


def as_the_app_starts() -> None:
    """What ``main.py`` -> ``vqstudio.cli.main`` does before any thread, in the tree being run (a
    tree from before train/memory_reuse.py has nothing to do)."""
    try:
        from vqstudio.train.memory_reuse import keep_freed_memory
    except ImportError:
        return
    keep_freed_memory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-fixed")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--figure", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--bare", action="store_true",
                        help="skip what vqstudio.cli.main sets up before any thread (memory reuse)")
    args = parser.parse_args()
    if not args.bare:
        as_the_app_starts()
    s = measure(args.preset, args.seconds)
    print(f"{args.preset} with the GUI open, one torch thread: {s['steps']} steps in "
          f"{s['wall_s']:.1f} s, training thread CPU {s['cpu_s']:.1f} s; load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"audio-s per wall s {s['per_wall']:.3f}; audio-s per training-thread CPU s "
          f"{s['per_cpu']:.3f}")
    print(f"{args.figure}: {s['per_cpu'] if args.figure == 'cpu' else s['per_wall']:.4f}")


if __name__ == "__main__":
    main()
