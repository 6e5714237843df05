"""A verify's answer put side by side: the parent's diagnosis (before), the fork's (after) and,
when asked for, the control fork's (the parent trained the same steps with no change).

Each finding gets a verdict from one diagnosis to another: ``gone``, ``new``, ``still`` (same
severity), or ``better`` / ``worse`` when its severity moved (``bad -> warn`` is better, ``info ->
warn`` worse), always with both severities. With a control, the verdict that matters is the
control's against the fork's: what the change did beyond training longer.

:class:`Verification` is plain data (``to_dict`` for JSON); :func:`format_text` is the terminal's
view; the HTML report and the Diagnosis panel read :meth:`Verification.rows` and
:meth:`Verification.figure_rows`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vqstudio.audio.distortion import distortion_figures
from vqstudio.audio.metrics import mel_distance, si_sdr_db
from vqstudio.audio.speech_comb import speech_comb
from vqstudio.diagnose.findings import Diagnosis, Finding, Remedy

# (key, label, lower is better)
FIGURES = (("mel_distance", "mel distance", True), ("si_sdr_db", "SI-SDR dB", False),
           ("pause_floor_dbfs", "floor in pauses dBFS", True), ("comb_db", "frame-rate comb dB", True),
           ("speech_comb_db", "comb under speech |dB|", True))
# A move smaller than this is not called better or worse: the figures of one model wobble this
# much between neighbouring steps on a few clips (mel distance: a share of its value; the rest dB).
SAME_WITHIN = {"mel_distance": 0.01, "si_sdr_db": 0.5, "pause_floor_dbfs": 1.0, "comb_db": 1.0,
               "speech_comb_db": 1.0}
VERDICTS = ("gone", "better", "still", "worse", "new")


def verdict(before: Finding | None, after: Finding | None) -> str:
    """How a finding moved from one diagnosis to another ("" when in neither)."""
    if before is None:
        return "new" if after is not None else ""
    if after is None:
        return "gone"
    return "better" if after.rank < before.rank else "worse" if after.rank > before.rank else "still"


def verdict_text(before: Finding | None, after: Finding | None) -> str:
    """The verdict with both severities where they are two: "better (bad -> warn)"."""
    word = verdict(before, after)
    if word in ("better", "worse"):
        return f"{word} ({before.severity} -> {after.severity})"
    return word


def cell(finding: Finding | None) -> str:
    return "-" if finding is None else f"[{finding.severity}] {finding.title}"


@dataclass
class Row:
    """One finding across the diagnoses: ``cells`` per column, verdicts against ``before``
    (``verdicts["after"]``, ``verdicts["control"]``) and, with a control, ``change``: control ->
    after, what the change did beyond the extra steps."""

    id: str
    cells: dict[str, str]
    verdicts: dict[str, str]
    change: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cells": self.cells, "verdicts": self.verdicts, "change": self.change}


def figures(diagnosis: Diagnosis, hop: int, n_fft: int | None = None) -> dict[str, float]:
    """Headline figures over the diagnosed clips (means; floor and comb where measured), from
    :func:`vqstudio.audio.distortion.distortion_figures`, as ``vqstudio compare`` has them."""
    sr, out = diagnosis.sample_rate, {k: [] for k, _, _ in FIGURES}
    for original, recon in diagnosis.audio.values():
        out["mel_distance"].append(mel_distance(original, recon, sr))
        out["si_sdr_db"].append(si_sdr_db(original, recon))
        clip = distortion_figures(original, recon, sr, hop)
        if math.isfinite(clip["pause_floor_dbfs"]):
            out["pause_floor_dbfs"].append(clip["pause_floor_dbfs"])
        if math.isfinite(clip["comb_audible_db"]):
            out["comb_db"].append(clip["comb_audible_db"])
        speech = speech_comb(original, recon, sr, hop, n_fft).excess_db
        if math.isfinite(speech):  # lines and notches alike: how far from the original's grid
            out["speech_comb_db"].append(abs(speech))
    return {k: float(np.mean(v)) if v else math.nan for k, v in out.items()}


def figure_verdict(key: str, base: float, other: float) -> str:
    """"better" / "worse" of ``other`` against ``base`` for figure ``key`` ("" when n/a or within
    :data:`SAME_WITHIN` of each other)."""
    lower = next(lo for k, _, lo in FIGURES if k == key)
    if not (math.isfinite(base) and math.isfinite(other)):
        return ""
    within = SAME_WITHIN[key] * (abs(base) if key == "mel_distance" else 1.0)
    if abs(other - base) < within:
        return ""
    return "better" if (other < base) == lower else "worse"


@dataclass
class Verification:
    remedy: Remedy
    parent: str  # the parent reference diagnosed
    fork: str  # the fork's run folder
    fork_summary: str  # fork_run's one line
    before: Diagnosis
    after: Diagnosis
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> figure -> value
    seconds: float = 0.0
    control: Diagnosis | None = None  # the control fork's diagnosis (no change, same steps)
    control_fork: str = ""  # its run folder

    @property
    def columns(self) -> list[tuple[str, Diagnosis]]:
        """("before", parent), ("after", fork) and ("control", control fork) when there is one."""
        cols = [("before", self.before), ("after", self.after)]
        return cols + ([("control", self.control)] if self.control is not None else [])

    @property
    def steps(self) -> int:
        return (self.after.step or 0) - (self.before.step or 0)

    def rows(self) -> list[Row]:
        """Every finding of any column, in the order they first appear."""
        ids = list(dict.fromkeys(fid for _, d in self.columns for fid in d.ids))
        out = []
        for fid in ids:
            found = {name: d.get(fid) for name, d in self.columns}
            verdicts = {name: verdict_text(found["before"], found[name]) for name, _ in self.columns[1:]}
            change = verdict_text(found["control"], found["after"]) if self.control is not None else ""
            out.append(Row(fid, {name: cell(f) for name, f in found.items()}, verdicts, change))
        return out

    def figure_rows(self) -> list[tuple[str, str, dict[str, float], dict[str, str]]]:
        """(key, label, value per column, verdict per column): after and control against before,
        and "change": after against control."""
        out = []
        for key, label, _ in FIGURES:
            values = {name: self.figures.get(name, {}).get(key, math.nan) for name, _ in self.columns}
            marks = {name: figure_verdict(key, values["before"], values[name]) for name, _ in self.columns[1:]}
            if self.control is not None:
                marks["change"] = figure_verdict(key, values["control"], values["after"])
            out.append((key, label, values, marks))
        return out

    def tally(self) -> dict[str, int]:
        """How many findings are gone / better / still / worse / new, after against before."""
        counts = dict.fromkeys(VERDICTS, 0)
        for row in self.rows():
            word = row.verdicts["after"].split(" ", 1)[0]
            if word in counts:
                counts[word] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        out = {"remedy": {"setting": self.remedy.setting, "value": self.remedy.value, "set": self.remedy.text,
                          "changes": self.remedy.changes},
               "parent": self.parent, "fork": self.fork, "fork_summary": self.fork_summary,
               "before": self.before.to_dict(), "after": self.after.to_dict(), "figures": self.figures,
               "findings": [r.to_dict() for r in self.rows()], "tally": self.tally(),
               "steps": self.steps, "seconds": self.seconds}
        if self.control is not None:
            out.update(control=self.control.to_dict(), control_fork=self.control_fork)
        return out


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"


def format_text(v: Verification) -> str:
    """Before and after (and the control), finding by finding with verdicts, then the figures."""
    lines = [f"verify --set {v.remedy.text} ({'live' if v.remedy.live else 'needs a fork'}): "
             f"{v.parent} at step {v.before.step} against the fork {v.fork} at step {v.after.step}",
             f"  {v.fork_summary}"]
    if v.control is not None:
        lines.append(f"  control: {v.control_fork} (no change) at step {v.control.step}")
    lines += ["", "findings (before -> after" + (", control" if v.control is not None else "") + "):"]
    for row in v.rows():
        lines.append(f"  {row.id}  [{row.verdicts['after']}]")
        lines.append(f"    before:  {row.cells['before']}")
        lines.append(f"    after:   {row.cells['after']}")
        if v.control is not None:
            mark = f"  [{row.verdicts['control']}]" if row.verdicts["control"] else ""  # "": in neither
            lines.append(f"    control: {row.cells['control']}{mark}")
            lines.append(f"    the change beyond the extra steps (control -> after): {row.change}")
    tally = v.tally()
    lines.append("  " + ", ".join(f"{n} {word}" for word, n in tally.items()))
    lines.append("")
    names = [name for name, _ in v.columns]
    lines.append(f"  {'figure':<22}" + "".join(f"{name:>10}" for name in names))
    for _key, label, values, marks in v.figure_rows():
        notes = ([f"after: {marks['after']}"] if marks.get("after") else []) + (
            [f"against the control: {marks['change']}"] if marks.get("change") else [])
        lines.append(f"  {label:<22}" + "".join(f"{_fmt(values[n]):>10}" for n in names)
                     + ("  " + "; ".join(notes) if notes else ""))
    lines.append("")
    if v.control is None:
        lines.append(f"The fork trained {v.steps} steps more than the parent was diagnosed at; a control "
                     "fork (--control) trains the same steps without the change and tells what the extra "
                     "steps alone did.")
    else:
        lines.append(f"Fork and control both trained {v.steps} steps from the parent's step {v.before.step}; "
                     "what differs between them is the change.")
    lines.append(f"Listen blind: in the app, the Diagnosis panel's ABX button after Verify, or the Audition "
                 f"panel's ABX… with {v.parent} as 1 and {v.fork}:{v.after.step} as 2, on the same clip.")
    return "\n".join(lines)
