"""The audition panel with the real parts: a RunStore fed through its own slots, a real ABPlayer on
the paced null ALSA device (set up by conftest), the real TrainingWorker on a tiny corpus, and the
no-device case in a subprocess whose PortAudio starts under its own HOME."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from alsa_null import run_python, write_asoundrc
from vqstudio.app.panels.audition import AuditionPanel
from vqstudio.app.panels.audition_clip import MAX_CLIP_S
from vqstudio.app.player import ABPlayer
from vqstudio.app.store import RunStore
from vqstudio.audio.io import write_audio

SR = 24000


def _tone(seconds: float, rate: int = SR, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _probe(step: int, original: np.ndarray, scale: float) -> dict:
    return {"step": step, "sample_rate": SR, "original": original,
            "reconstruction": (original * scale).astype(np.float32)}


@pytest.fixture
def player():
    player = ABPlayer()
    assert player.available, player.unavailable_reason
    yield player
    player.close()


@pytest.fixture
def store():
    store = RunStore()
    store.on_started({"sample_rate": SR, "rvq_levels": 4, "run_dir": None, "step": 0,
                      "corpus_files": []})
    return store


def _pump(qtbot, panel: AuditionPanel, ms: int) -> list[float]:
    """Let ``ms`` pass the way the window's 30 Hz timer would; returns the playheads seen."""
    heads = []
    for _ in range(max(1, ms // 33)):
        qtbot.wait(33)
        panel.refresh()
        heads.append(panel.player.playhead)
    return heads


def _focused_panel(qtbot, store, player) -> tuple[AuditionPanel, QMainWindow, list[int]]:
    """The panel inside a main window that binds Space to "start training", as the app does."""
    window = QMainWindow()
    qtbot.addWidget(window)
    panel = AuditionPanel(store, None, player)
    window.setCentralWidget(panel)
    trained = []
    action = QAction("Start/Pause training", window)
    action.setShortcut(QKeySequence(Qt.Key.Key_Space))
    action.triggered.connect(lambda: trained.append(1))
    window.addAction(action)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus, timeout=2000)
    return panel, window, trained


def test_keys_switch_sources_while_the_playhead_keeps_advancing(qtbot, store, player):
    store.on_probe(_probe(100, _tone(4.0), 0.5))
    panel, window, trained = _focused_panel(qtbot, store, player)
    assert panel.clip is not None and panel.clip.is_probe

    qtbot.keyClick(panel, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: player.is_playing, timeout=2000)
    assert not trained, "Space in the focused panel plays; it must not also start training"
    heads = _pump(qtbot, panel, 150)

    for key, expected in [(Qt.Key.Key_B, "reconstruction"), (Qt.Key.Key_R, "residual"),
                          (Qt.Key.Key_A, "original"), (Qt.Key.Key_Tab, "residual"),
                          (Qt.Key.Key_Tab, "original")]:
        qtbot.keyClick(panel, key)
        assert panel.selected == expected and player.selected == expected
        assert panel.source_buttons[expected].isChecked()
        heads += _pump(qtbot, panel, 100)
    assert player.is_playing
    assert heads == sorted(heads), f"a switch moved the playhead back: {heads}"
    assert heads[-1] > heads[0] + 0.2, f"the playhead must keep advancing: {heads}"
    assert panel.waveform.playhead.value() == pytest.approx(player.playhead, abs=0.1)
    assert panel.hasFocus(), "Tab must switch sources, not move the focus away"

    qtbot.keyClick(panel, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: not player.is_playing, timeout=2000)
    panel.refresh()
    assert panel.play_button.text().endswith("Play")
    assert not trained

    panel.clearFocus()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert trained, "outside the panel, Space is the window's again"
    assert not player.is_playing


def test_a_new_probe_reconstruction_swaps_in_at_the_same_playhead(qtbot, store, player):
    original = _tone(4.0)
    store.on_probe(_probe(100, original, 0.8))
    panel = AuditionPanel(store, None, player)
    qtbot.addWidget(panel)
    panel.match_box.setChecked(True)  # the gains show which reconstruction the player holds
    panel.select_source("reconstruction")
    panel.toggle_playback()
    qtbot.waitUntil(lambda: player.is_playing, timeout=2000)
    _pump(qtbot, panel, 300)
    assert player.gains["reconstruction"] == pytest.approx(1 / 0.8, rel=1e-3)
    before = player.playhead

    store.on_probe(_probe(200, original, 0.4))  # training moved on: same segment, new sound
    panel.refresh()
    assert panel.clip.reconstruction == pytest.approx(original * 0.4)
    assert "step 200" in panel.status.text()
    qtbot.waitUntil(lambda: player.gains["reconstruction"] == pytest.approx(2.5, rel=1e-3),
                    timeout=2000)
    after = _pump(qtbot, panel, 200)
    assert player.is_playing and player.selected == "reconstruction"
    assert min(after) >= before, f"the swap restarted playback: {before} -> {after}"
    assert after[-1] > before


def test_a_loop_region_on_the_waveform_reaches_the_player(qtbot, store, player):
    store.on_probe(_probe(100, _tone(4.0), 0.5))
    panel = AuditionPanel(store, None, player)
    qtbot.addWidget(panel)
    panel.toggle_playback()
    panel.loop_box.setChecked(True)
    assert panel.waveform.region.isVisible()
    with qtbot.waitSignal(panel.loop_changed) as mirrored:  # for the spectrogram panel
        panel.waveform.region.setRegion((0.5, 1.25))  # what dragging its edges ends with
    assert mirrored.args == pytest.approx([0.5, 1.25])
    qtbot.waitUntil(lambda: player.loop is not None and player.loop[0] == pytest.approx(0.5),
                    timeout=2000)
    assert player.loop == pytest.approx((0.5, 1.25), abs=1e-3)

    panel.set_loop(3.0, 2.0)  # the spectrogram's region_selected, in either order
    qtbot.waitUntil(lambda: player.loop == pytest.approx((2.0, 3.0), abs=1e-3), timeout=2000)
    assert panel.loop_box.isChecked()
    assert panel.waveform.region.getRegion() == pytest.approx((2.0, 3.0))

    panel.clear_loop()
    qtbot.waitUntil(lambda: player.loop is None, timeout=2000)
    assert not panel.waveform.region.isVisible()


def test_bad_files_give_a_notice_and_a_good_one_is_read_at_the_model_rate(
    qtbot, store, player, tmp_path
):
    store.on_probe(_probe(100, _tone(2.0), 0.5))
    panel = AuditionPanel(store, None, player)
    qtbot.addWidget(panel)
    probe_clip = panel.clip

    fake = tmp_path / "notes.wav"
    fake.write_text("these are not samples\n" * 50)
    assert not panel.set_clip_from_file(fake)
    assert panel.notice.isVisibleTo(panel) and "notes.wav" in panel.notice.text()
    assert "—" in panel.notice.text(), "the notice says how to fix it"
    assert panel.clip is probe_clip and panel.clip_box.currentData() == "probe"
    assert not panel.set_clip_from_file(tmp_path / "missing.flac")
    assert "missing.flac" in panel.notice.text() and "does not exist" in panel.notice.text()

    long = tmp_path / "long take.wav"
    write_audio(long, _tone(MAX_CLIP_S + 5, rate=16000), 16000)
    assert panel.set_clip_from_file(long)
    assert panel.clip.rate == SR and panel.clip.original.shape[0] == int(MAX_CLIP_S * SR)
    assert "first 20 s" in panel.notice.text()
    assert panel.clip_box.currentText() == "long take.wav"
    with qtbot.waitSignal(panel.playhead_changed) as playhead:
        panel.refresh()
    assert playhead.args == [-1.0], "the spectrograms show the probe: hide their playhead"
    assert "start or open a run" in panel.status.text(), "no worker: says why there is no B"
    qtbot.waitUntil(lambda: player.duration == pytest.approx(MAX_CLIP_S, abs=0.01), timeout=2000)


_NO_DEVICE_SCRIPT = r"""
import json, sys
import numpy as np
from PySide6.QtWidgets import QApplication
from vqstudio.app.panels.audition import AuditionPanel
from vqstudio.app.player import ABPlayer
from vqstudio.app.store import RunStore
from vqstudio.audio.io import write_audio

app = QApplication([])
store = RunStore()
store.on_started({"sample_rate": 24000, "rvq_levels": 4, "run_dir": None, "step": 0})
t = np.arange(48000) / 24000
wave = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
store.on_probe({"step": 5, "sample_rate": 24000, "original": wave, "reconstruction": wave * 0.5})
player = ABPlayer()
panel = AuditionPanel(store, None, player)
panel.show()
panel.refresh()
panel.toggle_playback(); panel.select_source("residual"); panel.set_loop(0.2, 0.6)
write_audio(sys.argv[1], wave, 24000)
loaded = panel.set_clip_from_file(sys.argv[1])
panel.refresh()
print(json.dumps({
    "available": player.available, "reason": player.unavailable_reason,
    "play": panel.play_button.isEnabled(), "loop": panel.loop_box.isEnabled(),
    "match": panel.match_box.isEnabled(),
    "notice": panel.device_notice.text(), "notice_shown": panel.device_notice.isVisible(),
    "selected": panel.selected, "loaded": loaded, "clip": panel.clip.name,
    "samples": int(panel.clip.original.shape[0]),
}))
player.close()
"""


@pytest.mark.parametrize("case", ["no-device", "no-portaudio"])
def test_without_a_device_the_transport_is_disabled_with_the_reason(tmp_path, case):
    write_asoundrc(tmp_path, "missing" if case == "no-device" else "paced")
    extra = {"QT_QPA_PLATFORM": "offscreen"}
    if case == "no-portaudio":
        extra["VQSTUDIO_NO_PORTAUDIO"] = "1"
    code = _NO_DEVICE_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path / "clip.wav")))
    completed = run_python(code, tmp_path, **extra)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if result["available"]:
        pytest.skip("this machine has sound hardware, which an ALSA configuration cannot hide")
    assert not (result["play"] or result["loop"] or result["match"])
    assert result["notice_shown"] and result["reason"] in result["notice"]
    fix = "ALSA/PulseAudio" if case == "no-device" else "install it with"
    assert fix in result["notice"], result["notice"]
    # Everything that needs no sound still works.
    assert result["selected"] == "residual" and result["loaded"] and result["clip"] == "clip.wav"
    assert result["samples"] == 48000


