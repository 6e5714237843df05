"""Shared test set-up: a quiet, headless, deterministic environment, and a leaked-thread check.

Qt widgets run offscreen; audio goes to the paced null ALSA device of ``alsa_null.py`` (written
into a temporary HOME before PortAudio is first initialised), so an in-process player runs at real
time instead of spinning a core the way the clock-less plain null device does; the pacer processes
ALSA starts for it are ended and the HOME removed when the session finishes. torch uses one thread
per test process so the suite behaves the same on a 2-core CI machine as on a laptop.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from alsa_null import write_asoundrc
from vqstudio.app.gui_thread_gc import sweep

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHONHASHSEED", "0")

_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-test-home-"))
write_asoundrc(_HOME, "paced")
os.environ["HOME"] = str(_HOME)
os.environ.setdefault("XDG_CONFIG_HOME", str(_HOME / ".config"))
# corpus indexes (vqstudio.audio.corpus_index) go to the temporary HOME, never the user's cache
os.environ["VQSTUDIO_CACHE"] = str(_HOME / ".cache" / "vqstudio")

import torch  # noqa: E402  (after the environment above is set)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail any test that leaves a Python thread running."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5.0)
        if thread.is_alive():
            leaked.append(thread.name)
    assert not leaked, f"test left threads running: {leaked}"
    # A window confined collection to the GUI thread (vqstudio/app/gui_thread_gc.py); its timer
    # runs only while a test spins Qt's loop, so the tests that follow in this process sweep too.
    sweep()


@pytest.fixture
def repo() -> Path:
    return REPO


def _own_pacers() -> list[int]:
    """Process ids of the pacers ALSA started from this process for the paced device."""
    pacer, me, found = str(_HOME / "alsa_pacer.py").encode(), os.getpid(), []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if pacer not in (entry / "cmdline").read_bytes():
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == me:
            found.append(int(entry.name))
    return found


def pytest_sessionfinish(session, exitstatus):
    """A stream left open keeps its pacer alive until this process exits; end them now by id, and
    remove the temporary HOME."""
    for pid in _own_pacers() if Path("/proc").is_dir() else []:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Three short real audio files (test modules that train many times override this with a
    module-scoped corpus)."""
    from helpers import write_corpus

    return write_corpus(tmp_path / "data", files=3, seconds=1.0)
