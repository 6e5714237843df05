"""What a diagnosis says: :class:`Finding` (one named problem, its evidence, where it shows, what
to change and what to listen to), :class:`Remedy` (one ``key=value`` that ``--set`` accepts) and
:class:`Diagnosis` (the ranked findings of one model at one step, plus the checks that could not
run and why).

Everything here is plain data (floats, strings, lists), so a diagnosis goes to JSON, a terminal or
an HTML page unchanged. A finding's ``id`` is stable (``noise_floor``, ``loss_dominance/starved``)
so a later diagnosis of the same run, or of a fork, can be lined up with this one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warn", "bad")  # in rising order


@dataclass(frozen=True)
class Remedy:
    """A settings change that addresses a finding: ``setting=value`` as ``--set`` takes it, and
    the settings in ``also`` that change with it (lists that must stay of one length, such as a
    loss's scales and their mel bands)."""

    setting: str  # dotted name, e.g. "loss.mel_norm"
    value: Any
    live: bool  # True: the running trainer applies it between steps; False: it needs a fork
    reason: str  # why this change helps, and (when not live) what the fork keeps
    also: tuple[tuple[str, Any], ...] = ()  # (setting, value) pairs changed together with it

    @property
    def changes(self) -> dict[str, Any]:
        """Every setting the remedy changes, its own first."""
        return {self.setting: self.value, **dict(self.also)}

    @property
    def texts(self) -> list[str]:
        """``setting=value`` per change, each as one ``--set`` takes it."""
        return [f"{k}={_setting_text(v)}" for k, v in self.changes.items()]

    @property
    def text(self) -> str:
        """The changes as a command line writes them after ``--set``: ``a=1 --set b=2``."""
        return " --set ".join(self.texts)


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_setting_text(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Listen:
    """Where to hear a finding: a clip, a time range in it, and which signal."""

    clip: str  # the clip's name (file name or the name it was given)
    start: float  # seconds
    stop: float
    source: str = "reconstruction"  # "reconstruction", "original" or "residual"


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str  # "info", "warn" or "bad"
    title: str  # one line in the user's words
    explanation: str
    evidence: dict[str, Any]  # figures, and the thresholds they were held against
    where: dict[str, Any] = field(default_factory=dict)  # times, bands (Hz), quantizer levels
    remedies: tuple[Remedy, ...] = ()
    listen: Listen | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["remedies"] = [{**asdict(r), "set": r.text} for r in self.remedies]
        return _plain(out)


@dataclass
class Diagnosis:
    """The findings of one model at one ``step``, most severe first."""

    step: int | None
    findings: list[Finding]
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it did not run
    clips: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # check -> time it took
    run: str = ""
    sample_rate: int = 0
    # clip name -> (original [T], reconstruction [T]): for the report's images and snippets
    audio: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    sources: dict[str, str] = field(default_factory=dict)  # clip name -> the file it was read from

    def __post_init__(self) -> None:
        self.findings = ranked(self.findings)

    def get(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return _plain({
            "run": self.run,
            "step": self.step,
            "clips": self.clips,
            "findings": [f.to_dict() for f in self.findings],
            "skipped": self.skipped,
            "seconds": self.seconds,
        })


def ranked(findings: list[Finding]) -> list[Finding]:
    """Most severe first; the order of the checks within one severity."""
    return sorted(findings, key=lambda f: -f.rank)


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, tuples as lists, inf and nan as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value
