"""Audio files in and out: checked reading (mono float32, any rate), polyphase resampling, and
atomic WAV/FLAC writing.

Reading goes through soundfile (libsndfile) in float32 blocks, mixed down to mono block by block,
so a long file never sits in memory as multichannel float64 (MP3 is the exception: it is decoded
in one float32 read, because libsndfile garbles MP3 reads that stop mid-frame).

Every way a file can be unusable (missing, a folder, not audio, empty, NaN samples, an absurd
sample rate, cut off mid-stream) ends in an :class:`~vqstudio.errors.AudioFileError` that names
the file, the problem and a fix.

Sample positions at a target rate are those of the whole file resampled with
:func:`resample`; :func:`read_samples` reads any range of them without decoding the whole file
(it decodes a margin around the range so the filter's edges fall outside it).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from vqstudio.atomic import atomic_path
from vqstudio.audio.resampler import read_resampled, resample, resampled_length
from vqstudio.errors import AudioFileError

READ_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
WRITE_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_000_000
BLOCK_FRAMES = 1 << 16  # frames decoded at a time: 256 KiB per channel in float32

__all__ = ["AudioInfo", "audio_info", "check_audio", "read_audio", "read_samples", "resample",
           "resampled_length", "write_audio", "READ_SUFFIXES"]
# integer PCM whose float32 mono is exact from integers: no NaN to look for, and a cheaper decode
_INT_READS = {"PCM_16": ("int16", 2.0**-15), "PCM_24": ("int32", 2.0**-31)}
_FIX_REEXPORT = "re-export or re-copy the file, or remove it from the folder"


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says, after sanity checks. ``duration`` is in seconds."""

    path: str
    sample_rate: int
    frames: int
    channels: int
    duration: float
    format: str


