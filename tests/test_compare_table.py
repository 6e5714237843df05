"""The Compare panel with a real trained run: two of its checkpoints measured on the same clips by
real ``vqstudio compare`` child processes, the same figures as the command prints, the best of each
column marked, the listening-test results read from the run's listening.jsonl, Cancel ending a
measurement at once, and a bad clips folder shown as the command's one-line message."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from helpers import run_cli, train_tiny_run
from vqstudio.app.panels.compare_table import LISTENING, ComparePanel
from vqstudio.app.run_list import RunList
from vqstudio.app.store import RunStore
from vqstudio.experiments.compare import FIGURES, _columns, best_rows
from vqstudio.experiments.listening import AbxTest, Contender, append_session, run_summary

pytestmark = pytest.mark.gui

WAIT_MS = 240_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("runs"), "r", steps=8, checkpoint_every=4)


def compare_panel(qtbot, run) -> ComparePanel:
    store = RunStore()
    runs = RunList(store)
    panel = ComparePanel(store)
    qtbot.addWidget(panel)
    panel.set_runs(runs)
    key = runs.add(run)
    qtbot.waitUntil(lambda: not runs.entry(key).loading, timeout=WAIT_MS)
    # The checkpoints are looked up in the background: the row comes with the answer.
    qtbot.waitUntil(lambda: (panel.refresh(), bool(panel.rows))[1], timeout=WAIT_MS)
    return panel


def chooser_steps(panel, row: int = 0) -> list[str]:
    chooser = panel.table.cellWidget(row, 1)
    return [chooser.itemData(i) for i in range(chooser.count())]


def test_a_redraw_lists_no_folder_and_new_checkpoints_still_show_up(qtbot, trained, tmp_path, monkeypatch):
    run = tmp_path / "copy"
    shutil.copytree(trained[0], run)
    for step in range(12, 400, 4):  # a folder of many checkpoints (names only are read here)
        shutil.copy(run / "checkpoints" / "step-00000008.pt", run / "checkpoints" / f"step-{step:08d}.pt")
    panel = compare_panel(qtbot, run)
    assert chooser_steps(panel)[:3] == ["latest", "396", "392"]

    calls = {"gui": 0, "other": 0}
    real_stat = os.stat
    for name in ("scandir", "listdir", "stat", "lstat"):
        real = getattr(os, name)

        def counted(*args, _real=real, **kwargs):
            calls["gui" if threading.current_thread() is threading.main_thread() else "other"] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    for _ in range(60):  # two seconds of the window's redraws
        panel.refresh()
        qtbot.wait(2)
    assert calls["gui"] == 0

    # A checkpoint the store hears of (training here, or a followed run) is offered at once.
    panel.scan_timer.stop()
    with monkeypatch.context() as unwatched:  # the test's own copy is no redraw's
        unwatched.setattr(os, "stat", real_stat)
        shutil.copy(run / "checkpoints" / "step-00000008.pt", run / "checkpoints" / "step-00000400.pt")
    store = panel.runs.entry(panel.runs.shown()[-1].key).store
    store.append_events([{"kind": "checkpoint", "step": 400, "file": "step-00000400.pt"}])
    qtbot.waitUntil(lambda: (panel.refresh(), "400" in chooser_steps(panel))[1], timeout=WAIT_MS)
    assert panel.refs() == [f"{run}:latest"]
    # One another process writes, unannounced, within a few seconds (the scan timer).
    panel.scan_timer.start()
    with monkeypatch.context() as unwatched:
        unwatched.setattr(os, "stat", real_stat)
        shutil.copy(run / "checkpoints" / "step-00000008.pt", run / "checkpoints" / "step-00000404.pt")
    qtbot.waitUntil(lambda: (panel.refresh(), "404" in chooser_steps(panel))[1], timeout=WAIT_MS)
    assert calls["gui"] == 0 and calls["other"] > 0  # all of it looked up off the GUI thread


def test_two_checkpoints_are_measured_and_the_best_of_each_column_marked(qtbot, trained, tmp_path):
    run, corpus = trained
    test = AbxTest(Contender(str(run), "step-00000004.pt", 4), Contender(str(run), "step-00000008.pt", 8),
                   trials=4, seed=1)
    for _ in range(4):
        test.answer("A")
    append_session(test.record())

    panel = compare_panel(qtbot, run)
    assert panel.refs() == [f"{run}:latest"]
    panel.table.selectRow(0)
    panel.add_row_for_selected()  # the same run again: two of its checkpoints
    panel.set_checkpoint(0, "4")
    panel.set_checkpoint(1, "8")
    assert panel.refs() == [f"{run}:4", f"{run}:8"]
    panel.data_edit.setText(str(corpus))
    with qtbot.waitSignal(panel.runner.finished, timeout=WAIT_MS) as finished:
        panel.measure()
        assert not panel.measure_button.isEnabled() and panel.cancel_button.isEnabled()
    assert finished.args == [True]
    entries = panel.entries()
    assert [(e["step"], e["checkpoint"]) for e in entries] == [(4, "step-00000004.pt"), (8, "step-00000008.pt")]

    # The command's own figures for the same references.
    out = tmp_path / "compare.json"
    result = run_cli("compare", f"{run}:4", f"{run}:8", "--data", str(corpus), "--json", str(out))
    assert result.returncode == 0, result.stderr
    for mine, theirs in zip(entries, json.loads(out.read_text())):
        for key, _, _ in FIGURES:  # the child runs torch on one thread: equal to rounding
            expected = theirs.get(key)
            assert mine.get(key) == (expected if expected is None else pytest.approx(expected, rel=1e-9)), key

    headings = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    columns = _columns(entries)
    assert headings == ["run", "checkpoint", *(h for _, h, _ in columns), LISTENING]
    expected = {(i, heading) for key, heading, better in columns for i in best_rows(entries, key, better)}
    assert expected and panel.best_cells() == expected
    si_sdr = headings.index("SI-SDR dB")
    better = max(range(2), key=lambda i: entries[i]["si_sdr_db"])
    assert panel.table.item(better, si_sdr).text().endswith("★")
    assert panel.table.item(better, si_sdr).font().bold()
    assert not panel.table.item(1 - better, si_sdr).text().endswith("★")

    listening = headings.index(LISTENING)
    summary = run_summary(run)
    for row, name in enumerate(("step-00000004.pt", "step-00000008.pt")):
        cell = panel.table.item(row, listening).text()
        assert cell == summary[(str(run), name)].cell() and "ABX" in cell


def test_cancel_ends_the_measurement_at_once(qtbot, trained):
    run, corpus = trained
    panel = compare_panel(qtbot, run)
    panel.data_edit.setText(str(corpus))
    with qtbot.waitSignal(panel.runner.finished, timeout=WAIT_MS) as finished:
        panel.measure()
        assert panel.runner.running
        panel.cancel_button.click()
    assert finished.args == [False]
    assert not panel.runner.running and panel.entries() == []
    assert panel.measure_button.isEnabled() and "Cancelled" in panel.status.text()


def test_a_bad_clips_folder_is_the_commands_one_line_message(qtbot, trained, tmp_path):
    run, _ = trained
    panel = compare_panel(qtbot, run)
    empty = tmp_path / "no-audio"
    empty.mkdir()
    panel.data_edit.setText(str(empty))
    with qtbot.waitSignal(panel.runner.finished, timeout=WAIT_MS):
        panel.measure()
    assert panel.entries() == []
    message = panel.status.text()
    assert str(empty) in message and "Traceback" not in message
    assert panel.table.item(0, 0).text() == "r (failed)" and panel.table.item(0, 0).toolTip() == message
