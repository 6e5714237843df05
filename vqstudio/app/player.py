"""The A/B audition engine: one long-lived audio output stream that plays the original, the
reconstruction, their residual or any other named buffer, and switches between them at the same
playhead with a short crossfade.

Two halves:

* :class:`PlaybackState`, the state operations (:func:`select_source`, :func:`set_playing`,
  :func:`seek_to`, :func:`set_loop_region`, :func:`replace_sources`, :func:`toggle_playing`) and
  :func:`render` are pure numpy: all of the crossfade, loop and pause logic lives there and is
  tested without a device.
* :class:`ABPlayer` owns the sounddevice stream. Control methods (any thread) post state operations
  into a mailbox; the audio callback applies them between blocks, renders straight into
  PortAudio's buffer and publishes the new state with one attribute assignment. The callback never
  takes a lock and allocates only a block's worth of temporaries; resampling, residuals and
  loudness gains are prepared on the caller's thread.

Everything that is heard is a :class:`Voice`: a buffer read at the playhead (plus an offset) with a
linear fade envelope. A change of *what* sounds (another source, a new buffer, another gain) fades
the old voice out and the new one in at the same position; a change of *where* (seek, loop wrap)
lets the old voice run on from where it was while the new one fades in at the target. Pausing
fades out too. So nothing ever clicks, and rapid switching (Tab held down) just retargets the
envelopes.

No Qt here: the GUI wraps the player. Without a PortAudio library or an output device the player is
:attr:`ABPlayer.available` ``False`` with a readable :attr:`ABPlayer.unavailable_reason`, and every
method is a harmless no-op.

``VQSTUDIO_NO_PORTAUDIO=1`` is a test/debug switch, read when the player first loads sounddevice:
it hides the PortAudio library from ``ctypes.util.find_library`` for that import, so sounddevice
raises its own "PortAudio library not found" OSError and the player's real handling of it runs on
a machine that has the library. It has no effect once sounddevice is imported in the process.
"""

from __future__ import annotations

import ctypes.util
import math
import os
import platform
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from functools import partial
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from vqstudio.errors import DeviceError

ORIGINAL = "original"
RECONSTRUCTION = "reconstruction"
RESIDUAL = "residual"

CROSSFADE_S = 0.005
# The callback competes for the GIL with the training thread (whose Python parts hold it for up to
# the 5 ms switch interval), so a "low" PortAudio latency would underflow; 50 ms still feels
# immediate when switching A/B.
DEFAULT_LATENCY_S = 0.05
MAX_BOOST_DB = 12.0
# Overlapping fades (Tab mashed) keep at most this many voices; the quietest fading one goes first.
MAX_VOICES = 4
# A loop shorter than a few fades would be all crossfade.
MIN_LOOP_FADES = 4

NO_PORTAUDIO_ENV = "VQSTUDIO_NO_PORTAUDIO"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


# -- the pure half: state, operations, render --------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Voice:
    """One buffer sounding at ``playhead + offset``, scaled by ``gain`` and a linear fade envelope.

    ``level`` is the envelope in fade steps (0 silent, ``fade_frames`` full); ``rising`` says which
    way it moves. A voice that has fallen to 0 is dropped.
    """

    name: str
    samples: np.ndarray  # [T] float32
    gain: float
    offset: int
    level: int
    rising: bool


@dataclass(frozen=True, slots=True, eq=False)
class PlaybackState:
    """Everything the audio callback needs for one block; immutable, replaced as a whole.

    ``sources`` maps names to [T] float32 buffers at the stream's rate, all ``length`` frames long;
    ``playhead`` and ``loop`` are in frames; ``selected`` may name a buffer that has not arrived yet
    (it then plays silence until it does).
    """

    sources: Mapping[str, np.ndarray] = field(default_factory=lambda: _EMPTY)
    gains: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    length: int = 0
    selected: str = ORIGINAL
    voices: tuple[Voice, ...] = ()
    playhead: int = 0
    loop: tuple[int, int] | None = None
    playing: bool = False
    fade_frames: int = 80
    channels: int = 2


