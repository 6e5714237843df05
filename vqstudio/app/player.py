"""The A/B player's device half: one long-lived audio output stream that plays the original, the
reconstruction, their residual or any other named buffer, and switches between them at the same
playhead with a short crossfade.

The state, its operations and :func:`render` live in :mod:`vqstudio.app.playback_engine` (pure
numpy). :class:`ABPlayer` owns the sounddevice stream: control methods (any
thread) post state operations into a mailbox; the audio callback applies them between blocks,
renders straight into PortAudio's buffer and publishes the new state with one attribute
assignment. The callback never takes a lock and allocates only a block's worth of temporaries;
resampling, residuals and loudness gains are prepared on the caller's thread.

The buffers it holds and publishes (residual, loudness gains) are
:mod:`vqstudio.app.player_sources`; opening the stream is :mod:`vqstudio.app.output_stream`.
No Qt here: the GUI wraps the player. Finding the device is :mod:`vqstudio.app.audio_device`:
without a PortAudio library or an output device the player is :attr:`ABPlayer.available`
``False`` with a readable :attr:`ABPlayer.unavailable_reason`, and every method is a harmless
no-op.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Mapping

import numpy as np

from vqstudio.app.audio_device import find_output
from vqstudio.app.output_stream import open_output_stream
from vqstudio.app.playback_engine import (
    CROSSFADE_S,
    ORIGINAL,
    RECONSTRUCTION,
    RESIDUAL,
    PlaybackState,
    fade_frames_for,
    prepare_buffer,
    render,
    replace_sources,
    seek_to,
    select_source,
    set_loop_region,
    set_playing,
    toggle_playing,
)
from vqstudio.app.player_sources import SourceBuffers
from vqstudio.errors import DeviceError

# The callback competes for the GIL with the training thread (whose Python parts hold it for up to
# the 5 ms switch interval), so a "low" PortAudio latency would underflow; 50 ms still feels
# immediate when switching A/B.
DEFAULT_LATENCY_S = 0.05
# A Python thread that wants the GIL waits up to the switch interval (5 ms by default) for the
# holder to let go, and the callback can lose it mid-block to the training thread and wait again.
# 1 ms bounds that; measured with benchmarks/audio_underflow.py: the callback's worst case fell
# from ~5 ms to ~0.5 ms with no measurable cost to training speed.
GIL_SWITCH_INTERVAL_S = 0.001


class ABPlayer:
    """A/B/residual audition over one long-lived output stream.

    ``device`` is a sounddevice device (index or name substring; ``None`` for the system default).
    The stream opens at the first clip's sample rate (or ``sample_rate`` at construction), falling
    back to the device's default rate with buffers resampled up front; later clips at another rate
    are resampled to the stream's. All methods may be called from any thread.

    Opening the stream lowers the process's GIL switch interval to ``gil_switch_interval`` seconds
    (never raises it; ``None`` leaves it alone), so a busy training thread hands the GIL to the
    audio callback quickly.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int | None = None,
        latency: float | str = DEFAULT_LATENCY_S,
        fade_s: float = CROSSFADE_S,
        gil_switch_interval: float | None = GIL_SWITCH_INTERVAL_S,
    ):
        self.available = False
        self.unavailable_reason = ""
        self.unavailable_error: DeviceError | None = None
        self.underflows = 0
        self.callbacks = 0
        self.frames_played = 0
        self.callback_errors = 0
        self.last_callback_error = ""
        # The longest wall-clock time between the starts of two callbacks while playing: near the
        # block length when nothing held the callback up (a gap shows here before it is heard).
        self.longest_callback_gap_s = 0.0
        self._last_callback_at = 0.0

        self._device = device
        self._latency = latency
        self._fade_s = fade_s
        self._gil_switch_interval = gil_switch_interval
        self._lock = threading.Lock()  # control side only: the audio callback never takes it
        self._mailbox: deque[Callable[[PlaybackState], PlaybackState]] = deque()
        self._state = PlaybackState()
        self._sd = None
        self._device_info: Mapping[str, Any] = {}
        self._stream = None
        self._closing = False
        self._rate = 0
        self._clip_rate = 0
        self._buffers = SourceBuffers()
        self._selected = ORIGINAL
        self._previous: str | None = None

        self._probe()
        if self.available and sample_rate:
            with self._lock:
                self._open(int(sample_rate))

    # -- the stream --

    def _fail(self, problem: str, fix: str) -> None:
        self.unavailable_error = DeviceError(problem, fix)
        self.unavailable_reason = str(self.unavailable_error)
        self.available = False

    def _probe(self) -> None:
        try:
            self._sd, self._device_info = find_output(self._device)
        except DeviceError as error:
            self.unavailable_error, self.unavailable_reason = error, str(error)
            return
        self.available = True

    def _open(self, clip_rate: int) -> None:
        """Open and start the stream (under the control lock); on failure become unavailable."""
        try:
            stream, rate, channels = open_output_stream(
                self._sd, self._device, self._device_info, clip_rate, latency=self._latency,
                callback=self._callback, finished_callback=self._on_finished,
                gil_switch_interval=self._gil_switch_interval,
            )
        except DeviceError as error:
            self.unavailable_error, self.unavailable_reason = error, str(error)
            self.available = False
            return
        self._state = replace(
            self._state, fade_frames=fade_frames_for(rate, self._fade_s), channels=channels
        )
        self._rate = rate
        self._stream = stream

    # -- the audio thread --

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            now = time.perf_counter()
            self.callbacks += 1
            if status.output_underflow:
                self.underflows += 1
            state = self._state
            if state.playing and self._last_callback_at:
                self.longest_callback_gap_s = max(self.longest_callback_gap_s,
                                                  now - self._last_callback_at)
            self._last_callback_at = now
            mailbox = self._mailbox
            while mailbox:
                state = mailbox.popleft()(state)
            playing = state.playing
            _, state = render(state, frames, out=outdata)
            self._state = state
            if playing:
                self.frames_played += frames
        except Exception as exc:  # never let an exception stop the stream
            outdata.fill(0.0)
            self.callback_errors += 1
            self.last_callback_error = repr(exc)

    def _on_finished(self) -> None:
        if not self._closing:
            self._fail(
                "Audio output stopped unexpectedly",
                "check that the output device is still connected, then restart playback",
            )

    # -- control side --

    def _post(self, op: Callable[[PlaybackState], PlaybackState]) -> None:
        """Hand a state operation to the audio thread (or apply it while no stream runs)."""
        if self._stream is not None:
            self._mailbox.append(op)
        else:
            self._state = op(self._state)

    def _publish_sources(self) -> None:
        sources, gains = self._buffers.published()
        self._post(partial(replace_sources, sources=sources, gains=gains))

    def set_clip(self, original: Any, reconstruction: Any | None, sample_rate: int) -> None:
        """Replace the clip: ``original`` and optional ``reconstruction`` ([T], same rate); the
        residual follows. Other named buffers are dropped; playhead, loop and selection are kept
        (clamped to the new length). The stream opens on the first call."""
        if not self.available:
            return
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        with self._lock:
            if self._stream is None:
                self._open(int(sample_rate))
                if not self.available:
                    return
            rate = self._rate
        original = prepare_buffer(original, sample_rate, rate)
        buffers = {ORIGINAL: original}
        if reconstruction is not None:
            buffers[RECONSTRUCTION] = prepare_buffer(
                reconstruction, sample_rate, rate, original.shape[0]
            )
        with self._lock:
            self._clip_rate = int(sample_rate)
            self._buffers.replace_all(buffers)
            self._publish_sources()

    def set_source_buffer(self, name: str, samples: Any, sample_rate: int | None = None) -> None:
        """Add or replace the buffer ``name`` (e.g. "reconstruction", "levels-2") without stopping
        playback; it is fitted to the original's length. ``sample_rate`` defaults to the clip's."""
        if not self.available:
            return
        if name == RESIDUAL:
            raise ValueError("the residual is derived (original minus reconstruction); set those")
        with self._lock:
            if not self._clip_rate:
                raise RuntimeError("set_clip() must come before set_source_buffer()")
            rate, length = self._rate, self._buffers.length
            from_rate = int(sample_rate or self._clip_rate)
        buffer = prepare_buffer(samples, from_rate, rate, None if name == ORIGINAL else length)
        with self._lock:
            self._buffers.put(name, buffer)
            self._publish_sources()

    def drop_source(self, name: str) -> None:
        """Forget the buffer ``name`` (a checkpoint no longer chosen); if it is the one heard, it
        fades to silence at the same playhead until it comes back or another is selected."""
        if not self.available:
            return
        with self._lock:
            if self._buffers.drop(name):
                self._publish_sources()

    def play(self) -> None:
        """Start playing from the playhead (from the start if at the end), fading in."""
        if self.available:
            with self._lock:
                self._post(partial(set_playing, playing=True))

    def pause(self) -> None:
        """Stop playing, fading out over a few milliseconds; the playhead stays."""
        if self.available:
            with self._lock:
                self._post(partial(set_playing, playing=False))

    def toggle(self) -> None:
        """Play if paused, pause if playing (Space)."""
        if self.available:
            with self._lock:
                self._post(toggle_playing)

    def select(self, name: str) -> None:
        """Listen to source ``name`` from the same playhead, crossfading about 5 ms."""
        if not self.available:
            return
        with self._lock:
            if name != self._selected:
                self._previous, self._selected = self._selected, name
            self._post(partial(select_source, name=name))

    def toggle_last(self) -> None:
        """Go back to the source heard before the current one (Tab)."""
        if self.available and self._previous is not None:
            self.select(self._previous)

    def seek(self, seconds: float) -> None:
        """Move the playhead to ``seconds`` (clamped to the clip)."""
        if self.available and self._rate:
            with self._lock:
                self._post(partial(seek_to, frame=int(round(seconds * self._rate))))

    def set_loop(self, start_s: float, end_s: float) -> None:
        """Repeat ``[start_s, end_s)`` (either order; at least 20 ms), wrapping with a crossfade."""
        if self.available and self._rate:
            region = (int(round(start_s * self._rate)), int(round(end_s * self._rate)))
            with self._lock:
                self._post(partial(set_loop_region, region=region))

    def clear_loop(self) -> None:
        """Stop looping; playback runs on to the end of the clip."""
        if self.available:
            with self._lock:
                self._post(partial(set_loop_region, region=None))

    @property
    def loudness_match(self) -> bool:
        """Whether each source plays at a gain matching its RMS to the original's (≤ +12 dB)."""
        return self._buffers.loudness_match

    @loudness_match.setter
    def loudness_match(self, value: bool) -> None:
        if not self.available:
            return
        with self._lock:
            if bool(value) != self._buffers.loudness_match:
                self._buffers.loudness_match = bool(value)
                if self._buffers:
                    self._publish_sources()

    # -- read-outs (any thread) --

    @property
    def playhead(self) -> float:
        """Where the audio is, in seconds (as of the last audio block)."""
        return self._state.playhead / self._rate if self._rate else 0.0

    @property
    def duration(self) -> float:
        """Length of the clip in seconds (0.0 without one)."""
        return self._state.length / self._rate if self._rate else 0.0

    @property
    def is_playing(self) -> bool:
        """Whether the audio is playing (as of the last audio block)."""
        return self._state.playing

    @property
    def selected(self) -> str:
        """The source last asked for."""
        return self._selected

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the buffers that can be heard now (the residual once both halves exist)."""
        return tuple(self._state.sources)

    @property
    def loop(self) -> tuple[float, float] | None:
        """The loop region in seconds, or None."""
        region = self._state.loop
        if region is None or not self._rate:
            return None
        return region[0] / self._rate, region[1] / self._rate

    @property
    def gains(self) -> dict[str, float]:
        """The playback gain of each source."""
        return dict(self._state.gains)

    @property
    def sample_rate(self) -> int:
        """The stream's sample rate (0 before the first clip)."""
        return self._rate

    # -- shutdown --

    def close(self) -> None:
        """Fade out and close the stream; the player is then inert. Safe to call twice."""
        with self._lock:
            stream, self._stream = self._stream, None
            self._closing = True
            was_available, self.available = self.available, False
            if was_available or not self.unavailable_reason:
                self.unavailable_reason = "the player is closed"
        if stream is None:
            return
        if self._state.voices:
            self._mailbox.append(partial(set_playing, playing=False))
            deadline = time.monotonic() + 0.25
            while self._state.voices and time.monotonic() < deadline and stream.active:
                time.sleep(0.005)
        try:
            stream.stop()
        finally:
            stream.close()

    def __enter__(self) -> ABPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
