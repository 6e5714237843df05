"""Checkpoints: written whole or not at all, loaded without unpickling arbitrary objects.

A checkpoint is one ``.pt`` file holding only tensors, numbers, strings, lists and dicts (model
and optimizer state, step, weights, RNG state, the configuration as TOML text). It is written to a
temporary file, flushed, fsynced and renamed, and ``latest.json`` (itself replaced atomically)
points at the newest one, so a crash at any moment leaves a loadable latest checkpoint. Loading uses
``torch.load(weights_only=True)``: a file crafted to run code on load is refused.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from vqstudio.errors import CheckpointError
from vqstudio.atomic import atomic_path, atomic_write_text

LATEST = "latest.json"


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def save_checkpoint(directory: Path, state: dict[str, Any], step: int, keep: int = 3,
                    best: bool = False) -> Path:
    """Write ``state`` as ``step-XXXXXXXX.pt``, point ``latest.json`` at it, prune old ones.

    The last ``keep`` step checkpoints and ``best.pt`` are kept.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / checkpoint_name(step)
    _atomic_torch_save(state, path)
    atomic_write_text(directory / LATEST, json.dumps({"step": step, "file": path.name}) + "\n")
    if best:
        _atomic_torch_save(state, directory / "best.pt")
    steps = sorted(directory.glob("step-*.pt"))
    for old in steps[: max(0, len(steps) - max(keep, 1))]:
        old.unlink(missing_ok=True)
    return path


def _atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest loadable checkpoint: ``latest.json``'s target, else the highest step file."""
    pointer = directory / LATEST
    if pointer.is_file():
        try:
            target = directory / json.loads(pointer.read_text())["file"]
            if target.is_file():
                return target
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    steps = sorted(directory.glob("step-*.pt"))
    return steps[-1] if steps else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; every failure is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint", "check the path or the run folder")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on crafted files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it asks for {found.group(1)}" if found else "unsafe content"
        raise CheckpointError(
            f"{path}: refused — the file holds objects that would run code when loaded ({what})",
            "only load checkpoints that VQ Studio wrote; this one may have been tampered with",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__})",
            "it may be truncated or from another program; use an earlier checkpoint",
        ) from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(
            f"{path}: not a VQ Studio checkpoint (no model state)",
            "pick a step-XXXXXXXX.pt or best.pt from a run's checkpoints folder",
        )
    return state
