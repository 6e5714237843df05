"""Verify a fix: fork a run with a remedy, train the fork a chosen number of steps, diagnose parent
and fork on the same clips, and put the findings and the figures side by side
(:mod:`vqstudio.diagnose.before_after`).

``vqstudio diagnose --run DIR --verify REMEDY --steps N [--fork NEW] [--control [--control-fork C]]
[--report OUT.html]``, and the Diagnosis panel's Verify, both call :func:`verify`. ``REMEDY`` is a
finding id of the parent's diagnosis (its first remedy; ``ID#2`` its second), or a
``setting=value`` as ``--set`` takes it (several, ``--verify`` given once each, change together).
The fork goes through
:func:`vqstudio.experiments.fork.fork_run` (so it records its parent and what it carried over) and
trains in this process with the run's own trainer; nothing is written into the parent.

The parent is diagnosed at its checkpoint and the fork ``N`` steps later, so a change can look
better only because the fork trained longer. ``control=True`` also forks the parent with no change
and trains it the same ``N`` steps: its column shows what the extra steps alone did.

:class:`Progress` is how a caller (the panel) follows and cancels a verify from another thread; a
cancelled verify stops after the step it is in, saves the fork's checkpoint, keeps the fork folder
and raises :class:`Cancelled` naming it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vqstudio.diagnose.before_after import Verification, figures
from vqstudio.diagnose.findings import Diagnosis, Remedy
from vqstudio.errors import UserError


class Cancelled(UserError):
    """The verify was cancelled; the message names the fork folder that was kept."""


@dataclass
class Progress:
    """Where a verify is (read from any thread): ``phase`` in words, ``step`` of ``steps`` of the
    fork training now, ``folder`` it trains; :meth:`cancel` stops it after the current step.
    ``listener(progress)``, when given, is called (on the verifying thread) after every change of
    ``phase`` or ``step``: the console's view (``vqstudio diagnose --verify``)."""

    phase: str = "starting"
    step: int = 0
    steps: int = 0
    folder: str = ""
    listener: Callable[["Progress"], None] | None = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        listener = self.__dict__.get("listener")
        if listener is not None and name in ("phase", "step"):
            listener(self)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def text(self) -> str:
        if self.steps and self.phase.startswith("training"):
            return f"{self.phase}: step {self.step} of {self.steps}"
        return self.phase


def find_remedy(diagnosis: Diagnosis, text: str | list[str]) -> Remedy:
    """The remedy named by ``text``: ``ID`` or ``ID#k`` of a finding, or ``setting=value``; a
    list of several ``setting=value`` (``--verify`` given more than once) is one remedy that
    changes them together, the first its own setting and the rest its ``also``."""
    from vqstudio.config import parse_override
    from vqstudio.diagnose.subject import remedy

    texts = [text] if isinstance(text, str) else list(text)
    if len(texts) > 1 and not all("=" in t for t in texts):
        ids = " ".join(t for t in texts if "=" not in t)
        raise UserError(f"--verify {' --verify '.join(texts)}: several changes are combined only as "
                        f"setting=value, and {ids} is a finding id",
                        "give one finding id alone, or every change as setting=value")
    if len(texts) == 1 and "=" not in texts[0]:
        text = texts[0]
    else:
        changes = {}
        for t in texts:
            try:
                setting, value = parse_override(t)
            except Exception as exc:  # noqa: BLE001 - the config's own message names the problem
                raise UserError(f"--verify {t}: {exc}", "give a finding id or setting=value") from None
            changes[setting] = value
        (setting, value), *also = changes.items()
        return remedy(setting, value, "asked for", dict(also))
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


def default_fork_dir(run: str | Path, remedy: Remedy | None) -> Path:
    """``RUN-verify-<setting>`` (``RUN-verify-control`` for the control, ``remedy`` None) beside
    the run, numbered when taken."""
    run = Path(run).resolve()
    name = "control" if remedy is None else (
        remedy.setting.replace("loss.weights.", "").replace(".", "-").replace("/", "-"))
    base = run.parent / f"{run.name}-verify-{name}"
    path, n = base, 2
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path


