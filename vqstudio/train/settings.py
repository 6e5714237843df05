"""Settings a user may change while a run trains, applied between steps from one table.

Each entry of :data:`SETTINGS` takes the trainer and the posted value, checks the value and either
applies it and records an event saying what changed (old and new), or records a ``refused`` event
naming the setting and why. A value of the wrong type is refused the same way, never raised.
"""

from __future__ import annotations

import math
from typing import Any, Callable


def _weights(trainer, value: dict[str, float]) -> None:
    changes = {}
    for term, weight in value.items():
        if term not in trainer.weights:
            trainer.record_event("refused", setting=f"weight {term}", reason="unknown loss term")
            continue
        weight = float(weight)
        if not math.isfinite(weight) or weight < 0:
            trainer.record_event("refused", setting=f"weight {term}", reason=f"{weight} is not >= 0")
            continue
        if weight != trainer.weights[term]:
            changes[term] = [trainer.weights[term], weight]
            trainer.weights[term] = weight
    if changes:
        trainer.record_event("weights", changes=changes)


def _lr(trainer, value: Any) -> None:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        trainer.record_event("refused", setting="lr", reason=f"{value} is not > 0")
        return
    old, trainer.base_lr, trainer.lr_scale = trainer.base_lr, value, 1.0
    trainer.record_event("lr", old=old, new=value)


def _balancer(trainer, value: Any) -> None:
    if value not in ("static", "shares"):
        trainer.record_event("refused", setting="balancer", reason=f"unknown mode {value!r}")
        return
    if value != trainer.balancer_mode:
        trainer.record_event("balancer", old=trainer.balancer_mode, new=value)
        trainer.balancer_mode = value


def _quantizer_dropout(trainer, value: Any) -> None:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        trainer.record_event("refused", setting="quantizer_dropout", reason=f"{value} not in 0..1")
        return
    old = trainer.model.quantizer.dropout
    trainer.model.quantizer.dropout = value
    trainer.record_event("quantizer_dropout", old=old, new=value)


SETTINGS: dict[str, Callable[[Any, Any], None]] = {
    "weights": _weights,
    "lr": _lr,
    "balancer": _balancer,
    "quantizer_dropout": _quantizer_dropout,
}


def apply_setting(trainer, name: str, value: Any) -> None:
    """Apply one posted setting to ``trainer`` (see the module docstring)."""
    apply = SETTINGS.get(name)
    if apply is None:
        trainer.record_event("refused", setting=name, reason="unknown setting")
        return
    try:
        apply(trainer, value)
    except (TypeError, ValueError, AttributeError):
        trainer.record_event("refused", setting=name, reason=f"{value!r} is not a usable value")
