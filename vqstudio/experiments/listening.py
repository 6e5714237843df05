"""Blind listening tests between two sources (two checkpoints, or a checkpoint and its denoised
output), their scores, and the run folder's record of them, ``listening.jsonl``. No Qt here; the
app's dialog drives these objects.

- :class:`AbxTest`: each trial X is A or B, drawn at random; the listener says which. The score
  is the number right, and its one-sided exact binomial p-value (``scipy.stats.binomtest``, chance
  = 1/2): how likely that many or more right by guessing, i.e. whether A and B can be told apart.
- :class:`PreferenceTest`: each trial the two are offered as "1" and "2" in a random order; the
  listener picks the one they prefer. Reported as how often A was preferred, with a two-sided
  binomial p-value (a preference either way).
- :func:`append_session` adds one JSON line per finished session to ``listening.jsonl`` in each
  run folder involved (same ``id`` in each): one ``write`` of the whole line with ``O_APPEND``
  under an exclusive ``flock``, so two apps never interleave lines, and a crash leaves at worst a
  cut last line, which the reader skips (and the next append starts on a new line).

For the comparison table (the reader another part calls)::

    read_listening(run_dir) -> list[dict]            # every whole, valid session line, in order
    summarise(records) -> dict[(run, checkpoint), ContenderSummary]
    run_summary(run_dir) -> dict[(run, checkpoint), ContenderSummary]   # read + summarise

``(run, checkpoint)`` is ``(str(run folder path), checkpoint file name)``, the ``run`` and
``checkpoint`` of a ``vqstudio compare`` entry, so ``summary.get((entry["run"],
entry["checkpoint"]))`` finds a row's listening results; :meth:`ContenderSummary.cell` is its
short text ("pref 7/10 · ABX 14/16 p=0.002").
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.stats import binomtest

from vqstudio.errors import UserError

LISTENING_FILE = "listening.jsonl"
SIDES = ("A", "B")
KINDS = ("abx", "preference")


@dataclass(frozen=True)
class Contender:
    """One side of a test: ``run`` folder, ``checkpoint`` file name, its ``step``, and
    ``variant`` ("" or e.g. "denoised 0.8") for a post-processed output of it."""

    run: str
    checkpoint: str
    step: int | None = None
    variant: str = ""

    @property
    def label(self) -> str:
        text = f"{Path(self.run).name}:{self.step if self.step is not None else self.checkpoint}"
        return f"{text} {self.variant}" if self.variant else text

    @property
    def key(self) -> tuple[str, str]:
        return (self.run, self.checkpoint)

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "checkpoint": self.checkpoint, "step": self.step,
                "variant": self.variant, "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contender:
        step = data.get("step")
        return cls(str(data["run"]), str(data["checkpoint"]), None if step is None else int(step),
                   str(data.get("variant") or ""))


def abx_p_value(correct: int, trials: int) -> float:
    """P(at least ``correct`` right of ``trials`` by guessing): one-sided exact binomial, p=1/2."""
    if trials <= 0:
        return 1.0
    return float(binomtest(int(correct), int(trials), 0.5, alternative="greater").pvalue)


def preference_p_value(preferred: int, trials: int) -> float:
    """Two-sided exact binomial p-value of ``preferred`` of ``trials`` against no preference."""
    if trials <= 0:
        return 1.0
    return float(binomtest(int(preferred), int(trials), 0.5).pvalue)


@dataclass
class _Session:
    a: Contender
    b: Contender
    trials: int = 10
    seed: int | None = None
    clip: str = ""
    region: tuple[float, float] | None = None
    levels: int | None = None
    answers: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UserError(f"a listening test needs at least one trial, not {self.trials}",
                            "choose 1 or more trials")
        if self.a == self.b:
            raise UserError(f"both sides of the test are {self.a.label}",
                            "choose two different checkpoints (or a denoised variant)")
        rng = np.random.default_rng(self.seed)
        self.hidden: list[str] = [SIDES[int(i)] for i in rng.integers(0, 2, self.trials)]

    @property
    def trial(self) -> int:
        """The index of the trial being asked (== trials when done)."""
        return len(self.answers)

    @property
    def done(self) -> bool:
        return len(self.answers) >= self.trials

    def _check(self, answer: str, allowed: Sequence[str]) -> str:
        if self.done:
            raise UserError("the test is finished", "start a new test")
        answer = str(answer).upper()
        if answer not in allowed:
            raise UserError(f"answer {answer!r} is not one of {', '.join(allowed)}",
                            f"answer with {' or '.join(allowed)}")
        return answer

    def _common(self, kind: str) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex[:12], "kind": kind, "time": time.time(),
                "seconds": round(time.time() - self.started, 1),
                "listener": f"{os.environ.get('USER', '?')}@{socket.gethostname()}",
                "clip": self.clip, "region": list(self.region) if self.region else None,
                "levels": self.levels, "a": self.a.as_dict(), "b": self.b.as_dict()}


class AbxTest(_Session):
    """``trials`` ABX trials between ``a`` and ``b``; play :meth:`source` for A, B and X."""

    kind = "abx"

    def source(self, name: str) -> str:
        """Which side ("A" or "B") to play for ``name`` ("A", "B" or "X") in the current trial."""
        name = str(name).upper()
        return self.hidden[min(self.trial, self.trials - 1)] if name == "X" else name

    def answer(self, side: str) -> bool:
        """The listener says X is ``side``; whether that was right."""
        self.answers.append(self._check(side, SIDES))
        return self.answers[-1] == self.hidden[len(self.answers) - 1]

    @property
    def correct(self) -> int:
        return sum(a == x for a, x in zip(self.answers, self.hidden))

    @property
    def p_value(self) -> float:
        return abx_p_value(self.correct, len(self.answers))

    def record(self) -> dict[str, Any]:
        trials = [{"x": x, "answer": a, "correct": a == x} for a, x in zip(self.answers, self.hidden)]
        return {**self._common("abx"), "trials": trials, "answered": len(trials),
                "correct": self.correct, "p_value": self.p_value}


class PreferenceTest(_Session):
    """``trials`` blind preference trials: "1" and "2" are A and B in a random order each time."""

    kind = "preference"

    def source(self, slot: str) -> str:
        """Which side ("A" or "B") is offered as ``slot`` ("1" or "2") in the current trial."""
        first = self.hidden[min(self.trial, self.trials - 1)]
        return first if str(slot) == "1" else SIDES[1 - SIDES.index(first)]

    def answer(self, slot: str) -> str:
        """The listener prefers ``slot`` ("1" or "2"); returns the side that was ("A" or "B")."""
        slot = self._check(slot, ("1", "2"))
        side = self.source(slot)
        self.answers.append(slot)
        return side

    @property
    def preferred(self) -> list[str]:
        """The side preferred in each trial answered."""
        return [x if s == "1" else SIDES[1 - SIDES.index(x)] for s, x in zip(self.answers, self.hidden)]

    @property
    def prefer_a(self) -> int:
        return self.preferred.count("A")

    @property
    def p_value(self) -> float:
        return preference_p_value(self.prefer_a, len(self.answers))

    def record(self) -> dict[str, Any]:
        trials = [{"first": x, "chose": s, "preferred": p}
                  for s, x, p in zip(self.answers, self.hidden, self.preferred)]
        return {**self._common("preference"), "trials": trials, "answered": len(trials),
                "prefer_a": self.prefer_a, "prefer_b": len(trials) - self.prefer_a,
                "p_value": self.p_value}


# -- listening.jsonl ----------------------------------------------------------------------------


def listening_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LISTENING_FILE


def _append_line(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a line cut by a crash stays cut; ours starts on its own
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)  # drops the flock


def append_session(record: dict[str, Any], run_dirs: Iterable[str | Path] | None = None) -> list[Path]:
    """Append ``record`` (a test's :meth:`record`) as one line to ``listening.jsonl`` in each run
    folder (default: those of its A and B); returns the files written. A folder that cannot be
    written is a UserError naming it (the others are still written)."""
    dirs = list(run_dirs) if run_dirs is not None else [record["a"]["run"], record["b"]["run"]]
    line = (json.dumps(record, allow_nan=False) + "\n").encode("utf-8")
    written, failed = [], []
    for folder in dict.fromkeys(str(d) for d in dirs):
        path = listening_path(folder)
        try:
            _append_line(path, line)
            written.append(path)
        except OSError as error:
            failed.append(f"{path} ({error.strerror or error})")
    if failed:
        raise UserError(f"the listening result could not be saved to {', '.join(failed)}",
                        "check that the run folder exists and is writable")
    return written


def _valid(record: Any) -> bool:
    return (isinstance(record, dict) and record.get("kind") in KINDS
            and isinstance(record.get("trials"), list) and all(
                isinstance(record.get(s), dict) and "run" in record[s] and "checkpoint" in record[s]
                for s in ("a", "b")))


def read_listening(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished session recorded in ``run_dir``'s ``listening.jsonl``, oldest first; a cut
    or unreadable line is skipped, a missing file is an empty list."""
    path = listening_path(run_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise UserError(f"{path} could not be read ({error.strerror or error})",
                        "check the file's permissions") from None
    records = []
    for raw in data.split(b"\n"):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if _valid(record):
            records.append(record)
    return records


@dataclass
class ContenderSummary:
    """What the listening tests say about one checkpoint: how often it was preferred (blind), and
    per opponent how well the two were told apart in ABX."""

    label: str
    preferred: int = 0
    preference_trials: int = 0
    abx: dict[str, tuple[int, int]] = field(default_factory=dict)  # opponent label -> (right, trials)

    @property
    def preference_p(self) -> float:
        return preference_p_value(self.preferred, self.preference_trials)

    def abx_p(self, opponent: str) -> float:
        return abx_p_value(*self.abx[opponent])

    def cell(self) -> str:
        """Short text for a table cell: "pref 7/10 · ABX 14/16 p=0.002" ("" when never tested)."""
        parts = []
        if self.preference_trials:
            parts.append(f"pref {self.preferred}/{self.preference_trials}")
        for opponent, (right, trials) in self.abx.items():
            p = abx_p_value(right, trials)
            parts.append(f"ABX {right}/{trials} p={p:.2g} vs {opponent}")
        return " · ".join(parts)


def summarise(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], ContenderSummary]:
    """Per contender ``(run, checkpoint)`` (variants such as denoised outputs counted apart as
    ``(run, checkpoint + " " + variant)``), the sessions pooled; a session seen twice (read from
    both of its run folders) counts once."""
    out: dict[tuple[str, str], ContenderSummary] = {}
    seen: set[str] = set()

    def entry(side: dict[str, Any]) -> ContenderSummary:
        c = Contender.from_dict(side)
        key = (c.run, c.checkpoint + (f" {c.variant}" if c.variant else ""))
        return out.setdefault(key, ContenderSummary(c.label))

    for record in records:
        if record.get("id") in seen:
            continue
        seen.add(record.get("id"))
        a, b = entry(record["a"]), entry(record["b"])
        trials = [t for t in record["trials"] if isinstance(t, dict)]
        if record["kind"] == "preference":
            for me, side in ((a, "A"), (b, "B")):
                me.preference_trials += len(trials)
                me.preferred += sum(t.get("preferred") == side for t in trials)
        else:
            right = sum(bool(t.get("correct")) for t in trials)
            for me, other in ((a, b), (b, a)):
                r, n = me.abx.get(other.label, (0, 0))
                me.abx[other.label] = (r + right, n + len(trials))
    return out


def run_summary(run_dir: str | Path) -> dict[tuple[str, str], ContenderSummary]:
    """:func:`summarise` of :func:`read_listening` ``(run_dir)``."""
    return summarise(read_listening(run_dir))


def significance(p: float) -> str:
    """How to read a p-value in one phrase (for the dialog's result line)."""
    if math.isnan(p):
        return ""
    if p < 0.01:
        return "very unlikely to be chance"
    if p < 0.05:
        return "unlikely to be chance"
    return "could well be chance"
