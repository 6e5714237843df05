"""The Diagnosis panel's Verify row: how many steps the fork trains, whether a control fork (no
change, the same steps) trains too, the Verify button, a progress bar with Cancel while it runs,
and, once it is done, "ABX parent / fork": the Audition panel is already on the finding's clip and
region with the parent's checkpoint as 1 and the fork's as 2, so this one click starts the blind
test (as soon as both are reconstructed).

The verify itself is :func:`vqstudio.diagnose.verify.verify` in a :class:`diagnosis_job.Job`
thread; its :class:`~vqstudio.diagnose.verify.Progress` is read by :meth:`VerifyRow.poll` from the
window's redraw timer and cancels it after the step in hand (the fork folder is kept and named).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QProgressBar, QPushButton, QSpinBox, QWidget

from vqstudio.app.panels.audition_readouts import FIRST, SECOND
from vqstudio.app.panels.diagnosis_job import Job
from vqstudio.diagnose.findings import Diagnosis, Finding
from vqstudio.diagnose.report import _figure
from vqstudio.diagnose.verify import Progress, default_fork_dir, find_remedy
from vqstudio.experiments.checkpoint_ref import available, split_ref
from vqstudio.train.runfolder import RunFolder

DEFAULT_STEPS = 200  # enough for a remedy's effect to show on a small model, a few CPU minutes


class VerifyRow(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100000)
        self.steps.setSingleStep(50)
        self.steps.setValue(DEFAULT_STEPS)
        self.steps.setSuffix(" steps")
        self.steps.setToolTip("how many steps the fork trains before both are diagnosed")
        self.control = QCheckBox("control")
        self.control.setToolTip("also fork with no change and train it the same steps: its column "
                                "shows what the extra steps alone did")
        self.button = QPushButton("Verify")
        self.button.setToolTip("fork with the remedy, train it, diagnose both side by side")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(140)
        self.bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop the verify after the step in hand; the fork folder is kept")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.abx_button = QPushButton("ABX parent / fork")
        self.abx_button.setToolTip("a blind ABX test of the parent's and the fork's checkpoints on the "
                                   "finding's clip and region (set up in the Audition panel)")
        self.abx_button.setEnabled(False)
        self.abx_button.clicked.connect(self.start_abx)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.steps, self.control, self.button, self.bar, self.cancel_button, self.abx_button):
            row.addWidget(w)
        row.addStretch(1)
        self.job: Job | None = None
        self.progress: Progress | None = None
        self.audition: Any = None  # the window's audition panel (linked by the Diagnosis panel)
        self.dialog: Any = None  # the ABX dialog opened last
        self._finding: Finding | None = None  # the finding verified last
        self._abx: tuple[str, str, tuple[float, float] | None] | None = None  # parent ref, fork ref, region

    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self, run_dir: Path, diagnosis: Diagnosis, finding: Finding, mos: bool) -> str:
        """Verify ``finding``'s first remedy on the diagnosed checkpoint; returns what to show."""
        from vqstudio.diagnose.verify import verify

        remedy = find_remedy(diagnosis, finding.id)
        steps, control = self.steps.value(), self.control.isChecked()
        fork_dir = default_fork_dir(run_dir, remedy)
        control_dir = default_fork_dir(run_dir, None) if control else None
        ref = f"{run_dir}:{diagnosis.step}"
        self.progress = progress = Progress()
        self.job = Job("verify", lambda: verify(ref, finding.id, steps, fork_dir=fork_dir, control=control,
                                                control_dir=control_dir, before=diagnosis, mos=mos,
                                                progress=progress))
        self._finding, self._abx = finding, None
        self.abx_button.setEnabled(False)
        self._show_running(True)
        return (f"Verifying {remedy.text}: forking into {fork_dir}"
                + (f" (control: {control_dir})" if control_dir else "") + f", training {steps} steps…")

    def cancel(self) -> None:
        if self.progress is not None:
            self.progress.cancel()
            self.cancel_button.setEnabled(False)

    def poll(self) -> tuple[Any, str] | None:
        """None while it runs (the bar shows how far); once finished, (verification, "" or what
        kept the ABX from being set up) or (None, the error in words)."""
        if self.job is None:
            self._update_abx()
            return None
        progress = self.progress
        if not self.job.done:
            if progress.steps and progress.phase.startswith("training"):
                self.bar.setRange(0, progress.steps)
                self.bar.setValue(progress.step)
            else:
                self.bar.setRange(0, 0)  # busy: forking or diagnosing
            self.bar.setFormat(f"{'control' if 'control' in progress.phase else 'fork'} %v/%m")
            self.bar.setToolTip(progress.text())  # "training the fork (NAME): step 40 of 200"
            return None
        job, self.job = self.job, None
        job.join()
        self._show_running(False)
        if job.error:
            return None, job.error
        return job.result, self.prepare_abx(job.result)

    def _show_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.abx_button.setVisible(not running)  # the bar takes its place while it runs
        for w in (self.steps, self.control):
            w.setEnabled(not running)

    def stop(self) -> None:
        """Cancel and wait (the window is closing)."""
        if self.job is not None:
            self.cancel()
            self.job.join()

    # -- ABX on the finding's clip ------------------------------------------------------------------

    def prepare_abx(self, v) -> str:
        """Put the Audition panel on the finding's clip and region, the parent's checkpoint as 1
        and the fork's as 2; returns a problem in words ("" when set up)."""
        audition, f = self.audition, self._finding
        if audition is None:
            return "no Audition panel to set up"
        listen = f.listen
        clip = listen.clip if listen is not None else (v.before.clips or [""])[0]
        path = v.before.sources.get(clip)
        if not path or not audition.set_clip_from_file(path):
            return f"the clip {clip} cannot be opened for audition"
        region = (listen.start, listen.stop) if listen is not None else None
        if region is not None:
            audition.set_loop(*region)
        parent_run, parent_step = split_ref(v.parent)
        parent_step = parent_step or str(v.before.step)
        if parent_step not in available(RunFolder(parent_run)):
            return (f"the parent's checkpoint at step {parent_step} is no longer there (training rotated "
                    "it out): choose the checkpoints for 1 and 2 in the Audition panel")
        extra = audition.extra
        extra.choosers[FIRST].choose(parent_run, parent_step)
        extra.choosers[SECOND].choose(v.fork, str(v.after.step))
        self._abx = (extra.refs[FIRST], extra.refs[SECOND], region)
        self._update_abx()
        return ""

    def _ready(self) -> bool:
        if self._abx is None or self.audition is None:
            return False
        extra = self.audition.extra
        refs_kept = (extra.refs[FIRST], extra.refs[SECOND]) == self._abx[:2]
        found = extra.blind_candidates()
        return refs_kept and "1" in found and "2" in found

    def _update_abx(self) -> None:
        self.abx_button.setEnabled(self._ready())

    def start_abx(self) -> Any:
        """Open the ABX dialog on 1 (parent) against 2 (fork) and start it; returns the dialog."""
        if not self._ready():
            return None
        dialog = self.audition.extra.open_blind_test("abx")
        if dialog is None:
            return None
        dialog.first.setCurrentIndex(dialog.first.findData("1"))
        dialog.second.setCurrentIndex(dialog.second.findData("2"))
        if dialog.region is None:  # no player to hold the loop: the finding's region, for the record
            dialog.region = self._abx[2]
        dialog.start()
        self.dialog = dialog
        return dialog


