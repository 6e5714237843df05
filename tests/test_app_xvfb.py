"""The app as a user runs it: a real X window (Xvfb), a real audio stream (the paced null ALSA
device) or none at all, the scripted command line ``vqstudio app --autostart --screenshot PNG
--quit-after S``. A driver in the same process moves a weight slider and A/B-switches with
QTest while the model trains, then reports what the window saw."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import pytest

from alsa_null import alsa_env, write_asoundrc
from helpers import tiny_sets, write_corpus

pytestmark = [pytest.mark.gui, pytest.mark.slow]

# The driver closes the window once it has seen what it came for; --quit-after is only the safety
# net for a run that never gets there (a loaded machine takes a while to the first probe).
QUIT_AFTER_S = 150
SWITCHES = 4  # A/B switches 250 ms apart: a second of playback

# Runs in the child: schedules the user's actions, then hands over to the real command line.
DRIVER = r"""
import json, sys
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QSlider

app = QApplication(sys.argv[:1])
report = {"switches": 0}

def window():
    from vqstudio.app.window import MainWindow
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    return found[0] if found else None

def act():
    w = window()
    if w is None or w.store.current_step < 2 or not w.store.probe:
        QTimer.singleShot(100, act)
        return
    report["platform"] = QApplication.platformName()
    report.update(icon_sizes=[s.width() for s in QApplication.windowIcon().availableSizes()],
                  title=w.windowTitle(), desktop_file=QApplication.desktopFileName(),
                  menus=[a.text() for a in w.menuBar().actions()])
    sliders = [s for s in w.panels["weights"].findChildren(QSlider) if s.isEnabled()]
    report["sliders"] = len(sliders)
    if sliders:
        report["slider_before"] = sliders[0].value()
        sliders[0].setFocus()
        QTest.keyClick(sliders[0], Qt.Key.Key_PageUp)
        report["slider_after"] = sliders[0].value()
    audition = w.panels["audition"]
    report["play_enabled"] = audition.play_button.isEnabled()
    QTest.mouseClick(audition.play_button, Qt.MouseButton.LeftButton)
    switch()

def switch():
    w = window()
    audition = w.panels["audition"]
    name = "reconstruction" if report["switches"] % 2 == 0 else "original"
    QTest.mouseClick(audition.source_buttons[name], Qt.MouseButton.LeftButton)
    report["switches"] += 1
    p = w.player  # read while the window is open: closing it closes the player
    report["player_available"] = bool(p is not None and p.available)
    if p is not None:
        report.update(callbacks=p.callbacks, frames_played=p.frames_played,
                      callback_errors=p.callback_errors, underflows=p.underflows,
                      reason=p.unavailable_reason)
    confirmed = any(e["kind"] == "weights" for e in w.store.events)
    if report["switches"] >= %d and confirmed:
        w.close()  # as the user would; the app then saves the screenshot and a checkpoint
    else:
        QTimer.singleShot(250, switch)

def collect():
    w = window()
    report["weights_events"] = [e for e in w.store.events if e["kind"] == "weights"]
    report["confirmed_weights"] = w.store.weights
    report["step"] = w.store.current_step
    report["notice"] = w.notice_label.text()
    report["audition_text"] = " | ".join(
        l.text() for l in w.panels["audition"].findChildren(QLabel) if l.text())
    print("REPORT " + json.dumps(report, default=str), flush=True)

