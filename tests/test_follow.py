"""Following a run that another process trains: the tail reader on real files, and the app
(offscreen, pytest-qt) following a real `vqstudio train` subprocess, steering it, listening to its
checkpoints, and noticing when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from PySide6.QtCore import QTimer

from helpers import REPO, open_and_wait, tiny_sets, write_corpus, write_run
from vqstudio.experiments.run_history import read_history
from vqstudio.experiments.run_tail import RunTail, steps_per_second, who_trains
from vqstudio.train.run_lock import RunLock
from vqstudio.train.runfolder import RunFolder

WAIT_MS = 120_000


# -- the tail reader ---------------------------------------------------------------------------


def _write(path: Path, text: str, mode: str = "a") -> None:
    with path.open(mode) as handle:
        handle.write(text)


def test_tail_waits_for_a_half_written_row_and_rereads_a_rewritten_file(tmp_path):
    metrics, events = tmp_path / "metrics.csv", tmp_path / "events.jsonl"
    _write(metrics, "step,total,weight/mrstft\n1,0.5,1\n2,0.4,1\n3,0.3", "w")
    _write(events, '{"kind": "start", "step": 0, "time": 1.0}\n{"kind": "lr", "st', "w")
    tail = RunTail(tmp_path)
    first = tail.poll()
    assert first.rows["step"].tolist() == [1, 2] and first.rows["total"].tolist() == [0.5, 0.4]
    assert [e["kind"] for e in first.events] == ["start"]
    assert tail.partial_row and not tail.poll()  # nothing new: the half row is not misread
    _write(metrics, "5,1\n4,0.2\n5,0.1,1\n")  # the row finished whole; a damaged one; one more
    _write(events, 'ep": 3, "time": 2.0, "old": 1, "new": 2}\n')
    second = tail.poll()
    assert second.rows["step"].tolist() == [3, 5] and second.rows["total"].tolist() == [0.35, 0.1]
    assert second.damaged_rows == 1  # "4,0.2": a field short, left out rather than misread
    assert second.events[0]["kind"] == "lr" and second.events[0]["old"] == 1
    assert not tail.partial_row

    # A resume rewrites the file (atomically: a new inode, shorter): read again from the start.
    replacement = tmp_path / "metrics.tmp"
    _write(replacement, "step,total,weight/mrstft\n1,0.5,1\n", "w")
    os.replace(replacement, metrics)
    third = tail.poll()
    assert third.restarted and third.rows["step"].tolist() == [1]


def test_tail_skips_what_the_caller_has_and_sees_new_checkpoints(tmp_path):
    _write(tmp_path / "metrics.csv", "step,total\n1,0.5\n2,0.4\n3,0.3\n", "w")
    _write(tmp_path / "events.jsonl", '{"kind": "start", "step": 0, "time": 5.0}\n'
           '{"kind": "lr", "step": 2, "time": 6.0}\n', "w")
    tail = RunTail(tmp_path, after_step=2, after_time=5.0)
    update = tail.poll()
    assert update.rows["step"].tolist() == [3] and [e["kind"] for e in update.events] == ["lr"]
    assert update.checkpoint is None
    (tmp_path / "checkpoints").mkdir()
    _write(tmp_path / "checkpoints" / "latest.json", '{"step": 3, "file": "step-00000003.pt"}\n', "w")
    moved = tail.poll().checkpoint
    assert moved["step"] == 3 and moved["file"] == "step-00000003.pt"
    assert tail.poll().checkpoint is None  # reported once


def test_a_tail_resuming_a_history_reads_only_what_came_after_it(tmp_path):
    metrics, events = tmp_path / "metrics.csv", tmp_path / "events.jsonl"
    _write(metrics, "step,total\n1,0.5\n2,0.4\n3,0.3", "w")  # the last row half written
    _write(events, '{"kind": "start", "step": 0, "time": 5.0}\n{"kind": "lr", "step": 2, "time": 6.0}', "w")
    history = read_history(tmp_path)
    assert history.rows == 2 and [e["kind"] for e in history.events] == ["start", "lr"]
    tail = RunTail.resuming(history)
    assert tail.offsets == (len("step,total\n1,0.5\n2,0.4\n"), events.stat().st_size)
    assert tail.header == ["step", "total"]
    _write(metrics, "5\n4,0.2\n")  # the half row finished, one more
    _write(events, '\n{"kind": "weights", "step": 4, "time": 7.0}\n')
    update = tail.poll()
    assert not update.restarted and update.rows["step"].tolist() == [3, 4]
    assert update.rows["total"].tolist() == [0.35, 0.2]
    assert [e["kind"] for e in update.events] == ["weights"]  # the lr event is not read twice
    assert tail.bytes_read == len("3,0.35\n4,0.2\n") + len('\n{"kind": "weights", "step": 4, "time": 7.0}\n')

    # A file rewritten between the history's reading and the tail's first poll: read again whole.
    history = read_history(tmp_path)
    replacement = tmp_path / "metrics.tmp"
    _write(replacement, "step,total\n1,0.5\n", "w")
    os.replace(replacement, metrics)
    update = RunTail.resuming(history).poll()
    assert update.restarted and update.rows["step"].tolist() == [1]


def test_steps_per_second_comes_from_the_rows_own_clock():
    steps = np.arange(1, 401, dtype=float)
    elapsed = np.concatenate([steps[:200] * 0.5, 100.0 + (steps[200:] - 200) * 0.1])  # 2, then 10 steps/s
    assert steps_per_second(steps, elapsed) == pytest.approx(10.0)  # the last 10 s of training time
    assert steps_per_second(steps[:200], elapsed[:200]) == pytest.approx(2.0)
    with_gaps = elapsed.copy()
    with_gaps[-5:-1] = np.nan  # rows without a time are left out, not read as zero
    assert steps_per_second(steps, with_gaps) == pytest.approx(10.0)
    assert np.isnan(steps_per_second(steps[:1], elapsed[:1]))
    assert np.isnan(steps_per_second(steps[:3], np.full(3, 5.0)))  # no time passed


def test_who_trains_reads_the_lock_without_taking_it(tmp_path):
    assert who_trains(tmp_path).state == "none"
    lock = RunLock.acquire(tmp_path)
    holder = who_trains(tmp_path)
    assert holder.state == "training" and holder.record["pid"] == os.getpid()
    assert f"pid {os.getpid()}" in holder.describe() and "last heard from" in holder.describe()
    # reading did not take the lock: the holder still holds it, a second trainer is refused
    with pytest.raises(Exception, match="being trained by"):
        RunLock.acquire(tmp_path)
    lock.release()
    assert who_trains(tmp_path).state == "none"

    # A record left by a process that is gone (kill -9 leaves the file): "gone", at once.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "trainer.lock").write_text(json.dumps(
        {"pid": dead.pid, "host": os.uname().nodename, "started": time.time(), "heartbeat": time.time()}))
    holder = who_trains(tmp_path)
    assert holder.state == "gone" and not holder.following
    assert "stopped without closing" in holder.describe()


# -- the app following a real trainer process ------------------------------------------------


def _start_trainer(tmp_path: Path, corpus: Path, run: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
         "--steps", "100000", *tiny_sets(), "--set", "train.checkpoint_every=15", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
    )


def _wait_for_trainer(qtbot, run: Path, proc: subprocess.Popen) -> None:
    def training():
        assert proc.poll() is None, proc.stderr.read()
        return who_trains(run).state == "training" and (run / "metrics.csv").is_file()

    qtbot.waitUntil(training, timeout=WAIT_MS)


@pytest.fixture
def trainer_process(tmp_path):
    procs = []

    def start(run: Path, corpus: Path, *extra: str) -> subprocess.Popen:
        proc = _start_trainer(tmp_path, corpus, run, *extra)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from vqstudio.app.window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, player=None)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _control_events(win, kind: str | None = None) -> list[dict]:
    return [e for e in win.store.events if e.get("control") and (kind is None or e.get("kind") == kind)]


def test_app_follows_steers_listens_and_notices_the_trainer_dying(qtbot, window, tmp_path, trainer_process):
    corpus = write_corpus(tmp_path / "corpus", files=2)
    run = tmp_path / "run"
    proc = trainer_process(run, corpus)
    _wait_for_trainer(qtbot, run, proc)

    open_and_wait(qtbot, window, run)
    assert window.follower.active and window.worker.follow_sink is not None
    assert not window.start_action.isEnabled()
    assert f"pid {proc.pid}" in window.follower.label.text()
    assert window.status_labels["state"].text() == "following"
    window.redraw()
    assert window.status_labels["device"].text() == "cpu"  # from the trainer's start event
    start = window.store.current_step
    qtbot.waitUntil(lambda: window.store.current_step >= start + 5, timeout=WAIT_MS)  # curves grow
    steps = window.store.steps.view()
    assert np.all(np.diff(steps) > 0) and len(window.store.curves["total"]) == len(steps)
    # Speed from the rows' own clock, as the status bar shows it.
    qtbot.waitUntil(lambda: np.isfinite(window.store.steps_per_second), timeout=WAIT_MS)
    window.redraw()
    assert window.status_labels["speed"].text().endswith(" steps/s") and "–" not in window.status_labels["speed"].text()
    assert window.store.steps_per_second > 0 and window.store.audio_seconds_per_second > 0

    # A checkpoint of the trainer's is heard here: the probe clip through it drives the
    # Spectrograms panel, its codebook figures the Codebooks panel, and the audition's probe clip.
    qtbot.waitUntil(lambda: window.store.probe.get("reconstruction") is not None, timeout=WAIT_MS)
    probe, step = window.store.probe, window.follower.probe_step
    assert step >= 15 and probe["step"] == step and probe["original"].shape == probe["reconstruction"].shape
    assert Path(probe["file"]).parent == corpus
    levels = int(window.store.info["rvq_levels"])
    assert window.store.usage.shape[0] == levels and window.store.codebook_steps.view()[-1] == step
    assert window.store.entropy.view().shape[-1] == levels
    qtbot.waitUntil(lambda: window.panels["spectrograms"].probe_step is not None, timeout=WAIT_MS)
    assert window.panels["spectrograms"].probe_step >= step
    audition = window.panels["audition"]
    qtbot.waitUntil(lambda: audition.clip is not None and audition.clip.reconstruction is not None,
                    timeout=WAIT_MS)
    assert audition.clip.is_probe and audition.clip.about.startswith("step ")

    window.start_training()  # refused with the way to a variant, nothing started
    assert not window.worker.is_running and "fork it" in window.notice_label.text()

    # Steering: the weights panel's change goes to control.jsonl; the trainer applies it and
    # the event, with its step and control id, comes back into the store.
    weights = window.panels["weights"]
    weights.set_weight("mrstft", 2.5)
    weights.flush()
    qtbot.waitUntil(lambda: bool(_control_events(window, "weights")), timeout=WAIT_MS)
    event = _control_events(window, "weights")[0]
    assert event["changes"]["mrstft"][1] == 2.5 and event["step"] >= start
    qtbot.waitUntil(lambda: "applied" in weights.rows["mrstft"].status.text(), timeout=WAIT_MS)
    line = json.loads((run / "control.jsonl").read_text().splitlines()[0])
    assert line["setting"] == "mrstft" and line["value"] == 2.5 and line["id"] == event["control"]

    # The Save checkpoint action asks the trainer through the control file too.
    assert window.save_action.isEnabled()
    window.save_checkpoint()
    qtbot.waitUntil(lambda: bool(_control_events(window, "checkpoint")), timeout=WAIT_MS)
    saved = _control_events(window, "checkpoint")[0]
    assert (run / "checkpoints" / saved["file"]).is_file()

    # Listening: a file clip reconstructed here from the trainer's newest checkpoint.
    qtbot.waitUntil(lambda: (run / "checkpoints" / "latest.json").is_file(), timeout=WAIT_MS)
    results = []
    window.worker.result.connect(results.append)
    assert audition.set_clip_from_file(str(next(corpus.glob("*.wav"))))
    qtbot.waitUntil(lambda: any(r.get("kind") == "reconstruction" for r in results), timeout=WAIT_MS)
    answer = [r for r in results if r.get("kind") == "reconstruction"][-1]
    assert "error" not in answer, answer.get("error")
    assert answer["audio"].size > 0 and answer["step"] >= saved["step"]  # the newest checkpoint
    # (a newer checkpoint meanwhile asks again: the panel takes the answer to its latest request)
    qtbot.waitUntil(lambda: audition.clip.reconstruction is not None, timeout=WAIT_MS)
    assert audition.clip.reconstruction.shape == audition.clip.original.shape

    # The trainer dies (kill -9: its lock file stays behind): the app says so and keeps it all.
    rows_before = len(window.store.steps)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    qtbot.waitUntil(lambda: not window.follower.active, timeout=WAIT_MS)
    assert "stopped without closing" in window.notice_label.text()
    assert len(window.store.steps) >= rows_before
    assert window.worker.follow_sink is None and window.start_action.isEnabled()
    assert window.start_action.text() == "Resume"


def test_two_apps_follow_one_run_and_a_row_cut_by_the_dying_trainer_is_left_out(qtbot, tmp_path, trainer_process):
    from PySide6.QtCore import QSettings

    from vqstudio.app.window import MainWindow

    corpus = write_corpus(tmp_path / "corpus", files=2)
    run = tmp_path / "run"
    proc = trainer_process(run, corpus)
    _wait_for_trainer(qtbot, run, proc)
    windows = []
    for name in ("a", "b"):
        win = MainWindow(QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat), player=None)
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
    a, b = windows
    try:
        open_and_wait(qtbot, a, run)
        open_and_wait(qtbot, b, run)
        assert a.follower.active and b.follower.active  # reading takes no lock: both follow
        a.worker.set_setting("lr", 4e-4)  # as the weights panel's learning-rate box does
        for win in windows:  # the change one app asked for is confirmed in both
            qtbot.waitUntil(lambda w=win: any(e.get("kind") == "lr" and e.get("control")
                                              for e in w.store.events), timeout=WAIT_MS)
        rows = [len(w.store.steps) for w in windows]

        # The trainer freezes mid-row and dies: the half row must not be drawn as a row.
        proc.send_signal(signal.SIGSTOP)
        with (run / "metrics.csv").open("a") as handle:
            handle.write("99999,0.125,")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for win in windows:
            qtbot.waitUntil(lambda w=win: not w.follower.active, timeout=WAIT_MS)
            text = win.notice_label.text()
            assert "stopped without closing" in text and "cut mid-row" in text, text
            assert 99999 not in win.store.steps.view()
        assert [len(w.store.steps) for w in windows] >= rows
        assert (run / "config.toml").is_file() and (run / "checkpoints").is_dir()  # nothing removed
    finally:
        for win in windows:
            win.close()


def _append_rows(run: Path, steps: range) -> int:
    """Rows as write_run writes them, appended to metrics.csv; returns their bytes."""
    text = "".join(f"{s},{1.7e9 + s * 0.5:.7g},{s * 0.25 + 10:.7g},0.001,0.3,0.1,0.1,0.1\n" for s in steps)
    _write(run / "metrics.csv", text)
    return len(text)


def test_a_followed_100k_row_run_a_new_trainer_resumes_is_read_again_in_the_background(qtbot, window, tmp_path):
    run = write_run(tmp_path / "big", 100_000)
    lock = RunLock.acquire(run)  # this process trains it, as far as the app can tell
    try:
        open_and_wait(qtbot, window, run)
        assert window.follower.active
        qtbot.waitUntil(lambda: window.follower.tail is not None, timeout=WAIT_MS)
        first = window.follower.tail
        _append_rows(run, range(100_001, 100_004))
        qtbot.waitUntil(lambda: window.store.current_step == 100_003, timeout=WAIT_MS)
        assert first.bytes_read < 200  # the three rows: the 100k read in the background are not read again

        # The trainer stops; a new one takes the lock and resumes from step 90000, which
        # rewrites metrics.csv and events.jsonl (RunFolder.set_aside_after, as a resume does).
        lock.release()
        RunFolder(run).set_aside_after(90_000)
        lock = RunLock.acquire(run)
        ticks = []
        timer = QTimer(interval=10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start()
        qtbot.waitUntil(lambda: window.follower.tail not in (None, first), timeout=WAIT_MS)
        timer.stop()
        assert len(ticks) >= 10  # the event loop went on while the rewritten run was read again
        assert window.follower.active and window.store.current_step == 90_000
        assert len(window.store.steps) == 90_000
        tail = window.follower.tail
        appended = _append_rows(run, range(90_001, 90_006))
        qtbot.waitUntil(lambda: window.store.current_step == 90_005, timeout=WAIT_MS)
        assert window.store.steps.view()[-6:].tolist() == list(range(90_000, 90_006))
        assert tail.bytes_read == appended  # the GUI thread's polls read the new rows only
    finally:
        lock.release()