def verification_html(v) -> str:
    """The panel's view of a verify: figures, then findings, one column per diagnosis, verdicts."""
    names = [name for name, _ in v.columns]
    who = {"before": f"before (step {v.before.step})", "after": f"after (step {v.after.step})",
           "control": f"control (step {v.control.step if v.control else ''})"}
    change = v.control is not None
    head = ("<tr><th></th>" + "".join(f"<th>{who[n]}</th>" for n in names)
            + ("<th>change vs control</th>" if change else "") + "</tr>")

    def cell(text: str, note: str = "") -> str:
        return f"<td>{html.escape(text)}" + (f" <i>{html.escape(note)}</i>" if note else "") + "</td>"

    figs = "".join(f"<tr><td>{html.escape(label)}</td>"
                   + "".join(cell(_figure(values[n]), marks.get(n, "")) for n in names)
                   + (cell(marks.get("change", "")) if change else "") + "</tr>"
                   for _key, label, values, marks in v.figure_rows())
    rows = "".join(f"<tr><td>{html.escape(r.id)}</td>"
                   + "".join(cell(r.cells[n], r.verdicts.get(n, "")) for n in names)
                   + (cell(r.change) if change else "") + "</tr>" for r in v.rows())
    tally = ", ".join(f"{n} {word}" for word, n in v.tally().items())
    folders = f"fork: {v.fork}" + (f"; control: {v.control_fork}" if change else "")
    return (f"<b>Verify {html.escape(v.remedy.text)}</b><p>{html.escape(v.fork_summary)}</p>"
            f"<p>{html.escape(folders)}</p><table>{head}{figs}</table>"
            f"<p>after against before: {html.escape(tally)}</p><table>{head}{rows}</table>"
            "<p>ABX parent / fork: the Audition panel holds the parent as 1 and the fork as 2 on this "
            "finding's clip and region.</p>")
