"""Stopping a training job the ordinary ways without losing work.

``SIGTERM`` (a cluster scheduler, systemd, a logout), ``SIGINT`` (Ctrl-C) and ``SIGHUP`` (a closed
terminal) all mean "stop": finish the step in progress, save a checkpoint, exit 0 saying where.
``SIGUSR1`` (the usual pre-emption warning of cluster schedulers) means "save a checkpoint now and
go on". A second stop signal while the first is being served (more than ``REPEAT_WINDOW_S``
after it) raises ``KeyboardInterrupt``: the way out of a job that hangs.

:class:`StopSignals` is Qt-free and is the one place this is decided. Its handlers only set flags
(a handler runs between two bytecodes of the main thread, possibly inside a mailbox call, so it
must not take locks); the training loop calls :meth:`StopSignals.serve` between steps, which turns
the flags into mailbox requests. Under ``torchrun`` every rank calls it at every step and the
flags are agreed with one all-reduce, so all ranks stop at the same step (rank 0 writes).

The desktop app shares only the signal lists (``STOP_SIGNALS``, ``CHECKPOINT_SIGNALS``): its
``app/stop_signals.py`` wakes the Qt event loop through ``signal.set_wakeup_fd`` and a socket
notifier instead of polling, and a stop there means "close the window the way Quit does" (which
saves a checkpoint).
"""

from __future__ import annotations

import signal
import time
from typing import Any

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
CHECKPOINT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGUSR1",) if hasattr(signal, name))
# A scheduler's SIGTERM to the job's process group reaches each torchrun worker twice: directly
# and forwarded by torchrun's agent a moment later. A second stop signal within this window is
# that same request; a later one means "stop now".
REPEAT_WINDOW_S = 2.0


class StopSignals:
    """Flags set by the stop and checkpoint signals; a context manager that installs the handlers
    (main thread only) and puts the previous ones back on exit."""

    repeat_window_s = REPEAT_WINDOW_S

    def __init__(self) -> None:
        self.stop_signal: str | None = None  # the name of the first stop signal received
        self.checkpoint_wanted = False
        self._stop_time = 0.0
        self._previous: dict[int, Any] = {}

    # -- handlers ---------------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame) -> None:
        now = time.monotonic()
        if self.stop_signal is not None:
            if now - self._stop_time < self.repeat_window_s:
                return  # the same request delivered twice (a group signal that torchrun forwards)
            raise KeyboardInterrupt  # asked again: stop now, without the checkpoint
        self.stop_signal, self._stop_time = signal.Signals(signum).name, now

    def _on_checkpoint(self, signum: int, frame) -> None:
        self.checkpoint_wanted = True

    def install(self) -> "StopSignals":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_stop)
        for signum in CHECKPOINT_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_checkpoint)
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> "StopSignals":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    # -- the loop's side --------------------------------------------------------------------------

    def pending(self, world: int = 1) -> tuple[bool, bool]:
        """``(stop, checkpoint)`` asked for since the last call (the checkpoint flag is taken),
        agreed over all ranks when ``world`` > 1 (a collective: every rank must call it)."""
        stop, save = self.stop_signal is not None, self.checkpoint_wanted
        self.checkpoint_wanted = False
        if world > 1:
            import torch
            import torch.distributed as dist

            flags = torch.tensor([float(stop), float(save)])
            if dist.get_backend() == "nccl":
                flags = flags.cuda()
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            stop, save = bool(flags[0].item()), bool(flags[1].item())
            if stop and self.stop_signal is None:
                self.stop_signal = "another rank's signal"
        return stop, save

    def serve(self, trainer, world: int = 1) -> None:
        """Between steps: a stop becomes ``trainer.mailbox.stop()``, a checkpoint request a
        ``save_checkpoint`` command (served at the start of the next step, or at the stop)."""
        stop, save = self.pending(world)
        if save:
            trainer.mailbox.command("save_checkpoint", reason="SIGUSR1")
        if stop:
            trainer.mailbox.stop()
