"""Commands a run serves between steps (and while paused), from one table.

``replace_dead_codes`` and ``save_checkpoint`` answer with an event carrying the command's id;
``reconstruct`` and ``validate`` answer with a result (``{"kind": ..., "id": ...}``) handed out
once, in the next :class:`~vqstudio.train.report.StepReport` or by :meth:`Trainer.drain`. A command
that cannot be done (a wrong level count, a full disk, or a bug, which is also logged) answers with
its ``error`` as one line: it costs neither the step nor the run.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

import numpy as np

from vqstudio.errors import UserError
from vqstudio.train.mailbox import Command

log = logging.getLogger("vqstudio.train")

RESULT_KINDS = {"reconstruct": "reconstruction", "validate": "validation"}


def _replace_dead_codes(trainer, cmd: Command) -> None:
    trainer.replace_dead_codes(automatic=False, id=cmd.id)


def _save_checkpoint(trainer, cmd: Command) -> None:
    if trainer.save_checkpoint(id=cmd.id, reason=cmd.args.get("reason", "asked")) is None:
        trainer.record_event("refused", setting="save_checkpoint", reason="no run folder", id=cmd.id)


def _validate(trainer, cmd: Command) -> dict[str, Any]:
    return {"step": trainer.step_count, **trainer.validate()}


def _reconstruct(trainer, cmd: Command) -> dict[str, Any]:
    wave = np.asarray(cmd.args["wave"], dtype=np.float32).reshape(-1)
    if wave.size < trainer.config.model.hop:
        raise UserError(f"the clip is too short to reconstruct ({wave.size} samples)",
                        "choose a clip of at least a few milliseconds")
    levels = cmd.args.get("levels")
    audio = trainer.reconstruct(wave, levels)
    return {"audio": audio, "levels": levels, "step": trainer.step_count, "tag": cmd.args.get("tag"),
            "sample_rate": trainer.config.model.sample_rate}


COMMANDS: dict[str, Callable[[Any, Command], dict[str, Any] | None]] = {
    "replace_dead_codes": _replace_dead_codes,
    "save_checkpoint": _save_checkpoint,
    "validate": _validate,
    "reconstruct": _reconstruct,
}


def run_command(trainer, cmd: Command) -> dict[str, Any] | None:
    """Serve ``cmd``; returns its result (for result commands) or None. A UserError or OSError
    becomes the result's ``error`` (or a ``failed`` event for event commands)."""
    kind = RESULT_KINDS.get(cmd.name)
    try:
        answer = COMMANDS[cmd.name](trainer, cmd)
    except Exception as exc:  # noqa: BLE001 - a command never costs the run; a bug is logged
        if not isinstance(exc, (UserError, OSError)):
            log.error("command %s failed:\n%s", cmd.name, traceback.format_exc())
        text = str(exc).strip()
        message = text.splitlines()[0][:300] if text else type(exc).__name__
        if not isinstance(exc, (UserError, OSError)):
            message = f"{cmd.name} failed: {type(exc).__name__}: {message}"
        if kind is None:
            trainer.record_event("failed", command=cmd.name, error=message, id=cmd.id)
            return None
        return {"kind": kind, "id": cmd.id, "tag": cmd.args.get("tag"), "error": message}
    if kind is None:
        return None
    return {"kind": kind, "id": cmd.id, **answer}
