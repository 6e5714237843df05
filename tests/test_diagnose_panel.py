"""The Diagnosis panel with a real training worker: a diagnosis asked for while the run trains is
made from a checkpoint the trainer saves, in a thread of its own, and training goes on; Apply
posts a live remedy through the worker's settings path; Listen puts the real audition panel on
the finding's clip, region and source."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from helpers import answer_next_dialog, attached_worker, tiny_config, train_tiny_run
from vqstudio.app.panels.audition import AuditionPanel
from vqstudio.app.panels.audition_readouts import FIRST, SECOND
from vqstudio.app.panels.diagnosis import TOOLTIP_FIGURES, DiagnosisPanel
from vqstudio.app.window import MainWindow
from vqstudio.config import load_config
from vqstudio.config_fields import text_of
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.report import _figure
from vqstudio.experiments.checkpoint_ref import available
from vqstudio.train.runfolder import RunFolder

pytestmark = pytest.mark.gui

WAIT_MS = 180_000


@pytest.fixture
def worker(qtbot):
    worker = attached_worker()
    yield worker
    worker.stop(save=False)


def refreshed(panel, condition):
    """For qtbot.waitUntil: the window's redraw timer calls refresh(); here the wait does."""
    def check():
        panel.refresh()
        return condition()
    return check


def test_diagnosis_while_training_then_apply_and_listen(qtbot, worker, corpus, tmp_path):
    run = tmp_path / "run"
    worker.start(tiny_config(corpus, ["train.checkpoint_every=100000"]), run)
    store = worker.store
    qtbot.waitUntil(lambda: store.current_step >= 2, timeout=WAIT_MS)
    panel = DiagnosisPanel(store, worker)
    audition = AuditionPanel(store, worker, None)
    panel.audition = audition
    qtbot.addWidget(panel)
    qtbot.addWidget(audition)

    panel.diagnose_now()
    assert not panel.run_button.isEnabled()  # one diagnosis at a time
    qtbot.waitUntil(refreshed(panel, lambda: panel.job is not None), timeout=WAIT_MS)
    started_at = store.current_step
    qtbot.waitUntil(refreshed(panel, lambda: panel.diagnosis is not None), timeout=WAIT_MS)
    d = panel.diagnosis
    assert d.step is not None and d.step >= 2
    assert panel.findings.count() == len(d.findings) > 0
    # The list is narrow and cuts titles: each item's tooltip has the whole title and evidence.
    for i, f in enumerate(d.findings):
        tip = panel.findings.item(i).data(Qt.ItemDataRole.ToolTipRole)
        assert html.escape(f.title) in tip and f.id in tip
        for key, value in list(f.evidence.items())[:TOOLTIP_FIGURES]:
            assert f"{html.escape(str(key))}: {html.escape(_figure(value))[:40]}" in tip
    assert "background_mos" in d.skipped  # not asked for
    ranks = [f.rank for f in d.findings]
    assert ranks == sorted(ranks, reverse=True)
    # training went on while the checks ran in their own thread
    qtbot.waitUntil(lambda: store.current_step > started_at, timeout=WAIT_MS)

    # a young model's waveform is far from the original; its remedy (the waveform weight) is live
    row = d.ids.index("waveform_misalignment")
    panel.findings.setCurrentRow(row)
    assert "SI-SDR" in panel.details.toPlainText()
    assert panel.apply_button.isEnabled()
    with qtbot.waitSignal(store.weights_confirmed, timeout=WAIT_MS) as confirmed:
        posted = panel.apply()
    finding = d.get("waveform_misalignment")
    assert posted == [finding.remedies[0].text]
    assert confirmed.args[0] == {"waveform_mse": pytest.approx(finding.remedies[0].value)}

    assert panel.listen()
    assert audition.clip is not None and audition.clip.path == d.sources[finding.listen.clip]
    assert audition.selected == finding.listen.source
    panel.stop()


# -- Fork with this fix, Verify and its ABX, in the real window on a real trained run ----------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("diagnosis-panel"), steps=8, checkpoint_every=4)


@pytest.fixture
def window(qtbot, tmp_path, trained):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), player=None)
    win.worker.probe_seconds = 0.5
    qtbot.addWidget(win)
    win.show()
    assert win.open_run(trained[0])
    yield win
    win.close()


def diagnosed(qtbot, window) -> DiagnosisPanel:
    panel = window.panels["diagnosis"]
    panel.diagnose_now()
    qtbot.waitUntil(refreshed(panel, lambda: panel.diagnosis is not None), timeout=WAIT_MS)
    assert panel.diagnosis.step == 8
    return panel


def pick(panel, want) -> Finding:
    """Select the first finding for which ``want(finding)`` holds; returns it."""
    row = next(i for i, f in enumerate(panel.diagnosis.findings) if want(f))
    panel.findings.setCurrentRow(row)
    return panel.diagnosis.findings[row]


