"""Start the desktop app: ``vqstudio app`` (and ``python main.py``) end up in :func:`run_app`;
its options are defined here too (:func:`add_arguments`, which ``cli.py`` calls).

With no options the window opens on the last run, or the first time on the built-in demo corpus
with the tiny-cpu preset; one click (or Space) starts training. ``vqstudio app RUN_DIR`` opens a
run, ``vqstudio app clip.wav`` auditions a file (the desktop entry passes files this way). For
scripted use, ``--autostart --screenshot out.png --quit-after 60`` trains, saves a picture of the
whole window, closes cleanly (stopping training and saving a checkpoint) and exits 0. SIGTERM,
SIGINT and SIGHUP close it the same way, SIGUSR1 saves a checkpoint (``stop_signals``).

Qt (and numpy, torch ...) are imported inside the functions that need them, so that building the
command line parser, which every ``vqstudio`` command does, stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from vqstudio.errors import UserError

# Folder names: settings in ~/.config/vqstudio/, runs and the log in ~/.local/share/vqstudio/
# (their equivalents on macOS and Windows).
ORGANIZATION = "vqstudio"
APPLICATION = "vqstudio"
DESKTOP_FILE = "vqstudio"  # the desktop entry's name (StartupWMClass): the shell groups our windows
log = logging.getLogger("vqstudio.app")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``vqstudio app``."""
    p.add_argument("paths", nargs="*", metavar="RUN_DIR|AUDIO",
                   help="a run folder to open, and/or audio files to audition (the first is loaded)")
    p.add_argument("--data", default=None,
                   help="folder of audio files, a manifest (.txt/.jsonl, Lhotse recordings or cuts) "
                        "or a prepared dataset (default: the demo corpus)")
    p.add_argument("--preset", default=None, help="preset for a new run (default tiny-cpu)")
    p.add_argument("--run", default=None,
                   help="run folder: an existing run is opened and resumed (default: the last run)")
    p.add_argument("--autostart", action="store_true", help="start training at once")
    p.add_argument("--screenshot", default=None,
                   help="save a PNG of the window as it closes (after --quit-after, Quit or a signal)")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window (saving a checkpoint) after this many seconds")
    # Overrides for a new run (tests and scripts use a tiny model); hidden from --help.
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)


def sort_paths(paths: list[str]) -> tuple[Path | None, list[Path]]:
    """The command line's paths as (the run folder to open, the audio files to audition).
    Raises UserError for a path that is neither, naming what to give instead."""
    from vqstudio.audio.io import READ_SUFFIXES
    from vqstudio.train.runfolder import RunFolder

    run, audio = None, []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            if not RunFolder(path).exists():
                raise UserError(f"{path}: not a run folder (it has no config.toml)",
                                f"to train on the audio in it, use --data {text}")
            if run is not None:
                raise UserError(f"two run folders given ({run} and {path})", "open one at a time")
            run = path
        elif path.is_file():
            if path.suffix.lower() not in READ_SUFFIXES:
                raise UserError(f"{path}: not an audio file the app reads",
                                "give a " + ", ".join(sorted(READ_SUFFIXES)) + " file or a run folder")
            audio.append(path.resolve())
        else:
            raise UserError(f"{path}: no such file or folder", "give a run folder or an audio file")
    return run, audio


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
    path_run, audio = sort_paths(list(getattr(args, "paths", None) or []))
    if path_run is not None and getattr(args, "run", None):
        raise UserError(f"both --run {args.run} and {path_run} given", "give the run folder once")
    _check_display()
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("")
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("VQ Studio")
    app.setDesktopFileName(DESKTOP_FILE)
    _setup_logging()
    config = _config_from_args(args)  # a bad option fails here, before any window

    from vqstudio.app.stop_signals import StopSignals
    from vqstudio.config import DEFAULT_PRESET, load_preset
    from vqstudio.train.runfolder import RunFolder
    from vqstudio.app.theme import apply_theme
    from vqstudio.app.window import MainWindow

    apply_theme(app)
    _set_icon(app)
    settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)
    window = MainWindow(settings, make_player())
    run = str(path_run) if path_run is not None else getattr(args, "run", None)
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
    if audio:
        window.set_audition_clip(audio[0], also=audio[1:])

    outcome = {"status": 0}
    if getattr(args, "autostart", False):
        QTimer.singleShot(0, window.start_training)
    quit_after = getattr(args, "quit_after", None)
    screenshot = getattr(args, "screenshot", None)

    if screenshot:  # the window as it is when it closes, whatever closes it

        def shoot() -> None:
            if outcome.get("shot") is None:
                outcome["shot"] = save_screenshot(window, Path(screenshot))
                outcome["status"] = outcome["status"] or (0 if outcome["shot"] else 1)

        window.closing.connect(shoot)
    if quit_after is not None:
        QTimer.singleShot(int(max(0.0, quit_after) * 1000), window.close)

    # Ctrl+C, kill, a closed terminal: close like the close button (checkpoint included).
    signals = StopSignals()
    signals.stop_requested.connect(lambda name: window.close())
    signals.checkpoint_requested.connect(window.save_checkpoint_on_signal)
    signals.install()
    log.info("window open; stop signals handled (TERM, INT, HUP close it, USR1 saves a checkpoint)")
    try:
        status = app.exec()
    finally:
        signals.uninstall()
        if window.worker.is_running:  # the loop ended some other way: still end training
            window.worker.stop(save=True)
    if signals.stop_signal is not None:
        print(f"vqstudio app: {signals.stop_signal}: {window.stopped_where()}", flush=True)
        return 0
    return outcome["status"] or int(status)


def _set_icon(app) -> None:
    """The application icon from its rendered PNGs (no SVG image plugin needed)."""
    from PySide6.QtGui import QIcon

    from vqstudio.resources import ICON_SIZES, icon_path

    icon = QIcon()
    try:
        for size in ICON_SIZES:
            icon.addFile(str(icon_path(size)))
    except UserError as exc:  # a damaged install: the window still opens, without its icon
        log.warning("%s", exc)
        return
    app.setWindowIcon(icon)


def _config_from_args(args: Any):
    """The configuration for a new run from --preset/--data/--set, or None if none was given."""
    from vqstudio.config import DEFAULT_PRESET, load_preset

    preset = getattr(args, "preset", None)
    data = getattr(args, "data", None)
    overrides = list(getattr(args, "set", None) or [])
    if not (preset or data or overrides or getattr(args, "run", None)):
        return None
    config = load_preset(preset or DEFAULT_PRESET, overrides)
    if data:
        from vqstudio.audio.corpus import SOURCE_HINT, source_kind

        if source_kind(data) is None:
            what = "no such file or folder" if not Path(data).exists() else "not audio data"
            raise UserError(f"--data {data}: {what}", "give " + SOURCE_HINT)
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
    from PySide6.QtWidgets import QApplication

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
    from PySide6.QtCore import QStandardPaths

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
