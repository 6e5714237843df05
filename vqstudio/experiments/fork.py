"""Fork: a new run folder that starts from a checkpoint of another run, with settings changed.

``vqstudio train --from RUN[:STEP|:best] --run NEW --set k=v ...`` calls :func:`fork_run`, then
trains NEW exactly as any resume does. The fork is written as an ordinary run folder whose first
checkpoint is the parent's state at that step, filtered for the new settings, so nothing in the
trainer knows about forks: the global step count, the RNG state and the sampler position simply
go on from the parent's checkpoint.

What carries over is decided per change (:func:`change_kind`) and said in one line:

- live settings (train/settings.py: loss weights, ``train.lr``, ``loss.balancer``, ``loss.mel_norm``,
  ``model.quantizer_dropout`` ...) and
  loss-only, data or training changes keep the model and optimizer state; the checkpoint's live
  values are replaced by the new ones (a parent's live weight change is kept unless the fork sets
  that weight), and the optimizer's betas and weight decay follow the new configuration;
- a structural change (any other ``model.*`` key) keeps every model tensor whose name and shape
  still fit, starts the others as a new run would (same seed), and keeps the optimizer state only
  of parameters that were carried over. Discriminators whose tensors no longer fit start fresh.

The best validation figure is not inherited: the fork's ``best.pt`` is its own. NEW/config.toml
records the parent in ``[forked_from]`` (run, checkpoint, step, and the settings changed, old and
new). NEW is built in a hidden folder beside it and renamed into place: a refused or failed fork
leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vqstudio.config import Config, parse_override
from vqstudio.errors import ConfigError
from vqstudio.experiments.checkpoint_ref import CheckpointRef, resolve_ref
from vqstudio.model import Codec
from vqstudio.train.checkpoint import save_checkpoint
from vqstudio.train.runfolder import CONFIG_FILE, EVENTS_FILE, RunFolder
from vqstudio.train.settings import live_keys
from vqstudio.atomic import atomic_write_text

# Settings the trainer changes between steps (train/settings.py); a fork just sets them.
LIVE = tuple(k for k in live_keys() if not k.startswith("loss.weights."))  # and every weight


@dataclass
class Fork:
    """What :func:`fork_run` did: the parent checkpoint, the new run, the changes and the line."""

    parent: CheckpointRef
    run: RunFolder
    step: int
    changed: dict[str, tuple[Any, Any]]
    summary: str


def change_kind(key: str) -> str:
    """``live``, ``loss``, ``data``, ``training`` or ``structural`` for a dotted setting name."""
    if key in LIVE or key.startswith("loss.weights."):
        return "live"
    section = key.split(".", 1)[0]
    return {"loss": "loss", "data": "data", "train": "training"}.get(section, "structural")


def changed_settings(before: Config, after: Config) -> dict[str, tuple[Any, Any]]:
    """Every dotted setting whose value differs, as (old, new); None where one side lacks it."""
    old, new = _flat(before.to_dict()), _flat(after.to_dict())
    keys = [k for k in {**old, **new} if not k.startswith(("forked_from", "preset"))]
    return {k: (old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)}


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fork_run(source: str, new_dir: str | Path, overrides: list[str], data: str | None = None) -> Fork:
    """Write NEW from ``source`` (``RUN[:STEP|:best|:latest]``) with ``overrides`` (``k=v``
    texts, as ``--set`` takes them) applied, and ``data`` as ``data.path`` when given.

    Refused (nothing written) when the parent, its checkpoint or an override is bad, or NEW
    already holds anything.
    """
    new = RunFolder(new_dir)
    parent = resolve_ref(source)
    if new.path.exists() and (not new.path.is_dir() or any(new.path.iterdir())):
        raise ConfigError(f"{new.path} already exists and is not empty",
                          "fork into a new folder (--run NEW names the fork, not the parent)")
    if new.path.resolve() == parent.run.path.resolve():
        raise ConfigError("--run names the parent itself", "fork into a new folder")
    pairs = [parse_override(text) for text in overrides] + ([("data.path", data)] if data else [])
    config = parent.config.with_overrides(dict(pairs))
    state = parent.load()
    step = int(state["step"])
    changed = changed_settings(parent.config, config)
    config.forked_from = _record(parent, step, changed)
    carried = _carry_state(state, parent.config, config, changed)
    summary = _summary(parent, new, step, changed, carried)
    _write_run(new, config, state, step, summary)
    return Fork(parent, new, step, changed, summary)


def _record(parent: CheckpointRef, step: int, changed: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The ``[forked_from]`` table (TOML has no null: a side that lacks a setting is left out)."""
    record: dict[str, Any] = {"run": str(parent.run.path.resolve()), "checkpoint": parent.path.name,
                              "step": step}
    record["changed"] = {k: new for k, (old, new) in changed.items() if new is not None}
    record["previous"] = {k: old for k, (old, new) in changed.items() if old is not None}
    return record


# -- the state ----------------------------------------------------------------------------------