def test_levels_ask_the_real_worker_for_a_reconstruction(qtbot, player, tmp_path):
    from vqstudio.app.worker import TrainingWorker
    from vqstudio.config import load_preset

    corpus = tmp_path / "corpus"
    for i, freq in enumerate((180.0, 330.0, 500.0)):
        write_audio(corpus / f"tone-{i}.wav", _tone(2.0, freq=freq), SR)
    config = load_preset("tiny-cpu", [f"data.path={corpus}", "train.validate_every=0",
                                      "train.checkpoint_every=0", "train.cpu_threads=1"])
    store, worker = RunStore(), TrainingWorker(probe_seconds=1.0)
    store.attach(worker)
    panel = AuditionPanel(store, worker, player)
    qtbot.addWidget(panel)
    try:
        with qtbot.waitSignal(worker.probe, timeout=60000):
            worker.start(config, None)  # the first step sends a probe
        worker.pause()  # reconstructions are served while paused
        qtbot.waitUntil(lambda: bool(store.probe), timeout=5000)
        panel.refresh()
        assert panel.clip is not None and panel.clip.is_probe
        assert panel.clip.reconstruction is not None
        assert panel.levels_box.isEnabled() and panel.levels_box.maximum() == 4

        with qtbot.waitSignal(worker.result, timeout=30000) as answer:
            panel.set_levels(2)
        assert answer.args[0]["kind"] == "reconstruction" and answer.args[0]["levels"] == 2
        assert answer.args[0]["tag"] == "audition"
        qtbot.waitUntil(lambda: "2 of 4 levels" in panel.status.text(), timeout=5000)
        assert panel.clip.reconstruction.shape == panel.clip.original.shape

        results = []
        worker.result.connect(results.append)
        clip_file = tmp_path / "dropped.wav"
        write_audio(clip_file, _tone(1.5, rate=16000, freq=260.0), 16000)
        panel.set_levels(3)  # an answer for the probe is on its way when ...
        assert panel.set_clip_from_file(clip_file)  # ... another clip is chosen
        dropped = (int(1.5 * SR),)
        qtbot.waitUntil(lambda: any(getattr(r.get("audio"), "shape", None) == dropped for r in results)
                        and panel.clip.reconstruction is not None, timeout=30000)
        # The probe's request was answered (and dropped by the panel), or, still waiting behind
        # a level count decoded ahead when the new one came, replaced by it unanswered.
        assert [r["levels"] for r in results] in ([3], [3, 3])
        answer = results[-1]
        if len(results) == 2:
            assert results[0]["audio"].shape != answer["audio"].shape
        assert panel.clip.name == "dropped.wav" and "3 of 4 levels" in panel.status.text()
        np.testing.assert_array_equal(panel.clip.reconstruction, answer["audio"])
        assert panel.clip.reconstruction.shape == dropped
    finally:
        assert worker.stop(save=False)


