"""The Diagnosis panel: the run's findings, most severe first, each with its evidence, and what to
do about it.

- "Diagnose now", or every N steps: while the run trains, the panel asks the trainer for a
  checkpoint (the existing ``save_checkpoint`` command) and diagnoses that checkpoint in a thread
  of its own (:mod:`diagnosis_job`), on a copy of the model loaded from it; the training thread
  never waits for it. With no training going it diagnoses the run's latest checkpoint.
- "Listen" puts the audition panel on the finding's clip, region and source (its public
  ``set_clip_from_file``, ``set_loop`` and ``select_source``).
- "Apply" posts a live remedy through the worker's settings path (``train/settings.py``'s table,
  confirmed by an event like any slider change); "Fork with this fix" opens the app's Fork dialog
  with the remedy filled in; "Verify" forks with it, trains the chosen number of steps (and a
  control fork with no change, if ticked), shows the before/after findings side by side and sets
  the Audition panel up for an ABX of parent against fork (:mod:`diagnosis_verify`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QSpinBox, QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from vqstudio.app.panels.diagnosis_job import Job, diagnose_checkpoint, latest_step
from vqstudio.app.panels.diagnosis_verify import VerifyRow, verification_html
from vqstudio.diagnose.findings import Diagnosis, Finding
from vqstudio.diagnose.report import _figure

MARK = {"bad": "BAD", "warn": "WARN", "info": "info"}
TOOLTIP_FIGURES = 6  # evidence entries a finding's tooltip lists (the details show them all)
TOOLTIP_FIGURE_CHARS = 90  # one entry's text, at most


def finding_tooltip(f: Finding) -> str:
    """A list item's tooltip: the finding's whole title and a summary of its evidence (rich
    text, so Qt wraps it instead of drawing one line across the screen)."""
    figures = list(f.evidence.items())
    lines = []
    for key, value in figures[:TOOLTIP_FIGURES]:
        text = _figure(value)
        if len(text) > TOOLTIP_FIGURE_CHARS:
            text = text[:TOOLTIP_FIGURE_CHARS - 1] + "…"
        lines.append(f"{html.escape(str(key))}: {html.escape(text)}")
    if len(figures) > TOOLTIP_FIGURES:
        lines.append(f"… {len(figures) - TOOLTIP_FIGURES} more in the details")
    return (f"<p><b>{html.escape(f.title)}</b> ({MARK[f.severity]}, {html.escape(f.id)})</p>"
            + (f"<p>{'<br>'.join(lines)}</p>" if lines else "<p>no figures</p>"))


class DiagnosisPanel(QWidget):
    def __init__(self, store: Any, worker: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self._audition: Any = None  # the window links the audition panel here
        self.window_ref: Any = None  # the main window (for the Fork dialog); linked by the window
        self.diagnosis: Diagnosis | None = None
        self.job: Job | None = None
        self._waiting_for: int | None = None  # a checkpoint newer than this step is awaited
        self._last_step: int | None = None  # the training step of the last diagnosis asked for
        self._build()

    def _build(self) -> None:
        self.run_button = QPushButton("Diagnose now")
        self.run_button.clicked.connect(self.diagnose_now)
        self.every = QSpinBox()
        self.every.setRange(0, 100000)
        self.every.setSingleStep(100)
        self.every.setSpecialValueText("on demand")
        self.every.setPrefix("every ")
        self.every.setSuffix(" steps")
        self.every.setToolTip("diagnose again every N training steps (0: only when asked)")
        self.mos_box = QCheckBox("DNSMOS")
        self.mos_box.setToolTip("also score one clip with DNSMOS (a speech model; seconds of CPU)")
        self.status = QLabel("No diagnosis yet.")
        self.status.setWordWrap(True)
        self.findings = QListWidget()
        self.findings.currentRowChanged.connect(self._show_finding)
        self.details = QTextBrowser()
        for view in (self.findings, self.details):
            view.setMinimumHeight(40)  # a low dock under the curves stays possible
        self.listen_button = QPushButton("Listen")
        self.listen_button.clicked.connect(self.listen)
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        self.fork_button = QPushButton("Fork with this fix")
        self.fork_button.clicked.connect(self.fork)
        self.verify_row = VerifyRow()
        self.verify_steps, self.verify_button = self.verify_row.steps, self.verify_row.button
        self.control_box, self.abx_button = self.verify_row.control, self.verify_row.abx_button
        self.verify_button.clicked.connect(self.verify)

        top = QHBoxLayout()
        for w in (self.run_button, self.every, self.mos_box):
            top.addWidget(w)
        top.addStretch(1)
        actions = QHBoxLayout()
        for w in (self.listen_button, self.apply_button, self.fork_button):
            actions.addWidget(w)
        actions.addStretch(1)
        # The findings list beside the status and details, the buttons under both: under the
        # curves the dock is low (~180 px at 1600 x 1000), and with everything stacked the list
        # showed under two rows. The rows stay full width: the dock beside Compare stays narrow.
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        column.addWidget(self.status)
        column.addWidget(self.details, 1)
        self.findings.setMinimumWidth(120)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.findings)
        split.addWidget(side)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addLayout(actions)
        layout.addWidget(self.verify_row)
        self._update_actions()

    @property
    def audition(self) -> Any:
        return self._audition

    @audition.setter
    def audition(self, panel: Any) -> None:
        self._audition = self.verify_row.audition = panel

    # -- running a diagnosis -----------------------------------------------------------------------

    @property
    def run_dir(self) -> Path | None:
        run_dir = getattr(self.worker, "run_dir", None) or getattr(self.store, "run_dir", None)
        return Path(run_dir) if run_dir else None

    def diagnose_now(self) -> None:
        """Diagnose the run as it is now (a fresh checkpoint while it trains)."""
        if self.job is not None or self._waiting_for is not None:
            return
        run_dir = self.run_dir
        if run_dir is None:
            self.status.setText("Open or start a run first: the diagnosis reads its checkpoints.")
            return
        if getattr(self.worker, "is_running", False):
            self._waiting_for = latest_step(run_dir) or -1
            self.worker.command("save_checkpoint", reason="diagnosis")
            self.status.setText("Asked the trainer for a checkpoint to diagnose…")
        else:
            step = latest_step(run_dir)
            if step is None:
                self.status.setText(f"{run_dir} has no checkpoint yet: train it a little first.")
                return
            self._start(run_dir, step)
        self._update_actions()

    def _start(self, run_dir: Path, step: int) -> None:
        mos = self.mos_box.isChecked()
        self._last_step = step
        self.job = Job("diagnosis", lambda: diagnose_checkpoint(run_dir, step, mos))
        self.status.setText(f"Diagnosing step {step} (in the background; training goes on)…")

    def refresh(self) -> None:
        """Called by the window's redraw timer: start, collect and show jobs; never blocks."""
        run_dir = self.run_dir
        if self._waiting_for is not None and run_dir is not None:
            step = latest_step(run_dir)
            if step is not None and step > self._waiting_for:
                self._waiting_for = None
                self._start(run_dir, step)
        if self.job is not None and self.job.done:
            job, self.job = self.job, None
            job.join()
            if job.error:
                self.status.setText(job.error)
            else:
                self.show_diagnosis(job.result)
        finished = self.verify_row.poll()
        if finished is not None:
            verification, problem = finished
            if verification is None:
                self.status.setText(problem)
            else:
                self.show_verification(verification, problem)
        self._auto()
        self._update_actions()

    def _auto(self) -> None:
        every = self.every.value()
        if not every or self.job is not None or self._waiting_for is not None:
            return
        if not getattr(self.worker, "is_running", False):
            return
        step = getattr(self.store, "current_step", None)
        if step is None:
            steps = getattr(self.store, "steps", None)
            step = int(steps.view()[-1]) if steps is not None and len(steps) else None
        if step is not None and (self._last_step is None or step >= self._last_step + every):
            self._last_step = step
            self.diagnose_now()

    def stop(self) -> None:
        """Wait for background work (the window calls this as it closes)."""
        self.verify_row.stop()
        if self.job is not None:
            self.job.join()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.stop()
        super().closeEvent(event)

    # -- showing ------------------------------------------------------------------------------------

    def show_diagnosis(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        self.findings.clear()
        for f in diagnosis.findings:
            item = QListWidgetItem(f"[{MARK[f.severity]}] {f.title}")
            item.setData(Qt.ItemDataRole.UserRole, f.id)
            item.setToolTip(finding_tooltip(f))  # the list is narrow: titles are often cut
            self.findings.addItem(item)
        took = sum(diagnosis.seconds.values())
        self.status.setText(f"Step {diagnosis.step}: {len(diagnosis.findings)} finding(s) on "
                            f"{', '.join(diagnosis.clips)} ({took:.1f} s of checks)"
                            + (f"; not measured: {', '.join(diagnosis.skipped)}" if diagnosis.skipped else ""))
        if diagnosis.findings:
            self.findings.setCurrentRow(0)
        else:
            self.details.setPlainText("No findings: every check that ran stayed under its thresholds.")

    def current(self) -> Finding | None:
        item = self.findings.currentItem()
        if item is None or self.diagnosis is None:
            return None
        return self.diagnosis.get(item.data(Qt.ItemDataRole.UserRole))

    def _show_finding(self, _row: int) -> None:
        f = self.current()
        self._update_actions()
        if f is None:
            return
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_figure(v))}</td></tr>"
                       for k, v in f.evidence.items())
        fixes = "".join(f"<li><code>{html.escape(r.text)}</code> ({'live' if r.live else 'needs a fork'}): "
                        f"{html.escape(r.reason)}</li>" for r in f.remedies)
        where = f"<p>where: {html.escape(_figure(f.where))}</p>" if f.where else ""
        listen = (f"<p>listen: {html.escape(f.listen.clip)} {f.listen.start:.2f}-{f.listen.stop:.2f} s "
                  f"({f.listen.source})</p>" if f.listen else "")
        self.details.setHtml(f"<b>{html.escape(f.title)}</b> <small>{html.escape(f.id)}</small>"
                             f"<p>{html.escape(f.explanation)}</p>{where}{listen}"
                             + (f"<ul>{fixes}</ul>" if fixes else "") + f"<table>{rows}</table>")

    def show_verification(self, v, abx_problem: str = "") -> None:
        """The verify's columns and verdicts in the details; the status names the fork folder(s)."""
        self.details.setHtml(verification_html(v))
        tally = ", ".join(f"{n} {word}" for word, n in v.tally().items() if n)
        self.status.setText(f"Verified {v.remedy.text} in {v.fork}"
                            + (f" (control {v.control_fork})" if v.control is not None else "")
                            + f": {tally}. " + (f"ABX not set up: {abx_problem}" if abx_problem else
                                                "ABX parent / fork is ready in the Audition panel."))

    def _update_actions(self) -> None:
        f = self.current()
        busy = self.job is not None or self._waiting_for is not None
        self.run_button.setEnabled(not busy)
        self.listen_button.setEnabled(f is not None and f.listen is not None and self.audition is not None)
        live = f is not None and any(r.live for r in f.remedies)
        self.apply_button.setEnabled(live and getattr(self.worker, "is_running", False))
        has_fix = f is not None and bool(f.remedies)
        self.fork_button.setEnabled(has_fix)
        self.verify_button.setEnabled(has_fix and not self.verify_row.running)

    # -- acting ---------------------------------------------------------------------------------------

    def listen(self) -> bool:
        """Put the audition on the finding's clip, region and source; returns whether it could."""
        f = self.current()
        if f is None or f.listen is None or self.audition is None or self.diagnosis is None:
            return False
        path = self.diagnosis.sources.get(f.listen.clip)
        if not path or not self.audition.set_clip_from_file(path):
            self.status.setText(f"The clip {f.listen.clip} cannot be opened for audition")
            return False
        self.audition.set_loop(f.listen.start, f.listen.stop)
        self.audition.select_source(f.listen.source)
        return True

    def apply(self) -> list[str]:
        """Post the finding's live remedies to the running trainer; returns what was posted."""
        from vqstudio.train.settings import setting_for_key

        f = self.current()
        posted = []
        for r in (f.remedies if f is not None else ()):
            if not r.live:
                continue
            for key, change in r.changes.items():
                name, value = setting_for_key(key, change)
                if name == "weights":
                    self.worker.set_weights(value)
                else:
                    self.worker.set_setting(name, value)
            posted.append(r.text)
        if posted:
            self.status.setText(f"Posted {', '.join(posted)}; the curves mark the step it takes effect")
        return posted

    def fork(self) -> None:
        """The app's Fork dialog with the finding's first remedy filled in."""
        f = self.current()
        if f is None or not f.remedies or self.window_ref is None:
            return
        from vqstudio.app.fork_dialog import fork_from_here

        r = f.remedies[0]
        fork_from_here(self.window_ref, "latest", r.changes)

    def verify(self) -> None:
        """Fork with the finding's first remedy, train, diagnose both (in the background)."""
        f, d, run_dir = self.current(), self.diagnosis, self.run_dir
        if f is None or not f.remedies or d is None or run_dir is None or self.verify_row.running:
            return
        self.status.setText(self.verify_row.start(run_dir, d, f, self.mos_box.isChecked()))
        self._update_actions()
