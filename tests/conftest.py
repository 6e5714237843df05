"""Shared test set-up: a quiet, headless, deterministic environment, and a leaked-thread check.

Qt widgets run offscreen; audio goes to a null ALSA device (written into a temporary HOME before
PortAudio is first initialised); torch uses one thread per test process so the suite behaves the
same on a 2-core CI machine as on a laptop.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHONHASHSEED", "0")

_HOME = Path(tempfile.mkdtemp(prefix="vqstudio-test-home-"))
(_HOME / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
os.environ["HOME"] = str(_HOME)
os.environ.setdefault("XDG_CONFIG_HOME", str(_HOME / ".config"))

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


@pytest.fixture
def repo() -> Path:
    return REPO
