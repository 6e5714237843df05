"""Reading setting values: coercing TOML values to a section's field types (with the message that
names the key and the fix), and ``section.key=value`` overrides (``--set``) parsed and placed.
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any, get_args, get_origin, get_type_hints

from vqstudio.config_sections import SECTIONS
from vqstudio.errors import ConfigError


def build_section(cls, values: dict[str, Any], where: str):
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}",
            f"known keys are {', '.join(sorted(names))}",
        )
    kwargs = {}
    for key, value in values.items():
        kwargs[key] = _coerce(value, hints[key], f"{where} {key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r} must be a number", "write e.g. 1.0")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} = {value!r} must be a whole number", "write e.g. 8")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} must be true or false", "write true or false")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r} must be a string", 'write it in quotes: "..."')
        return value
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r} must be a list", "write e.g. [1, 2, 3]")
        return [_coerce(v, item, where) for v in value]
    if origin is dict:
        _, item = get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table", "write it as a TOML table")
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``'train.lr=1e-4'`` -> ``('train.lr', 1e-4)``; the value is read as TOML, else as a string."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' has no '='", "write it as section.key=value")
    key, _, value = text.partition("=")
    key, value = key.strip(), value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word such as tanh
    return key, parsed


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, rest = dotted.partition(".")
    if section not in SECTIONS or not rest:
        raise ConfigError(
            f"override '{dotted}' does not name a setting",
            f"write section.key with section one of {', '.join(SECTIONS)}",
        )
    table = raw[section]
    if rest.startswith("weights.") and section == "loss":
        table["weights"][rest[len("weights."):]] = value
        return
    if rest not in table:
        raise ConfigError(
            f"override '{dotted}': [{section}] has no key '{rest}'",
            f"known keys are {', '.join(sorted(table))}",
        )
    table[rest] = value
