"""The one mailbox between a trainer and whoever drives it (the GUI thread, a signal handler).

Settings (the live ones of train/settings.py: weights, lr, mel norm ...) are snapshots: the last
write for each name wins, and the trainer applies them all at the start of its next step (or while
paused). Commands (replace dead codes, save a checkpoint, reconstruct a clip, validate) are queued,
run in order and answered once, carrying the id :meth:`Mailbox.command` returned. Pause, resume and
stop are flags that :meth:`Trainer.steps` waits on between steps. A mailbox may be made before its
trainer (what is posted waits for it) and reopened for the next run. Thread-safe; no Qt.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from vqstudio.train.settings import SETTINGS as LIVE_SETTINGS

SETTINGS = tuple(LIVE_SETTINGS)  # the table of live settings: vqstudio/train/settings.py
COMMANDS = ("replace_dead_codes", "save_checkpoint", "reconstruct", "validate")  # see commands.py


@dataclass
class Command:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: int = 0


class Mailbox:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._settings: dict[str, Any] = {}
        self._commands: list[Command] = []
        self._ids = itertools.count(1)
        self._paused = False
        self._stopped = False

    # -- producer side (any thread) -----------------------------------------------------------

    def set_weights(self, weights: dict[str, float]) -> None:
        with self._lock:
            merged = dict(self._settings.get("weights", {}))
            merged.update({str(k): float(v) for k, v in weights.items()})
            self._settings["weights"] = merged
            self._lock.notify_all()

    def set(self, name: str, value: Any) -> None:
        if name not in SETTINGS:
            raise ValueError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
        if name == "weights":
            self.set_weights(value)
            return
        with self._lock:
            self._settings[name] = value
            self._lock.notify_all()

    def command(self, name: str, **args: Any) -> int:
        """Queue a command; returns its id (results and events carry it back)."""
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
        with self._lock:
            cmd = Command(name, args, next(self._ids))
            self._commands.append(cmd)
            self._lock.notify_all()
            return cmd.id

    def next_id(self) -> int:
        """An id from the commands' sequence, for a command answered elsewhere (the GUI's live
        reconstructions): no queued command ever carries it."""
        with self._lock:
            return next(self._ids)

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            self._lock.notify_all()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def reopen(self) -> None:
        """Clear stop and pause for a new run; settings and commands already posted stay."""
        with self._lock:
            self._stopped = self._paused = False
            self._lock.notify_all()

    # -- consumer side (the training thread) --------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def take(self) -> tuple[dict[str, Any], list[Command]]:
        """Everything posted since the last call: (settings snapshot, queued commands)."""
        with self._lock:
            settings, self._settings = self._settings, {}
            commands, self._commands = self._commands, []
            return settings, commands

    def wait(self, timeout: float) -> None:
        """Block until something is posted, the state changes, or ``timeout`` passes."""
        with self._lock:
            if not (self._settings or self._commands or self._stopped or not self._paused):
                self._lock.wait(timeout)
