"""Verify a fix: fork a run with a remedy, train the fork a few steps, diagnose parent and fork on
the same clips, and put the findings and the figures side by side.

``vqstudio diagnose --run DIR --verify REMEDY --steps N [--fork NEW] [--report OUT.html]``, and the
Diagnosis panel's Verify action, both call :func:`verify`. ``REMEDY`` is a finding id of the
parent's diagnosis (its first remedy; ``ID#2`` its second), or a ``setting=value`` as ``--set``
takes it. The fork goes through :func:`vqstudio.experiments.fork.fork_run` (so it records its
parent and what it carried over) and trains in this process with the run's own trainer; nothing
is written into the parent.

The parent is diagnosed at its checkpoint and the fork ``N`` steps later: a change that only looks
better because the fork trained longer is the usual trap, so the figures also give the steps, and
the note says that a fair control is the parent trained the same ``N`` steps with no change (fork
it with ``--verify`` of a setting at its current value).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vqstudio.audio.distortion import frame_rate_comb, silence_floor
from vqstudio.audio.metrics import mel_distance, si_sdr_db
from vqstudio.diagnose.findings import Diagnosis, Remedy
from vqstudio.errors import UserError

# (key, label, lower is better)
FIGURES = (("mel_distance", "mel distance", True), ("si_sdr_db", "SI-SDR dB", False),
           ("pause_floor_dbfs", "floor in pauses dBFS", True), ("comb_db", "frame-rate comb dB", True))


@dataclass
class Verification:
    remedy: Remedy
    parent: str  # the parent reference diagnosed
    fork: str  # the fork's run folder
    fork_summary: str  # fork_run's one line
    before: Diagnosis
    after: Diagnosis
    figures: dict[str, dict[str, float]] = field(default_factory=dict)  # "before"/"after" -> figure
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, str, str]]:
        """(finding id, before, after): every finding of either side, "-" where absent."""
        ids = list(dict.fromkeys(self.before.ids + self.after.ids))

        def cell(d: Diagnosis, fid: str) -> str:
            f = d.get(fid)
            return "-" if f is None else f"[{f.severity}] {f.title}"

        return [(fid, cell(self.before, fid), cell(self.after, fid)) for fid in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"remedy": {"setting": self.remedy.setting, "value": self.remedy.value, "set": self.remedy.text},
                "parent": self.parent, "fork": self.fork, "fork_summary": self.fork_summary,
                "before": self.before.to_dict(), "after": self.after.to_dict(), "figures": self.figures,
                "seconds": self.seconds}


def find_remedy(diagnosis: Diagnosis, text: str) -> Remedy:
    """The remedy named by ``text``: ``ID`` or ``ID#k`` of a finding, or ``setting=value``."""
    from vqstudio.config import parse_override
    from vqstudio.diagnose.subject import remedy

    if "=" in text:
        try:
            setting, value = parse_override(text)
        except Exception as exc:  # noqa: BLE001 - the config's own message names the problem
            raise UserError(f"--verify {text}: {exc}", "give a finding id or setting=value") from None
        return remedy(setting, value, "asked for")
    fid, _, index = text.partition("#")
    finding = diagnosis.get(fid)
    if finding is None:
        known = ", ".join(f.id for f in diagnosis.findings if f.remedies) or "none has a remedy"
        raise UserError(f"--verify {text}: the diagnosis has no finding {fid!r}",
                        f"choose one of: {known}; or give setting=value")
    if not finding.remedies:
        raise UserError(f"--verify {text}: the finding {fid} proposes no settings change",
                        "choose a finding with a remedy, or give setting=value")
    k = int(index) if index.isdigit() else 1
    if not 1 <= k <= len(finding.remedies):
        raise UserError(f"--verify {text}: {fid} has {len(finding.remedies)} remedies",
                        f"use {fid}#1 .. {fid}#{len(finding.remedies)}")
    return finding.remedies[k - 1]


