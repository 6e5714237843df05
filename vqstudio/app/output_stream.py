"""Opening the A/B player's PortAudio output stream: at the clip's rate if the device takes it,
else at the device's own (the player then resamples up front), mono or stereo, float32. A device
that refuses is a :class:`~vqstudio.errors.DeviceError` naming it and the fix."""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping

from vqstudio.errors import DeviceError


def open_output_stream(
    sd: Any, device: int | str | None, device_info: Mapping[str, Any], clip_rate: int, *,
    latency: float | str, callback: Callable, finished_callback: Callable,
    gil_switch_interval: float | None,
) -> tuple[Any, int, int]:
    """Start a stream; returns ``(stream, sample rate, channels)``.

    Lowers the process's GIL switch interval to ``gil_switch_interval`` first (never raises it;
    None leaves it), so a busy training thread hands the GIL to the callback quickly."""
    channels = min(2, int(device_info["max_output_channels"]))
    rate = clip_rate
    try:
        sd.check_output_settings(device, channels=channels, dtype="float32", samplerate=rate)
    except Exception:
        rate = int(round(device_info["default_samplerate"]))
    if gil_switch_interval and sys.getswitchinterval() > gil_switch_interval:
        sys.setswitchinterval(gil_switch_interval)
    try:
        stream = sd.OutputStream(
            samplerate=rate, channels=channels, dtype="float32", device=device, latency=latency,
            callback=callback, finished_callback=finished_callback,
        )
        stream.start()
    except Exception as exc:
        name = device_info.get("name", device)
        raise DeviceError(
            f"Audio output device {name!r} could not be opened at {rate} Hz ({exc})",
            "close other programs using it or choose another device",
        ) from None
    return stream, rate, channels
