"""The pure half of the A/B player: playback state, the operations on it, and :func:`render`.

Everything here is numpy and plain data, no device and no threads, so all of the crossfade, loop
and pause logic is tested without a sound card. :mod:`vqstudio.app.player` wraps it in a
PortAudio stream whose callback applies posted operations between blocks and renders straight into
the device buffer.

Everything that is heard is a :class:`Voice`: a buffer read at the playhead (plus an offset) with a
linear fade envelope. A change of *what* sounds (another source, a new buffer, another gain) fades
the old voice out and the new one in at the same position; a change of *where* (seek, loop wrap)
lets the old voice run on from where it was while the new one fades in at the target. Pausing
fades out too. So nothing ever clicks, and rapid switching (Tab held down) just retargets the
envelopes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

ORIGINAL = "original"
RECONSTRUCTION = "reconstruction"
RESIDUAL = "residual"

CROSSFADE_S = 0.005
MAX_BOOST_DB = 12.0
# Overlapping fades (Tab mashed) keep at most this many voices; the quietest fading one goes first.
MAX_VOICES = 4
# A loop shorter than a few fades would be all crossfade.
MIN_LOOP_FADES = 4

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
    return x if length is None else fit_length(x, length)


def fit_length(buffer: np.ndarray, length: int) -> np.ndarray:
    """``buffer`` [T] zero-padded or trimmed to ``length``, read-only."""
    if buffer.shape[0] == length:
        return buffer
    if buffer.shape[0] < length:
        fitted = np.pad(buffer, (0, length - buffer.shape[0]))
    else:
        fitted = buffer[:length].copy()
    fitted.flags.writeable = False
    return fitted