def fade_frames_for(sample_rate: int, fade_s: float = CROSSFADE_S) -> int:
    """The crossfade length in frames (at least 1) for ``sample_rate``."""
    return max(1, int(round(sample_rate * fade_s)))


def _retarget(state: PlaybackState) -> PlaybackState:
    """Make the selected buffer (at the playhead, at its gain) the one rising voice if playing;
    every other voice falls. An existing matching voice is reused, so its fade just turns round."""
    want = None
    if state.playing:
        samples = state.sources.get(state.selected)
        if samples is not None:
            want = (samples, float(state.gains.get(state.selected, 1.0)))
    voices: list[Voice] = []
    found = False
    for voice in state.voices:
        keep = (
            want is not None
            and not found
            and voice.offset == 0
            and voice.samples is want[0]
            and voice.gain == want[1]
        )
        found = found or keep
        if voice.rising != keep:
            voice = replace(voice, rising=keep)
        if voice.level > 0 or voice.rising:
            voices.append(voice)
    if want is not None and not found:
        voices.append(Voice(state.selected, want[0], want[1], 0, 0, True))
    if len(voices) > MAX_VOICES:
        fading = sorted((v for v in voices if not v.rising), key=lambda v: v.level)
        dropped = {id(v) for v in fading[: len(voices) - MAX_VOICES]}
        voices = [v for v in voices if id(v) not in dropped]
    return replace(state, voices=tuple(voices))


def _jump(state: PlaybackState, frame: int) -> PlaybackState:
    """Move the playhead; the voices sounding now run on from where they were while fading out."""
    shift = state.playhead - frame
    voices = tuple(replace(v, offset=v.offset + shift, rising=False) for v in state.voices)
    return _retarget(replace(state, playhead=frame, voices=voices))


def _clamp_loop(region: tuple[int, int] | None, length: int, fade: int) -> tuple[int, int] | None:
    if region is None:
        return None
    start, end = sorted(int(v) for v in region)
    start, end = min(max(start, 0), length), min(max(end, 0), length)
    shortest = MIN_LOOP_FADES * fade
    if end - start < shortest:
        end = min(start + shortest, length)
        start = max(0, end - shortest)
    return (start, end) if end - start >= shortest else None


def select_source(state: PlaybackState, name: str) -> PlaybackState:
    """Play ``name`` from the same playhead, crossfading from whatever sounds now."""
    return _retarget(replace(state, selected=name))


def set_playing(state: PlaybackState, playing: bool) -> PlaybackState:
    """Start (fade in) or pause (fade out). Playing at the end of the clip starts it again."""
    if playing and state.playhead >= state.length:
        state = replace(state, playhead=state.loop[0] if state.loop else 0)
    return _retarget(replace(state, playing=bool(playing)))


def toggle_playing(state: PlaybackState) -> PlaybackState:
    """Play if paused, pause if playing, decided on the state the audio is actually in."""
    return set_playing(state, not state.playing)


def seek_to(state: PlaybackState, frame: int) -> PlaybackState:
    """Move the playhead to ``frame`` (clamped to the clip); while sounding, crossfade there."""
    frame = min(max(int(frame), 0), state.length)
    if not state.voices:
        return replace(state, playhead=frame)
    return _jump(state, frame)


def set_loop_region(state: PlaybackState, region: tuple[int, int] | None) -> PlaybackState:
    """Repeat ``[start, end)`` frames (clamped, at least a few fades long), or stop looping."""
    return replace(state, loop=_clamp_loop(region, state.length, state.fade_frames))


