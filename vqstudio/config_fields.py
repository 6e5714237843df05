"""Every setting of a configuration as a list of fields, for a settings editor: its dotted key, its
type, the choices a string setting allows, a line of help, and its value as ``--set`` writes it.

The help is the comment the field carries in :mod:`vqstudio.config_sections` (read from its source,
so there is no second copy to keep in step); the choices are the tuples the configuration's rules
check (:mod:`vqstudio.config_checks`, :mod:`vqstudio.quantizer_settings`). Loss weights are one
field per loss term the configuration produces (``loss.weights.<term>``). Qt-free.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, get_type_hints

from vqstudio import config_sections as sections
from vqstudio.config_sections import SECTIONS, default_weight
from vqstudio.config_toml import toml_value
from vqstudio.quantizer_settings import GRADIENT_ESTIMATORS, QUANTIZERS

CHOICES: dict[str, tuple[str, ...]] = {
    "model.activation": sections.ACTIVATIONS,
    "model.quantizer": QUANTIZERS,
    "model.gradient_estimator": GRADIENT_ESTIMATORS,
    "model.window": sections.WINDOWS,
    "model.padding": sections.PADDINGS,
    "model.phase_prior": sections.PHASE_PRIORS,
    "loss.mel_norm": sections.MEL_NORMS,
    "loss.mel_scale": sections.MEL_SCALES,
    "loss.balancer": sections.BALANCERS,
    "train.schedule": sections.SCHEDULES,
    "train.device": sections.DEVICES,
}
WEIGHTS_PREFIX = "loss.weights."


@dataclass(frozen=True)
class Field:
    key: str  # "model.codebook_size", "loss.weights.mrstft"
    section: str  # data, model, loss, train
    kind: str  # "bool", "choice", "path" (taken as typed) or "value" (read as TOML, as --set does)
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


def fields(config) -> list[Field]:
    """The fields of ``config``, section by section, the weights (one per term) last in loss."""
    out: list[Field] = []
    helps = _field_help()
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            if key == "loss.weights":
                continue
            kind = ("bool" if hints[f.name] is bool else "choice" if key in CHOICES
                    else "path" if key == "data.path" else "value")
            out.append(Field(key, section, kind, CHOICES.get(key, ()), helps.get(key, "")))
        if section == "loss":
            for term in config.loss.term_names():
                out.append(Field(WEIGHTS_PREFIX + term, "loss", "value", (),
                                 f"weight of the {term} term (0 leaves it out)"))
    return out


def value_of(config, key: str) -> Any:
    """The value ``config`` has for ``key`` (a weight: the resolved one)."""
    if key.startswith(WEIGHTS_PREFIX):
        term = key[len(WEIGHTS_PREFIX):]
        return config.loss.resolved_weights().get(term, default_weight(term))
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def text_of(value: Any, kind: str = "value") -> str:
    """How ``--set`` writes ``value``: TOML, except a path or a choice, written bare."""
    if isinstance(value, str) and kind in ("path", "choice"):
        return value
    return toml_value(value)


def section_help(section: str) -> str:
    """The first line of the section's docstring."""
    return (inspect.getdoc(SECTIONS[section]) or "").splitlines()[0]


@lru_cache(maxsize=1)
def _field_help() -> dict[str, str]:
    """``{"model.hop": "must equal the product of encoder_ratios", ...}`` from the comments in
    config_sections.py: a field's trailing comment, after the comment lines just above it."""
    helps: dict[str, str] = {}
    section, above = None, []
    owner = {cls.__name__: name for name, cls in SECTIONS.items()}
    for line in inspect.getsource(sections).splitlines():
        cls = re.match(r"class (\w+)", line)
        if cls:
            section, above = owner.get(cls.group(1)), []
            continue
        comment = re.match(r"    # ?(.*)$", line)
        if comment and section:
            above.append(comment.group(1).strip())
            continue
        field = re.match(r"    (\w+): [^=]+=.*?(?:#\s*(.*))?$", line)
        if field and section:
            text = " ".join(above + ([field.group(2).strip()] if field.group(2) else []))
            if text:
                helps[f"{section}.{field.group(1)}"] = text
        above = []
    return helps
