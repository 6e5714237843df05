"""Switching A/B between two checkpoints while playing: no gap, no click.

    .venv/bin/python benchmarks/ab_switch.py [--a RUN:CKPT --b RUN:CKPT] [--clip FILE]
                                             [--switches 40] [--interval 0.25]

The real parts: two checkpoints (by default a tiny run trained here for 300 steps, its steps 100
and 300: two models that sound different), reconstructed by the app's CheckpointWorker off the main
thread, and a real ABPlayer on the paced null ALSA device of ``tests/alsa_null.py`` (a real-time
clock behind a PortAudio stream). The clip (default: the demo corpus's first speech file, 10 s)
plays while the source is switched ``--switches`` times between the two, every ``--interval`` s,
as a user pressing 1 and 2 would. The audio callback is watched (called unchanged; its output
copied) to measure:

- gaps: the time between successive callbacks (median and worst, against the block length), the
  player's underflow count and longest gap, and the paced device's dropouts (data more than 50 ms
  late: what a sound card would play as silence);
- clicks: the largest sample-to-sample step within 20 ms after each switch was applied, against
  the largest step anywhere else in the same output (the signal's own steepness), and against the
  step a hard cut (no crossfade) at the same frames would have made.

Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from alsa_null import dropouts, write_asoundrc  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-abswitch-home-"))
write_asoundrc(_HOME, "paced")  # before PortAudio is first initialised (sounddevice's import)
os.environ["HOME"] = str(_HOME)

import numpy as np  # noqa: E402

from vqstudio.app.checkpoint_worker import CheckpointWorker  # noqa: E402
from vqstudio.app.player import ABPlayer  # noqa: E402
from vqstudio.audio.io import read_audio  # noqa: E402
from vqstudio.resources import demo_dir  # noqa: E402

FIRST, SECOND = "checkpoint-1", "checkpoint-2"
WINDOW_S = 0.02  # after a switch is applied, where a click would be


class Tap:
    """Wraps the player's callback: keeps each block's mono output, its start time, and the
    block in which the selected source changed."""

    def __init__(self, player: ABPlayer):
        self.blocks: list[np.ndarray] = []
        self.times: list[float] = []
        self.switch_blocks: list[int] = []
        self.switch_frames: list[int] = []  # the playhead (in the buffers) at each switch
        inner = player._callback

        def watched(outdata, frames, time_info, status):
            before, playhead = player._state.selected, player._state.playhead
            self.times.append(time.perf_counter())
            inner(outdata, frames, time_info, status)
            if player._state.selected != before:
                self.switch_blocks.append(len(self.blocks))
                self.switch_frames.append(playhead)
            self.blocks.append(outdata[:, 0].copy())

        player._callback = watched  # looked up when the stream opens


def default_checkpoints(work: Path) -> tuple[str, str]:
    from helpers import train_tiny_run

    print("training a tiny run for two checkpoints (steps 100 and 300)…", flush=True)
    run, _ = train_tiny_run(work, steps=300, checkpoint_every=100)
    return f"{run}:100", f"{run}:300"


def reconstruct_both(refs: tuple[str, str], clip: np.ndarray, rate: int) -> dict[str, tuple[np.ndarray, int]]:
    """Both reconstructions from the CheckpointWorker; prints how long they took, first (models
    loaded) and asked again (the cache)."""
    answers: dict[str, dict] = {}
    done = threading.Event()

    def deliver(answer: dict) -> None:
        answers[answer["source"]] = answer
        if len(answers) == 2:
            done.set()

    worker = CheckpointWorker(deliver)
    seconds = []
    try:
        for _ in range(2):
            answers.clear()
            done.clear()
            start = time.perf_counter()
            for name, ref in zip((FIRST, SECOND), refs):
                worker.reconstruct(name, ref, clip, rate, "bench")
            if not done.wait(300):
                raise SystemExit("the checkpoint worker did not answer within 300 s")
            seconds.append(time.perf_counter() - start)
    finally:
        worker.close()
    for answer in answers.values():
        if answer.get("error"):
            raise SystemExit(answer["error"])
    print(f"checkpoint worker (pinned to CPU {worker.pinned_cpu}): both reconstructed in "
          f"{seconds[0]:.2f} s (models loaded), again in {seconds[1] * 1e3:.1f} ms (cached)")
    return {name: (a["audio"], int(a["sample_rate"])) for name, a in answers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default=None, help="RUN:CKPT heard as 1 (default: a tiny run's step 100)")
    parser.add_argument("--b", default=None, help="RUN:CKPT heard as 2 (default: its step 300)")
    parser.add_argument("--clip", default=None, help="audio file (default: demo speech, first 10 s)")
    parser.add_argument("--switches", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between switches")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vqstudio-abswitch-"))
    refs = (args.a, args.b) if args.a and args.b else default_checkpoints(work)
    clip_path = Path(args.clip) if args.clip else sorted(demo_dir().glob("speech-*.flac"))[0]
    rate = 24000
    clip = read_audio(clip_path, rate, duration=10.0).astype(np.float32)
    sources = reconstruct_both(refs, clip, rate)

    player = ABPlayer()
    if not player.available:
        raise SystemExit(f"no player: {player.unavailable_reason}")
    tap = Tap(player)
    player.set_clip(clip, None, rate)
    for name, (audio, audio_rate) in sources.items():
        player.set_source_buffer(name, audio, sample_rate=audio_rate)
    player.loudness_match = True
    player.set_loop(0.0, clip.shape[0] / rate)  # the test never runs off the end
    player.select(FIRST)
    player.play()
    time.sleep(0.5)  # the first buffer fills; the pacer's clock starts
    since = time.monotonic()
    start_block = len(tap.blocks)
    for i in range(args.switches):
        time.sleep(args.interval)
        player.select(SECOND if i % 2 == 0 else FIRST)
    time.sleep(args.interval)
    until = time.monotonic()
    player.close()

    out_rate = player.sample_rate
    blocks, times = tap.blocks[start_block:], np.asarray(tap.times[start_block:])
    block_frames = int(np.median([b.shape[0] for b in blocks]))
    gaps = np.diff(times) * 1e3
    heard = np.concatenate(blocks)
    offsets = np.cumsum([0] + [b.shape[0] for b in blocks])
    steps = np.abs(np.diff(heard))
    near = np.zeros(steps.shape[0], dtype=bool)
    window = int(WINDOW_S * out_rate)
    switch_at = [int(offsets[k - start_block]) for k in tap.switch_blocks if k >= start_block]
    for at in switch_at:
        near[max(at - 1, 0): at + window] = True
    # What a hard cut would do: the step between the two buffers at those frames (their own
    # frames are the same as the output's, the loop starting at 0; gains applied as heard).
    gains = player.gains
    a = np.asarray(player._state.sources.get(FIRST)) * gains.get(FIRST, 1.0)
    b = np.asarray(player._state.sources.get(SECOND)) * gains.get(SECOND, 1.0)
    lost = len(dropouts(_HOME, since, until))

    print(f"clip {clip_path.name}, {clip.shape[0] / rate:.1f} s at {rate} Hz; stream {out_rate} Hz, "
          f"blocks of {block_frames} frames ({block_frames / out_rate * 1e3:.1f} ms); 1 = {refs[0]}, "
          f"2 = {refs[1]}; {len(switch_at)} switches applied of {args.switches} asked")
    print(f"  callbacks: interval median {np.median(gaps):.1f} ms, p99 {np.percentile(gaps, 99):.1f} ms, "
          f"worst {gaps.max():.1f} ms; player longest gap {player.longest_callback_gap_s * 1e3:.1f} ms; "
          f"underflows {player.underflows}; callback errors {player.callback_errors}")
    pace = heard.shape[0] / out_rate / (times[-1] - times[0])
    print(f"  rendered {heard.shape[0] / out_rate:.2f} s of audio in {times[-1] - times[0]:.2f} s "
          f"of callbacks ({pace:.3f}x real time)")
    print(f"  paced device dropouts (>50 ms late) while switching: {lost}")
    print(f"  largest step within {WINDOW_S * 1e3:.0f} ms after a switch: {steps[near].max():.4f}; "
          f"elsewhere: max {steps[~near].max():.4f}, p99.9 {np.percentile(steps[~near], 99.9):.4f}; "
          f"ratio {steps[near].max() / steps[~near].max():.2f}")
    cut = [abs(float(a[f] - b[f])) for k, f in zip(tap.switch_blocks, tap.switch_frames)
           if k >= start_block and 0 <= f < min(a.size, b.size)]
    if cut:
        print(f"  a hard cut at the same frames would step by: median {np.median(cut):.4f}, "
              f"max {max(cut):.4f}")


if __name__ == "__main__":
    main()
