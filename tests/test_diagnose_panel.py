"""The Diagnosis panel with a real training worker: a diagnosis asked for while the run trains is
made from a checkpoint the trainer saves, in a thread of its own, and training goes on; Apply
posts a live remedy through the worker's settings path; Listen puts the real audition panel on
the finding's clip, region and source."""

from __future__ import annotations

import pytest

from helpers import attached_worker, tiny_config
from vqstudio.app.panels.audition import AuditionPanel
from vqstudio.app.panels.diagnosis import DiagnosisPanel

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