def replace_sources(
    state: PlaybackState, sources: Mapping[str, np.ndarray], gains: Mapping[str, float]
) -> PlaybackState:
    """Swap in new buffers and gains at the same playhead; a voice whose buffer or gain changed
    crossfades to the new one."""
    if ORIGINAL in sources:
        length = int(sources[ORIGINAL].shape[0])
    else:
        length = max((int(s.shape[0]) for s in sources.values()), default=0)
    state = replace(
        state,
        sources=sources,
        gains=gains,
        length=length,
        playhead=min(state.playhead, length),
        loop=_clamp_loop(state.loop, length, state.fade_frames),
    )
    return _retarget(state)


def _add_voice(mix: np.ndarray, voice: Voice, playhead: int, frames: int, fade: int) -> None:
    """Accumulate ``frames`` of ``voice`` into ``mix`` [frames]; reads outside its buffer are
    silence."""
    start = playhead + voice.offset
    lo, hi = max(start, 0), min(start + frames, voice.samples.shape[0])
    if hi <= lo:
        return
    a, b = lo - start, hi - start
    source = voice.samples[lo:hi]
    if voice.level == (fade if voice.rising else 0):
        if voice.rising:
            mix[a:b] += source * voice.gain
        return
    steps = np.arange(a + 1, b + 1, dtype=np.float32)
    envelope = voice.level + steps if voice.rising else voice.level - steps
    np.clip(envelope, 0.0, fade, out=envelope)
    envelope *= voice.gain / fade
    mix[a:b] += source * envelope


def render(
    state: PlaybackState, frames: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, PlaybackState]:
    """Render the next ``frames`` of audio from ``state``.

    Returns the block [frames, C] (``out`` filled in place when given, C = its channel count, mono
    duplicated) and the state after it: playhead, fade levels, loop wraps and the end of the clip
    applied. Python loops run per segment (a wrap, the clip's end), never per sample.
    """
    if out is None:
        out = np.zeros((frames, state.channels), dtype=np.float32)
    else:
        out.fill(0.0)
    mix = out[:, 0]
    fade = state.fade_frames
    done = 0
    while done < frames and (state.playing or state.voices):
        if state.loop is not None and state.playhead >= state.loop[1] - fade:
            # Wrap a fade early so the tail crossfades into the loop start inside the region.
            state = _jump(state, state.loop[0])
            continue
        if state.playhead >= state.length:
            state = replace(state, playing=False, voices=(), playhead=state.length)
            break
        stop = state.loop[1] - fade if state.loop is not None else state.length
        n = min(frames - done, stop - state.playhead)
        if not state.playing:
            # Paused: the playhead runs on only while the last fade-out sounds.
            n = min(n, max(v.level for v in state.voices))
        segment = mix[done : done + n]
        voices = []
        for voice in state.voices:
            _add_voice(segment, voice, state.playhead, n, fade)
            level = min(voice.level + n, fade) if voice.rising else max(voice.level - n, 0)
            if level > 0 or voice.rising:
                voices.append(replace(voice, level=level) if level != voice.level else voice)
        state = replace(state, playhead=state.playhead + n, voices=tuple(voices))
        done += n
    if out.shape[1] > 1:
        out[:, 1:] = out[:, :1]
    return out, state