def kept_name(row) -> str:
    return Path(row.progress.folder).name


def test_fork_with_this_fix_opens_the_fork_dialog_with_the_remedy_and_forks(qtbot, window, tmp_path, trained):
    run = trained[0]
    panel = diagnosed(qtbot, window)
    finding = pick(panel, lambda f: bool(f.remedies))
    remedy = finding.remedies[0]
    assert panel.fork_button.isEnabled()
    fork, seen = tmp_path / "fixed", {}

    def fill(dialog):
        row = dialog.editor.rows[remedy.setting]
        seen["text"], seen["reference"] = row.text(), row.reference_text
        seen["changes"] = dialog.editor.changes()
        dialog.folder.setText(str(fork))
        QApplication.processEvents()
        dialog.ok.click()

    answer_next_dialog(fill)
    qtbot.mouseClick(panel.fork_button, Qt.MouseButton.LeftButton)
    assert seen["text"] == text_of(remedy.value) != seen["reference"]  # filled in, marked as a change
    assert remedy.setting in seen["changes"]
    qtbot.waitUntil(lambda: window.store.run_dir == fork and window.worker.is_running, timeout=WAIT_MS)
    config = load_config(fork / "config.toml")
    assert config.forked_from["run"] == str(run.resolve()) and config.forked_from["step"] == 8
    assert remedy.setting in config.forked_from["changed"]
    window.worker.stop(save=False)


def test_verify_shows_progress_cancels_keeping_the_fork_then_verifies_with_a_control_and_starts_abx(
        qtbot, window, trained):
    run = trained[0]
    panel = diagnosed(qtbot, window)
    finding = pick(panel, lambda f: bool(f.remedies) and f.listen is not None)
    assert panel.verify_steps.value() == 200  # the default
    row = panel.verify_row

    # a long verify: the bar follows the fork's steps; Cancel stops it and keeps the named fork
    panel.verify_steps.setValue(5000)
    qtbot.mouseClick(panel.verify_button, Qt.MouseButton.LeftButton)
    asked = panel.status.text()
    assert row.running and not panel.verify_button.isEnabled() and not row.bar.isHidden()
    qtbot.waitUntil(refreshed(panel, lambda: row.progress.step >= 2), timeout=WAIT_MS)
    assert row.bar.maximum() == 5000 and row.bar.value() >= 2
    assert row.bar.text().startswith("fork ") and row.bar.text().endswith("/5000")
    assert f"training the fork ({kept_name(row)})" in row.bar.toolTip()
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(refreshed(panel, lambda: not row.running), timeout=WAIT_MS)
    kept = Path(row.progress.folder)
    assert f"forking into {kept}, training 5000 steps" in asked
    assert "Verify cancelled" in panel.status.text() and str(kept) in panel.status.text()
    assert available(RunFolder(kept))[-1] != "8"  # its checkpoint where it stopped, after the parent's
    assert row.bar.isHidden() and panel.verify_button.isEnabled()

    # a short verify with a control fork: three columns, verdicts, both folders named and kept
    panel.verify_steps.setValue(2)
    panel.control_box.setChecked(True)
    qtbot.mouseClick(panel.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(refreshed(panel, lambda: not row.running), timeout=WAIT_MS)
    assert panel.status.text().startswith("Verified "), panel.status.text()
    details = panel.details.toPlainText()
    assert "before (step 8)" in details and "after (step 10)" in details and "control (step 10)" in details
    assert "change vs control" in details and "after against before:" in details
    fork = next(p for p in run.parent.glob(f"{run.name}-verify-*") if p != kept and "control" not in p.name)
    control = run.parent / f"{run.name}-verify-control"
    assert "10" in available(RunFolder(fork)) and "10" in available(RunFolder(control))
    assert str(fork) in panel.status.text() and str(control) in panel.status.text()

    # the Audition panel is on the finding's clip and region, parent as 1 and fork as 2
    audition = window.panels["audition"]
    assert audition.clip.path == panel.diagnosis.sources[finding.listen.clip]
    assert audition.extra.refs[FIRST] == f"{run}:8" and audition.extra.refs[SECOND] == f"{fork}:10"
    qtbot.waitUntil(refreshed(panel, panel.abx_button.isEnabled), timeout=WAIT_MS)
    qtbot.mouseClick(panel.abx_button, Qt.MouseButton.LeftButton)  # one click: the test is running
    dialog = row.dialog
    assert dialog is not None and dialog.test is not None and dialog.kind == "abx"
    assert (dialog.test.a.run, dialog.test.a.step) == (str(run), 8)
    assert (dialog.test.b.run, dialog.test.b.step) == (str(fork), 10)
    assert dialog.test.region == pytest.approx((finding.listen.start, finding.listen.stop))
    assert dialog.play_buttons["X"].isEnabled() and "Trial 1 of" in dialog.progress.text()
    dialog.close()