# -- header checks ------------------------------------------------------------------------------


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Open ``path``'s header and check it: exists, is a readable audio file, has frames, has a
    plausible sample rate, and (WAV/AIFF) holds as many bytes as its header declares.

    Samples are not decoded; :func:`check_audio` also decodes them all.
    """
    path = Path(path)
    _check_is_readable_file(path)
    try:
        header = sf.info(os.fsencode(path))  # bytes: names need not be valid UTF-8
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise _open_error(path, error) from None
    if not MIN_SAMPLE_RATE <= header.samplerate <= MAX_SAMPLE_RATE:
        raise AudioFileError(
            path,
            f"its header declares a sample rate of {header.samplerate} Hz, outside the plausible "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (the header is likely damaged)",
            _FIX_REEXPORT,
        )
    if header.channels < 1:
        raise AudioFileError(path, "its header declares no channels", _FIX_REEXPORT)
    if header.frames <= 0:
        raise AudioFileError(
            path,
            "holds no audio frames (it is empty, or was cut off before its first full page)",
            _FIX_REEXPORT,
        )
    missing = _missing_data_bytes(path, header.format)
    if missing:
        raise AudioFileError(
            path,
            f"is truncated: {missing} bytes of audio declared in its header are missing "
            f"(about {header.duration:.2f} s are present)",
            "an interrupted copy or download cuts files short; " + _FIX_REEXPORT,
        )
    return AudioInfo(
        path=str(path),
        sample_rate=int(header.samplerate),
        frames=int(header.frames),
        channels=int(header.channels),
        duration=header.frames / header.samplerate,
        format=str(header.format),
    )


def _check_is_readable_file(path: Path) -> None:
    if not path.exists():
        what = ("is a link that leads nowhere (its target is missing, or the links loop)"
                if path.is_symlink() else "does not exist")
        raise AudioFileError(path, what, "check the path and that the drive is mounted")
    if path.is_dir():
        raise AudioFileError(
            path, "is a folder, not an audio file", "pick the audio files inside it"
        )
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        # opening a pipe or device would block or read forever
        raise AudioFileError(
            path, "is not a regular file (a pipe or a device)", "copy the audio into a file"
        )
    if not os.access(path, os.R_OK):
        raise AudioFileError(
            path, "cannot be read: permission denied", "give your user read access to it"
        )
    if path.stat().st_size == 0:
        raise AudioFileError(path, "is empty (0 bytes)", _FIX_REEXPORT)


def _open_error(path: Path, error: Exception) -> AudioFileError:
    detail = str(error).split(": ", 1)[-1] if str(error) else type(error).__name__
    if "not recognised" in detail or "unknown format" in detail.lower():
        return AudioFileError(
            path,
            "is not an audio file soundfile can read (it may be another kind of file renamed)",
            "convert it to WAV or FLAC, or remove it from the folder",
        )
    if "malformed" in detail:
        return AudioFileError(
            path,
            "is damaged or cut off: its format is recognised but its contents cannot be parsed",
            _FIX_REEXPORT,
        )
    return AudioFileError(path, f"cannot be opened ({detail})", _FIX_REEXPORT)


def _missing_data_bytes(path: Path, fmt: str) -> int:
    """Bytes of sample data a WAV/AIFF header declares beyond the end of the file; 0 if none.

    libsndfile quietly shortens such files to what is present, so a cut-off copy would otherwise
    look like a shorter, healthy recording.
    """
    if fmt not in ("WAV", "WAVEX", "AIFF"):
        return 0
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            order, data_id, skip = "<I", b"data", 0
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            order, data_id, skip = ">I", b"SSND", 8  # SSND starts with offset and block size
        else:
            return 0
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            (length,) = struct.unpack(order, chunk[4:8])
            if chunk[:4] == data_id:
                if length in (0, 0xFFFFFFFF):  # streaming writers leave the size unset
                    return 0
                missing = (length - skip) - (size - pos - 8 - skip)
                # a writer's stray pad byte is harmless; a missing frame (up to 32 bytes) is not
                return missing if missing >= 32 else 0
            pos += 8 + length + (length & 1)
    return 0


# -- decoding -----------------------------------------------------------------------------------


def _mono_blocks(info: AudioInfo, first: int, count: int) -> Iterator[np.ndarray]:
    """Decode ``count`` frames from frame ``first`` as mono float32 blocks ``[n]``, checking that
    every sample is finite and that the file delivers all the frames it declared."""
    path = Path(info.path)
    done = 0
    try:
        with sf.SoundFile(os.fsencode(path)) as fh:
            exact = _INT_READS.get(fh.subtype) if info.channels <= 2 and info.format != "MP3" else None
            for mono in _int_blocks(fh, first, count, *exact) if exact else (
                    _mix_down(block) for block in _raw_blocks(fh, info.format, first, count)):
                if not exact and not np.isfinite(mono).all():
                    at = (first + done + int(np.argmin(np.isfinite(mono)))) / info.sample_rate
                    raise AudioFileError(
                        path,
                        f"contains NaN or infinite samples (first at {at:.3f} s)",
                        "re-export it from the tool that made it, clipping or replacing bad "
                        "samples",
                    )
                done += len(mono)
                yield mono
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(
            path,
            f"could not be decoded past {(first + done) / info.sample_rate:.2f} s ({error}); "
            "the file looks truncated or corrupt",
            _FIX_REEXPORT,
        ) from None
    if done < count:
        raise AudioFileError(
            path,
            f"is truncated: its header declares {info.duration:.2f} s but the audio ends at "
            f"{(first + done) / info.sample_rate:.2f} s",
            _FIX_REEXPORT,
        )


def _int_blocks(fh: sf.SoundFile, first: int, count: int, dtype: str, scale: float
                ) -> Iterator[np.ndarray]:
    """Mono float32 blocks of 16/24-bit PCM with one or two channels, from integer reads: half
    the decoding work of a float read, and bit for bit its channel mean (the integers, their sum
    and the power-of-two scales are exact in float32; a sum of two rounds once either way)."""
    if first:
        fh.seek(first)
    left = count
    while left > 0:  # plain reads: SoundFile.blocks copies every block once more
        block = fh.read(min(left, BLOCK_FRAMES), dtype=dtype, always_2d=True)
        if not len(block):
            return
        left -= len(block)
        mono = np.empty(len(block), dtype=np.float32)
        if block.shape[1] == 1:
            np.multiply(block[:, 0], np.float32(scale), out=mono, dtype=np.float32)
        else:
            np.add(block[:, 0], block[:, 1], out=mono, dtype=np.float32)
            mono *= np.float32(scale / 2)
        yield mono


def _mix_down(block: np.ndarray) -> np.ndarray:
    """Mono ``[n]`` of a float32 ``[n, C]`` block: the channel mean. Up to 7 channels the
    columns are added one by one, which is bit for bit what ``mean(axis=1)`` gives there and
    several times faster on an interleaved block; from 8 numpy sums pairwise, so mean is kept."""
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0]
    if channels >= 8:
        return block.mean(axis=1, dtype=np.float32)
    mono = block[:, 0].copy()
    for c in range(1, channels):
        mono += block[:, c]
    mono /= np.float32(channels)
    return mono


def _raw_blocks(fh: sf.SoundFile, fmt: str, first: int, count: int) -> Iterator[np.ndarray]:
    """Float32 ``[n, C]`` blocks of frames ``first .. first + count``."""
    if fmt == "MP3":
        # libsndfile 1.2's MP3 decoder garbles samples after a read that stops mid-frame (zeros
        # and glitches at every block boundary), and its seek is frame-accurate only; one read
        # from the start is exact, at the cost of holding frames 0 .. first + count at once.
        yield fh.read(first + count, dtype="float32", always_2d=True)[first:]
        return
    if first:
        fh.seek(first)
    yield from fh.blocks(BLOCK_FRAMES, frames=count, dtype="float32", always_2d=True)


def _decode(info: AudioInfo, first: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """Mono float32 ``[count]`` of frames ``first .. first + count`` at the file's own rate,
    into ``out`` if given."""
    out = np.empty(count, dtype=np.float32) if out is None else out
    filled = 0
    for mono in _mono_blocks(info, first, count) if count else ():
        out[filled : filled + len(mono)] = mono
        filled += len(mono)
    return out


def check_audio(path: str | os.PathLike) -> AudioInfo:
    """:func:`audio_info` plus a full decode (block by block, nothing kept) that finds NaN/Inf
    samples and files cut off mid-stream. Raises AudioFileError."""
    info = audio_info(path)
    for _ in _mono_blocks(info, 0, info.frames):
        pass
    return info


# -- reading ------------------------------------------------------------------------------------


def read_samples(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    first: int = 0,
    count: int | None = None,
    *,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Mono float32 ``[count]``: samples ``first .. first + count`` of the file at ``sample_rate``
    (its own rate if None), as they are in the whole file resampled; shorter at the file's end.

    Only the frames needed (plus the resampling filter's reach, :mod:`~vqstudio.audio.resampler`)
    are decoded. Pass ``info`` from
    an earlier :func:`audio_info` to skip re-reading the header.
    """
    info = info or audio_info(path)
    rate = int(sample_rate or info.sample_rate)
    if rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {rate}")
    total = resampled_length(info.frames, info.sample_rate, rate)
    if first < 0 or first >= total:
        raise AudioFileError(
            info.path,
            f"has no audio at {first / rate:.3f} s (it lasts {info.duration:.3f} s)",
            "choose a start inside the file",
        )
    count = total - first if count is None else max(0, min(int(count), total - first))
    if rate == info.sample_rate:
        return _decode(info, first, count)

    def decode(out: np.ndarray, start: int) -> None:
        _decode(info, start, len(out), out)

    return read_resampled(decode, info.frames, info.sample_rate, rate, first, count)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    start: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Mono float32 ``[T]`` at ``sample_rate`` (the file's own rate if None), from ``start``
    seconds for ``duration`` seconds (to the end if None). Raises AudioFileError."""
    info = audio_info(path)
    rate = int(sample_rate or info.sample_rate)
    first = int(round(start * rate))
    count = None if duration is None else int(round(duration * rate))
    return read_samples(path, rate, first, count, info=info)


# -- writing ------------------------------------------------------------------------------------


def write_audio(path: str | os.PathLike, wave: np.ndarray, sample_rate: int) -> None:
    """Write ``wave`` (``[T]`` or ``[C, T]``, float, nominally within [-1, 1]) as WAV (32-bit
    float) or FLAC (24-bit, clipped to [-1, 1]) by the suffix of ``path``.

    The file is written beside its destination under a hidden temporary name, flushed, fsynced
    and renamed over it: a failure leaves any earlier file untouched and no partial file behind.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise AudioFileError(
            path,
            f"cannot be written: '{suffix or 'no suffix'}' is not a format we write",
            "use .wav or .flac",
        )
    fmt, subtype = WRITE_FORMATS[suffix]
    data = np.asarray(wave, dtype=np.float32)
    if data.ndim not in (1, 2) or data.size == 0:
        raise AudioFileError(
            path, f"cannot be written: expected audio [T] or [C, T], got shape {data.shape}"
        )
    if not np.isfinite(data).all():
        raise AudioFileError(
            path,
            "was not written: the audio contains NaN or infinite samples",
            "check the model's output",
        )
    if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise AudioFileError(path, f"cannot be written at a sample rate of {sample_rate} Hz")
    frames = data.T if data.ndim == 2 else data  # soundfile wants [T, C]
    if subtype.startswith("PCM"):
        frames = np.clip(frames, -1.0, 1.0)

    try:
        with atomic_path(path) as tmp:
            sf.write(tmp, frames, int(sample_rate), format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(
            path,
            f"could not be written ({error})",
            "check that the folder is writable, has free space, and that the rate and channel "
            "count suit the format",
        ) from None
