"""A/B playback under training load: does the audio callback keep up while a tiny-cpu Trainer
trains in a background thread of the same process (competing for the GIL, as in the app)?

    python benchmarks/audio_underflow.py [--seconds 60] [--switch-every 0.5] [--preset tiny-cpu]
        [--baseline 10] [--pipe-bytes 8192] [--stall-ms 0] [--no-train] [--train-nice N]
        [--switch-interval MS] [--real-device]

The audio goes to a paced null ALSA device (see tests/alsa_null.py) written into a throw-away
HOME: a null sink behind a pipe that a pacer process drains in real time. PortAudio cannot see an
underflow there (the null sink never runs dry), so the pacer, which plays the part of the sound
card's clock, counts the dropouts itself: a read that found the pipe empty past the moment the
next sample was due is audio a sound card would have played as silence. The pipe holds
``--pipe-bytes`` of 48 kHz stereo S16 (8192 B = 43 ms, a little less than the player's 50 ms
latency), which is the headroom the callback has. ``--real-device`` plays on the system's
default output instead (PortAudio's own underflow count is then the figure).

Knobs for finding out why: ``--stall-ms N`` makes every 40th callback sleep N ms (shows that the
harness does see dropouts), ``--no-train`` plays with nothing else going on, ``--train-nice N``
lowers the training thread's priority, ``--switch-interval MS`` overrides the GIL switch interval
the player sets when its stream opens.

Prints the PortAudio-reported underflows, the device-side dropouts, the callback count, its
duration and its wait for the GIL (percentiles), gaps between callbacks, the garbage collector's
pauses (they hold the GIL), and training steps/s and audio-s/s with and without playback. Figures, not assertions; the load average is printed because
the machine may be shared with other work, which delays the audio thread as much as training does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PACED_RATE, PACED_CHANNELS, PACED_BYTES = 48000, 2, 2
STALL_EVERY = 40

_PACER = '''"""Drain stdin at a fixed byte rate like a sound card, and count the times it ran dry."""
import fcntl, json, os, select, sys, time
rate, pipe_bytes, stats_path, warmup = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
fd = sys.stdin.fileno()
# Non-blocking: finding the pipe empty when a sample is due is the dropout itself (a blocking
# read's duration would also count this process being preempted with data waiting).
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
# Shrinking a pipe that holds more than the new size fails (EBUSY), and ALSA has filled the
# default 64 KiB before this process runs: drain it (the warm-up), then shrink, until it takes.
for _ in range(1000):
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, pipe_bytes)
        break
    except OSError:
        time.sleep(0.001)
actual = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
chunk = max(rate // 1000, 1)  # 1 ms
late = 0.002  # a pacer wake-up this late is counted (and its clock moved on)
t0 = time.monotonic()
start, total = t0, 0
dropouts, silent, longest, late_wakeups = 0, 0.0, 0.0, 0
while True:
    due = start + total / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    ready = time.monotonic()
    if ready - due > late:
        # The pacer itself woke late (CPU contention): a DAC is never late, so move its clock on
        # rather than make the producer catch up faster than real time.
        late_wakeups += 1
        start += ready - due
    try:
        data = os.read(fd, chunk)
    except BlockingIOError:
        select.select([fd], [], [])  # ran dry: wait for the producer
        after = time.monotonic()
        if after - t0 > warmup:
            dropouts += 1
            silent += after - ready  # an upper bound: includes this process's wake-up
            longest = max(longest, after - ready)
        start += after - ready  # the silence was played; the clock does not rewind
        continue
    if not data:
        break
    total += len(data)
with open(stats_path, "w") as f:
    json.dump({"dropouts": dropouts, "silent_seconds": silent, "longest_seconds": longest,
               "late_wakeups": late_wakeups, "seconds": time.monotonic() - t0,
               "pipe_bytes": actual}, f)
'''


def write_paced_home(home: Path, pipe_bytes: int, stats: Path, warmup: float) -> None:
    """An ALSA configuration whose default output is the counting paced null device."""
    pacer = home / "pacer.py"
    pacer.write_text(_PACER)
    for text in (sys.executable, str(pacer), str(stats)):
        if any(c in text for c in "\"'\\ "):
            raise SystemExit(f"path not usable in an ALSA configuration: {text!r}")
    rate = PACED_RATE * PACED_CHANNELS * PACED_BYTES
    command = f"exec {sys.executable} -I -S {pacer} {rate} {pipe_bytes} {stats} {warmup}"
    (home / ".asoundrc").write_text(
        "pcm.!default {\n    type plug\n    slave {\n        pcm {\n            type file\n"
        '            slave.pcm "null"\n'
        f'            file "|{command}"\n'
        '            format "raw"\n        }\n'
        f"        rate {PACED_RATE}\n        format S16_LE\n        channels {PACED_CHANNELS}\n"
        "    }\n}\n"
    )


def percentiles(values: np.ndarray, qs=(50, 99, 100)) -> list[float]:
    return [float(np.percentile(values, q)) for q in qs] if values.size else [float("nan")] * len(qs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--switch-every", type=float, default=0.5)
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--pipe-bytes", type=int, default=8192)
    parser.add_argument("--stall-ms", type=float, default=0.0)
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds of training alone first, for comparison (0: skip)")
    parser.add_argument("--real-device", action="store_true")
    parser.add_argument("--no-train", action="store_true", help="playback alone (calibration)")
    parser.add_argument("--train-nice", type=int, default=0,
                        help="raise the training thread's niceness by this much (Linux)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="GIL switch interval in ms instead of the player's own choice")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="vqstudio-underflow-"))
    stats_path = home / "pacer-stats.json"
    if not args.real_device:
        write_paced_home(home, args.pipe_bytes, stats_path, warmup=0.5)
        os.environ["HOME"] = str(home)  # before PortAudio is first initialised
        os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
        os.environ.pop("ALSA_CONFIG_PATH", None)

    import torch

    from vqstudio.app.player import ABPlayer
    from vqstudio.audio.io import read_audio
    from vqstudio.config import load_preset
    from vqstudio.resources import demo_dir
    from vqstudio.train.trainer import Trainer

    class TimedPlayer(ABPlayer):
        """The real player with its callback timed (two clock reads per block)."""

        def __init__(self, stall_s: float, **options):
            self.starts = np.zeros(1 << 16)
            self.durations = np.zeros(1 << 16)
            self.waits = np.zeros(1 << 16)
            self.count = 0
            self.stall_s = stall_s
            super().__init__(**options)

        def _callback(self, outdata, frames, time_info, status):
            begin = time.perf_counter()
            # PortAudio stamps currentTime (CLOCK_MONOTONIC on Linux) before calling into Python:
            # the difference is the wait for the GIL.
            wait = time.monotonic() - time_info.currentTime
            if self.stall_s and self.count % STALL_EVERY == STALL_EVERY - 1:
                time.sleep(self.stall_s)
            super()._callback(outdata, frames, time_info, status)
            i = self.count % self.starts.size
            self.starts[i], self.durations[i] = begin, time.perf_counter() - begin
            self.waits[i] = wait
            self.count += 1

    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000.0)
    load_before = os.getloadavg()
    config = load_preset(args.preset, ["train.validate_every=0", "train.checkpoint_every=0"])
    trainer = Trainer(config, None)
    sr = config.model.sample_rate
    clip = read_audio(demo_dir() / "speech-04-directions.flac", sr, duration=8.0)
    reconstruction = trainer.reconstruct(clip)
    # The cyclic garbage collector holds the GIL while it runs, in whichever thread triggered it.
    gc_pauses: list[tuple[int, float]] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)
    batch_audio = config.data.batch_size * config.data.segment_seconds

    stop = threading.Event()
    progress = {"steps": 0}

    def train() -> None:
        if args.train_nice and hasattr(os, "setpriority"):
            # Linux nice is per thread; torch's worker threads, started from here, inherit it.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), args.train_nice)
        while not stop.is_set() and not args.no_train:
            trainer.step()
            progress["steps"] += 1

    thread = threading.Thread(target=train, name="training", daemon=True)
    thread.start()
    trainer_threads = torch.get_num_threads()

    def speed(seconds: float) -> float:
        first, begin = progress["steps"], time.perf_counter()
        time.sleep(seconds)
        return (progress["steps"] - first) / (time.perf_counter() - begin)

    time.sleep(0.0 if args.no_train else 2.0)  # warm-up steps
    alone = speed(args.baseline) if args.baseline > 0 and not args.no_train else float("nan")

    options = {} if args.switch_interval is None else {"gil_switch_interval": None}
    player = TimedPlayer(args.stall_ms / 1000.0, **options)
    if not player.available:
        stop.set()
        thread.join()
        raise SystemExit(f"no player: {player.unavailable_reason}")
    player.set_clip(clip, reconstruction, sr)
    player.set_loop(0.0, len(clip) / sr)
    player.play()
    time.sleep(0.5)  # the stream's first buffer fill
    first_callback = player.count
    first_steps, begin = progress["steps"], time.perf_counter()
    gc_pauses.clear()
    sources = ["original", "reconstruction", "residual"]
    switches = 0
    deadline = begin + args.seconds
    while time.perf_counter() < deadline:
        time.sleep(args.switch_every)
        if switches % 4 == 3:
            player.toggle_last()  # Tab
        else:
            player.select(sources[switches % 3])
        switches += 1
    played = time.perf_counter() - begin
    gc.callbacks.remove(on_gc)
    pauses = list(gc_pauses)
    with_audio = (progress["steps"] - first_steps) / played
    callbacks = player.count - first_callback
    n = min(player.count, player.starts.size)
    order = np.argsort(player.starts[:n])
    starts, durations = player.starts[:n][order], player.durations[:n][order]
    keep = starts >= begin
    durations_ms = durations[keep] * 1000
    waits_ms = player.waits[:n][order][keep] * 1000
    gaps_ms = np.diff(starts[keep]) * 1000
    underflows, errors, rate = player.underflows, player.callback_errors, player.sample_rate
    player.close()
    stop.set()
    thread.join()
    trainer.close()
    load_after = os.getloadavg()

    device = None
    if not args.real_device:
        for _ in range(100):  # the pacer writes its figures when the stream's pipe closes
            if stats_path.exists():
                device = json.loads(stats_path.read_text())
                break
            time.sleep(0.05)
    shutil.rmtree(home, ignore_errors=True)

    where = "the system's default output" if args.real_device else (
        f"the paced null ALSA device (pipe {device['pipe_bytes'] if device else args.pipe_bytes} B "
        f"= {(device['pipe_bytes'] if device else args.pipe_bytes) / (PACED_RATE * 4) * 1000:.0f} ms)"
    )
    frames = player.frames_played / max(player.count, 1)
    p50, p99, worst = percentiles(durations_ms)
    g50, g99, gmax = percentiles(gaps_ms)
    w50, w99, wmax = percentiles(waits_ms)
    print(f"GIL switch interval            {sys.getswitchinterval() * 1000:.1f} ms")
    load = "nothing else" if args.no_train else (
        f"{args.preset} trains in a background thread ({trainer_threads} torch thread(s)"
        f"{f', nice +{args.train_nice}' if args.train_nice else ''})")
    print(f"{played:.0f} s of A/B playback at {rate} Hz on {where}, a switch every "
          f"{args.switch_every} s, while {load}; {os.cpu_count()} cores")
    print(f"load average before/after      {load_before[0]:.2f} / {load_after[0]:.2f}"
          "  (the machine may be shared: other jobs slow both training and the callback)")
    if args.stall_ms:
        print(f"stall injected                 {args.stall_ms:.0f} ms in every {STALL_EVERY}th callback")
    print(f"switches                       {switches}")
    print(f"callbacks                      {callbacks} (~{frames:.0f} frames each)")
    print(f"callback duration ms           p50 {p50:.3f}  p99 {p99:.3f}  max {worst:.3f}")
    print(f"gap between callbacks ms       p50 {g50:.1f}  p99 {g99:.1f}  max {gmax:.1f}")
    if args.real_device or sys.platform.startswith("linux"):
        print(f"wait for the GIL ms            p50 {w50:.3f}  p99 {w99:.3f}  max {wmax:.3f}")
    longest_gc = max((d for _, d in pauses), default=0.0) * 1000
    full = sum(1 for g, _ in pauses if g == 2)
    print(f"garbage collections            {len(pauses)} ({full} full), longest {longest_gc:.1f} ms")
    print(f"underflows (PortAudio)         {underflows}")
    if device is not None:
        print(f"dropouts (device ran dry)      {device['dropouts']}  "
              f"({device['silent_seconds'] * 1000:.1f} ms of silence in all, longest "
              f"{device['longest_seconds'] * 1000:.1f} ms; pacer woke late {device['late_wakeups']}x)")
    elif not args.real_device:
        print("dropouts (device ran dry)      unknown: the pacer wrote no figures")
    print(f"callback errors                {errors}")
    if not args.no_train:
        print(f"training steps/s               {with_audio:.2f} with playback, {alone:.2f} alone "
              f"({with_audio * batch_audio:.1f} / {alone * batch_audio:.1f} audio-s/s)")


if __name__ == "__main__":
    main()
