"""What a checkpoint holds of a trainer, and putting it back.

The state is plain tensors, numbers, strings, lists and dicts (see
:mod:`vqstudio.train.checkpoint`): model and optimizer state, the step, the live settings (weights,
learning rate and its non-finite scale, balancer mode, quantizer dropout, and under ``live`` the
ones kept in the configuration: see :mod:`vqstudio.train.settings`), the elapsed training
time, the best validation figure, the RNG state and the configuration as TOML text.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vqstudio.errors import ConfigError
from vqstudio.train.own_random import own_random_of
from vqstudio.train.settings import live_state, load_live_state

FORMAT = 1


def trainer_state(trainer) -> dict[str, Any]:
    """Everything needed to go on from ``trainer``'s current step exactly."""
    state = {
        "format": FORMAT,
        "step": trainer.step_count,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "weights": dict(trainer.weights),
        "base_lr": trainer.base_lr,
        "lr_scale": trainer.lr_scale,
        "balancer_mode": trainer.balancer_mode,
        "balancer": trainer.balancer.state_dict(),
        "quantizer_dropout": float(trainer.model.quantizer.dropout),
        "elapsed": trainer.elapsed,
        "best_val": trainer.best_val,
        "config": trainer.config.to_toml(),
        "live": live_state(trainer),  # mel_norm, dead-code threshold, EMA decay, gradient clip
    }
    with own_random_of(trainer):  # the trainer's draws, not the process's
        state["rng_torch"] = torch.get_rng_state()
        if trainer.device.type == "cuda" and torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(trainer.device)
    if trainer.disc_optimizer is not None:
        state["discriminators"] = trainer.losses.discriminator_state_dict()
        state["disc_optimizer"] = trainer.disc_optimizer.state_dict()
    return state


def load_trainer_state(trainer, state: dict[str, Any]) -> None:
    """Put ``state`` (from :func:`trainer_state`) back into ``trainer``; a checkpoint of another
    model is a ConfigError naming the fix."""
    try:
        trainer.model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ConfigError(
            f"checkpoint does not fit this model ({str(exc).splitlines()[0][:160]})",
            "load it with the configuration it was trained with (its run folder's config.toml)",
        ) from None
    _load_optimizer(trainer.optimizer, state["optimizer"])
    trainer.step_count = int(state["step"])
    trainer.weights.update(state.get("weights", {}))
    trainer.base_lr = float(state.get("base_lr", trainer.base_lr))
    trainer.lr_scale = float(state.get("lr_scale", 1.0))
    trainer.balancer_mode = state.get("balancer_mode", trainer.balancer_mode)
    if "balancer" in state:
        trainer.balancer.load_state_dict(state["balancer"])
    quantizer = trainer.model.quantizer
    quantizer.dropout = float(state.get("quantizer_dropout", quantizer.dropout))
    load_live_state(trainer, state.get("live", {}))
    trainer.elapsed = float(state.get("elapsed", 0.0))
    trainer.best_val = float(state.get("best_val", math.inf))
    with own_random_of(trainer):
        if "rng_torch" in state:
            torch.set_rng_state(state["rng_torch"].cpu())
        if "rng_cuda" in state and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), trainer.device)
    if trainer.disc_optimizer is not None and "discriminators" in state:
        trainer.losses.load_discriminator_state_dict(state["discriminators"])
        _load_optimizer(trainer.disc_optimizer, state["disc_optimizer"])


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping the optimizer's own kernel choice (``fused``,
    ``foreach``): a state saved by an older version, or by a fork's template optimizer, would set
    it back to the per-parameter loop."""
    kernels = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, kernels):
        group.update(kept)


def copied(value: Any) -> Any:
    """A deep copy of a state's tensors (an in-memory checkpoint that later steps cannot alter)."""
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    return value