app.aboutToQuit.connect(collect)
QTimer.singleShot(0, act)
from vqstudio.cli import main
sys.exit(main(json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def display():
    """A private X server on a free display number (Xvfb picks it: -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        assert number.isdigit(), "Xvfb did not report a display number"
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def _run_app(tmp_path, display: str, audio: str):
    home = tmp_path / "home"
    write_asoundrc(home, audio)
    corpus = write_corpus(tmp_path / "data", files=3, seconds=1.0)
    shot = tmp_path / "out.png"
    args = ["app", "--data", str(corpus), "--autostart", "--screenshot", str(shot),
            "--quit-after", str(QUIT_AFTER_S), *tiny_sets(), "--set", "train.heavy_every=20"]
    env = alsa_env(home, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1")
    driver = DRIVER.replace("%d", str(SWITCHES))
    done = subprocess.run([sys.executable, "-c", driver, json.dumps(args)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=QUIT_AFTER_S + 90)
    lines = [l for l in done.stdout.splitlines() if l.startswith("REPORT ")]
    assert done.returncode == 0, done.stderr[-3000:]
    assert lines, f"the driver reported nothing:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    report = json.loads(lines[-1][len("REPORT "):])
    runs = list((home / ".local" / "share").rglob("config.toml"))
    return report, shot, runs, done


def _check_common(report, shot, runs, done):
    assert report["platform"] == "xcb"
    assert report["icon_sizes"], "the window has the application icon"
    assert report["title"].startswith("VQ Studio — ") and report["desktop_file"] == "vqstudio"
    assert [m.replace("&", "") for m in report["menus"]] == ["File", "Run", "View", "Help"]
    width, height = _png_size(shot)
    assert width >= 1000 and height >= 600, (width, height)
    # Trained, in the default run folder under the (temporary) per-user data folder, and
    # closed cleanly with a checkpoint.
    assert len(runs) == 1
    run = runs[0].parent
    assert (run / "checkpoints" / "latest.json").is_file()
    assert report["step"] >= 2
    # The slider moved and the trainer confirmed the change with the step it took effect at.
    assert report["sliders"] >= 1 and report["slider_after"] != report["slider_before"]
    changes = report["weights_events"]
    assert changes, f"no weight change came back: {report}"
    term, (old, new) = next(iter(changes[-1]["changes"].items()))
    assert new != old and report["confirmed_weights"][term] == pytest.approx(new)
    assert "Traceback" not in done.stderr


def test_app_trains_switches_ab_and_saves_a_screenshot(tmp_path, display):
    report, shot, runs, done = _run_app(tmp_path, display, "paced")
    _check_common(report, shot, runs, done)
    assert report["player_available"] and report["play_enabled"]
    assert report["switches"] >= SWITCHES
    assert report["frames_played"] > 0 and report["callback_errors"] == 0


def test_app_without_an_audio_device_disables_only_the_transport(tmp_path, display):
    report, shot, runs, done = _run_app(tmp_path, display, "missing")
    _check_common(report, shot, runs, done)
    assert not report["player_available"] and not report["play_enabled"]
    assert "No audio output device" in report["audition_text"]


# -- signals: stopped the ordinary ways, the app saves its work ----------------------------------


def _start_app(tmp_path, display, *extra):
    home = tmp_path / "home"
    write_asoundrc(home, "missing")  # no audio: these tests are about stopping
    env = alsa_env(home, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vqstudio", "app", *extra], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, proc, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the app exited while waiting for {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}: {proc.communicate()}")
        time.sleep(0.1)


def _events(run, kind):
    path = run / "events.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [e for e in (json.loads(line) for line in lines if line.strip()) if e["kind"] == kind]


def _logged_steps(run) -> int:
    path = run / "metrics.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


def test_sigusr1_saves_and_goes_on_and_sigterm_saves_at_the_step_reached_and_exits_0(tmp_path, display):
    from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint

    corpus = write_corpus(tmp_path / "data", files=3, seconds=1.0)
    run = tmp_path / "run"
    proc = _start_app(tmp_path, display, "--data", str(corpus), "--run", str(run), "--autostart",
                      *tiny_sets())
    _wait_for(lambda: _logged_steps(run) >= 3, proc, "three steps")
    proc.send_signal(signal.SIGUSR1)
    _wait_for(lambda: _events(run, "checkpoint"), proc, "the SIGUSR1 checkpoint")
    saved_at = _events(run, "checkpoint")[0]["step"]
    _wait_for(lambda: _logged_steps(run) >= saved_at + 3, proc, "training to go on after SIGUSR1")
    assert proc.poll() is None

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    checkpoints = _events(run, "checkpoint")
    assert len(checkpoints) == 2
    reached = _logged_steps(run)  # log_every=1: one row per step taken
    assert checkpoints[-1]["step"] == reached > saved_at
    latest = latest_checkpoint(run / "checkpoints")
    assert load_checkpoint(latest)["step"] == reached
    lines = [line for line in out.splitlines() if line.startswith("vqstudio app: SIGTERM")]
    assert len(lines) == 1 and f"stopped at step {reached}" in lines[0] and str(latest) in lines[0], out


def test_sigint_with_nothing_training_closes_and_says_so(tmp_path, display):
    proc = _start_app(tmp_path, display, "--data", str(write_corpus(tmp_path / "data", files=1)))
    log = tmp_path / "home" / ".local" / "share" / "vqstudio" / "vqstudio.log"
    _wait_for(lambda: log.is_file() and "stop signals handled" in log.read_text(), proc, "the window")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "vqstudio app: SIGINT: nothing was training; closed" in out, (out, err[-2000:])
