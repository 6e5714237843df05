"""The GUI under load: event-loop lag, training throughput with the window open versus headless,
and audio underflows while A/B-switching during training.

    python benchmarks/gui_benchmark.py [--seconds 60] [--preset tiny-cpu] [--data DIR] [--set K=V ...]

``--set data.workers=1`` (any setting, as ``vqstudio train --set``) measures the same with
background data workers, so the two can be compared run against run.

One run, three figures, on this machine's CPU:

1. Headless: the trainer stepped in a plain loop (after a short warm-up), as ``vqstudio train``
   does, for half of ``--seconds`` before the window and half after it; steps per second.
2. The real window (offscreen unless DISPLAY is set) with every panel live, training the same
   preset with the same thread cap through the worker for ``--seconds``, while the audition panel
   loops the probe clip on the paced null ALSA device (tests/alsa_null.py: a real PortAudio stream
   drained in real time) and switches A/B every 0.5 s. Measured meanwhile:
   - event-loop lag: a 10 ms single-shot timer re-armed on every callback; lag = when the callback
     ran minus when it was due. Goal: p99 <= 50 ms.
   - throughput with the GUI / headless. Goal: >= 0.9.
   - output underflows reported by the stream. Goal: 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

# ALSA reads HOME when PortAudio initialises (on the first sounddevice import): set it up first.
_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-gui-bench-"))
from alsa_null import write_asoundrc  # noqa: E402

write_asoundrc(_HOME, "paced")
os.environ["HOME"] = str(_HOME)
os.environ["XDG_CONFIG_HOME"] = str(_HOME / ".config")
os.environ["XDG_DATA_HOME"] = str(_HOME / ".local" / "share")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

WARMUP_STEPS = 3
LAG_INTERVAL_MS = 10
SWITCH_EVERY_MS = 500


def headless(config, seconds: float) -> tuple[float, int, int]:
    """Steps per second of a plain training loop; also (steps, torch threads)."""
    import torch

    from vqstudio.train.trainer import Trainer

    trainer = Trainer(config, None)
    for _ in range(WARMUP_STEPS):
        trainer.step()
    threads = torch.get_num_threads()
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        trainer.step()
        steps += 1
    rate = steps / (time.perf_counter() - start)
    trainer.close()
    return rate, steps, threads


def with_gui(config, seconds: float, run_dir: Path) -> dict:
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from vqstudio.app.main import make_player
    from vqstudio.app.theme import apply_theme
    from vqstudio.app.window import MainWindow

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    settings = QSettings(str(_HOME / "settings.ini"), QSettings.Format.IniFormat)
    player = make_player()
    window = MainWindow(settings, player)
    window.resize(1500, 920)
    window.show()
    window.set_new_run(config, run_dir)
    window.start_training()

    state = {"phase": "warmup", "lags": [], "switches": 0, "start": 0.0, "start_step": 0,
             "underflows_at_start": 0}
    lag_timer = QTimer()
    lag_timer.setSingleShot(True)
    lag_timer.setTimerType(Qt.TimerType.PreciseTimer)
    due = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if state["phase"] == "measure":
            state["lags"].append(now - due[0])
        due[0] = time.perf_counter() + LAG_INTERVAL_MS / 1000
        lag_timer.start(LAG_INTERVAL_MS)

    lag_timer.timeout.connect(tick)
    audition = window.panels.get("audition")

    def switch() -> None:
        if state["phase"] != "measure":
            return
        if hasattr(audition, "select_source"):
            audition.select_source("reconstruction" if state["switches"] % 2 == 0 else "original")
            state["switches"] += 1
        QTimer.singleShot(SWITCH_EVERY_MS, switch)

    def begin() -> None:
        if window.store.current_step < WARMUP_STEPS or not window.store.probe:
            QTimer.singleShot(100, begin)
            return
        if hasattr(audition, "toggle_playback") and player is not None and player.available:
            length = player.duration or 4.0
            audition.set_loop(0.0, length)
            if not player.is_playing:
                audition.toggle_playback()
        state.update(phase="measure", start=time.perf_counter(), start_step=window.store.current_step,
                     underflows_at_start=player.underflows if player is not None else 0)
        QTimer.singleShot(SWITCH_EVERY_MS, switch)
        QTimer.singleShot(int(seconds * 1000), end)

    def end() -> None:
        state["phase"] = "done"
        state["elapsed"] = time.perf_counter() - state["start"]
        state["steps"] = window.store.current_step - state["start_step"]
        if player is not None:
            state.update(underflows=player.underflows - state["underflows_at_start"],
                         callbacks=player.callbacks, frames=player.frames_played,
                         available=player.available, reason=player.unavailable_reason,
                         playing=player.is_playing)
        window.close()
        app.quit()

    tick()
    QTimer.singleShot(0, begin)
    app.exec()
    lag_timer.stop()
    state["threads"] = window.store.info.get("threads")
    state["panels"] = {k: type(p).__name__ for k, p in window.panels.items()}
    return state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each measurement")
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--data", default=None, help="audio folder (default: the demo corpus)")
    parser.add_argument("--set", action="append", default=[], metavar="K=V",
                        help="a setting for both sides, e.g. data.workers=1 (repeatable)")
    args = parser.parse_args()

    from vqstudio.config import load_preset

    overrides = ["train.validate_every=0", "train.checkpoint_every=0", *args.set]
    config = load_preset(args.preset, overrides)
    if args.data:
        config = config.with_overrides({"data.path": str(Path(args.data).resolve())})

    print(f"preset {args.preset}{''.join(' --set ' + o for o in args.set)}, {args.seconds:.0f} s per measurement, {os.cpu_count()} CPU cores, "
          f"Qt platform {os.environ.get('QT_QPA_PLATFORM') or 'xcb'}")
    # Headless before and after the window, so that a change in the machine's load (it is shared)
    # during the run biases both sides alike.
    before, steps_a, threads = headless(config, args.seconds / 2)
    gui = with_gui(config, args.seconds, _HOME / "run")
    after, steps_b, _ = headless(config, args.seconds / 2)
    rate = (before + after) / 2
    print(f"headless:        {rate:.3f} steps/s (before {before:.3f}, after {after:.3f}; "
          f"{steps_a + steps_b} steps, torch threads {threads})")
    gui_rate = gui["steps"] / gui["elapsed"]
    lags = np.asarray(gui["lags"]) * 1000
    print(f"with the window: {gui_rate:.3f} steps/s ({gui['steps']} steps, torch threads {gui['threads']})")
    print(f"panels: {', '.join(f'{k}={v}' for k, v in gui['panels'].items())}")
    print(f"throughput ratio GUI / headless: {gui_rate / rate:.3f}   (goal >= 0.9)")
    if lags.size:
        print(f"event-loop lag over {lags.size} ticks: p50 {np.percentile(lags, 50):.1f} ms, "
              f"p99 {np.percentile(lags, 99):.1f} ms, max {lags.max():.1f} ms   (goal p99 <= 50 ms)")
    if gui.get("available"):
        print(f"audio: {gui['underflows']} output underflows in {gui['elapsed']:.0f} s of playback with "
              f"{gui['switches']} A/B switches ({gui['callbacks']} callbacks)   (goal 0)")
    else:
        print(f"audio: not measured, the player is unavailable: {gui.get('reason')}")
    shutil.rmtree(_HOME, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
