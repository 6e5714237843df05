"""Build the built-in demo corpus in resources/demo/: synthetic speech and music, 24 kHz mono FLAC.

The corpus is what `make run` trains on when the user has no audio of their own. It is made here,
from nothing but tools a Debian machine has and text and MIDI this script writes itself:

- speech: espeak-ng reads the project's own sentences in several voices, one sentence at a time,
  with pauses between them so every clip has quiet stretches where a codec's hiss would show;
- music: a small Standard MIDI File writer (below) turns seeded phrases (scales, arpeggios, chord
  progressions, a drum groove) into .mid files that FluidSynth renders with the FluidR3 GM
  soundfont.

Every clip is mixed to mono, resampled to 24 kHz, trimmed of long silence at either end, peak
normalised to -1 dBFS and written as 16-bit FLAC. Nothing is random except through fixed seeds, so
running the script twice on one machine gives the same samples. It also writes README.md with the
manifest. Run it with `make demo-corpus` or `python scripts/make_demo_corpus.py [--out DIR]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 24000
PEAK_DBFS = -1.0
SEED = 2024
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "resources" / "demo"

# (program looked up on PATH, Debian package that provides it)
REQUIRED_TOOLS = (
    ("espeak-ng", "espeak-ng"),
    ("fluidsynth", "fluidsynth"),
)


# ---------------------------------------------------------------------------------------------
# Standard MIDI File writer (format 0: one track, channels carried in the events)
# ---------------------------------------------------------------------------------------------

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # GM channel 10, counted from zero


@dataclass(frozen=True)
class Note:
    """One note: when and how long in beats, MIDI pitch 0-127, velocity 1-127, channel 0-15."""

    start: float
    length: float
    pitch: int
    velocity: int
    channel: int = 0


@dataclass
class Phrase:
    """A piece of music ready to write: notes, a tempo, and per-channel program and mix."""

    bpm: float
    notes: list[Note] = field(default_factory=list)
    programs: dict[int, int] = field(default_factory=dict)  # channel -> GM program (0-based)
    volumes: dict[int, int] = field(default_factory=dict)  # channel -> CC7
    tail_beats: float = 3.0  # silence after the last note so release and reverb can ring out

    def add(self, start: float, length: float, pitch: int, velocity: int, channel: int = 0):
        self.notes.append(Note(start, length, pitch, int(np.clip(velocity, 1, 127)), channel))


def _variable_length(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(phrase: Phrase) -> bytes:
    """Encode a phrase as a format-0 Standard MIDI File."""
    events: list[tuple[int, int, bytes]] = []  # (tick, order at that tick, message)
    tempo = round(60_000_000 / phrase.bpm)
    events.append((0, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")))
    for channel in sorted(set(phrase.programs) | set(phrase.volumes)):
        if channel in phrase.programs:
            events.append((0, 0, bytes([0xC0 | channel, phrase.programs[channel]])))
        events.append((0, 0, bytes([0xB0 | channel, 7, phrase.volumes.get(channel, 100)])))
        events.append((0, 0, bytes([0xB0 | channel, 10, 64])))  # centre pan: the mix ends mono
    last = 0
    for note in phrase.notes:
        on = round(note.start * TICKS_PER_BEAT)
        off = max(on + 1, round((note.start + note.length) * TICKS_PER_BEAT))
        # At equal ticks note-offs go first, so a repeated pitch is not cut by its predecessor.
        events.append((on, 2, bytes([0x90 | note.channel, note.pitch, note.velocity])))
        events.append((off, 1, bytes([0x80 | note.channel, note.pitch, 0])))
        last = max(last, off)
    end = last + round(phrase.tail_beats * TICKS_PER_BEAT)
    events.sort(key=lambda event: (event[0], event[1]))  # stable: equal keys keep their order
    track = bytearray()
    now = 0
    for tick, _, message in events:
        track += _variable_length(tick - now) + message
        now = tick
    track += _variable_length(end - now) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# ---------------------------------------------------------------------------------------------
# The music: small phrases, each deterministic given its seed
# ---------------------------------------------------------------------------------------------

_NOTE_OFFSETS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch(name: str) -> int:
    """MIDI pitch of a note name such as 'C4' (middle C, 60), 'F#3' or 'Bb2'."""
    step, rest = name[0], name[1:]
    offset = _NOTE_OFFSETS[step]
    while rest and rest[0] in "#b":
        offset += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    return 12 * (int(rest) + 1) + offset


def chord(names: str) -> list[int]:
    return [pitch(name) for name in names.split()]


def _humanize(rng: np.random.Generator, velocity: int, spread: int = 6) -> int:
    return velocity + int(rng.integers(-spread, spread + 1))


def piano_phrase(rng: np.random.Generator) -> Phrase:
    """Acoustic piano: a two-octave C major scale, arpeggios on C-Am-F-G, a closing chord."""
    p = Phrase(bpm=138, programs={0: 0}, volumes={0: 110})
    scale = [pitch(n) for n in "C4 D4 E4 F4 G4 A4 B4".split()]
    run = [s + 12 * octave for octave in range(2) for s in scale] + [pitch("C6")]
    for i, note in enumerate(run):
        p.add(i * 0.5, 0.55, note, _humanize(rng, 70 + 2 * i))
    for beat, bass in ((0, "C3"), (4, "G2")):
        p.add(beat, 3.8, pitch(bass), _humanize(rng, 62))
    t = 8.0
    for root, triad in (("C3", "C4 E4 G4"), ("A2", "A3 C4 E4"), ("F2", "F3 A3 C4"), ("G2", "G3 B3 D4")):
        p.add(t, 1.9, pitch(root), _humanize(rng, 66))
        tones = chord(triad) + [chord(triad)[0] + 12]
        for i, note in enumerate(tones):
            p.add(t + i * 0.5, 1.5 - i * 0.25, note, _humanize(rng, 76 if i == 0 else 68))
        t += 2.0
    for note in chord("C3 G3 C4 E4 G4 C5"):
        p.add(t, 3.5, note, _humanize(rng, 72, 4))
    return p


def strings_phrase(rng: np.random.Generator) -> Phrase:
    """String ensemble, cello and violin: a D minor progression with a rising violin line."""
    p = Phrase(bpm=100, programs={0: 48, 1: 42, 2: 40}, volumes={0: 92, 1: 105, 2: 110}, tail_beats=4)
    progression = [
        ("D2", "A3 D4 F4", "A4"), ("Bb1", "Bb3 D4 F4", "Bb4"), ("F2", "A3 C4 F4", "C5"),
        ("C2", "G3 C4 E4", "E5"), ("A1", "G3 C#4 E4", "C#5"), ("D2", "A3 D4 F4", "D5"),
    ]
    for i, (bass, inner, top) in enumerate(progression):
        t, length = 2.0 * i, 4.0 if i == len(progression) - 1 else 2.0
        p.add(t, length, pitch(bass) + 12, _humanize(rng, 84), channel=1)
        for note in chord(inner):
            p.add(t, length, note, _humanize(rng, 70), channel=0)
        p.add(t, length, pitch(top), _humanize(rng, 88), channel=2)
    return p


def guitar_phrase(rng: np.random.Generator) -> Phrase:
    """Nylon guitar fingerpicking over G-Em-C-D, ending on a strummed G chord."""
    p = Phrase(bpm=126, programs={0: 24}, volumes={0: 115})
    shapes = ["G2 B3 D4 G4", "E2 B3 E4 G4", "C3 C4 E4 G4", "D3 A3 D4 F#4"]
    pattern = [0, 1, 2, 3, 2, 1, 0, 2]  # bass, then up and down the treble strings
    for bar, shape in enumerate(shapes):
        tones = chord(shape)
        for step, index in enumerate(pattern):
            start = 4.0 * bar + 0.5 * step + float(rng.uniform(-0.01, 0.01))
            velocity = 82 if step in (0, 6) else 66
            p.add(max(0.0, start), 0.95, tones[index] - (12 if step == 6 else 0), _humanize(rng, velocity))
    for i, note in enumerate(chord("G2 B2 D3 G3 B3 G4")):
        p.add(16.0 + 0.04 * i, 3.0, note, _humanize(rng, 78, 4))
    return p


def harp_phrase(rng: np.random.Generator) -> Phrase:
    """Orchestral harp: rising arpeggios on Eb-Cm-Ab-Bb, a falling glissando, a final Eb chord."""
    p = Phrase(bpm=104, programs={0: 46}, volumes={0: 115}, tail_beats=4)
    t = 0.0
    for triad in ("Eb3 G3 Bb3", "C3 Eb3 G3", "Ab2 C3 Eb3", "Bb2 D3 F3"):
        tones = chord(triad)
        run = [tone + 12 * octave for octave in range(3) for tone in tones][:8]
        for i, note in enumerate(run):
            p.add(t + 0.25 * i, 2.0 - 0.2 * i, note, _humanize(rng, 64 + 3 * i))
        t += 2.0
    eb_major = [pitch(n) for n in "Eb3 F3 G3 Ab3 Bb3 C4 D4".split()]
    glissando = [s + 12 * octave for octave in (2, 1, 0) for s in reversed(eb_major)]
    for i, note in enumerate(glissando):
        p.add(t + 0.09 * i, 0.8, note, _humanize(rng, 80 - i, 4))
    t += 0.09 * len(glissando) + 0.25
    for i, note in enumerate(chord("Eb2 Bb2 Eb3 G3 Bb3 Eb4")):
        p.add(t + 0.05 * i, 3.0, note, _humanize(rng, 74, 4))
    return p


def pizzicato_phrase(rng: np.random.Generator) -> Phrase:
    """Pizzicato strings: a staccato G major tune over a plucked bass line."""
    p = Phrase(bpm=128, programs={0: 45, 1: 45}, volumes={0: 120, 1: 110})
    tune = "G4 B4 D5 B4 C5 A4 F#4 A4 G4 B4 D5 G5 F#5 D5 A4 F#4".split()
    bass = "G2 D3 G2 D3 A2 D3 F#2 D3 G2 D3 B2 D3 D3 A2 D2 F#2".split()
    for i, name in enumerate(tune):
        p.add(0.5 * i, 0.3, pitch(name), _humanize(rng, 92 if i % 2 == 0 else 76))
    for i, name in enumerate(tune[::-1]):
        p.add(8.0 + 0.5 * i, 0.3, pitch(name) - (12 if i % 4 == 3 else 0), _humanize(rng, 84))
    for i, name in enumerate(bass):
        p.add(float(i), 0.5, pitch(name), _humanize(rng, 90), channel=1)
    for note, channel in ((pitch("G4"), 0), (pitch("B4"), 0), (pitch("D5"), 0), (pitch("G2"), 1)):
        p.add(16.0, 0.5, note, _humanize(rng, 100, 3), channel)
    return p


_KICK, _SNARE, _HAT, _OPEN_HAT, _CRASH, _RIDE = 36, 38, 42, 46, 49, 51
_TOMS = (50, 48, 45, 41)  # high to floor


def _groove_bar(p: Phrase, rng: np.random.Generator, t: float, cymbal: int, fill: bool = False):
    for step in range(8):
        if fill and step >= 4:
            break
        p.add(t + 0.5 * step, 0.25, cymbal, _humanize(rng, 84 if step % 2 == 0 else 62), DRUM_CHANNEL)
    for beat in (0.0, 1.5, 2.0):
        p.add(t + beat, 0.25, _KICK, _humanize(rng, 104), DRUM_CHANNEL)
    for beat in (1.0, 3.0) if not fill else (1.0,):
        p.add(t + beat, 0.25, _SNARE, _humanize(rng, 100), DRUM_CHANNEL)
    if fill:  # sixteenths down the toms over beats 3 and 4
        for i in range(8):
            p.add(t + 2.0 + 0.25 * i, 0.25, _TOMS[i // 2], _humanize(rng, 86 + 2 * i), DRUM_CHANNEL)


def drums_phrase(rng: np.random.Generator) -> Phrase:
    """GM drum kit on channel 10: a rock groove (hats, then ride), a tom fill and a crash."""
    p = Phrase(bpm=112, volumes={DRUM_CHANNEL: 115}, programs={DRUM_CHANNEL: 0})
    p.add(0.0, 1.0, _CRASH, 100, DRUM_CHANNEL)
    _groove_bar(p, rng, 0.0, _HAT)
    p.add(3.5, 0.5, _OPEN_HAT, _humanize(rng, 90), DRUM_CHANNEL)
    _groove_bar(p, rng, 4.0, _RIDE)
    _groove_bar(p, rng, 8.0, _HAT, fill=True)
    p.add(12.0, 2.0, _CRASH, 110, DRUM_CHANNEL)
    p.add(12.0, 0.5, _KICK, 110, DRUM_CHANNEL)
    return p


def ensemble_phrase(rng: np.random.Generator) -> Phrase:
    """Flute tune, piano, fingered bass, string pad and drums over C-Am-Dm-G-F/G-C."""
    piano, bass, pad, flute = 0, 1, 2, 3
    p = Phrase(
        bpm=150,
        programs={piano: 0, bass: 33, pad: 48, flute: 73, DRUM_CHANNEL: 0},
        volumes={piano: 92, bass: 110, pad: 70, flute: 112, DRUM_CHANNEL: 88},
    )
    bars = [("C", "C4 E4 G4"), ("A", "A3 C4 E4"), ("D", "A3 D4 F4"), ("G", "G3 B3 D4"),
            ("F", "A3 C4 F4")]
    roots = {"C": "C2", "A": "A1", "D": "D2", "G": "G1", "F": "F1"}
    pentatonic = chord("C5 D5 E5 G5 A5 C6")
    melody_at = 0  # index into the pentatonic scale; the tune wanders from here, seeded
    for bar, (root, triad) in enumerate(bars):
        t, tones = 4.0 * bar, chord(triad)
        half = bar == 4  # F then G, two beats each: the turnaround
        for beat in (1.0, 3.0):
            stab = tones if not (half and beat == 3.0) else chord("G3 B3 D4")
            for note in stab:
                p.add(t + beat, 0.6, note, _humanize(rng, 70), piano)
        bass_root = pitch(roots[root])
        p.add(t, 1.0, bass_root, _humanize(rng, 96), bass)
        p.add(t + 2.0, 1.0, bass_root + (7 if not half else 14), _humanize(rng, 88), bass)
        p.add(t + 3.5, 0.5, bass_root + 12, _humanize(rng, 80), bass)
        for note in tones:
            p.add(t, 4.0, note - 12 if note > pitch("E4") else note, _humanize(rng, 58, 3), pad)
        rhythm = [0.0, 1.0, 1.5, 2.0, 3.0] if bar % 2 == 0 else [0.0, 1.0, 2.0, 2.5, 3.0]
        for i, beat in enumerate(rhythm):
            melody_at = int(np.clip(melody_at + rng.integers(-1, 2) + (1 if i == 0 else 0), 0, 5))
            length = (rhythm[i + 1] if i + 1 < len(rhythm) else 4.0) - beat
            p.add(t + beat, length * 0.9, pentatonic[melody_at], _humanize(rng, 92), flute)
        _groove_bar(p, rng, t, _HAT, fill=bar == 4)
    end = 4.0 * len(bars)
    for note in chord("C4 E4 G4 C5"):
        p.add(end, 3.0, note, 84, piano)
    p.add(end, 3.0, pitch("C2"), 100, bass)
    p.add(end, 3.0, pitch("C5"), 96, flute)
    p.add(end, 2.0, _CRASH, 104, DRUM_CHANNEL)
    p.add(end, 0.5, _KICK, 108, DRUM_CHANNEL)
    return p


# ---------------------------------------------------------------------------------------------
# The speech: the project's own sentences, read one at a time so the pauses are ours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speech:
    voice: str  # espeak-ng voice with an optional +variant
    speed: int  # words per minute
    pitch: int  # 0-99
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Clip:
    name: str  # file stem; starts with its kind
    kind: str  # "speech" or "music"
    description: str
    speech: Speech | None = None
    music: Callable[[np.random.Generator], Phrase] | None = None  # builds the MIDI phrase


CLIPS = (
    Clip("speech-01-harbour", "speech", "espeak-ng voice en-us: a morning walk to the harbour",
         speech=Speech("en-us", 175, 48, (
             "The train was late again, so we walked to the harbour instead.",
             "A few boats were already out, their engines humming.",
             "By nine, the fog had lifted.",
         ))),
    Clip("speech-02-errands", "speech", "espeak-ng voice en-gb+f3: small requests around a house",
         speech=Speech("en-gb+f3", 170, 58, (
             "Please put the blue folder on the top shelf, next to the radio.",
             "If the door sticks, lift the handle and push.",
             "Thank you. That is all for today.",
         ))),
    Clip("speech-03-river", "speech", "espeak-ng voice en-gb-x-rp: a river that floods each spring",
         speech=Speech("en-gb-x-rp", 165, 40, (
             "Every spring, the river rises and floods the lower field.",
             "The farmers plant late there, but the soil is rich.",
             "Nobody remembers a dry year.",
         ))),
    Clip("speech-04-directions", "speech", "espeak-ng voice en-us+m7: directions to the library",
         speech=Speech("en-us+m7", 175, 35, (
             "Turn left at the bakery, then follow the road past the school.",
             "The library is the grey building with tall windows.",
             "It opens at ten.",
         ))),
    Clip("speech-05-stairs", "speech", "espeak-ng voice en-gb-scotland+f4: counting steps up a tower",
         speech=Speech("en-gb-scotland+f4", 170, 62, (
             "She counted the steps: one, two, three.",
             "At the top, the wind was cold, and the city looked small.",
             "Far away, a bell rang twice.",
         ))),
    Clip("speech-06-listening", "speech", "espeak-ng voice en-us+klatt4: on listening to the quiet parts",
         speech=Speech("en-us+klatt4", 170, 50, (
             "Numbers help, but listening helps more.",
             "Play the sound again, slowly, and mind the quiet parts.",
             "Is there a hiss, a hum, or nothing at all?",
         ))),
    Clip("music-piano", "music", "GM piano: two-octave C major scale, arpeggios on C-Am-F-G, final chord",
         music=piano_phrase),
    Clip("music-strings", "music", "GM string ensemble, cello and violin: a D minor chord progression",
         music=strings_phrase),
    Clip("music-guitar", "music", "GM nylon guitar: fingerpicked G-Em-C-D and a strummed G",
         music=guitar_phrase),
    Clip("music-harp", "music", "GM orchestral harp: arpeggios on Eb-Cm-Ab-Bb, a glissando, final chord",
         music=harp_phrase),
    Clip("music-pizzicato", "music", "GM pizzicato strings: a staccato G major tune over a plucked bass",
         music=pizzicato_phrase),
    Clip("music-drums", "music", "GM drum kit (channel 10): rock groove with hats and ride, tom fill, crash",
         music=drums_phrase),
    Clip("music-ensemble", "music",
         "GM ensemble: flute tune, piano, fingered bass, string pad and drums over C-Am-Dm-G-F-G-C",
         music=ensemble_phrase),
)


# ---------------------------------------------------------------------------------------------
# Rendering and clean-up
# ---------------------------------------------------------------------------------------------


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {detail[-1] if detail else ''}")


def _read_mono(path: Path) -> np.ndarray:
    """Read a file as float64 mono at SAMPLE_RATE. Returns [T]."""
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        common = gcd(SAMPLE_RATE, rate)
        mono = resample_poly(mono, SAMPLE_RATE // common, rate // common)
    return mono


def _frame_levels_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """Peak level of each whole frame in dBFS. [T] -> [T // frame]."""
    usable = len(audio) // frame * frame
    peaks = np.abs(audio[:usable]).reshape(-1, frame).max(axis=1)
    return 20 * np.log10(np.maximum(peaks, 1e-10))


def trim_silence(audio: np.ndarray, keep_before: float, keep_after: float,
                 threshold_db: float = -55.0) -> np.ndarray:
    """Cut the silence at either end down to the given seconds. [T] -> [T']

    Silence is any 10 ms frame more than `threshold_db` below the clip's own peak.
    """
    frame = SAMPLE_RATE // 100
    levels = _frame_levels_db(audio, frame) - 20 * np.log10(max(np.abs(audio).max(), 1e-10))
    loud = np.flatnonzero(levels > threshold_db)
    if len(loud) == 0:
        return audio
    start = max(0, loud[0] * frame - round(keep_before * SAMPLE_RATE))
    end = min(len(audio), (loud[-1] + 1) * frame + round(keep_after * SAMPLE_RATE))
    return audio[start:end]


def finish(audio: np.ndarray, fade_out: float) -> np.ndarray:
    """Fade the ends, normalise the peak to PEAK_DBFS and quantise to 16 bits. [T] -> int16 [T]"""
    audio = audio.copy()
    fade_in = round(0.005 * SAMPLE_RATE)
    audio[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    tail = min(len(audio), round(fade_out * SAMPLE_RATE))
    audio[len(audio) - tail:] *= np.linspace(1.0, 0.0, tail) ** 2
    audio *= 10 ** (PEAK_DBFS / 20) / np.abs(audio).max()
    return np.round(audio * 32767).astype(np.int16)


def render_speech(speech: Speech, rng: np.random.Generator, work: Path) -> np.ndarray:
    """Speak each sentence and join them with seeded pauses of 0.4-0.8 s. Returns [T]."""
    parts = []
    for i, sentence in enumerate(speech.sentences):
        wav = work / f"sentence-{i}.wav"
        _run(["espeak-ng", "-v", speech.voice, "-s", str(speech.speed), "-p", str(speech.pitch),
              "-a", "100", "-w", str(wav), sentence])
        spoken = trim_silence(_read_mono(wav), keep_before=0.02, keep_after=0.04, threshold_db=-50)
        if parts:
            parts.append(np.zeros(round(float(rng.uniform(0.4, 0.8)) * SAMPLE_RATE)))
        parts.append(spoken)
    return np.concatenate(parts)


def render_music(phrase: Phrase, work: Path) -> np.ndarray:
    """Write the phrase as MIDI and render it with FluidSynth. Returns [T]."""
    mid, wav = work / "phrase.mid", work / "phrase.wav"
    mid.write_bytes(midi_bytes(phrase))
    # Float output: no dither (which would differ run to run) and no clipping before we normalise.
    _run(["fluidsynth", "-q", "-ni", "-g", "0.5", "-r", str(SAMPLE_RATE), "-O", "float", "-T", "wav",
          "-o", "synth.cpu-cores=1", "-F", str(wav), str(SOUNDFONT), str(mid)])
    return _read_mono(wav)


def make_clip(clip: Clip, work: Path) -> np.ndarray:
    """Render one clip to finished 16-bit mono samples at SAMPLE_RATE. Returns int16 [T]."""
    rng = np.random.default_rng([SEED, zlib.crc32(clip.name.encode())])
    if clip.speech is not None:
        audio = render_speech(clip.speech, rng, work)
        return finish(trim_silence(audio, keep_before=0.15, keep_after=0.3), fade_out=0.05)
    audio = render_music(clip.music(rng), work)
    return finish(trim_silence(audio, keep_before=0.05, keep_after=0.3, threshold_db=-42), fade_out=0.5)


# ---------------------------------------------------------------------------------------------
# README and entry point
# ---------------------------------------------------------------------------------------------


def _tool_version(program: str) -> str:
    """'espeak-ng 1.51' from the program's --version banner, or the program name alone."""
    result = subprocess.run([program, "--version"], capture_output=True, text=True)
    found = re.search(r"\d+\.\d+(\.\d+)?", result.stdout or result.stderr)
    return f"{program} {found.group(0)}" if found else program


def readme_text(rows: list[tuple[Clip, float]]) -> str:
    total = sum(seconds for _, seconds in rows)
    table = "\n".join(
        f"| {clip.name}.flac | {clip.kind} | {seconds:.2f} | {clip.description} |" for clip, seconds in rows
    )
    texts = "\n".join(
        f"- `{clip.name}.flac`: " + " ".join(clip.speech.sentences) for clip, _ in rows if clip.speech
    )
    versions = f"{_tool_version('espeak-ng')} and {_tool_version('fluidsynth')}"
    return f"""# The built-in demo corpus

What VQ Studio trains on when no folder of audio is given (`make run`, or `data.path = ""`):
{len(rows)} short clips, {total:.1f} s in all, speech and music, each 24 kHz mono 16-bit FLAC,
peak-normalised to -1 dBFS. The speech clips have pauses between sentences, so there are quiet
stretches where a codec's background hiss or buzz is easy to see and hear. The files are small
and many, so a validation split by file still leaves enough to train on.

This file is written by the generator; edit `scripts/make_demo_corpus.py`, not this file.

## Manifest

| file | kind | seconds | what it is |
|------|------|---------|------------|
{table}

What the speech clips say:

{texts}

## Regenerate

    make demo-corpus                    # installs espeak-ng, fluidsynth, fluid-soundfont-gm if missing
    python scripts/make_demo_corpus.py  # or directly; --out DIR writes elsewhere

Needs `espeak-ng`, `fluidsynth` and the FluidR3 GM soundfont at `{SOUNDFONT}`
(`sudo apt-get install espeak-ng fluidsynth fluid-soundfont-gm`). Everything is seeded: running
it twice on one machine gives the same samples. Other versions of espeak-ng, FluidSynth or the
soundfont can give slightly different audio.
This set was made with {versions}.

How it is made: each speech sentence is synthesized by espeak-ng at its native rate, resampled to
24 kHz with a polyphase filter, and joined to the next by a seeded pause of 0.4-0.8 s. Each music
clip is a MIDI phrase the script composes itself (scales, arpeggios, chord progressions, a drum
groove; small seeded variations of timing and velocity), written by the script's own Standard MIDI
File writer and rendered by FluidSynth at 24 kHz with its default reverb and chorus. Every clip is
mixed to mono, trimmed of long silence at either end, faded at the edges, normalised and written
as 16-bit FLAC.

## Provenance and licences

- Speech: synthesized by [eSpeak NG](https://github.com/espeak-ng/espeak-ng). The program is
  GPL-3.0-or-later; the audio it synthesizes from our text is output, not the program, and is not
  covered by that licence.
- Music: rendered with [FluidSynth](https://www.fluidsynth.org/) (LGPL-2.1; the renderer only)
  using the FluidR3_GM soundfont by Frank Wen, released under the MIT licence (Debian package
  `fluid-soundfont-gm`).
- The sentences and the MIDI phrases are the project's own, written for VQ Studio, and are
  distributed with the project under its MIT licence, as is this corpus.
"""


def missing_tools() -> list[str]:
    """Debian packages needed to regenerate the corpus that this machine lacks."""
    missing = [package for tool, package in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not SOUNDFONT.is_file():
        missing.append("fluid-soundfont-gm")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default resources/demo)")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        listed = " ".join(missing)
        print(f"error: {', '.join(missing)} not found — install with: sudo apt-get install -y {listed}",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    names = {f"{clip.name}.flac" for clip in CLIPS}
    for stale in sorted([*args.out.glob("speech-*.flac"), *args.out.glob("music-*.flac")]):
        if stale.name not in names:  # a clip renamed or dropped since the last run
            stale.unlink()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vqstudio-demo-") as work:
        for clip in CLIPS:
            try:
                samples = make_clip(clip, Path(work))
            except RuntimeError as error:
                print(f"error: {clip.name}: {error}", file=sys.stderr)
                return 1
            sf.write(args.out / f"{clip.name}.flac", samples, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
            seconds = len(samples) / SAMPLE_RATE
            rows.append((clip, seconds))
            print(f"{clip.name}.flac  {clip.kind:6s}  {seconds:5.2f} s")
    (args.out / "README.md").write_text(readme_text(rows), encoding="utf-8")
    total = sum(seconds for _, seconds in rows)
    size = sum((args.out / f"{clip.name}.flac").stat().st_size for clip in CLIPS)
    print(f"{len(rows)} files, {total:.1f} s, {size / 2**20:.2f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
