"""The console's view of a training run: a tqdm bar on a terminal, plain lines otherwise.

On a terminal the bar shows the step (of the target, when there is one), the latest logged loss
and the training speed in audio-seconds per second; when output goes to a file or a pipe (a
cluster job's log) it prints one plain line every ``PLAIN_INTERVAL_S`` seconds and at the end
instead of carriage returns. The loss appears from the first logged step on, never as ``nan``.
Non-finite skips and restores get a line of their own either way.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

PLAIN_INTERVAL_S = 10.0
SPEED_SMOOTHING = 0.1


class Progress:
    """``update(report)`` after every step, ``close()`` at the end."""

    def __init__(self, start: int, target: int | None, enabled: bool = True, stream: TextIO | None = None):
        self.start, self.target, self.enabled = start, target, enabled
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.last_print = -math.inf
        self.speed = math.nan
        self.loss = math.nan
        self.step = start
        self._bar = None
        if enabled and self.tty:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the bar is updated every step anyway
            total = target - start if target is not None else None
            self._bar = tqdm(total=total, unit="step", file=self.stream, dynamic_ncols=True,
                             smoothing=SPEED_SMOOTHING, desc="train")

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def update(self, report) -> None:
        if not self.enabled:
            return
        if report.terms and math.isfinite(report.terms.get("total", math.nan)) and not report.skipped:
            self.loss = report.terms["total"]
        rate = report.audio_seconds_per_second
        self.speed = rate if math.isnan(self.speed) else (
            (1 - SPEED_SMOOTHING) * self.speed + SPEED_SMOOTHING * rate)
        for event in report.events:
            if event["kind"] in ("nonfinite_skip", "restored"):
                self._say(f"{event['kind']} at step {event['step']}")
        advanced, self.step = report.step - self.step, report.step
        if self._bar is not None:
            postfix = {"audio-s/s": f"{self.speed:.1f}"}
            if math.isfinite(self.loss):
                postfix = {"loss": f"{self.loss:.4f}", **postfix}
            self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(max(0, advanced))
            return
        now = time.monotonic()
        last = self.target is not None and report.step >= self.target
        if now - self.last_print < PLAIN_INTERVAL_S and not last:
            return
        self.last_print = now
        self._say(self.line(report.step))

    def line(self, step: int) -> str:
        """The plain progress line for ``step``."""
        text = f"step {step}" if not self.target else f"step {step}/{self.target}"
        if math.isfinite(self.loss):
            text += f"  loss {self.loss:.4f}"
        return text + f"  {self.speed:.1f} audio-s/s"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
