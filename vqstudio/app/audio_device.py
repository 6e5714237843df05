"""Finding an audio output: loading sounddevice (and so PortAudio) and picking the output device,
with a message that says what is missing and how to get it when there is none.

``VQSTUDIO_NO_PORTAUDIO=1`` is a test/debug switch, read when sounddevice is first loaded: it
hides the PortAudio library from ``ctypes.util.find_library`` for that import, so sounddevice
raises its own "PortAudio library not found" OSError and the real handling of it runs on a machine
that has the library. It has no effect once sounddevice is imported in the process.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import sys
from typing import Any, Mapping

from vqstudio.errors import DeviceError

NO_PORTAUDIO_ENV = "VQSTUDIO_NO_PORTAUDIO"


def install_hint() -> str:
    """How to get the PortAudio library on this system."""
    system = platform.system()
    if system == "Darwin":
        return "install it with: brew install portaudio"
    if system == "Windows":
        return "reinstall sounddevice, which bundles it: pip install --force-reinstall sounddevice"
    return "install it with: sudo apt-get install libportaudio2"


def settings_hint() -> str:
    """Where to look when there is no output device."""
    if platform.system() == "Linux":
        return "connect one or check ALSA/PulseAudio settings"
    return "connect one or check the system sound settings"


def load_sounddevice():
    """Import sounddevice here, not at module import, so a missing PortAudio is caught."""
    if os.environ.get(NO_PORTAUDIO_ENV, "") not in ("", "0") and "sounddevice" not in sys.modules:
        real = ctypes.util.find_library

        def hide_portaudio(name: str):
            return None if "portaudio" in name.lower() else real(name)

        ctypes.util.find_library = hide_portaudio
        try:
            import sounddevice
        finally:
            ctypes.util.find_library = real
        return sounddevice
    import sounddevice

    return sounddevice


def find_output(device: int | str | None) -> tuple[Any, Mapping[str, Any]]:
    """``(sounddevice module, the output device's info)`` for ``device`` (an index, a name
    substring, or None for the system default). Raises :class:`DeviceError` naming what is
    missing: the PortAudio library, any output device, or the one asked for."""
    try:
        sd = load_sounddevice()
    except OSError as exc:
        found = "not found" in str(exc)
        raise DeviceError("PortAudio library not found" if found else f"PortAudio unusable ({exc})",
                          install_hint()) from None
    except Exception as exc:  # PortAudio present but failed to initialise
        raise DeviceError(f"PortAudio could not start ({exc})", "check the system's audio setup") from None
    try:
        info = sd.query_devices(device, kind="output")
    except Exception as exc:
        raise _no_device(device, exc) from None
    if int(info.get("max_output_channels", 0)) < 1:
        raise _no_device(device, None)
    return sd, info


def _no_device(device: int | str | None, exc: Exception | None) -> DeviceError:
    if device is None:
        return DeviceError("No audio output device", settings_hint())
    detail = f" ({exc})" if exc else ""
    return DeviceError(f"Audio output device {device!r} not found{detail}",
                       "choose another device or leave it at the system default")
