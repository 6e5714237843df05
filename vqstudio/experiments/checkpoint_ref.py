"""A run and one of its checkpoints, as named on the command line: ``RUN``, ``RUN:STEP``,
``RUN:best``, ``RUN:latest`` or ``RUN:step-00000400.pt``.

The selector is whatever follows the last ``:`` when that part reads as one (a number, ``best``,
``latest`` or a ``.pt`` file name) and the part before it is a folder; otherwise the whole text is
the run folder, so paths that contain ``:`` still work. Every failure names the run and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vqstudio.config import Config
from vqstudio.errors import CheckpointError, UserError
from vqstudio.train.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint
from vqstudio.train.runfolder import RunFolder

_SELECTOR = re.compile(r"^(\d+|best|latest|[\w.-]+\.pt)$")


@dataclass
class CheckpointRef:
    """A resolved ``RUN[:CKPT]``: the run folder, its configuration and the checkpoint file."""

    text: str
    run: RunFolder
    config: Config
    path: Path

    def load(self, map_location: str = "cpu") -> dict[str, Any]:
        """The checkpoint's state (a :class:`CheckpointError` naming the file if unreadable)."""
        return load_checkpoint(self.path, map_location=map_location)


def split_ref(text: str) -> tuple[str, str | None]:
    """``'runs/a:400'`` -> ``('runs/a', '400')``; ``'runs/a'`` -> ``('runs/a', None)``."""
    head, sep, tail = text.rpartition(":")
    if sep and head and _SELECTOR.match(tail) and Path(head).is_dir():
        return head, tail
    return text, None


def resolve_ref(text: str) -> CheckpointRef:
    """The run and checkpoint ``text`` names; the latest checkpoint when no selector is given."""
    run_text, selector = split_ref(text)
    run = RunFolder(run_text)
    if not run.path.exists():
        raise UserError(f"{run.path}: no such run folder", "check the path (a folder holding config.toml)")
    config = run.load_config()
    folder = run.checkpoint_dir
    if selector in (None, "latest"):
        path = latest_checkpoint(folder)
        if path is None:
            raise CheckpointError(f"{run.path} has no checkpoint yet",
                                  f"train it first: vqstudio train --run {run.path}")
    elif selector == "best":
        path = folder / "best.pt"
    elif selector.isdigit():
        path = folder / checkpoint_name(int(selector))
    else:
        path = folder / selector
    if not path.is_file():
        raise CheckpointError(f"{run.path} has no checkpoint '{selector}'",
                              f"choose one of: {', '.join(available(run)) or '(none yet)'}")
    return CheckpointRef(text, run, config, path)


def available(run: RunFolder) -> list[str]:
    """The selectors that name a checkpoint of ``run``: its steps, then ``best`` if there is one."""
    steps = sorted(run.checkpoint_dir.glob("step-*.pt"))
    names = [str(int(p.stem.split("-")[1])) for p in steps if p.stem.split("-")[1].isdigit()]
    return names + (["best"] if (run.checkpoint_dir / "best.pt").is_file() else [])
