"""From a click in the Audition panel to hearing the new reconstruction, while training runs.

    .venv/bin/python benchmarks/audition_latency.py [--preset tiny-cpu] [--clicks 8] [--seconds 10]
        [--click levels|weights]

The real parts: a RunStore and the real TrainingWorker training ``--preset`` on generated tones
(one torch thread, as the app leaves the GUI a core), an AuditionPanel with a real ABPlayer on the
paced null ALSA device of ``tests/alsa_null.py`` (a real-time clock behind a PortAudio stream), a
``--seconds`` clip chosen from a file and playing the reconstruction. One "click" is, with
``--click levels`` (the default), a change of the levels box (``panel.set_levels``): the same
clip through another level count at the step heard (the encoder's latent is kept); with
``--click weights`` a request through the newest weights (``panel.model_changed``, what a newer
checkpoint of a followed run does): encoder and decoder. Timed per click, from the click to:

- ``asked``: the request is posted (``worker.command`` returned);
- ``start`` / ``done``: the live reconstruction thread (``app/live_reconstruction.py``) takes it
  up (after holding the newest weight snapshot) and finishes it;
- ``served``: the worker's result signal reaches the GUI thread;
- ``cpu`` (not a moment: a duration) the inference thread's own CPU time for the reconstruction,
  the figure that does not count other processes on a shared machine;
- ``audible``: the first audio callback after the panel handed the new buffer to the player that
  rendered non-silent output (the callback is watched, not changed); add the stream's output
  latency (printed) for the time to the loudspeaker.

Prints the median and the worst against the 150 ms goal. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from alsa_null import write_asoundrc  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-latency-home-"))
write_asoundrc(_HOME, "paced")  # before PortAudio is first initialised (sounddevice's import)
os.environ["HOME"] = str(_HOME)

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vqstudio.app.panels.audition import AuditionPanel  # noqa: E402
from vqstudio.app.player import ABPlayer  # noqa: E402
from vqstudio.app.store import RunStore  # noqa: E402
from vqstudio.app.worker import TrainingWorker  # noqa: E402
from vqstudio.audio.io import write_audio  # noqa: E402
from vqstudio.config import load_preset  # noqa: E402

GOAL_MS = 150.0


def tones(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2.7 * freq * t)).astype(np.float32)


class CallbackWatch:
    """Wraps the player's audio callback (calls it unchanged) to note when it first renders
    non-silent output after :meth:`arm`."""

    def __init__(self, player: ABPlayer):
        self.armed_at = None
        self.heard_at = None
        inner = player._callback

        def watched(outdata, frames, time_info, status):
            inner(outdata, frames, time_info, status)
            if self.armed_at is not None and self.heard_at is None and np.abs(outdata).max() > 1e-4:
                self.heard_at = time.perf_counter()

        player._callback = watched  # the stream looks the callback up when it is opened

    def arm(self) -> None:
        self.armed_at, self.heard_at = time.perf_counter(), None


def wait(app, condition, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.001)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--clicks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--click", choices=("levels", "weights"), default="levels")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="vqstudio-latency-"))
    config = load_preset(args.preset)
    rate = config.model.sample_rate
    for i, freq in enumerate((180.0, 330.0, 500.0)):
        write_audio(work / "corpus" / f"tone-{i}.wav", tones(3.0, rate, freq), rate)
    clip_file = work / "clip.wav"
    write_audio(clip_file, tones(args.seconds, rate, 240.0), rate)
    config = load_preset(args.preset, [f"data.path={work / 'corpus'}", "train.validate_every=0",
                                       "train.checkpoint_every=0", "train.cpu_threads=1"])

    player = ABPlayer()
    if not player.available:
        raise SystemExit(f"no player: {player.unavailable_reason}")
    watch = CallbackWatch(player)
    store, worker = RunStore(), TrainingWorker(probe_seconds=1.0)
    store.attach(worker)
    panel = AuditionPanel(store, worker, player)
    answers: list[float] = []
    worker.result.connect(lambda _result: answers.append(time.perf_counter()))
    asked_at: list[float] = []
    command = worker.command

    def timed_command(*a, **k):
        ident = command(*a, **k)
        asked_at.append(time.perf_counter())
        return ident

    worker.command = timed_command
    stages: dict[str, list[float]] = {"asked": [], "start": [], "done": [], "served": [], "audible": [],
                                      "cpu": []}
    served, audible = stages["served"], stages["audible"]
    latency = None
    try:
        worker.start(config, None)
        if not wait(app, lambda: bool(store.probe), 120):
            raise SystemExit("the worker sent no probe within 120 s")
        panel.refresh()
        if not panel.set_clip_from_file(clip_file):
            raise SystemExit(f"could not load {clip_file}")
        wait(app, lambda: panel.clip.reconstruction is not None, 60)
        panel.select_source("reconstruction")
        panel.set_loop(0.0, args.seconds)  # keep playing however long the clicks take
        panel.toggle_playback()
        wait(app, lambda: player.is_playing, 5)
        levels = panel.levels_box.maximum()
        for click in range(args.clicks):
            wait(app, lambda: False, 0.3 + 0.1 * click % 3)  # land anywhere in a training step
            before = len(answers)
            old = panel.clip.reconstruction
            start = time.perf_counter()
            if args.click == "levels":
                panel.set_levels(levels - 1 - click % 2)  # another level count, the step heard
            else:
                panel.model_changed()  # the newest weights, the same levels
            if not wait(app, lambda: len(answers) > before, 60):
                raise SystemExit("no reconstruction within 60 s")
            watch.arm()  # the panel has handed the new buffer to the player in the same slot
            if panel.clip.reconstruction is old:
                raise SystemExit("the answer did not reach the panel")
            wait(app, lambda: watch.heard_at is not None, 5)
            latency = getattr(getattr(player, "_stream", None), "latency", latency)
            served.append(answers[before] - start)
            audible.append((watch.heard_at or float("nan")) - start)
            stages["asked"].append(asked_at[-1] - start)
            live = worker.live.timings[-1] if worker.live is not None and worker.live.timings else None
            if live is not None:  # its times are relative to when the request was posted
                stages["start"].append(stages["asked"][-1] + live["waited"] + live["hold"])
                stages["done"].append(stages["start"][-1] + live["inference"])
                stages["cpu"].append(live["inference_cpu"])
            print(f"click {click + 1}: " + ", ".join(
                f"{name} {values[-1] * 1e3:7.1f} ms" for name, values in stages.items() if values)
                + (" (encoded)" if live is not None and live["encoded"] else "")
                + (" (from memory)" if live is not None and live.get("ahead") else ""), flush=True)
    finally:
        worker.stop(save=False)
        player.close()
    print(f"{args.preset}, {args.seconds:g} s clip, '{args.click}' clicks, training on 1 thread; "
          f"stream output latency {latency if latency is not None else 'n/a'} s; "
          f"{player.underflows} output underflows, longest gap between callbacks "
          f"{player.longest_callback_gap_s * 1e3:.1f} ms")
    for name, values in stages.items():
        if not values:
            continue
        ms = np.asarray(values) * 1e3
        missed = int(np.isnan(ms).sum())
        print(f"  {'' if name == 'cpu' else 'click -> '}{name:<8} median {np.median(ms):7.1f} ms, worst {np.max(ms):7.1f} ms"
              + (f" ({missed} never heard within 5 s)" if missed else ""))
    verdict = "met" if np.median(audible) * 1e3 <= GOAL_MS else "NOT met"
    print(f"  goal: audible within {GOAL_MS:.0f} ms -> {verdict} (median)")


if __name__ == "__main__":
    main()