def verify(run: str, remedy_text: str | list[str], steps: int, *, fork_dir: str | Path | None = None,
           control: bool = False, control_dir: str | Path | None = None, data: str | None = None,
           split: str = "validation", match: str | None = None, max_seconds: float = 10.0,
           max_clips: int = 3, mos: bool = False,
           before: Diagnosis | None = None, progress: Progress | None = None) -> Verification:
    """Fork ``run`` (``RUN[:STEP|:best]``) with the remedy, train ``steps`` steps, diagnose both;
    with ``control``, also a fork with no change trained as long, diagnosed on the same clips.

    ``before`` is the parent's diagnosis if already made (the panel has one). ``progress`` is
    updated as it goes and can cancel it (see :class:`Progress`).
    """
    from vqstudio.diagnose.runner import diagnose, clip_files
    from vqstudio.experiments.checkpoint_ref import resolve_ref

    if steps < 1:
        raise UserError(f"--steps {steps}: a fork must train at least one step", "e.g. --steps 100")
    progress = progress or Progress()
    began = time.perf_counter()
    ref = resolve_ref(run)
    clips = clip_files(ref.config, data, split, match)[:max_clips]
    if before is None:
        progress.phase = "diagnosing the parent"
        before = diagnose(run, clips, max_seconds=max_seconds, max_clips=max_clips, mos=mos)
    chosen = find_remedy(before, remedy_text)
    new = Path(fork_dir) if fork_dir is not None else default_fork_dir(ref.run.path, chosen)
    if control:  # both names up front: a taken control folder refuses before any training
        control_path = Path(control_dir) if control_dir is not None else default_fork_dir(ref.run.path, None)
        if control_path.resolve() == new.resolve():
            raise UserError(f"--control-fork {control_path} is the fork's own folder", "give it another folder")
        if control_path.exists() and (not control_path.is_dir() or any(control_path.iterdir())):
            raise UserError(f"--control-fork {control_path} already exists and is not empty",
                            "name a new folder for the control fork")
    fork_path, summary = _train_fork(run, new, chosen.texts, steps, progress, "the fork")
    progress.phase = "diagnosing the fork"
    after = diagnose(fork_path, clips, max_seconds=max_seconds, max_clips=max_clips, mos=mos)
    diagnosed = {"before": before, "after": after}
    control_diagnosis, control_fork = None, ""
    if control:
        try:
            control_fork, _ = _train_fork(run, control_path, [], steps, progress, "the control fork")
        except Cancelled as exc:  # the fork itself is done: say that it is kept too
            raise Cancelled(f"{exc.problem}; the fork {fork_path} trained its {steps} steps and is kept",
                            exc.fix) from None
        progress.phase = "diagnosing the control fork"
        control_diagnosis = diagnosed["control"] = diagnose(control_fork, clips, max_seconds=max_seconds,
                                                            max_clips=max_clips, mos=mos)
    progress.phase = "done"
    hop, n_fft = ref.config.model.hop, ref.config.model.n_fft
    return Verification(chosen, run, fork_path, summary, before, after,
                        {name: figures(d, hop, n_fft) for name, d in diagnosed.items()},
                        time.perf_counter() - began, control_diagnosis, control_fork)


def _train_fork(run: str, folder: Path, changes: list[str], steps: int, progress: Progress,
                what: str) -> tuple[str, str]:
    """Fork ``run`` into ``folder`` with ``changes``, train ``steps`` steps; (folder, summary).
    On cancel: the checkpoint saved, the folder kept, :class:`Cancelled` raised."""
    from vqstudio.experiments.fork import fork_run
    from vqstudio.train.trainer import Trainer

    progress.phase, progress.step, progress.steps, progress.folder = f"forking {what}", 0, steps, str(folder)
    if progress.cancelled:
        raise Cancelled("Verify cancelled before forking", "nothing was written")
    fork = fork_run(run, folder, changes)
    progress.phase = f"training {what} ({fork.run.path.name})"
    trainer = Trainer(fork.run.load_config(), fork.run.path)
    stopped_at = None
    try:
        for report in trainer.steps(until=fork.step + steps):
            progress.step = report.step - fork.step
            if progress.cancelled:
                stopped_at = report.step
                break
        trainer.save_checkpoint(reason="cancelled" if stopped_at is not None else "end")
    finally:
        trainer.close()
    if stopped_at is not None:
        raise Cancelled(f"Verify cancelled: {what} {fork.run.path} kept at step {stopped_at} "
                        f"({stopped_at - fork.step} of {steps} steps)",
                        f"train it on with: vqstudio train --run {fork.run.path} --steps {fork.step + steps}")
    return str(fork.run.path), fork.summary
