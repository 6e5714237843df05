"""Spectrogram pictures for the HTML report, without Qt or matplotlib: a log-magnitude STFT mapped
through a small colour ramp and written as PNG with :mod:`zlib` (the format is a signature, an
IHDR chunk, zlib-compressed scanlines in IDAT chunks, and IEND; each chunk carries a CRC-32)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
from scipy import signal

FLOOR_DB = -110.0  # dBFS at the bottom of the colour ramp
# (position, RGB): dark blue through purple and orange to pale yellow
RAMP = ((0.0, (0, 0, 16)), (0.3, (60, 15, 110)), (0.6, (190, 55, 80)), (0.85, (250, 150, 30)),
        (1.0, (252, 250, 190)))


def png_bytes(rgb: np.ndarray) -> bytes:
    """``[H, W, 3]`` uint8 -> PNG file bytes (8-bit truecolour, no filtering)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def colour(values: np.ndarray) -> np.ndarray:
    """``[H, W]`` in [0, 1] -> ``[H, W, 3]`` uint8 through :data:`RAMP`."""
    pos = np.array([p for p, _ in RAMP])
    out = np.stack([np.interp(values, pos, [c[i] for _, c in RAMP]) for i in range(3)], axis=-1)
    return out.round().astype(np.uint8)


def spectrogram_png(wave: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 256,
                    max_hz: float = 8000.0) -> bytes:
    """A spectrogram of ``wave`` ``[T]`` up to ``max_hz`` (low frequencies at the bottom), as PNG."""
    wave = np.asarray(wave, np.float64)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    freqs, _, spec = signal.stft(wave, sample_rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop,
                                 boundary=None, padded=False)
    window_gain = 0.5  # a Hann window's mean: scipy scales by the window's sum
    level = 20 * np.log10(np.abs(spec[freqs <= max_hz]) / window_gain + 1e-12)
    image = np.clip((level - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0)[::-1]
    return png_bytes(colour(image))


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
