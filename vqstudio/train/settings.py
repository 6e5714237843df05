"""Settings a user may change while a run trains, applied between steps from one table.

:data:`LIVE` is the table: each :class:`LiveSetting` names the mailbox setting, the configuration
key(s) it changes, a label for the app and the curves' markers, and how it is applied. Every other
setting needs a fork (``vqstudio train --from RUN --set k=v``). Posted through the mailbox, a
setting is either applied, with an event of its own kind saying what changed (old and new) at that
step, or refused with a ``refused`` event naming the setting and why. A value the configuration's
own rules refuse is refused with the message ``--set`` gives for it (``vqstudio.config_checks``);
a value of the wrong type is refused the same way, never raised.

The settings that only this table knows (``mel_norm``, ``dead_code_threshold``, ``ema_decay``,
``grad_clip``, ``low_band_hz``, ``low_band_from_step``) are applied to the part that uses them and to ``trainer.config``
(which then says what is in force); a checkpoint keeps them under ``"live"`` (:func:`live_state`)
so a resume goes on with them. Weights, learning rate, balancer and quantizer dropout keep their own checkpoint
entries (:mod:`vqstudio.train.state`).

For a caller that has a configuration key and a value (``loss.mel_norm=tanh``, a control-file
line, a fork's ``--set``), :func:`setting_for_key` gives the mailbox name and value to post.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from vqstudio.config_fields import value_of
from vqstudio.errors import ConfigError


@dataclass(frozen=True)
class LiveSetting:
    """One row of the table of live settings."""

    name: str  # the mailbox setting and the event kind
    key: str  # the configuration key; "loss.weights.<term>" for the weights
    label: str  # in the app and on the curves' markers
    apply: Callable[[Any, Any], None]  # (trainer, value): applies it or records "refused"


# -- weights, learning rate, balancer, quantizer dropout (their own checkpoint entries) ----------


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


# -- settings kept in trainer.config (checkpoint entry "live") -----------------------------------


def _set_mel_norm(trainer, value: str) -> None:
    trainer.losses.set_mel_norm(value)


def _set_dead_code_threshold(trainer, value: float) -> None:
    quantizer = trainer.model.quantizer
    quantizer.dead_code_threshold = value  # the dead-code statistic
    for level in quantizer.levels:
        if hasattr(level, "dead_threshold"):  # learned codebooks replace below it (rfsq has none)
            level.dead_threshold = value


def _set_ema_decay(trainer, value: float) -> None:
    for level in trainer.model.quantizer.levels:  # EMA codes and running usage counts
        level.decay = value


def _set_low_band_hz(trainer, value: float) -> None:
    trainer.losses.set_low_band_hz(value)


def _set_low_band_from_step(trainer, value: int) -> None:
    pass  # the step reads trainer.config.loss.low_band_from_step (Trainer.weights_now)


def _set_grad_clip(trainer, value: float) -> None:
    pass  # the step reads trainer.config.train.grad_clip


def _configured(name: str, key: str, put: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """An apply function for a setting kept in ``trainer.config``: the value is checked by the
    configuration's own rules (so refused with --set's message), then put in force."""

    def apply(trainer, value: Any) -> None:
        section, field = key.split(".")
        old = getattr(getattr(trainer.config, section), field)
        try:
            config = trainer.config.with_overrides({key: value})
        except ConfigError as exc:
            trainer.record_event("refused", setting=name, reason=str(exc))
            return
        new = getattr(getattr(config, section), field)
        if new == old:
            return
        put(trainer, new)
        trainer.config = config
        trainer.record_event(name, old=old, new=new)

    return apply


LIVE: tuple[LiveSetting, ...] = (
    LiveSetting("weights", "loss.weights.<term>", "weight", _weights),
    LiveSetting("lr", "train.lr", "lr", _lr),
    LiveSetting("balancer", "loss.balancer", "balancer", _balancer),
    LiveSetting("quantizer_dropout", "model.quantizer_dropout", "quantizer dropout", _quantizer_dropout),
    LiveSetting("mel_norm", "loss.mel_norm", "mel norm",
                _configured("mel_norm", "loss.mel_norm", _set_mel_norm)),
    LiveSetting("dead_code_threshold", "model.dead_code_threshold", "dead-code threshold",
                _configured("dead_code_threshold", "model.dead_code_threshold", _set_dead_code_threshold)),
    LiveSetting("ema_decay", "model.ema_decay", "EMA decay",
                _configured("ema_decay", "model.ema_decay", _set_ema_decay)),
    LiveSetting("grad_clip", "train.grad_clip", "gradient clip",
                _configured("grad_clip", "train.grad_clip", _set_grad_clip)),
    LiveSetting("low_band_hz", "loss.low_band_hz", "low band",
                _configured("low_band_hz", "loss.low_band_hz", _set_low_band_hz)),
    LiveSetting("low_band_from_step", "loss.low_band_from_step", "low band from step",
                _configured("low_band_from_step", "loss.low_band_from_step", _set_low_band_from_step)),
)

SETTINGS: dict[str, LiveSetting] = {s.name: s for s in LIVE}
BY_KEY: dict[str, LiveSetting] = {s.key: s for s in LIVE if not s.key.startswith("loss.weights.")}
# The settings a checkpoint keeps under "live" (the others have their own entries).
IN_CONFIG = ("mel_norm", "dead_code_threshold", "ema_decay", "grad_clip", "low_band_hz",
             "low_band_from_step")


def is_live(key: str) -> bool:
    """Whether the configuration key ``key`` can change while the run trains."""
    return key in BY_KEY or (key.startswith("loss.weights.") and len(key) > len("loss.weights."))


def live_keys() -> list[str]:
    """The configuration keys of the live settings, as DESIGN.md lists them."""
    return [s.key for s in LIVE]


def live_values(config) -> dict[str, Any]:
    """The value ``config`` gives each live setting but the weights, by setting name."""
    return {s.name: value_of(config, s.key) for s in LIVE if s.name != "weights"}


def setting_for_key(key: str, value: Any) -> tuple[str, Any]:
    """The mailbox ``(name, value)`` that changes configuration key ``key`` to ``value``:
    ``("loss.weights.mrstft", 2)`` -> ``("weights", {"mrstft": 2})``. A key that is not live is a
    ConfigError saying that it needs a fork."""
    if key.startswith("loss.weights.") and is_live(key):
        return "weights", {key[len("loss.weights."):]: value}
    if key in BY_KEY:
        return BY_KEY[key].name, value
    raise ConfigError(f"{key} cannot change while the run trains",
                      f"fork the run with it changed: vqstudio train --from RUN --run NEW --set {key}=...")


def apply_setting(trainer, name: str, value: Any) -> None:
    """Apply one posted setting to ``trainer`` (see the module docstring)."""
    setting = SETTINGS.get(name)
    if setting is None:
        trainer.record_event("refused", setting=name, reason="unknown setting")
        return
    try:
        setting.apply(trainer, value)
    except (TypeError, ValueError, AttributeError):
        trainer.record_event("refused", setting=name, reason=f"{value!r} is not a usable value")


# -- in checkpoints ------------------------------------------------------------------------------


def live_state(trainer) -> dict[str, Any]:
    """The settings kept in ``trainer.config`` that a checkpoint must carry, by configuration key."""
    out = {}
    for name in IN_CONFIG:
        section, field = SETTINGS[name].key.split(".")
        out[SETTINGS[name].key] = getattr(getattr(trainer.config, section), field)
    return out


def load_live_state(trainer, values: dict[str, Any]) -> None:
    """Put :func:`live_state`'s values back in force (quietly: a resume is not a change). A value
    today's rules refuse, or a key no longer live, is left as configured."""
    wanted = {k: v for k, v in values.items() if k in BY_KEY and BY_KEY[k].name in IN_CONFIG}
    if not wanted:
        return
    try:
        config = trainer.config.with_overrides(wanted)
    except ConfigError:
        return
    trainer.config = config
    trainer.losses.set_mel_norm(config.loss.mel_norm)
    _set_dead_code_threshold(trainer, config.model.dead_code_threshold)
    _set_ema_decay(trainer, config.model.ema_decay)
    _set_low_band_hz(trainer, config.loss.low_band_hz)