# -- two checkpoints, a denoised source and a blind test ------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run with checkpoints at steps 4 and 8 (real `vqstudio train`), and its clips."""
    from helpers import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture
def panel_on_run(qtbot, player, trained_run):
    """An audition panel on the trained run (no training worker), a corpus clip chosen; its
    checkpoint inference thread is ended afterwards."""
    run, corpus = trained_run
    store = RunStore()
    store.on_started({"sample_rate": SR, "rvq_levels": 2, "run_dir": str(run), "step": 8,
                      "corpus_files": [], "data": str(corpus)})
    panel = AuditionPanel(store, None, player)
    qtbot.addWidget(panel)
    assert panel.set_clip_from_file(next(iter(sorted(corpus.iterdir()))))
    yield panel
    panel.close_sources()


def _wait_for_sources(qtbot, panel, *names, timeout=60000):
    qtbot.waitUntil(lambda: all(panel.clip.sources.get(n) is not None for n in names)
                    and all(n in panel.player.sources for n in names), timeout=timeout)


def test_two_checkpoints_are_heard_at_one_playhead_and_switching_is_seamless(qtbot, player, trained_run, panel_on_run):
    import os
    from pathlib import Path

    from alsa_null import dropouts
    from vqstudio.app.panels.audition_readouts import FIRST, SECOND

    run, corpus = trained_run
    panel = panel_on_run
    assert not panel.source_buttons[FIRST].isEnabled(), "1 is off until a checkpoint is chosen"
    least = panel.minimumSizeHint().width()
    panel.extra.choosers[FIRST].choose(run, "4")
    panel.extra.choosers[SECOND].choose(run, "latest")
    _wait_for_sources(qtbot, panel, FIRST, SECOND)
    first, second = panel.clip.sources[FIRST], panel.clip.sources[SECOND]
    assert first.shape == second.shape == panel.clip.original.shape
    assert not np.allclose(first, second), "steps 4 and 8 are different models"
    assert panel.extra.about[FIRST]["step"] == 4 and panel.extra.about[SECOND]["step"] == 8
    assert "r:4" in panel.source_buttons[FIRST].label
    assert panel.minimumSizeHint().width() == least  # a longer label does not widen the panel
    assert panel.extra.worker.served == 2
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        # The inference thread pinned itself to one core; this (the GUI) thread keeps them all.
        assert panel.extra.worker.pinned_cpu == max(os.sched_getaffinity(0))

    panel.model_changed()  # a checkpoint saved: 2 ("latest") asks again, the cache answers
    qtbot.waitUntil(lambda: panel.extra.about[SECOND].get("cached", False), timeout=30000)
    assert panel.extra.worker.served == 3 and panel.extra.about[SECOND]["step"] == 8

    panel.setFocus()
    panel.match_box.setChecked(True)
    panel.toggle_playback()
    qtbot.waitUntil(lambda: player.is_playing, timeout=2000)
    heads = _pump(qtbot, panel, 200)
    since = __import__("time").monotonic()
    underflows, errors = player.underflows, player.callback_errors
    for key, expected in [(Qt.Key.Key_1, FIRST), (Qt.Key.Key_2, SECOND), (Qt.Key.Key_A, "original"),
                          (Qt.Key.Key_Tab, SECOND), (Qt.Key.Key_1, FIRST), (Qt.Key.Key_2, SECOND)]:
        qtbot.keyClick(panel, key)
        assert player.selected == expected and panel.source_buttons[expected].isChecked()
        heads += _pump(qtbot, panel, 120)
    until = __import__("time").monotonic()
    assert heads == sorted(heads) and heads[-1] > heads[0] + 0.4, heads
    assert set(player.gains) >= {FIRST, SECOND}, "both checkpoints are loudness-matched"
    # The player's own counters: no underflow, no error, no late callback while switching;
    # and the paced device heard no gap.
    assert player.underflows == underflows and player.callback_errors == errors
    assert player.longest_callback_gap_s < 0.1, player.longest_callback_gap_s
    assert dropouts(Path(os.environ["HOME"]), since, until) == []

    # Back to a checkpoint and clip heard before: the worker's cache answers.
    panel.extra.choosers[FIRST].choose(run, "8")
    qtbot.waitUntil(lambda: panel.extra.about.get(FIRST, {}).get("step") == 8, timeout=30000)
    assert panel.extra.about[FIRST].get("cached"), "run:8 on this clip was reconstructed already"
    np.testing.assert_array_equal(panel.clip.sources[FIRST], second)
    panel.extra.choosers[SECOND].clear()
    qtbot.waitUntil(lambda: SECOND not in player.sources, timeout=2000)
    assert not panel.source_buttons[SECOND].isEnabled()