def _carry_state(state: dict[str, Any], before: Config, after: Config,
                 changed: dict[str, tuple[Any, Any]]) -> dict[str, list[str]]:
    """Filter ``state`` in place for ``after``; returns the names started fresh, per part."""
    fresh: dict[str, list[str]] = {"tensors": [], "optimizer": [], "discriminators": []}
    if any(change_kind(k) == "structural" for k in changed):
        fresh["tensors"], fresh["optimizer"] = _fit_model(state, before, after)
    groups = state["optimizer"]["param_groups"]
    for group in groups:  # the trainer sets lr every step; betas and weight decay it does not
        group["betas"] = tuple(after.train.betas)
        group["weight_decay"] = after.train.weight_decay
    weights = after.loss.resolved_weights()
    for name, value in state.get("weights", {}).items():
        if name in weights and f"loss.weights.{name}" not in changed:
            weights[name] = value  # a live change made in the parent stays
    state["weights"] = weights
    if "train.lr" in changed:
        state["base_lr"], state["lr_scale"] = after.train.lr, 1.0
    if "loss.balancer" in changed:
        state["balancer_mode"] = after.loss.balancer
    if "model.quantizer_dropout" in changed:
        state["quantizer_dropout"] = after.model.quantizer_dropout
    for key in changed:  # the others live in the configuration: the fork's is in force
        state.get("live", {}).pop(key, None)
    state["best_val"] = float("inf")  # the fork's best.pt is its own
    state["config"] = after.to_toml()
    if "discriminators" in state and not _discriminators_fit(state, after):
        fresh["discriminators"] = ["discriminators"]
        state.pop("discriminators")
        state.pop("disc_optimizer", None)
    return fresh


def _seeded_codec(config: Config) -> Codec:
    """The model a new run with ``config`` would start with, leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return Codec(config.model)


def _fit_model(state: dict[str, Any], before: Config, after: Config) -> tuple[list[str], list[str]]:
    """Keep each model tensor whose name and shape fit ``after``, and the optimizer state of each
    parameter kept; returns (tensors started fresh, parameters whose optimizer state was dropped)."""
    old_model, new_model = _seeded_codec(before), _seeded_codec(after)
    parent = state["model"]
    merged, fresh = {}, []
    for name, tensor in new_model.state_dict().items():
        theirs = parent.get(name)
        if theirs is not None and theirs.shape == tensor.shape and theirs.dtype == tensor.dtype:
            merged[name] = theirs
        else:
            merged[name] = tensor
            fresh.append(name)
    state["model"] = merged

    old_index = {name: i for i, (name, _) in enumerate(old_model.named_parameters())}
    old_opt = state["optimizer"]
    template = torch.optim.AdamW(new_model.parameters(), lr=after.train.lr,
                                 betas=tuple(after.train.betas), weight_decay=after.train.weight_decay)
    new_opt = template.state_dict()
    dropped = []
    for i, (name, _) in enumerate(new_model.named_parameters()):
        j = old_index.get(name)
        if name not in fresh and j is not None and j in old_opt["state"]:
            new_opt["state"][i] = old_opt["state"][j]
        elif j is not None and j in old_opt["state"]:
            dropped.append(name)
    state["optimizer"] = new_opt
    return fresh, dropped


def _discriminators_fit(state: dict[str, Any], after: Config) -> bool:
    if not after.loss.adversarial:
        return False
    from vqstudio.train.losses import LossSuite

    with torch.random.fork_rng(devices=[]):
        wanted = LossSuite(after).discriminator_state_dict()
    theirs = state["discriminators"]
    return set(wanted) == set(theirs) and all(wanted[k].shape == theirs[k].shape for k in wanted)


# -- saying it and writing it -------------------------------------------------------------------


def _shown(value: Any) -> str:
    return "unset" if value is None else json.dumps(value) if isinstance(value, str) else str(value)


def _names(names: list[str], limit: int = 4) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def _summary(parent: CheckpointRef, new: RunFolder, step: int, changed: dict[str, tuple[Any, Any]],
             fresh: dict[str, list[str]]) -> str:
    head = f"Forked {parent.run.path} at step {step} ({parent.path.name}) into {new.path}"
    if not changed:
        return f"{head}: no setting changed; model and optimizer state carried over."
    kinds = {k: change_kind(k) for k in changed}
    listed = "; ".join(f"{k} {_shown(o)} -> {_shown(n)} ({kinds[k]})" for k, (o, n) in changed.items())
    if "structural" not in kinds.values():
        tail = "model and optimizer state carried over"
    elif not fresh["tensors"]:
        tail = "every model tensor still fits: model and optimizer state carried over"
    else:
        tail = f"started fresh: {_names(fresh['tensors'])}"
        if fresh["optimizer"]:
            tail += f"; optimizer state dropped for {len(fresh['optimizer'])} parameter(s)"
        tail += "; every other tensor carried over"
    if fresh["discriminators"]:
        tail += "; discriminators started fresh"
    return f"{head}: {listed}; {tail}."


def _write_run(new: RunFolder, config: Config, state: dict[str, Any], step: int, summary: str) -> None:
    """Build NEW in a hidden sibling folder and rename it into place (an empty NEW is replaced)."""
    new.path.parent.mkdir(parents=True, exist_ok=True)
    building = new.path.parent / f".{new.path.name}.forking-{os.getpid()}-{time.time_ns()}"
    try:
        building.mkdir()  # not mkdtemp: the run folder gets the usual permissions
        staged = RunFolder(building)
        atomic_write_text(staged.path / CONFIG_FILE, config.to_toml())
        save_checkpoint(staged.checkpoint_dir, state, step, keep=config.train.keep_checkpoints)
        event = {"kind": "forked", "step": step, "time": time.time(), "summary": summary,
                 **{k: v for k, v in config.forked_from.items() if k in ("run", "checkpoint")}}
        atomic_write_text(staged.path / EVENTS_FILE, json.dumps(event) + "\n")
        if new.path.is_dir():
            new.path.rmdir()  # empty (checked above); a folder that filled meanwhile refuses
        os.rename(building, new.path)
    except OSError as exc:
        raise ConfigError(f"{new.path}: the fork could not be written ({exc.strerror or exc})",
                          "check the folder and free space, then fork again") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
