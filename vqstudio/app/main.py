"""Start the desktop app: ``vqstudio app`` (and ``python main.py``) end up in :func:`run_app`.

With no options the window opens on the last run, or the first time on the built-in demo corpus
with the tiny-cpu preset; one click (or Space) starts training. For scripted use,
``--autostart --screenshot out.png --quit-after 60`` trains, saves a picture of the whole window,
closes cleanly (stopping training and saving a checkpoint) and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, QTimer
from PySide6.QtWidgets import QApplication

from vqstudio.config import DEFAULT_PRESET, load_preset
from vqstudio.errors import UserError
from vqstudio.train.runfolder import RunFolder

# Folder names: settings in ~/.config/vqstudio/, runs and the log in ~/.local/share/vqstudio/
# (their equivalents on macOS and Windows).
ORGANIZATION = "vqstudio"
APPLICATION = "vqstudio"
log = logging.getLogger("vqstudio.app")


def _check_display() -> None:
    """Fail with a readable message, not Qt's abort, when a Linux session has no screen."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise UserError(
        "there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set)",
        "run it in a desktop session; on a server use `xvfb-run -a vqstudio app --autostart "
        "--screenshot out.png --quit-after 60`, or train headless with `vqstudio train`",
    )


def run_app(args: Any) -> int:
    """Run the app until its window closes; returns the exit status. ``args`` carries ``data``,
    ``preset``, ``run``, ``autostart``, ``screenshot``, ``quit_after`` and ``set`` (a list of
    ``section.key=value`` overrides for a new run)."""
    _check_display()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("")
    app.setApplicationName(APPLICATION)
    _setup_logging()
    config = _config_from_args(args)  # a bad option fails here, before any window

    from vqstudio.app.theme import apply_theme
    from vqstudio.app.window import MainWindow

    apply_theme(app)
    settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)
    window = MainWindow(settings, make_player())
    run = getattr(args, "run", None)
    if run and RunFolder(run).exists():
        if config is not None and (args.preset or args.data or getattr(args, "set", None)):
            print(f"Resuming {run}: its config.toml wins over --preset/--set/--data.", file=sys.stderr)
        window.open_run(Path(run))
    elif config is not None:
        window.set_new_run(config, Path(run) if run else None)
    elif window.last_run() is not None:
        window.open_run(window.last_run())
    else:
        window.set_new_run(load_preset(DEFAULT_PRESET))
    window.show()

    outcome = {"status": 0}
    if getattr(args, "autostart", False):
        QTimer.singleShot(0, window.start_training)
    quit_after = getattr(args, "quit_after", None)
    screenshot = getattr(args, "screenshot", None)

    def finish() -> None:
        if screenshot and not save_screenshot(window, Path(screenshot)):
            outcome["status"] = 1
        window.close()

    if quit_after is not None:
        QTimer.singleShot(int(max(0.0, quit_after) * 1000), finish)
    elif screenshot:
        QTimer.singleShot(2000, lambda: save_screenshot(window, Path(screenshot)))

    # Ctrl+C in the terminal closes the window like the close button (checkpoint included).
    previous = signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    tick = QTimer()
    tick.timeout.connect(lambda: None)  # lets Python run its signal handlers
    tick.start(200)
    try:
        status = app.exec()
    finally:
        signal.signal(signal.SIGINT, previous)
        tick.stop()
        if window.worker.is_running:  # the loop ended some other way: still end training
            window.worker.stop(save=True)
    return outcome["status"] or int(status)


def _config_from_args(args: Any):
    """The configuration for a new run from --preset/--data/--set, or None if none was given."""
    preset = getattr(args, "preset", None)
    data = getattr(args, "data", None)
    overrides = list(getattr(args, "set", None) or [])
    if not (preset or data or overrides or getattr(args, "run", None)):
        return None
    config = load_preset(preset or DEFAULT_PRESET, overrides)
    if data:
        if not Path(data).is_dir():
            raise UserError(f"--data {data}: no such folder", "give a folder of audio files")
        config = config.with_overrides({"data.path": str(Path(data).resolve())})
    return config


def make_player():
    """The A/B player, or None if it cannot even be built (the audition panel then says so)."""
    try:
        from vqstudio.app.player import ABPlayer

        player = ABPlayer()
    except Exception:
        log.exception("the audio player could not be created")
        return None
    if not player.available:
        log.warning("audio playback is off: %s", player.unavailable_reason)
    return player


def save_screenshot(window, path: Path) -> bool:
    """Draw every panel once more and save a PNG of the whole window; False on failure."""
    app = QApplication.instance()
    app.processEvents()
    window.redraw()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    if window.grab().save(str(path)):
        log.info("screenshot saved to %s", path)
        return True
    log.error("could not save the screenshot to %s", path)
    return False


def _setup_logging() -> None:
    """Warnings to stderr; everything from INFO up (tracebacks included) to a log file in the
    per-user data folder."""
    root = logging.getLogger("vqstudio")
    if root.handlers:
        return
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("vqstudio: %(message)s"))
    root.addHandler(console)
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if folder:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(Path(folder) / "vqstudio.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)
        except OSError:
            pass