def test_a_checkpoint_source_decodes_the_other_level_counts_ahead_to_the_bit(trained_run):
    import threading
    import time

    from vqstudio.app.checkpoint_worker import CheckpointWorker
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.corpus_eval import load_model
    from vqstudio.model.inference import reconstruct

    run, _corpus = trained_run
    answers: dict[int, dict] = {}
    arrived = threading.Condition()

    def deliver(answer):
        with arrived:
            answers[answer["id"]] = answer
            arrived.notify_all()

    def ask(source, ref, wave, levels):
        ident = worker.reconstruct(source, ref, wave, SR, f"clip-{wave.size}", levels)
        with arrived:
            assert arrived.wait_for(lambda: ident in answers, 60)
        assert not answers[ident].get("error"), answers[ident]
        return answers[ident]

    def settled():
        end = time.monotonic() + 60
        while worker.ahead_pending():
            assert time.monotonic() < end
            time.sleep(0.01)

    worker = CheckpointWorker(deliver, pin=False)
    wave = _tone(1.3, freq=310.0)
    try:
        first = ask("1", f"{run}:8", wave, None)
        assert not first.get("ahead")
        ask("2", f"{run}:4", wave, 1)  # the other source keeps its own clip and checkpoint
        settled()
        one = ask("1", f"{run}:8", wave, 1)  # decoded ahead while nothing waited
        full = ask("2", f"{run}:4", wave, None)
        assert one.get("ahead") and full.get("ahead") and not one.get("cached")
        for ref, levels, answer in ((f"{run}:8", 1, one), (f"{run}:4", None, full),
                                    (f"{run}:8", None, first)):
            model, _step = load_model(resolve_ref(ref))
            np.testing.assert_array_equal(answer["audio"], reconstruct(model, wave, levels))
    finally:
        worker.close()
    assert not [t.name for t in threading.enumerate() if "levels-ahead" in t.name]


