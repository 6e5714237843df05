"""Steering from other processes: the trainer's side of the control file (``control_file.py``).

Between steps, rank 0 polls ``control.jsonl`` (a ``stat`` at most every :data:`POLL_SECONDS`;
the file is read only when it grew) and applies each new line through the live settings table
(:func:`vqstudio.train.settings.apply_setting`), so a change from ``vqstudio set`` or a following
app is the same event, with its step, as a change from the app's own sliders, plus the line's
``control`` id and ``source``. A line that does not parse, names nothing live or has an unusable
value is a ``refused`` event; training goes on. A line whose setting is one of
:data:`CONTROL_COMMANDS` runs that command (its event carries the id too).

Under ``torchrun`` every rank calls :meth:`Steering.serve` at the start of every step; rank 0's
lines are broadcast (one small broadcast per step, a second one only when there is something),
so every rank changes at the same step. After a change, the ranks' steps and live values are
gathered once and rank 0 logs them (a ``ranks`` event), so the log shows that they agree.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vqstudio.train.control_file import (ControlLine, ControlReader, control_path, handled_ids, live_names,
                                         resolve, setting_keys)
from vqstudio.train.commands import run_command
from vqstudio.train.mailbox import Command
from vqstudio.train.settings import SETTINGS, apply_setting

CONTROL_COMMANDS = ("save_checkpoint", "replace_dead_codes")  # answered by events, so a line can ask
POLL_SECONDS = 0.1  # at most this often a stat of the control file (it may be on NFS)


class Steering:
    """The control file of one trainer's run (``run_dir`` None, or a rank other than 0: nothing
    to read, but the broadcast is still taken part in)."""

    def __init__(self, run_dir: str | Path | None, events: list[dict[str, Any]], rank: int = 0, world: int = 1):
        self.world = world
        self.reader = None
        if run_dir is not None and rank == 0:
            self.reader = ControlReader(control_path(run_dir), handled_ids(events))
        self._last_poll = -float("inf")

    def _read(self) -> list[ControlLine]:
        now = time.monotonic()
        if self.reader is None or now - self._last_poll < POLL_SECONDS:
            return []
        self._last_poll = now
        return self.reader.poll()

    def serve(self, trainer) -> None:
        """Apply the new lines (a collective when ``world`` > 1: every rank must call it)."""
        lines = self._read()
        if self.world > 1:
            lines = _broadcast(lines)
        for line in lines:
            apply_line(trainer, line)
        if self.world > 1 and lines:
            _record_agreement(trainer, [line.id for line in lines])


def apply_line(trainer, line: ControlLine) -> None:
    """Apply one control line to ``trainer``; every outcome is one or more events carrying the
    line's ``control`` id."""
    tags = {"control": line.id, "source": line.source} if line.source else {"control": line.id}
    if line.problem is not None:
        trainer.record_event("refused", setting=line.setting or "control line", reason=line.problem, **tags)
        return
    if line.setting in CONTROL_COMMANDS:  # a command another process asks for (the app's buttons)
        with trainer.tagged_events(**tags):
            run_command(trainer, Command(line.setting, {"reason": "control"}, 0))
        return
    target = resolve(line.setting, SETTINGS, trainer.weights, setting_keys())
    if target is None:
        known = ", ".join(live_names(SETTINGS, trainer.weights))
        trainer.record_event("refused", setting=line.setting, reason=f"not a live setting (live: {known})",
                             **tags)
        return
    name, term = target
    value = {term: line.value} if name == "weights" else line.value
    before = trainer.events_recorded
    with trainer.tagged_events(**tags):
        apply_setting(trainer, name, value)
    if trainer.events_recorded == before:  # the value it already had
        trainer.record_event("control", setting=line.setting, value=line.value, note="no change", **tags)


def _record_agreement(trainer, ids: list[str]) -> None:
    """Every rank's step, learning rate and weights after applying ``ids``, logged by rank 0."""
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    names = sorted(trainer.weights)
    mine = torch.tensor([float(trainer.step_count), trainer.base_lr, *(trainer.weights[n] for n in names)],
                        dtype=torch.float64, device=device)
    every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    rows = [t.cpu().tolist() for t in every]
    trainer.record_event("ranks", controls=ids, steps=[int(r[0]) for r in rows], lr=[r[1] for r in rows],
                         agree=all(r == rows[0] for r in rows),
                         weights={n: [r[2 + i] for r in rows] for i, n in enumerate(names)})


def _broadcast(lines: list[ControlLine]) -> list[ControlLine]:
    """Rank 0's lines on every rank (JSON bytes in a tensor: no pickling)."""
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    payload = json.dumps([line.__dict__ for line in lines]).encode("utf-8") if lines else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=0)
    n = int(size.item())
    if n == 0:
        return []
    data = torch.zeros(n, dtype=torch.uint8, device=device)
    if dist.get_rank() == 0:
        data.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    dist.broadcast(data, src=0)
    return [ControlLine(**item) for item in json.loads(bytes(data.cpu().tolist()).decode("utf-8"))]
