"""The run configuration: four sections (data, model, loss, train), TOML in and out, validation.

A configuration is plain dataclasses so that every layer can read it without importing torch or Qt.
Presets live in ``resources/presets/<name>.toml``, found through :mod:`vqstudio.resources`; any
key can be overridden with ``section.key=value`` (the value written as in TOML: ``train.lr=1e-4``,
``loss.mel_norm="tanh"``, ``model.encoder_ratios=[2,4,5,6]``, ``loss.weights.mel_l1/1024=2``).

This module holds :class:`Config` and the presets; the parts live beside it, one concept each, and
every public name stays importable from here: the sections and their choices
(:mod:`vqstudio.config_sections`), the rules (:mod:`vqstudio.config_checks`), reading values and
``--set`` overrides (:mod:`vqstudio.config_values`) and the TOML writer (:mod:`vqstudio.config_toml`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vqstudio.config_checks import check_config
from vqstudio.config_sections import (  # re-exported: see __all__
    ACTIVATIONS,
    BALANCERS,
    DEFAULT_WEIGHTS,
    DEVICES,
    MEL_NORMS,
    MEL_SCALES,
    PADDINGS,
    SCHEDULES,
    SECTIONS,
    WINDOWS,
    DataConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    default_weight,
)
from vqstudio.config_toml import dumps_toml
from vqstudio.config_values import build_section, parse_override, set_dotted
from vqstudio.errors import ConfigError
from vqstudio.resources import demo_dir, presets_dir

DEFAULT_PRESET = "tiny-cpu"

__all__ = [
    "ACTIVATIONS", "BALANCERS", "DEFAULT_PRESET", "DEFAULT_WEIGHTS", "DEVICES", "MEL_NORMS",
    "MEL_SCALES", "PADDINGS", "SCHEDULES", "SECTIONS", "WINDOWS", "Config", "ConfigError",
    "DataConfig", "LossConfig", "ModelConfig", "TrainConfig", "default_weight", "dumps_toml",
    "load_config", "load_preset", "parse_override", "preset_names", "preset_path", "preset_summary",
]


def __getattr__(name: str) -> Path:
    # DEMO_DIR and PRESETS_DIR are looked up when used, through vqstudio.resources (the one way
    # to find shipped files), so a missing demo corpus is a clear error at that point and not a
    # crash when this module is imported.
    if name == "DEMO_DIR":
        return demo_dir()
    if name == "PRESETS_DIR":
        return presets_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = ""  # the preset this configuration started from, for display
    # A fork's parent (run, checkpoint, step) and the settings it changed (experiments/fork.py);
    # empty for a run that was not forked, and then not written.
    forked_from: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "configuration") -> "Config":
        """Build and validate from nested dicts (as read from TOML). Unknown keys are refused."""
        raw = dict(raw)
        preset = raw.pop("preset", "")
        # [written_by] records the code that wrote a run's config (to_toml); older runs lack it.
        if not isinstance(raw.pop("written_by", {}), dict):
            raise ConfigError(f"{source}: [written_by] must be a table", "write it as [written_by]")
        if not isinstance(preset, str):
            raise ConfigError(f"{source}: 'preset' must be a string")
        forked_from = raw.pop("forked_from", {})
        if not isinstance(forked_from, dict):
            raise ConfigError(f"{source}: [forked_from] must be a table", "write it as [forked_from]")
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = raw.pop(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table", f"write it as [{name}]")
            sections[name] = build_section(section_cls, values, f"{source}: [{name}]")
        if raw:
            unknown = ", ".join(sorted(raw))
            raise ConfigError(
                f"{source}: unknown section(s) {unknown}",
                f"use only {', '.join('[' + s + ']' for s in SECTIONS)}",
            )
        config = cls(**sections, preset=preset, forked_from=forked_from)
        config.validate(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self, written_by: bool = True) -> str:
        """The configuration as TOML; with ``written_by``, a ``[written_by]`` table first that
        names the code writing it (version, git commit, Python, torch), ignored when read."""
        data = self.to_dict()
        if not data["forked_from"]:
            del data["forked_from"]
        if written_by:
            from vqstudio.version import version_info

            stamp = {k: v for k, v in version_info().items() if v is not None}
            data = {"preset": data.pop("preset"), "written_by": stamp, **data}
        return dumps_toml(data)

    def with_overrides(self, overrides: list[str] | dict[str, Any], source: str = "override") -> "Config":
        """A new, validated configuration with ``section.key=value`` overrides applied; a
        ConfigError's message starts with ``source`` (``--set`` and the settings editor: "override")."""
        raw = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
        for dotted, value in items:
            set_dotted(raw, dotted, value)
        # New mel scales make the old scales' weights meaningless: drop them (new ones default).
        scales = {f"mel_l1/{n}" for n in raw["loss"]["mel_scales"]}
        weights = raw["loss"]["weights"]
        for name in [k for k in weights if k.startswith("mel_l1/") and k not in scales]:
            del weights[name]
        return Config.from_dict(raw, source=source)

    # -- validation ---------------------------------------------------------------------------

    def validate(self, source: str = "configuration") -> None:
        """Raise a ConfigError naming the first setting that cannot work (vqstudio.config_checks)."""
        check_config(self, source)


# -- presets ----------------------------------------------------------------------------------


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def preset_path(name: str) -> Path:
    return presets_dir() / f"{name}.toml"


def load_preset(name: str, overrides: list[str] | None = None) -> Config:
    path = preset_path(name)
    if not path.is_file():
        raise ConfigError(
            f"no preset named '{name}'", f"choose one of {', '.join(preset_names()) or '(none)'}"
        )
    config = load_config(path)
    config.preset = config.preset or name
    return config.with_overrides(overrides) if overrides else config


def preset_summary(name: str) -> str:
    """The first comment line of a preset file: its one-line description."""
    for line in preset_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file", "check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax at that line") from None
    return Config.from_dict(raw, source=str(path))