def test_the_denoised_source_follows_its_base_and_its_strength(qtbot, player, trained_run, panel_on_run):
    from vqstudio.app.panels.audition_readouts import DENOISED, FIRST

    run, corpus = trained_run
    panel = panel_on_run
    panel.extra.choosers[FIRST].choose(run, "latest")
    panel.extra.denoise_base.setCurrentIndex(panel.extra.denoise_base.findData(FIRST))
    panel.extra.denoise_base.activated.emit(panel.extra.denoise_base.currentIndex())
    _wait_for_sources(qtbot, panel, FIRST, DENOISED)
    assert panel.source_buttons[DENOISED].isEnabled()
    strong = panel.clip.sources[DENOISED]
    assert not np.allclose(strong, panel.clip.sources[FIRST])
    assert np.sqrt(np.mean(strong ** 2)) < np.sqrt(np.mean(panel.clip.sources[FIRST] ** 2))

    panel.extra.strength.setValue(0)  # strength 0: D is 1 unchanged
    qtbot.waitUntil(lambda: panel.extra.about[DENOISED]["strength"] == 0.0, timeout=30000)
    np.testing.assert_allclose(panel.clip.sources[DENOISED], panel.clip.sources[FIRST], atol=1e-6)
    contender = panel.extra.contender(DENOISED)
    assert contender.variant == "denoised 0" and contender.step == 8


