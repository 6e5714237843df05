"""The run configuration: four sections (data, model, loss, train), TOML in and out, validation.

A configuration is plain dataclasses so that every layer can read it without importing torch or Qt.
Presets live in ``resources/presets/<name>.toml``, found through :mod:`vqstudio.resources`; any
key can be overridden with ``section.key=value`` (the value written as in TOML: ``train.lr=1e-4``,
``loss.mel_norm="tanh"``, ``model.encoder_ratios=[2,4,5,6]``, ``loss.weights.mel_l1/1024=2``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from vqstudio.errors import ConfigError
from vqstudio.resources import demo_dir, presets_dir

DEFAULT_PRESET = "tiny-cpu"


def __getattr__(name: str) -> Path:
    # DEMO_DIR and PRESETS_DIR are looked up when used, through vqstudio.resources (the one way
    # to find shipped files), so a missing demo corpus is a clear error at that point and not a
    # crash when this module is imported.
    if name == "DEMO_DIR":
        return demo_dir()
    if name == "PRESETS_DIR":
        return presets_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

MEL_NORMS = ("log", "tanh", "minmax")
MEL_SCALES = ("slaney", "htk")
WINDOWS = ("hann", "hamming", "blackman", "rect")
PADDINGS = ("center", "same")
SCHEDULES = ("constant", "cosine", "exponential")
BALANCERS = ("static", "shares")
DEVICES = ("auto", "cpu", "cuda", "mps")
ACTIVATIONS = ("elu", "silu")


@dataclass
class DataConfig:
    """Where the audio comes from and how it is cut into training segments."""

    path: str = ""  # folder of audio files; empty means the built-in demo corpus
    segment_seconds: float = 1.0
    batch_size: int = 8
    val_fraction: float = 0.1  # share of files held back for validation
    seed: int = 0
    # background processes preparing batches ahead of the step (vqstudio/audio/prefetch.py);
    # -1: one per core beyond the two that training and the GUI keep; 0: in the training thread
    workers: int = -1


@dataclass
class ModelConfig:
    """The codec: encoder, residual VQ, attention decoder with an ISTFT head."""

    sample_rate: int = 24000
    encoder_channels: int = 32  # channels after the stem; doubled after every stride
    encoder_ratios: list[int] = field(default_factory=lambda: [2, 4, 5, 6])
    encoder_dilations: list[int] = field(default_factory=lambda: [1, 3, 9])  # residual units per stride
    activation: str = "elu"
    weight_norm: bool = False
    latent_dim: int = 64
    rvq_levels: int = 4
    codebook_size: int = 256
    codebook_dim: int = 64  # codes live here; projected from/to latent_dim when different
    ema: bool = True
    ema_decay: float = 0.99
    kmeans_init: bool = True
    dead_code_threshold: float = 1.0  # a code whose running usage count falls below this is dead
    dead_code_replace_every: int = 0  # automatic replacement every N steps; 0 means only on request
    quantizer_dropout: float = 0.0  # probability that a batch item uses only the first k levels
    # rvq (learned codebooks), rvq_factorized (DAC-style: codebook_dim-dimensional l2-normalised
    # codes, cosine lookup) or rfsq (residual FSQ: an implicit grid of prod(fsq_levels) codes, no
    # codebook loss; codebook_dim, ema, kmeans_init and dead-code replacement do not apply).
    quantizer: str = "rvq"
    gradient_estimator: str = "straight_through"  # or "rotation" (the rotation trick); not for rfsq
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 4])  # rfsq: values per dimension
    decoder_dim: int = 128
    decoder_conv_blocks: int = 4
    attention_blocks: int = 2
    attention_heads: int = 4
    n_fft: int = 960
    hop: int = 240  # must equal the product of encoder_ratios
    window: str = "hann"
    padding: str = "center"
    log_magnitude_clip: float = 4.6  # exp(4.6) ~ 100: the ISTFT head's magnitude ceiling


@dataclass
class LossConfig:
    """Which loss terms exist, their settings, and their weights (keyed by term name)."""

    mel_scales: list[int] = field(default_factory=lambda: [512, 1024, 2048])  # n_fft per scale
    mel_bins: list[int] = field(default_factory=lambda: [64, 80, 128])  # mel bands per scale
    mel_norm: str = "log"
    mel_scale: str = "slaney"
    mel_fmin: float = 0.0
    mel_fmax: float = 0.0  # 0 means Nyquist
    mrstft_fft_sizes: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    mrstft_hops: list[int] = field(default_factory=lambda: [128, 256, 512])
    mrstft_win_lengths: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    adversarial: bool = False
    discriminator_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    discriminator_fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    balancer: str = "static"
    grad_share_every: int = 50  # measure each term's gradient share every N steps; 0 = never
    weights: dict[str, float] = field(default_factory=dict)

    def term_names(self) -> list[str]:
        """Every loss term name this configuration produces, in display order."""
        names = ["waveform_mse", "codebook", "commitment"]
        names += [f"mel_l1/{n}" for n in self.mel_scales]
        names += ["mrstft"]
        if self.adversarial:
            names += ["adversarial", "feature_matching"]
        return names

    def resolved_weights(self) -> dict[str, float]:
        """Weights for every term: the configured ones over the defaults."""
        out = {name: default_weight(name) for name in self.term_names()}
        out.update({k: float(v) for k, v in self.weights.items() if k in out})
        return out


DEFAULT_WEIGHTS = {
    "waveform_mse": 1.0,
    "codebook": 1.0,
    "commitment": 0.25,
    "mrstft": 1.0,
    "adversarial": 1.0,
    "feature_matching": 2.0,
}


def default_weight(name: str) -> float:
    if name.startswith("mel_l1/"):
        return 1.0
    return DEFAULT_WEIGHTS.get(name, 1.0)


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpoint cadence."""

    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    lr_gamma: float = 0.999996  # per-step decay for the exponential schedule
    total_steps: int = 100000  # horizon of the cosine schedule
    grad_clip: float = 1.0
    discriminator_lr: float = 2e-4
    log_every: int = 10  # a metrics.csv row every N steps
    heavy_every: int = 100  # histograms, spectrograms and probe audio every N steps
    validate_every: int = 500
    checkpoint_every: int = 500
    checkpoint_minutes: float = 5.0  # also autosave this often (wall clock; 0 turns it off)
    keep_checkpoints: int = 3
    max_nonfinite: int = 3  # consecutive non-finite steps before restoring the last checkpoint
    seed: int = 0
    device: str = "auto"
    cpu_threads: int = 0  # 0 means all cores but one
    amp: bool = True  # bf16 autocast on CUDA


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
        for name, section_cls in _SECTIONS.items():
            values = raw.pop(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{name}] must be a table", f"write it as [{name}]")
            sections[name] = _build_section(section_cls, values, f"{source}: [{name}]")
        if raw:
            unknown = ", ".join(sorted(raw))
            raise ConfigError(
                f"{source}: unknown section(s) {unknown}",
                f"use only {', '.join('[' + s + ']' for s in _SECTIONS)}",
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

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> "Config":
        """A new, validated configuration with ``section.key=value`` overrides applied."""
        raw = self.to_dict()
        items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides)
        for dotted, value in items:
            _set_dotted(raw, dotted, value)
        # New mel scales make the old scales' weights meaningless: drop them (new ones default).
        scales = {f"mel_l1/{n}" for n in raw["loss"]["mel_scales"]}
        weights = raw["loss"]["weights"]
        for name in [k for k in weights if k.startswith("mel_l1/") and k not in scales]:
            del weights[name]
        return Config.from_dict(raw, source="override")

    # -- validation ---------------------------------------------------------------------------

    def validate(self, source: str = "configuration") -> None:
        m, l, t, d = self.model, self.loss, self.train, self.data

        def bad(problem: str, fix: str) -> None:
            raise ConfigError(f"{source}: {problem}", fix)

        for name, value in (
            ("model.sample_rate", m.sample_rate),
            ("model.latent_dim", m.latent_dim),
            ("model.rvq_levels", m.rvq_levels),
            ("model.codebook_size", m.codebook_size),
            ("model.codebook_dim", m.codebook_dim),
            ("model.decoder_dim", m.decoder_dim),
            ("model.n_fft", m.n_fft),
            ("model.hop", m.hop),
            ("data.batch_size", d.batch_size),
        ):
            if value <= 0:
                bad(f"{name} = {value} must be positive", f"set {name} to a positive number")
        if not 1000 <= m.sample_rate <= 384000:
            bad(f"model.sample_rate = {m.sample_rate} is not a usable rate", "use 8000..192000")
        if not m.encoder_ratios or any(r < 1 for r in m.encoder_ratios):
            bad("model.encoder_ratios must be a list of positive strides", "e.g. [2, 4, 5, 6]")
        if math.prod(m.encoder_ratios) != m.hop:
            bad(
                f"model.hop = {m.hop} does not match the encoder, whose strides "
                f"{m.encoder_ratios} multiply to {math.prod(m.encoder_ratios)}",
                f"set model.hop = {math.prod(m.encoder_ratios)} or change model.encoder_ratios",
            )
        if m.n_fft < m.hop:
            bad(f"model.n_fft = {m.n_fft} is shorter than model.hop = {m.hop}", "use n_fft >= 2 x hop")
        if m.decoder_dim % max(m.attention_heads, 1):
            bad(
                f"model.decoder_dim = {m.decoder_dim} is not divisible by attention_heads = "
                f"{m.attention_heads}",
                "pick a head count that divides decoder_dim",
            )
        if not 0 <= m.quantizer_dropout <= 1:
            bad("model.quantizer_dropout must be within 0..1", "use e.g. 0.5")
        if not 0 < m.ema_decay < 1:
            bad("model.ema_decay must be within (0, 1)", "use e.g. 0.99")
        if any(d < 1 for d in m.encoder_dilations):
            bad("model.encoder_dilations must be positive (or an empty list)", "e.g. [1, 3, 9]")
        _choice(source, "model.activation", m.activation, ACTIVATIONS)
        from vqstudio.quantizer_settings import check_quantizer  # the combinations that work

        check_quantizer(m, bad)
        _choice(source, "model.window", m.window, WINDOWS)
        _choice(source, "model.padding", m.padding, PADDINGS)
        _choice(source, "loss.mel_norm", l.mel_norm, MEL_NORMS)
        _choice(source, "loss.mel_scale", l.mel_scale, MEL_SCALES)
        _choice(source, "loss.balancer", l.balancer, BALANCERS)
        _choice(source, "train.schedule", t.schedule, SCHEDULES)
        _choice(source, "train.device", t.device, DEVICES)
        if len(l.mel_bins) != len(l.mel_scales):
            bad("loss.mel_bins must have one entry per loss.mel_scales entry", "make the lists equal")
        if not (len(l.mrstft_fft_sizes) == len(l.mrstft_hops) == len(l.mrstft_win_lengths)):
            bad("loss.mrstft_fft_sizes, _hops and _win_lengths differ in length", "make them equal")
        known = set(l.term_names())
        for name, weight in l.weights.items():
            if name not in known:
                bad(
                    f"loss.weights has an unknown term '{name}'",
                    f"known terms are {', '.join(sorted(known))}",
                )
            if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                bad(f"loss.weights.{name} = {weight} must be a finite number >= 0", "use e.g. 1.0")
        if not (math.isfinite(t.checkpoint_minutes) and t.checkpoint_minutes >= 0):
            bad(f"train.checkpoint_minutes = {t.checkpoint_minutes} must be >= 0",
                "use e.g. 5 (minutes between autosaves), or 0 to save only every checkpoint_every steps")
        if t.lr <= 0 or not math.isfinite(t.lr):
            bad(f"train.lr = {t.lr} must be positive", "use e.g. 3e-4")
        if len(t.betas) != 2 or not all(0 <= b < 1 for b in t.betas):
            bad(f"train.betas = {t.betas} must be two numbers in [0, 1)", "use e.g. [0.8, 0.99]")
        if d.segment_seconds * m.sample_rate < m.hop * 4:
            bad("data.segment_seconds is too short for the model", "use at least 0.25 s")
        if not 0 <= d.val_fraction < 1:
            bad("data.val_fraction must be within [0, 1)", "use e.g. 0.1")
        try:
            d.path.encode("utf-8")
        except UnicodeEncodeError:  # a name in another encoding: TOML (config.toml) cannot hold it
            shown = d.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            bad(f"data.path {shown} is not valid UTF-8, so the run's config.toml cannot record it",
                "rename the folder, or link to it under a UTF-8 name and give that link")
        if isinstance(d.workers, bool) or not isinstance(d.workers, int) or d.workers < -1:
            bad(f"data.workers = {d.workers!r} must be a whole number >= -1",
                "use -1 (follow the cores), 0 (in the training thread) or a count of processes")
        # The synthesis STFT must invert: fail here, naming the pair, not in the middle of a run.
        from vqstudio.audio.spectral import explain_stft_problem

        problem = explain_stft_problem(m.n_fft, m.hop, m.window)
        if problem:
            bad(problem, "change model.n_fft, model.hop or model.window")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}


def _choice(source: str, name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(
            f"{source}: {name} = {value!r} is not one of {', '.join(options)}",
            f"set {name} to one of {', '.join(options)}",
        )


def _build_section(cls, values: dict[str, Any], where: str):
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


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, rest = dotted.partition(".")
    if section not in _SECTIONS or not rest:
        raise ConfigError(
            f"override '{dotted}' does not name a setting",
            f"write section.key with section one of {', '.join(_SECTIONS)}",
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


# -- a small TOML writer (the standard library reads TOML but does not write it) --------------


def dumps_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            _dump_table(lines, [key], value)
    return "\n".join(lines) + "\n"


def _dump_table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    lines.append("")
    lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _dump_table(lines, path + [key], value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _toml_value(value: Any) -> str:
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
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