def rms(samples: np.ndarray) -> float:
    """Root mean square of a buffer (0.0 for an empty one)."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def loudness_gains(
    sources: Mapping[str, np.ndarray], reference: str = ORIGINAL, max_boost_db: float = MAX_BOOST_DB
) -> dict[str, float]:
    """Per-source gains that bring each source's RMS to the reference's, boosts capped at
    ``max_boost_db`` (a near-silent residual is lifted 12 dB, not to full scale)."""
    cap = 10.0 ** (max_boost_db / 20.0)
    target = rms(sources[reference]) if reference in sources else 0.0
    gains = {}
    for name, samples in sources.items():
        level = rms(samples)
        if target <= 0.0:
            gains[name] = 1.0
        elif level <= 0.0:
            gains[name] = cap
        else:
            gains[name] = min(target / level, cap)
    return gains


def prepare_buffer(
    samples: Any, sample_rate: int, target_rate: int, length: int | None = None
) -> np.ndarray:
    """A private, read-only [T] float32 copy of ``samples`` ([T], [1, T], [T, 1] or [C, T] mixed to
    mono) at ``target_rate``, non-finite values zeroed, padded or trimmed to ``length``."""
    x = np.asarray(samples, dtype=np.float32)
    shape = x.shape
    if x.ndim > 1:
        x = np.squeeze(x)
        if x.ndim == 2:
            x = x.mean(axis=int(np.argmin(x.shape)), dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio shaped [T] or [C, T], got shape {shape}")
    if sample_rate != target_rate and x.size:
        from scipy.signal import resample_poly

        g = math.gcd(int(sample_rate), int(target_rate))
        x = resample_poly(x, int(target_rate) // g, int(sample_rate) // g).astype(np.float32)
    x = np.ascontiguousarray(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))  # a private copy
    x.flags.writeable = False
    return x if length is None else _fit(x, length)


# -- the device half ---------------------------------------------------------------------------


def _install_hint() -> str:
    system = platform.system()
    if system == "Darwin":
        return "install it with: brew install portaudio"
    if system == "Windows":
        return "reinstall sounddevice, which bundles it: pip install --force-reinstall sounddevice"
    return "install it with: sudo apt-get install libportaudio2"


def _settings_hint() -> str:
    if platform.system() == "Linux":
        return "connect one or check ALSA/PulseAudio settings"
    return "connect one or check the system sound settings"


def _load_sounddevice():
    """Import sounddevice here, not at module import, so a missing PortAudio is caught."""
    if os.environ.get(NO_PORTAUDIO_ENV, "") not in ("", "0"):
        import sys

        if "sounddevice" not in sys.modules:
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


class ABPlayer:
    """A/B/residual audition over one long-lived output stream.

    ``device`` is a sounddevice device (index or name substring; ``None`` for the system default).
    The stream opens at the first clip's sample rate (or ``sample_rate`` at construction), falling
    back to the device's default rate with buffers resampled up front; later clips at another rate
    are resampled to the stream's. All methods may be called from any thread.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int | None = None,
        latency: float | str = DEFAULT_LATENCY_S,
        fade_s: float = CROSSFADE_S,
    ):
        self.available = False
        self.unavailable_reason = ""
        self.unavailable_error: DeviceError | None = None
        self.underflows = 0
        self.callbacks = 0
        self.frames_played = 0
        self.callback_errors = 0
        self.last_callback_error = ""

        self._device = device
        self._latency = latency
        self._fade_s = fade_s
        self._lock = threading.Lock()  # control side only: the audio callback never takes it
        self._mailbox: deque[Callable[[PlaybackState], PlaybackState]] = deque()
        self._state = PlaybackState()
        self._sd = None
        self._device_info: Mapping[str, Any] = {}
        self._stream = None
        self._closing = False
        self._rate = 0
        self._clip_rate = 0
        self._buffers: dict[str, np.ndarray] = {}
        self._residual: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._selected = ORIGINAL
        self._previous: str | None = None
        self._loudness_match = False

        self._probe()
        if self.available and sample_rate:
            with self._lock:
                self._open(int(sample_rate))

    # -- availability --

    def _fail(self, problem: str, fix: str) -> None:
        self.unavailable_error = DeviceError(problem, fix)
        self.unavailable_reason = str(self.unavailable_error)
        self.available = False

    def _probe(self) -> None:
        try:
            sd = _load_sounddevice()
        except OSError as exc:
            found = "not found" in str(exc)
            problem = "PortAudio library not found" if found else f"PortAudio unusable ({exc})"
            self._fail(problem, _install_hint())
            return
        except Exception as exc:  # PortAudio present but failed to initialise
            self._fail(f"PortAudio could not start ({exc})", "check the system's audio setup")
            return
        self._sd = sd
        try:
            info = sd.query_devices(self._device, kind="output")
        except Exception as exc:
            self._fail_no_device(exc)
            return
        if int(info.get("max_output_channels", 0)) < 1:
            self._fail_no_device(None)
            return
        self._device_info = info
        self.available = True

    def _fail_no_device(self, exc: Exception | None) -> None:
        if self._device is None:
            self._fail("No audio output device", _settings_hint())
        else:
            detail = f" ({exc})" if exc else ""
            self._fail(
                f"Audio output device {self._device!r} not found{detail}",
                "choose another device or leave it at the system default",
            )

    def _open(self, clip_rate: int) -> None:
        """Open and start the stream (under the control lock); on failure become unavailable."""
        sd = self._sd
        channels = min(2, int(self._device_info["max_output_channels"]))
        rate = clip_rate
        try:
            sd.check_output_settings(
                self._device, channels=channels, dtype="float32", samplerate=rate
            )
        except Exception:
            rate = int(round(self._device_info["default_samplerate"]))
        self._state = replace(
            self._state, fade_frames=fade_frames_for(rate, self._fade_s), channels=channels
        )
        try:
            stream = sd.OutputStream(
                samplerate=rate,
                channels=channels,
                dtype="float32",
                device=self._device,
                latency=self._latency,
                callback=self._callback,
                finished_callback=self._on_finished,
            )
            stream.start()
        except Exception as exc:
            name = self._device_info.get("name", self._device)
            self._fail(
                f"Audio output device {name!r} could not be opened at {rate} Hz ({exc})",
                "close other programs using it or choose another device",
            )
            return
        self._rate = rate
        self._stream = stream

    # -- the audio thread --

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            self.callbacks += 1
            if status.output_underflow:
                self.underflows += 1
            state = self._state
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
        buffers = dict(self._buffers)
        if ORIGINAL in buffers and RECONSTRUCTION in buffers:
            # Reuse the residual while its halves are unchanged: a new array would make the voice
            # playing it crossfade to an identical copy.
            halves = (buffers[ORIGINAL], buffers[RECONSTRUCTION])
            cached = self._residual
            if cached is None or cached[0] is not halves[0] or cached[1] is not halves[1]:
                residual = np.subtract(*halves)
                residual.flags.writeable = False
                self._residual = cached = (*halves, residual)
            buffers[RESIDUAL] = cached[2]
        if self._loudness_match:
            gains = loudness_gains(buffers)
        else:
            gains = dict.fromkeys(buffers, 1.0)
        self._post(
            partial(
                replace_sources,
                sources=MappingProxyType(buffers),
                gains=MappingProxyType(gains),
            )
        )

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
            self._buffers = buffers
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
            rate, length = self._rate, self._buffers[ORIGINAL].shape[0]
            from_rate = int(sample_rate or self._clip_rate)
        buffer = prepare_buffer(samples, from_rate, rate, None if name == ORIGINAL else length)
        with self._lock:
            self._buffers[name] = buffer
            if name == ORIGINAL:
                self._buffers = {
                    k: (v if k == ORIGINAL else _fit(v, buffer.shape[0]))
                    for k, v in self._buffers.items()
                }
            self._publish_sources()

    def remove_source(self, name: str) -> None:
        """Forget the buffer ``name`` (not the original); selecting it then plays silence."""
        if not self.available or name == ORIGINAL:
            return
        with self._lock:
            if self._buffers.pop(name, None) is not None:
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
        return self._loudness_match

    @loudness_match.setter
    def loudness_match(self, value: bool) -> None:
        if not self.available:
            return
        with self._lock:
            if bool(value) != self._loudness_match:
                self._loudness_match = bool(value)
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


def _fit(buffer: np.ndarray, length: int) -> np.ndarray:
    """``buffer`` [T] zero-padded or trimmed to ``length``, read-only."""
    if buffer.shape[0] == length:
        return buffer
    if buffer.shape[0] < length:
        fitted = np.pad(buffer, (0, length - buffer.shape[0]))
    else:
        fitted = buffer[:length].copy()
    fitted.flags.writeable = False
    return fitted