def test_an_abx_test_between_two_checkpoints_is_scored_and_saved(qtbot, player, trained_run, panel_on_run):
    from vqstudio.app.panels.audition_readouts import FIRST, SECOND
    from vqstudio.experiments.listening import read_listening

    run, corpus = trained_run
    panel = panel_on_run
    assert panel.extra.open_blind_test("abx") is None
    assert "needs two sources" in panel.notice.text()
    panel.extra.choosers[FIRST].choose(run, "4")
    panel.extra.choosers[SECOND].choose(run, "8")
    _wait_for_sources(qtbot, panel, FIRST, SECOND)
    panel.select_source(FIRST)
    before = len(read_listening(run))
    dialog = panel.extra.open_blind_test("abx", seed=7)
    qtbot.addWidget(dialog)
    dialog.trials.setValue(6)
    dialog.start()
    test = dialog.test
    qtbot.waitUntil(lambda: {"blind-A", "blind-B"} <= set(player.sources), timeout=2000)
    assert player.loudness_match
    assert panel.selected == FIRST, "the transport does not show what the test plays"
    dialog.play("X")
    assert player.selected == f"blind-{test.hidden[0]}"
    for i in range(6):  # right five times, wrong once
        x = test.hidden[i]
        dialog.answer(x if i else ("B" if x == "A" else "A"))
    assert test.done and test.correct == 5
    assert "5 of 6 right" in dialog.result.text() and "listening.jsonl" in dialog.result.text()
    records = read_listening(run)
    assert len(records) == before + 1
    saved = records[-1]
    assert saved["kind"] == "abx" and saved["correct"] == 5 and saved["answered"] == 6
    assert saved["a"]["step"] == 4 and saved["b"]["step"] == 8
    assert saved["clip"] == panel.clip.name
    assert player.selected == FIRST and not player.loudness_match, "the player is given back"
    qtbot.waitUntil(lambda: "blind-A" not in player.sources, timeout=2000)


def test_a_blind_preference_between_a_checkpoint_and_its_denoised_self(qtbot, player, trained_run,
                                                                         panel_on_run):
    from vqstudio.app.panels.audition_readouts import DENOISED, FIRST
    from vqstudio.experiments.listening import read_listening

    run, _ = trained_run
    panel = panel_on_run
    panel.extra.choosers[FIRST].choose(run, "8")
    panel.extra.denoise_base.setCurrentIndex(panel.extra.denoise_base.findData(FIRST))
    panel.extra.denoise_base.activated.emit(panel.extra.denoise_base.currentIndex())
    _wait_for_sources(qtbot, panel, FIRST, DENOISED)
    player.set_loop(0.2, 0.7)
    qtbot.waitUntil(lambda: player.loop is not None, timeout=2000)
    dialog = panel.extra.open_blind_test("preference", seed=2)
    qtbot.addWidget(dialog)
    assert [dialog.first.itemData(i) for i in range(dialog.first.count())] == ["1", "D"]
    dialog.trials.setValue(4)
    dialog.start()
    test = dialog.test
    for _ in range(4):  # always the denoised one, wherever it is offered
        dialog.play("1")
        slot = "1" if test.source("1") == "B" else "2"
        assert player.selected == f"blind-{test.source('1')}"
        dialog.answer(slot)
    assert test.done and test.prefer_a == 0
    saved = read_listening(run)[-1]
    assert saved["kind"] == "preference" and saved["prefer_b"] == 4
    assert saved["b"]["variant"].startswith("denoised") and saved["a"]["variant"] == ""
    assert saved["region"] == pytest.approx([0.2, 0.7], abs=1e-3)
    assert "preferred 0 of 4" in dialog.result.text()


def test_a_corrupt_checkpoint_is_a_notice_and_the_other_source_still_plays(
    qtbot, player, trained_run, panel_on_run, tmp_path
):
    import shutil

    from vqstudio.app.panels.audition_readouts import FIRST, SECOND

    run, _ = trained_run
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "checkpoints" / "step-00000004.pt").write_bytes(b"not a checkpoint" * 100)
    panel = panel_on_run
    panel.extra.choosers[FIRST].choose(broken, "4")
    panel.extra.choosers[SECOND].choose(run, "4")
    _wait_for_sources(qtbot, panel, SECOND)
    qtbot.waitUntil(lambda: panel.notice.isVisibleTo(panel) and "1:" in panel.notice.text(),
                    timeout=30000)
    assert "step-00000004.pt" in panel.notice.text() and "—" in panel.notice.text(), panel.notice.text()
    assert panel.clip.sources.get(FIRST) is None and FIRST not in player.sources
    assert (run / "checkpoints" / "step-00000004.pt").stat().st_size > 1000, "the good run is untouched"
