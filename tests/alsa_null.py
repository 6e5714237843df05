"""A real PortAudio output without sound hardware: ALSA configurations written into a throw-away
HOME, and a runner for Python code that must see them.

What was found on Debian 12 (alsa-lib 1.2.8, PortAudio 19.6):

* ``pcm.!default { type null }`` is enough for PortAudio to list a "default" ALSA output and run
  streams; no ``ctl.!default`` entry is needed (without cards PortAudio just skips the control).
  But the null plugin has no clock: it always reports a whole free buffer, so PortAudio calls the
  callback back to back (measured: ~120 million frames a second, one CPU core at 100 %). Fine for
  "does a stream open", wrong for anything that watches a playhead move.
* ``kind="paced"`` puts a real-time clock behind it: ``type plug`` (converts any rate and format)
  in front of ``type file`` whose output is piped to a tiny pacer process that reads 48 kHz
  stereo S16 (192 000 bytes) per second with a 4 KiB pipe. The file plugin writes synchronously
  from PortAudio's thread, so the full pipe blocks it exactly like a sound card's buffer would:
  the stream runs at real time (measured 44.1 kHz within 1 % after the first buffer fills) for
  about 1 % of a CPU core. Only "default" is listed; the paced null PCM is defined inline. The
  pacer also logs dropouts (data that came more than 50 ms late, a gap a sound card would have
  played) to ``alsa_pacer.log`` in the HOME: see :func:`dropouts`.
* ``kind="missing"`` points the default PCM at a sound card that does not exist: with no sound
  hardware PortAudio then finds no output device at all (``query_devices`` is empty, the default
  output index is -1). On a machine with real sound cards PortAudio still lists those, so a test of
  "no output device" must check what it got.
* ALSA reads ``$HOME/.asoundrc`` (and ``$XDG_CONFIG_HOME/alsa/asoundrc``) when PortAudio
  initialises, i.e. when sounddevice is imported. Setting HOME later has no effect until PortAudio
  is re-initialised: ``sounddevice._terminate(); sounddevice._initialize()`` after changing HOME
  does re-read it (PortAudio frees ALSA's global configuration on terminate), but that is private
  API and disturbs any stream open in the process. Tests therefore run device code in a fresh
  subprocess with :func:`alsa_env`, which is also what makes each test see exactly one
  configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Bytes per second the pacer drains: what the plug layer converts every stream into.
PACED_RATE, PACED_CHANNELS, PACED_BYTES_PER_SAMPLE = 48000, 2, 2
PACER_LOG = "alsa_pacer.log"  # in the HOME: one line per dropout the pacer heard


def dropouts(home: Path, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
    """``(CLOCK_MONOTONIC time, seconds late)`` of each dropout the paced device heard under
    ``home`` between ``since`` and ``until`` (``time.monotonic()`` values of any process)."""
    path = Path(home) / PACER_LOG
    found = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        _, at, late = line.split()
        if since <= float(at) <= until:
            found.append((float(at), float(late)))
    return found

_PACER = '''"""Drain stdin at a fixed byte rate: the clock behind the paced null ALSA device.

A read that had to wait for data and got it more than a device buffer (SLACK_S) after the clock
wanted it is a dropout, what a sound card would have played as a gap: each is appended to the
log file (argv[2]) as "dropout <CLOCK_MONOTONIC seconds> <seconds late>", and the clock restarts
from there, as a card's would after an underrun."""
import fcntl, os, sys, time
SLACK_S = 0.05
rate = int(sys.argv[1])
log = open(sys.argv[2], "a", buffering=1) if len(sys.argv) > 2 else None
fd = sys.stdin.fileno()
try:
    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)  # a small pipe: low latency, quick close
except OSError:
    pass
start, total, chunk = None, 0, max(rate // 200, 1)
while True:
    asked = time.monotonic()
    data = os.read(fd, chunk)
    if not data:
        break
    now = time.monotonic()
    if start is None:
        start = now
    late = now - (start + total / rate)
    if now - asked > 0.002 and late > SLACK_S:  # we waited, and the data came too late
        if log is not None:
            log.write(f"dropout {now:.6f} {late:.6f}\\n")
        start += late
    total += len(data)
    ahead = start + total / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
'''


def _quote(text: str) -> str:
    if '"' in text or "\\" in text or "'" in text:
        raise ValueError(f"path not usable in an ALSA configuration: {text!r}")
    return text


def write_asoundrc(home: Path, kind: str = "paced") -> Path:
    """Write ``home/.asoundrc`` for an output device of ``kind``: "paced" (a null sink consumed
    in real time), "null" (a null sink with no clock) or "missing" (no usable default device).
    Returns the file's path."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    if kind == "null":
        text = "pcm.!default {\n    type null\n}\n"
    elif kind == "missing":
        text = 'pcm.!default {\n    type hw\n    card "vqstudio_no_such_card"\n}\n'
    elif kind == "paced":
        pacer = home / "alsa_pacer.py"
        pacer.write_text(_PACER)
        rate = PACED_RATE * PACED_CHANNELS * PACED_BYTES_PER_SAMPLE
        log = home / PACER_LOG
        command = (f"exec '{_quote(sys.executable)}' -I -S '{_quote(str(pacer))}' {rate} "
                   f"'{_quote(str(log))}'")
        text = (
            "pcm.!default {\n"
            "    type plug\n"
            "    slave {\n"
            "        pcm {\n"
            "            type file\n"
            '            slave.pcm "null"\n'
            f'            file "|{command}"\n'
            '            format "raw"\n'
            "        }\n"
            f"        rate {PACED_RATE}\n"
            "        format S16_LE\n"
            f"        channels {PACED_CHANNELS}\n"
            "    }\n"
            "}\n"
        )
    else:
        raise ValueError(f"unknown kind {kind!r}: use 'paced', 'null' or 'missing'")
    path = home / ".asoundrc"
    path.write_text(text)
    return path


def alsa_env(home: Path, **extra: str) -> dict[str, str]:
    """The current environment with HOME (and XDG_CONFIG_HOME, ALSA's second user file) moved
    into ``home``, the repository importable, and ``extra`` variables added."""
    env = dict(os.environ)
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(Path(home) / ".config")
    env.pop("ALSA_CONFIG_PATH", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_python(
    code: str, home: Path, timeout: float = 60.0, **extra: str
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose PortAudio initialises under ``home``'s ALSA
    configuration; stdout and stderr are captured as text."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=alsa_env(home, **extra),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
