"""A small TOML writer for configurations (the standard library reads TOML but does not write it)."""

from __future__ import annotations

import math
from typing import Any


def dumps_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            _dump_table(lines, [key], value)
    return "\n".join(lines) + "\n"


def _dump_table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    lines.append("")
    lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _dump_table(lines, path + [key], value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else toml_value(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