def figures(diagnosis: Diagnosis, hop: int) -> dict[str, float]:
    """Headline figures over the diagnosed clips (means; floor and comb where measured)."""
    sr, out = diagnosis.sample_rate, {k: [] for k, _, _ in FIGURES}
    for original, recon in diagnosis.audio.values():
        out["mel_distance"].append(mel_distance(original, recon, sr))
        out["si_sdr_db"].append(si_sdr_db(original, recon))
        floor = silence_floor(original, recon, sr)
        if math.isfinite(floor.dbfs):
            out["pause_floor_dbfs"].append(floor.dbfs)
        comb = frame_rate_comb(original, recon, sr, hop)
        if math.isfinite(comb.audible_max_db):
            out["comb_db"].append(comb.audible_max_db)
    return {k: float(np.mean(v)) if v else math.nan for k, v in out.items()}


def default_fork_dir(run: str | Path, remedy: Remedy) -> Path:
    """``RUN-verify-<setting>`` beside the run, numbered when taken."""
    run = Path(run).resolve()
    name = remedy.setting.replace("loss.weights.", "").replace(".", "-").replace("/", "-")
    base = run.parent / f"{run.name}-verify-{name}"
    path, n = base, 2
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path


def verify(run: str, remedy_text: str, steps: int, *, fork_dir: str | Path | None = None,
           data: str | None = None, max_seconds: float = 10.0, max_clips: int = 3, mos: bool = False,
           before: Diagnosis | None = None, on_step: Callable[[int], None] | None = None) -> Verification:
    """Fork ``run`` (``RUN[:STEP|:best]``) with the remedy, train ``steps`` steps, diagnose both.

    ``before`` is the parent's diagnosis if already made (the panel has one). ``on_step`` is
    called with the fork's step after each step (the panel shows progress with it).
    """
    from vqstudio.diagnose.runner import diagnose, validation_files
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.fork import fork_run
    from vqstudio.train.trainer import Trainer

    if steps < 1:
        raise UserError(f"--steps {steps}: a fork must train at least one step", "e.g. --steps 100")
    began = time.perf_counter()
    ref = resolve_ref(run)
    clips = validation_files(ref.config, data)[:max_clips]
    if before is None:
        before = diagnose(run, clips, max_seconds=max_seconds, max_clips=max_clips, mos=mos)
    chosen = find_remedy(before, remedy_text)
    new = Path(fork_dir) if fork_dir is not None else default_fork_dir(ref.run.path, chosen)
    fork = fork_run(run, new, [chosen.text])
    trainer = Trainer(fork.run.load_config(), fork.run.path)
    try:
        for report in trainer.steps(until=fork.step + steps):
            if on_step is not None:
                on_step(report.step)
        trainer.save_checkpoint(reason="end")
    finally:
        trainer.close()
    after = diagnose(str(fork.run.path), clips, max_seconds=max_seconds, max_clips=max_clips, mos=mos)
    hop = ref.config.model.hop
    return Verification(chosen, run, str(fork.run.path), fork.summary, before, after,
                        {"before": figures(before, hop), "after": figures(after, hop)},
                        time.perf_counter() - began)


def format_text(v: Verification) -> str:
    """Before and after, finding by finding, then the figures."""
    lines = [f"verify --set {v.remedy.text} ({'live' if v.remedy.live else 'needs a fork'}): "
             f"{v.parent} at step {v.before.step} against the fork {v.fork} at step {v.after.step}",
             f"  {v.fork_summary}", "", "findings (before -> after):"]
    for fid, b, a in v.rows():
        verdict = "gone" if a == "-" else "new" if b == "-" else "still"
        lines.append(f"  {fid}  [{verdict}]\n    before: {b}\n    after:  {a}")
    lines.append("")
    lines.append(f"  {'figure':<22}{'before':>10}{'after':>10}")
    for key, label, lower in FIGURES:
        b, a = v.figures["before"].get(key, math.nan), v.figures["after"].get(key, math.nan)
        better = "" if not (math.isfinite(a) and math.isfinite(b)) else (
            "  better" if (a < b) == lower and a != b else "  worse" if a != b else "")
        lines.append(f"  {label:<22}{b:>10.3g}{a:>10.3g}{better}")
    lines.append("")
    lines.append(f"The fork trained {(v.after.step or 0) - (v.before.step or 0)} steps more than the parent "
                 "was diagnosed at; a control fork of the same length without the change tells what "
                 "the extra steps alone did.")
    lines.append(f"Listen blind: ABX of {v.parent} against {v.fork} in the Audition panel's ABX… "
                 "(two checkpoints as 1 and 2) on the same clip.")
    return "\n".join(lines)
